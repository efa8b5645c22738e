//! What search derives from a codebook and keeps between queries, apart from the codebook
//! itself (which stays a pure model of what the codes mean): its centroids and residual
//! weights in 16-bit fixed point, made on first use, and the centroid-score buffers searches
//! hand back. One [`Scorer`] serves every index encoded with its codebook (a collection's
//! shards share one), so the tables are made once per codebook, not per index.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tartan_codec::ResidualCodec;
use tartan_kernels::{FixedRows, FixedTile, FixedWeights};

use crate::codebook::Codebook;

/// The most memory a codebook keeps in spare centroid-score buffers between searches: 64
/// buffers of 8,192 centroids × 32 tokens, 4 of 131,072 × 32.
const MAX_SPARE_SCORE_BYTES: usize = 64 << 20;

/// A codebook with its search-side tables. Cheap to clone: clones share the tables.
#[derive(Debug, Clone)]
pub struct Scorer {
    codebook: Arc<Codebook>,
    tables: Arc<Tables>,
}

#[derive(Debug, Default)]
struct Tables {
    /// The centroids in 16-bit fixed point for the query × centroid product, made by the
    /// first query (half the bytes of the centroids; opening stays a read of the file).
    fixed: OnceLock<FixedRows>,
    /// The codec's residuals decoded to fixed point, for exact scoring; made on first use.
    fixed_residuals: OnceLock<FixedResiduals>,
    /// Buffers of centroid scores that searches handed back, for the next queries to
    /// overwrite instead of allocating and zeroing their own ([`Scorer::score_buffer`]).
    spare_scores: Mutex<Vec<Vec<f32>>>,
}

impl Scorer {
    /// A scorer for `codebook`, its tables made as searches need them.
    pub fn new(codebook: Arc<Codebook>) -> Self {
        Self { codebook, tables: Arc::default() }
    }

    /// The codebook.
    pub fn codebook(&self) -> &Arc<Codebook> {
        &self.codebook
    }

    /// The centroids in fixed point, quantised on first use.
    pub(crate) fn fixed_centroids(&self) -> &FixedRows {
        self.tables
            .fixed
            .get_or_init(|| FixedRows::new(self.codebook.centroids(), self.codebook.dim()))
    }

    /// A buffer of `len` centroid scores, every one to be overwritten: one a search handed
    /// back ([`Scorer::recycle_scores`]) when there is one. Zeroing a fresh MiB took 45–90
    /// µs of a 1 ms query (synthetic 10k, 8,192 centroids × 32 tokens); a recycled buffer is
    /// still in cache and needs no zeroing.
    pub(crate) fn score_buffer(&self, len: usize) -> Vec<f32> {
        let spare = self.tables.spare_scores.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut v = spare.unwrap_or_default();
        v.resize(len, 0.0);
        v
    }

    /// Keeps a buffer of centroid scores for [`Scorer::score_buffer`]: one per thread of
    /// the pool (a search in flight on each) and [`MAX_SPARE_SCORE_BYTES`] in all at most;
    /// the rest are freed.
    pub(crate) fn recycle_scores(&self, v: Vec<f32>) {
        let mut spare = self.tables.spare_scores.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = |v: &Vec<f32>| v.capacity() * std::mem::size_of::<f32>();
        let kept: usize = spare.iter().map(bytes).sum();
        if spare.len() < rayon::current_num_threads() && kept + bytes(&v) <= MAX_SPARE_SCORE_BYTES {
            spare.push(v);
        }
    }

    /// The codec's residuals in fixed point, built on first use.
    pub(crate) fn fixed_residuals(&self) -> &FixedResiduals {
        self.tables.fixed_residuals.get_or_init(|| FixedResiduals::new(self.codebook.codec()))
    }
}

/// A codec's residuals decoded straight to 16-bit integers for
/// [`tartan_kernels::fixed_max`]: its bucket weights in fixed point, and how to lay out rows.
#[derive(Debug)]
pub(crate) struct FixedResiduals {
    weights: FixedWeights,
    nbits: u8,
    dim: usize,
    /// A decoded row's length: the dimension rounded up to even.
    k_pad: usize,
}

impl FixedResiduals {
    pub(crate) fn new(codec: &ResidualCodec) -> Self {
        let dim = codec.dim();
        let weights = FixedWeights::new(codec.weights(), dim);
        Self { weights, nbits: codec.nbits(), dim, k_pad: dim.div_ceil(2) * 2 }
    }

    /// Decodes whole tokens of packed residuals into rows of `k_pad` integers.
    pub(crate) fn decode<'a>(&self, packed: &[u8], out: &'a mut Vec<i16>) -> FixedTile<'a> {
        let bpt = self.dim * self.nbits as usize / 8;
        let n = packed.len() / bpt;
        out.resize(n * self.k_pad, 0);
        let rows = &mut out[..n * self.k_pad];
        let w = self.weights.values();
        if self.k_pad == self.dim {
            tartan_kernels::decode_residual_i16(packed, self.nbits, w, rows);
        } else {
            // An odd dimension (8 bits): a row at a time, its last value left 0.
            for (p, row) in packed.chunks_exact(bpt).zip(rows.chunks_exact_mut(self.k_pad)) {
                tartan_kernels::decode_residual_i16(p, self.nbits, w, &mut row[..self.dim]);
                row[self.dim] = 0;
            }
        }
        FixedTile { rows, scale: self.weights.scale() }
    }
}
