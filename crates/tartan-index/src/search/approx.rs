//! Approximate scores from centroid ids (PLAID's stages 2 and 3): for each query token, the
//! best score among the centroids of a document's tokens, summed over the query tokens.
//!
//! The query × centroid scores are quantised to one byte each on one grid per query, so a
//! document token costs one gathered row of the table and one byte-wise maximum
//! ([`tartan_kernels::max_rows_u8`]): a 32-token query's row is one AVX2 register, a quarter
//! of the `f32` row's bytes. The grid has `0.0` as one of its levels (byte `z`). The pruned
//! pass starts each token's maximum at `z` and reads a second table whose pruned centroids'
//! rows are all 0 bytes, so pruned codes change nothing (as if skipped), a token scores at
//! least 0, and one without a kept centroid scores 0; the full pass starts at byte 0, the
//! lowest level, and reads the whole table. Each per-token maximum is off by at most half a
//! step (`range / 254`), the sum by at most `n_tokens` half steps.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::segment::Codes;

/// Centroid rows quantised per parallel task.
const ROW_BLOCK: usize = 2048;

/// One query's centroid scores on a byte grid; row `c` holds centroid `c` against every
/// query token, padded with zeros to a multiple of 32 bytes.
#[derive(Debug)]
pub(crate) struct ByteScores {
    table: Vec<u8>,
    width: usize,
    n_tokens: usize,
    /// The byte that stands for a score of 0.
    zero: u8,
    /// Score per byte step.
    step: f32,
    /// `table` with the rows of pruned centroids (best score below the threshold) zeroed.
    pruned: Vec<u8>,
}

/// The smallest and largest of `scores`, computed where the scores are produced (while
/// they are in cache) and handed to [`ByteScores::new`].
pub(crate) fn score_range(scores: &[f32]) -> (f32, f32) {
    tartan_kernels::min_max(scores)
}

/// Reusable buffers of one scoring task.
#[derive(Debug, Default)]
pub(crate) struct ApproxScratch {
    ids: Vec<u32>,
    acc: Vec<u8>,
}

impl ByteScores {
    /// [`ByteScores::unless`], never given up.
    #[cfg(test)]
    pub(crate) fn new(cs: &[f32], n_tokens: usize, range: (f32, f32), threshold: f32) -> Self {
        let keep = AtomicBool::new(false);
        Self::unless(&keep, cs, n_tokens, range, threshold).expect("never cancelled")
    }

    /// Quantises centroid-major scores `cs` (`n_centroids × n_tokens`), all within `range`
    /// (see [`score_range`]), and zeroes, in the pruned pass's table, the centroids whose
    /// best score is below `threshold`. One pass over `cs`, blocks of rows on every core: at
    /// K = 131,072 the two tables are 8 MiB per query.
    ///
    /// Given up (`None`) once `cancel` is set, which is checked before each block of rows: a
    /// table found unneeded while it is being built stops within a block.
    pub(crate) fn unless(
        cancel: &AtomicBool,
        cs: &[f32],
        n_tokens: usize,
        range: (f32, f32),
        threshold: f32,
    ) -> Option<Self> {
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        let (lo, hi) = (range.0.min(0.0), range.1.max(0.0));
        // 254 steps over the range, so that moving the bottom down to a whole number of
        // steps below 0 still leaves the top within 255.
        let step = if hi > lo { (hi - lo) / 254.0 } else { 1.0 };
        let zero = (-lo / step).ceil().min(255.0);
        let width = n_tokens.div_ceil(32) * 32;
        let k = cs.len() / n_tokens;
        let mut table = vec![0u8; k * width];
        // The pruned pass's table: kept centroids' rows as in `table`, pruned ones all 0
        // bytes, which never raise a maximum that starts at `zero` ≥ 0. Skipping pruned codes
        // becomes a second table instead of a lookup and a compaction per code.
        let mut pruned = vec![0u8; k * width];
        let grid = tartan_kernels::Grid { step, zero };
        let block = ROW_BLOCK * width;
        table
            .par_chunks_mut(block)
            .zip(pruned.par_chunks_mut(block))
            .zip(cs.par_chunks(ROW_BLOCK * n_tokens))
            .for_each_init(Vec::new, |maxes, ((out, pruned), rows)| {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                maxes.resize(rows.len() / n_tokens, 0.0);
                tartan_kernels::quantize_rows(rows, n_tokens, grid, out, maxes);
                let rows = out.chunks_exact(width).zip(pruned.chunks_exact_mut(width));
                for ((row, p), &m) in rows.zip(maxes.iter()) {
                    if m >= threshold {
                        p.copy_from_slice(row);
                    }
                }
            });
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        Some(Self { table, pruned, width, n_tokens, zero: zero as u8, step })
    }

