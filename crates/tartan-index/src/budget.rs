//! How a build's memory budget is spent. Phases run one after another, so each may use most
//! of the budget: training holds the k-means sample, encoding holds one batch of tokens, the
//! inverted file holds the postings of one range of lists. Chunk sizes never change a byte
//! of the index (every step treats tokens and documents independently, in order); only the
//! k-means sample can be capped by the budget, and the manifest records its size.

use crate::error::{IndexError, Result};

/// The default budget: 2 GiB, small enough for a laptop. It holds ColBERT's whole training
/// sample up to ~250k documents of ~80 tokens at dim 128; beyond, the sample is capped
/// (docs/scaling.md measures what that costs).
pub const DEFAULT_MEMORY: u64 = 2 << 30;
/// The smallest budget accepted (tests use tiny budgets to force many chunks).
pub const MIN_MEMORY: u64 = 1 << 20;

/// Tokens encoded per batch at most: larger batches gain nothing.
const MAX_ENCODE_BATCH: usize = 1 << 16;

/// A validated memory budget in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget(u64);

impl Budget {
    pub(crate) fn new(bytes: u64) -> Self {
        Self(bytes.max(MIN_MEMORY))
    }

    /// Kept free of any phase's data: allocator slack, buffers of the nearest-centroid
    /// search, ids and offsets.
    fn slack(self) -> u64 {
        self.0 / 8
    }

    /// k-means training points (float16, plus a label and a distance each) that fit beside
    /// the search structures of `k` centroids (f32 centroids, their grouped copy, the update's
    /// f64 sums and the centres: 20 bytes per coordinate).
    pub(crate) fn kmeans_points(self, k: usize, dim: usize) -> Result<usize> {
        let fixed = (k * dim * 20) as u64 + self.slack();
        let per_point = (dim * 2 + 8) as u64;
        let points = self.0.saturating_sub(fixed) / per_point;
        if (points as usize) < k {
            let need = fixed + k as u64 * per_point;
            return Err(IndexError::Param {
                name: "memory",
                reason: format!(
                    "{} bytes leave room for {points} k-means points, and {k} centroids need at \
                     least {k}: give at least {need} bytes, or fewer centroids",
                    self.0
                ),
            });
        }
        Ok(points as usize)
    }

    /// Tokens per encoding batch (a multiple of 8, so packed codes stay byte-aligned): the
    /// f32 vectors, packed residuals, codes and distances of a batch take an eighth of the
    /// budget.
    pub(crate) fn encode_batch(self, dim: usize, bytes_per_token: usize) -> usize {
        let per_token = (dim * 4 + bytes_per_token + 8) as u64;
        let n = ((self.0 / 8 / per_token) as usize).clamp(8, MAX_ENCODE_BATCH);
        n / 8 * 8
    }

    /// Codes read back per chunk to pack them (a multiple of 8): a sixteenth of the budget.
    pub(crate) fn code_chunk(self) -> usize {
        ((self.0 / 16 / 4) as usize).clamp(8, 1 << 22) / 8 * 8
    }

    /// Postings (u32 document numbers) of one range of inverted lists: a quarter of the
    /// budget.
    pub(crate) fn ivf_postings(self) -> usize {
        (self.0 / 4 / 4) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_the_budget() {
        let b = Budget::new(DEFAULT_MEMORY);
        assert_eq!(b.encode_batch(128, 32), MAX_ENCODE_BATCH);
        assert_eq!(b.ivf_postings(), 1 << 27);
        // 1M documents: K = 131,072 at dim 128.
        let pts = b.kmeans_points(131_072, 128).unwrap();
        assert!((5_000_000..6_000_000).contains(&pts), "{pts}");
        let tiny = Budget::new(0);
        assert_eq!(tiny, Budget::new(MIN_MEMORY));
        assert_eq!(tiny.encode_batch(128, 32) % 8, 0);
        let err = tiny.kmeans_points(131_072, 128).unwrap_err().to_string();
        assert!(err.contains("memory") && err.contains("131072"), "{err}");
    }
}
