//! Exact nearest centroids: every point against every centroid, as blocked matrix products.

use rayon::prelude::*;

/// Rows of points per rayon task.
const ROW_BLOCK: usize = 256;
/// Centroids per matrix product; with `ROW_BLOCK` this bounds each task's buffer at 2 MiB.
const CENTROID_BLOCK: usize = 2048;

/// For each row of `points` (`n × dim`, row-major), the index of the centroid (rows of
/// `centroids`, `k × dim`) at the smallest Euclidean distance, and that squared distance.
///
/// `‖x − c‖² = ‖x‖² − 2·x·c + ‖c‖²`, so the work is one matrix product per block. Ties go to
/// the lower index. Runs on the current rayon pool.
///
/// # Panics
/// If `dim` is 0 or the slice lengths are not multiples of `dim`.
pub fn nearest_centroids(points: &[f32], centroids: &[f32], dim: usize) -> (Vec<u32>, Vec<f32>) {
    assert!(dim > 0 && points.len().is_multiple_of(dim) && centroids.len().is_multiple_of(dim));
    let n = points.len() / dim;
    let c_norms: Vec<f32> =
        centroids.chunks_exact(dim).map(|c| tartan_kernels::dot(c, c)).collect();
    let mut labels = vec![0u32; n];
    let mut dists = vec![0f32; n];
    labels
        .par_chunks_mut(ROW_BLOCK)
        .zip(dists.par_chunks_mut(ROW_BLOCK))
        .zip(points.par_chunks(ROW_BLOCK * dim))
        .for_each_init(Vec::new, |scores, ((lab, dist), block)| {
            nearest_block(block, centroids, &c_norms, dim, lab, dist, scores)
        });
    (labels, dists)
}

fn nearest_block(
    block: &[f32],
    centroids: &[f32],
    c_norms: &[f32],
    dim: usize,
    labels: &mut [u32],
    dists: &mut [f32],
    scores: &mut Vec<f32>,
) {
    let rows = block.len() / dim;
    let mut best = vec![f32::INFINITY; rows];
    // Reused across a task's blocks: the product overwrites what it is given.
    let need = rows * CENTROID_BLOCK.min(c_norms.len());
    if scores.len() < need {
        scores.resize(need, 0.0);
    }
    for (cb, cblock) in centroids.chunks(CENTROID_BLOCK * dim).enumerate() {
        let kc = cblock.len() / dim;
        let s = &mut scores[..rows * kc];
        tartan_kernels::matmul_nt(block, cblock, dim, s);
        let base = cb * CENTROID_BLOCK;
        for r in 0..rows {
            let row = &s[r * kc..(r + 1) * kc];
            // The first minimum of this block; an equal one of an earlier block stays.
            let (d, j) = tartan_kernels::argmin_shifted(row, &c_norms[base..base + kc]);
            if d < best[r] {
                best[r] = d;
                labels[r] = (base + j) as u32;
            }
        }
    }
    for r in 0..rows {
        let x = &block[r * dim..(r + 1) * dim];
        dists[r] = (best[r] + tartan_kernels::dot(x, x)).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_brute_force(
            dim in 1usize..9,
            pts in proptest::collection::vec(-1.0f32..1.0, 0..400),
            cs in proptest::collection::vec(-1.0f32..1.0, 8..200),
        ) {
            let pts = &pts[..pts.len() / dim * dim];
            let cs = &cs[..cs.len() / dim * dim];
            prop_assume!(!cs.is_empty());
            let (labels, dists) = nearest_centroids(pts, cs, dim);
            for (i, x) in pts.chunks_exact(dim).enumerate() {
                let d2 = |c: &[f32]| x.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
                let want = cs.chunks_exact(dim).map(d2).fold(f32::INFINITY, f32::min);
                let got = d2(&cs[labels[i] as usize * dim..][..dim]);
                prop_assert!((got - want).abs() < 1e-4, "row {}: {} vs {}", i, got, want);
                prop_assert!((dists[i] - want).abs() < 1e-4);
            }
        }
    }
}