    /// The approximate score of a document's codes: with `pruned`, pruned centroids are
    /// skipped and each token scores at least 0 (PLAID's first pass); without, every code
    /// counts. `None` if a code is out of range (corruption).
    pub(crate) fn score(
        &self,
        codes: Codes<'_>,
        pruned: bool,
        s: &mut ApproxScratch,
    ) -> Option<f32> {
        codes.read_into(&mut s.ids);
        s.acc.clear();
        s.acc.resize(self.width, if pruned { self.zero } else { 0 });
        let table = if pruned { &self.pruned } else { &self.table };
        if !tartan_kernels::max_rows_u8(table, &s.ids, &mut s.acc) {
            return None;
        }
        let sum: u32 = s.acc[..self.n_tokens].iter().map(|&b| b as u32).sum();
        Some((sum as f32 - (self.n_tokens as u32 * self.zero as u32) as f32) * self.step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same scores in `f32`, the way PLAID defines them.
    fn reference(codes: &[u16], cs: &[f32], nq: usize, keep: Option<&[bool]>) -> f32 {
        let mut acc = vec![if keep.is_some() { 0.0 } else { f32::NEG_INFINITY }; nq];
        for &c in codes {
            let c = c as usize;
            if keep.is_none_or(|k| k[c]) {
                for (a, &s) in acc.iter_mut().zip(&cs[c * nq..(c + 1) * nq]) {
                    *a = a.max(s);
                }
            }
        }
        acc.iter().sum()
    }

    #[test]
    fn scores_prune_and_flag_bad_codes() {
        // 3 centroids × 2 query tokens; centroid 1's best (0.6) is below the threshold 0.7.
        let cs = [0.9, 0.1, 0.2, 0.6, 0.4, -0.4];
        let t = ByteScores::new(&cs, 2, score_range(&cs), 0.7);
        let mut s = ApproxScratch::default();
        let half = t.step / 2.0;
        let full = t.score(Codes::U16(&[0, 1]), false, &mut s).unwrap();
        assert!((full - (0.9 + 0.6)).abs() <= 2.0 * half, "{full}");
        let pruned = t.score(Codes::U16(&[0, 1]), true, &mut s).unwrap();
        assert!((pruned - (0.9 + 0.1)).abs() <= 2.0 * half, "{pruned}");
        // Only a pruned centroid: both tokens score 0 in the pruned pass.
        assert_eq!(t.score(Codes::U16(&[1]), true, &mut s), Some(0.0));
        // A negative score is kept by the full pass, floored at 0 by the pruned one.
        let neg = t.score(Codes::U16(&[2]), false, &mut s).unwrap();
        assert!((neg - 0.0).abs() <= 2.0 * half, "{neg}");
        assert_eq!(t.score(Codes::U16(&[7]), false, &mut s), None);
        assert_eq!(t.score(Codes::U16(&[7]), true, &mut s), None);
    }

    #[test]
    fn scores_are_within_half_a_step_per_token_of_the_float_scores() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for (k, nq) in [(300, 32), (50, 7), (40, 45), (20, 1)] {
            let cs: Vec<f32> = (0..k * nq).map(|_| rng.gen_range(-0.3..0.95)).collect();
            let t = ByteScores::new(&cs, nq, score_range(&cs), 0.8);
            let keep: Vec<bool> = cs
                .chunks_exact(nq)
                .map(|r| r.iter().copied().fold(f32::NEG_INFINITY, f32::max) >= 0.8)
                .collect();
            let mut s = ApproxScratch::default();
            for _ in 0..50 {
                let codes: Vec<u16> =
                    (0..rng.gen_range(1..60)).map(|_| rng.gen_range(0..k as u16)).collect();
                let bound = nq as f32 * t.step / 2.0 + 1e-4;
                for (pruned, keep) in [(false, None), (true, Some(&keep[..]))] {
                    let got = t.score(Codes::U16(&codes), pruned, &mut s).unwrap();
                    let want = reference(&codes, &cs, nq, keep);
                    assert!((got - want).abs() <= bound, "k {k} nq {nq}: {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn all_positive_or_all_equal_scores_keep_zero_on_the_grid() {
        let cs = [0.5f32, 0.7, 0.6, 0.9];
        let t = ByteScores::new(&cs, 2, score_range(&cs), 0.0);
        assert_eq!(t.zero, 0);
        let mut s = ApproxScratch::default();
        let got = t.score(Codes::U16(&[0, 1]), true, &mut s).unwrap();
        assert!((got - 1.5).abs() <= t.step, "{got}");
        let flat = ByteScores::new(&[0.0f32; 6], 3, (0.0, 0.0), 0.0);
        assert_eq!(flat.score(Codes::U16(&[1]), false, &mut s), Some(0.0));
    }
}
