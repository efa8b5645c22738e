//! Queries: checked, laid out for the kernels, and scored against every centroid once
//! ([`PreparedQuery`]); any index or shard of the codebook then searches them.

use ndarray::ArrayView2;
use rayon::prelude::*;
use tartan_kernels::{FixedB, SkinnyB};

use super::approx::score_range;
use crate::error::{IndexError, Result};
use crate::format::CodebookId;
use crate::scorer::Scorer;

/// Residual widths scored from a [`NibbleTable`](tartan_kernels::NibbleTable) rather than
/// decoded. The table costs `dim · nbits / 4` row loads per token against `dim` multiply-adds
/// per register of query tokens plus the decoding, but its rows come from L2. Stage 4
/// (`stages`, synthetic 10k, one thread, AVX2): 1 bit 1.06–1.29 → 0.58–0.68 ms; 2 bits within
/// noise (0.94–1.03 against 1.04–1.10, and no change at dim 384); 4 bits 2.8× slower
/// (criterion `exact_100_docs_of_80`).
pub(crate) const LUT_NBITS: [u8; 1] = [1];

/// Centroids scored against the query per parallel task.
const CENTROID_BLOCK: usize = 2048;

/// A query made ready for one codebook: checked, laid out for the skinny products, and scored
/// against every centroid once. Any index or shard encoded with that codebook searches it
/// ([`Index::search_prepared`]) without repeating the query × centroids product, which is
/// most of a small shard's fixed cost per query.
#[derive(Debug, Clone)]
pub struct PreparedQuery {
    /// The query for `f32` kernels, made only for codebooks whose exact scoring reads a
    /// nibble table (1 bit, `LUT_NBITS`); everything else reads `qf`.
    pub(crate) qb: Option<SkinnyB>,
    /// The query in 16-bit fixed point: the centroid product and exact scoring.
    pub(crate) qf: FixedB,
    /// Centroid-major scores: row c holds centroid c against every query token, so exact
    /// scoring reads a token's centroid scores as one contiguous row (approximate scoring
    /// reads the same rows quantised to bytes, `search/approx.rs`).
    pub(crate) cs: Vec<f32>,
    /// The smallest and largest of `cs`: the grid of the byte table approximate scoring
    /// quantises them to.
    pub(crate) range: (f32, f32),
    codebook: CodebookId,
}

impl PreparedQuery {
    /// Query tokens.
    pub fn n_tokens(&self) -> usize {
        self.qf.n()
    }
    /// The codebook it was prepared for.
    pub fn codebook_id(&self) -> CodebookId {
        self.codebook
    }
}

/// Checks a query as [`Scorer::prepare`] does: `dim` columns, at least one token, finite
/// values. `qi` names the query in errors (its position in a batch). For front ends that
/// check queries they send elsewhere (remote shards) before preparing any.
pub fn check_query(query: ArrayView2<'_, f32>, dim: usize, qi: usize) -> Result<()> {
    if query.ncols() != dim {
        return Err(IndexError::QueryDim { query: qi, expected: dim, got: query.ncols() });
    }
    if query.nrows() == 0 {
        return Err(IndexError::EmptyQuery { query: qi });
    }
    if query.iter().any(|v| !v.is_finite()) {
        return Err(IndexError::QueryNonFinite { query: qi });
    }
    Ok(())
}

impl Scorer {
    /// Checks a query (`n_tokens × dim`: the codebook's dimension, at least one token, finite
    /// values) and scores it against every centroid. `qi` names the query in errors (its
    /// position in a batch).
    pub fn prepare(&self, query: ArrayView2<'_, f32>, qi: usize) -> Result<PreparedQuery> {
        let cb = self.codebook();
        let dim = cb.dim();
        check_query(query, dim, qi)?;
        let q = query.as_standard_layout();
        let q = q.as_slice().expect("standard layout");
        let nq = q.len() / dim;
        let qb = LUT_NBITS.contains(&cb.nbits()).then(|| SkinnyB::new(q, dim));
        // The product in 16-bit fixed point: twice the rate of the `f32` kernel (criterion
        // `query_x_8192_centroids`: 0.98 → 0.53 ms), within about 1e-5 of it for unit vectors
        // at dim 128 (`tartan_kernels::fixed_matmul`), far finer than the byte grid of stages
        // 2–3 and than the float16 rounding of the centroids themselves.
        let qf = FixedB::new(q, dim);
        let fixed = self.fixed_centroids();
        // Blocks of centroids go to different cores.
        let mut cs = self.score_buffer(cb.n_centroids() * nq);
        let range = cs
            .par_chunks_mut(CENTROID_BLOCK * nq)
            .enumerate()
            .map(|(b, out)| {
                let start = b * CENTROID_BLOCK;
                tartan_kernels::fixed_matmul(fixed, start..start + out.len() / nq, &qf, out);
                score_range(out)
            })
            .reduce(|| (f32::INFINITY, f32::NEG_INFINITY), |a, b| (a.0.min(b.0), a.1.max(b.1)));
        Ok(PreparedQuery { qb, qf, cs, range, codebook: cb.id() })
    }
}
