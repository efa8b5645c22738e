//! Exact late-interaction scoring.
//!
//! MaxSim of a query `Q` (`q × dim`) and a document `D` (`t × dim`) is
//! `Σᵢ maxⱼ Qᵢ · Dⱼ`: each query token takes its best-matching document token. [`maxsim`]
//! computes it with one matrix product `Q · Dᵀ`; [`TopK`] keeps the best hits; [`exact_search`]
//! scores every document of a [`Corpus`] against a batch of queries: the brute-force oracle
//! that tartan's compressed search is measured against.
//!
//! ```
//! use tartan_maxsim::{maxsim, MaxSimScratch};
//!
//! let q = [1.0f32, 0.0, 0.0, 1.0]; // two 2-dim query tokens
//! let d = [0.6f32, 0.8, 1.0, 0.0, 0.0, -1.0]; // three document tokens
//! let mut scratch = MaxSimScratch::default();
//! assert_eq!(maxsim(&q, &d, 2, &mut scratch), 1.0 + 0.8);
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod exact;
mod topk;

pub use exact::{exact_search, Corpus};
pub use topk::{top_sorted, Hit, TopK};

/// Reusable buffer for [`maxsim`] (the `q × t` score matrix).
#[derive(Debug, Default, Clone)]
pub struct MaxSimScratch {
    scores: Vec<f32>,
}

/// MaxSim of `query` (`q × dim`, row-major) and `doc` (`t × dim`). An empty document scores 0.
///
/// # Panics
/// If `dim` is 0 or a slice is not a whole number of rows.
pub fn maxsim(query: &[f32], doc: &[f32], dim: usize, scratch: &mut MaxSimScratch) -> f32 {
    let (q, t) = (query.len() / dim, doc.len() / dim);
    if t == 0 || q == 0 {
        return 0.0;
    }
    scratch.scores.resize(q * t, 0.0);
    tartan_kernels::matmul_nt(query, doc, dim, &mut scratch.scores);
    scratch
        .scores
        .chunks_exact(t)
        .map(|row| row.iter().copied().fold(f32::NEG_INFINITY, f32::max))
        .sum()
}

/// MaxSim of `query` against several documents stored back to back in `docs`: document `i`
/// holds tokens `offsets[i]..offsets[i + 1]` (`offsets` has one more entry than documents,
/// starting at 0). One matrix product covers them all, which for short documents saves most
/// of what a product per document spends on packing. Appends one score per document to
/// `out`; an empty document scores 0.
///
/// # Panics
/// If `dim` is 0, a slice is not a whole number of rows, or `offsets` does not describe
/// `docs`.
pub fn maxsim_batch(
    query: &[f32],
    docs: &[f32],
    offsets: &[usize],
    dim: usize,
    scratch: &mut MaxSimScratch,
    out: &mut Vec<f32>,
) {
    let (q, t) = (query.len() / dim, docs.len() / dim);
    assert_eq!(offsets.last().copied().unwrap_or(0), t, "offsets must end at the token count");
    if q == 0 {
        out.extend(offsets.windows(2).map(|_| 0.0));
        return;
    }
    // Token-major scores: row j holds document token j against every query token, so a
    // document's maxima are a running max over its contiguous rows.
    scratch.scores.resize(t * q, 0.0);
    tartan_kernels::matmul_nt(docs, query, dim, &mut scratch.scores);
    let mut acc = vec![0f32; q];
    for w in offsets.windows(2) {
        if w[0] == w[1] {
            out.push(0.0);
            continue;
        }
        acc.copy_from_slice(&scratch.scores[w[0] * q..(w[0] + 1) * q]);
        for row in scratch.scores[(w[0] + 1) * q..w[1] * q].chunks_exact(q) {
            tartan_kernels::max_assign(&mut acc, row);
        }
        out.push(acc.iter().sum());
    }
}

/// The scalar reference for [`maxsim`]: a dot product per token pair.
pub fn maxsim_reference(query: &[f32], doc: &[f32], dim: usize) -> f32 {
    if doc.is_empty() {
        return 0.0;
    }
    query
        .chunks_exact(dim)
        .map(|qt| {
            doc.chunks_exact(dim)
                .map(|dt| tartan_kernels::scalar::dot(qt, dt))
                .fold(f32::NEG_INFINITY, f32::max)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_reference(dim in 1usize..40, q in 1usize..8, t in 0usize..30, seed in any::<u64>()) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let qv: Vec<f32> = (0..q * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let dv: Vec<f32> = (0..t * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut s = MaxSimScratch::default();
            let got = maxsim(&qv, &dv, dim, &mut s);
            let want = maxsim_reference(&qv, &dv, dim);
            prop_assert!((got - want).abs() < 1e-4 * (1.0 + want.abs()), "{} vs {}", got, want);
        }

        #[test]
        fn batch_matches_one_by_one(dim in 1usize..24, q in 1usize..6, lens in prop::collection::vec(0usize..12, 0..8), seed in any::<u64>()) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let qv: Vec<f32> = (0..q * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let total: usize = lens.iter().sum();
            let dv: Vec<f32> = (0..total * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut offsets = vec![0];
            for l in &lens {
                offsets.push(offsets.last().unwrap() + l);
            }
            let mut out = vec![7.0];
            maxsim_batch(&qv, &dv, &offsets, dim, &mut MaxSimScratch::default(), &mut out);
            prop_assert_eq!(out.len(), lens.len() + 1);
            for (i, w) in offsets.windows(2).enumerate() {
                let want = maxsim_reference(&qv, &dv[w[0] * dim..w[1] * dim], dim);
                prop_assert!((out[i + 1] - want).abs() < 1e-4 * (1.0 + want.abs()), "{} vs {}", out[i + 1], want);
            }
        }
    }
}
