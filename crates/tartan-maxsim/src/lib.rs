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
pub use topk::{Hit, TopK};

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
    }
}
