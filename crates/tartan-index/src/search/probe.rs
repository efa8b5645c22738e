//! Probing: each query token's best cells, and when a filter is selective enough to scan
//! instead.

use crate::params::ResolvedSearch;

/// A filter matching at most this many documents scores all of them instead of probing:
/// approximate scoring of 8·ndocs documents costs about what probing does at the default
/// settings, and recall is then limited only by the approximate passes, not by the cells.
pub(crate) fn scan_limit(r: &ResolvedSearch) -> usize {
    8 * r.ndocs
}

/// The sorted, distinct union of each query token's `ncells` best centroids (ties to the
/// lower id).
pub(crate) fn probe(cs: &[f32], nq: usize, ncells: usize) -> Vec<u32> {
    let k = cs.len() / nq;
    let take = ncells.min(k);
    let mut cells =
        if take * 16 <= k { probe_scan(cs, nq, take) } else { probe_select(cs, nq, take) };
    cells.sort_unstable();
    cells.dedup();
    cells
}

/// Few cells: one pass over the centroid-major scores, each token keeping a short sorted
/// list of its best (insertions are rare after the first rows).
fn probe_scan(cs: &[f32], nq: usize, take: usize) -> Vec<u32> {
    let mut best = vec![(f32::NEG_INFINITY, u32::MAX); nq * take];
    // Each token's current worst kept score: a row that beats none of them (most rows, after
    // the first few) costs one comparison per token, without a branch, which vectorises.
    let mut floor = vec![f32::NEG_INFINITY; nq];
    for (c, row) in cs.chunks_exact(nq).enumerate() {
        let beats = row.iter().zip(&floor).fold(false, |any, (&s, &f)| any | (s > f));
        if !beats {
            continue;
        }
        for (j, &s) in row.iter().enumerate() {
            let b = &mut best[j * take..(j + 1) * take];
            if s > b[take - 1].0 {
                let mut i = take - 1;
                while i > 0 && b[i - 1].0 < s {
                    b[i] = b[i - 1];
                    i -= 1;
                }
                b[i] = (s, c as u32);
                floor[j] = b[take - 1].0;
            }
        }
    }
    best.into_iter().map(|(_, c)| c).collect()
}

/// Many cells: a selection per token.
fn probe_select(cs: &[f32], nq: usize, take: usize) -> Vec<u32> {
    let k = cs.len() / nq;
    let mut cells = Vec::with_capacity(nq * take);
    let mut col: Vec<(f32, u32)> = Vec::with_capacity(k);
    for j in 0..nq {
        col.clear();
        col.extend((0..k).map(|c| (cs[c * nq + j], c as u32)));
        let cmp = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if take < k {
            col.select_nth_unstable_by(take - 1, cmp);
        }
        cells.extend(col[..take].iter().map(|&(_, c)| c));
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_takes_each_tokens_best_cells() {
        // 4 centroids × 2 query tokens, centroid-major.
        let cs = [0.1, 0.9, 0.8, 0.2, 0.3, 0.7, 0.5, 0.1];
        assert_eq!(probe(&cs, 2, 1), vec![0, 1]);
        assert_eq!(probe(&cs, 2, 2), vec![0, 1, 2, 3]);
        assert_eq!(probe(&cs, 2, 10), vec![0, 1, 2, 3]);
    }

    #[test]
    fn scan_and_select_probes_agree() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for (k, nq, take) in [(200, 3, 1), (500, 7, 4), (64, 2, 3)] {
            // Quantised scores so that ties occur and the tie-break is exercised.
            let cs: Vec<f32> = (0..k * nq).map(|_| rng.gen_range(0..50) as f32 / 50.0).collect();
            let mut a = probe_scan(&cs, nq, take);
            let mut b = probe_select(&cs, nq, take);
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b, "k {k} nq {nq} take {take}");
        }
    }
}
