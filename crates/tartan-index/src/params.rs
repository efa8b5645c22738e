//! Build and search settings: unchecked builders, validated once by `build` / `search`.

use std::sync::Arc;

use crate::codebook::Codebook;
use crate::error::{IndexError, Result};
use crate::filter::Filter;
use tartan_codec::Buckets;

/// Residual bits per dimension of a trained codebook, unless set.
pub const DEFAULT_NBITS: u8 = 2;
/// k-means passes, unless set.
pub const DEFAULT_KMEANS_ITERS: usize = 4;
/// Seed of sampling and k-means, unless set.
pub const DEFAULT_SEED: u64 = 0;
/// How residual buckets are placed, unless set.
pub const DEFAULT_BUCKETS: Buckets = Buckets::LloydMax;
/// Hits a search returns, unless set.
pub const DEFAULT_K: usize = 10;

/// Index build settings. Defaults (from [`IndexParams::new`]), following ColBERT/PLAID:
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `nbits` | 2 | residual bits per dimension (1, 2, 4 or 8) |
/// | `n_centroids` | `2^floor(log2(16·√n_tokens))` | codebook size K, capped at the training points |
/// | `kmeans_iters` | 4 | Lloyd passes |
/// | `max_points_per_centroid` | 256 | k-means sample cap per centroid |
/// | `sample_docs` | `min(1 + 16·√(120·n_docs), n_docs)` | documents sampled for training |
/// | `seed` | 0 | seed of sampling and k-means |
/// | `probes` | 8 | groups of centroids searched per token by the default grouped assignment |
/// | `assignment` | grouped from 4,096 centroids ([`Assignment::auto`](crate::Assignment::auto)) | nearest-centroid search in k-means and encoding |
/// | `kmeans_algorithm` | blocked | tartan's blocked k-means, or linfa-clustering's (small corpora) |
/// | `memory` | 2 GiB ([`DEFAULT_MEMORY`](crate::DEFAULT_MEMORY)) | build memory beside the codebook: caps the k-means sample, sizes encoding batches and inverted-file passes |
/// | `buckets` | Lloyd–Max | how the residual buckets are placed: [`Buckets::LloydMax`] (least squared error) or ColBERT's [`Buckets::Quantiles`] |
/// | `normalize_decoded` | true | L2-normalise every decoded token (a codebook flag, no extra bytes: the norm is computed from the centroid and residual when decoding) |
/// | `overwrite` | false | replace an existing index in the target directory |
/// | `centroids` | none (train) | given centroids instead of k-means (the codec is still trained) |
/// | `codebook` | none (train) | a whole codebook to encode with: no k-means, no codec training |
#[derive(Debug, Clone, PartialEq)]
pub struct IndexParams {
    pub(crate) codebook: Option<Arc<Codebook>>,
    pub(crate) centroids: Option<Arc<[f32]>>,
    pub(crate) nbits: u8,
    pub(crate) n_centroids: Option<usize>,
    pub(crate) kmeans_iters: usize,
    pub(crate) max_points_per_centroid: usize,
    pub(crate) sample_docs: Option<usize>,
    pub(crate) seed: u64,
    pub(crate) overwrite: bool,
    pub(crate) kmeans_algorithm: tartan_kmeans::Algorithm,
    pub(crate) assignment: Option<tartan_kmeans::Assignment>,
    pub(crate) probes: Option<usize>,
    pub(crate) memory: u64,
    pub(crate) normalize_decoded: Option<bool>,
    pub(crate) buckets: Buckets,
}

impl Default for IndexParams {
    fn default() -> Self {
        Self::new()
    }
}

impl IndexParams {
    /// The defaults in the table above.
    pub fn new() -> Self {
        Self {
            codebook: None,
            centroids: None,
            nbits: DEFAULT_NBITS,
            n_centroids: None,
            kmeans_iters: DEFAULT_KMEANS_ITERS,
            max_points_per_centroid: 256,
            sample_docs: None,
            seed: DEFAULT_SEED,
            overwrite: false,
            kmeans_algorithm: tartan_kmeans::Algorithm::Blocked,
            assignment: None,
            probes: None,
            memory: crate::budget::DEFAULT_MEMORY,
            normalize_decoded: None,
            buckets: DEFAULT_BUCKETS,
        }
    }
    /// Residual bits per dimension.
    pub fn nbits(mut self, nbits: u8) -> Self {
        self.nbits = nbits;
        self
    }
    /// Fixes the number of centroids instead of the formula.
    pub fn n_centroids(mut self, k: usize) -> Self {
        self.n_centroids = Some(k);
        self
    }
    /// k-means passes.
    pub fn kmeans_iters(mut self, n: usize) -> Self {
        self.kmeans_iters = n;
        self
    }
    /// k-means sample cap per centroid.
    pub fn max_points_per_centroid(mut self, n: usize) -> Self {
        self.max_points_per_centroid = n;
        self
    }
    /// Documents sampled for training, instead of the formula.
    pub fn sample_docs(mut self, n: usize) -> Self {
        self.sample_docs = Some(n);
        self
    }
    /// Seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Which k-means implementation trains the centroids.
    pub fn kmeans_algorithm(mut self, algorithm: tartan_kmeans::Algorithm) -> Self {
        self.kmeans_algorithm = algorithm;
        self
    }
    /// How each token's nearest centroid is found, in k-means training and when encoding.
    /// `Exact` compares every token with every centroid; the default groups the centroids
    /// from 4,096 of them on, for ~14× less arithmetic at K = 16,384 and the same retrieval
    /// quality (docs/benchmarks.md).
    pub fn assignment(mut self, assignment: tartan_kmeans::Assignment) -> Self {
        self.assignment = Some(assignment);
        self
    }
    /// Groups of centroids each token is compared with in the default grouped search (8): fewer
    /// is faster and misses the nearest centroid more often (docs/benchmarks.md measures
    /// both). Ignored with an explicit [`IndexParams::assignment`] or an exact search.
    pub fn probes(mut self, probes: usize) -> Self {
        self.probes = Some(probes);
        self
    }
    /// Whether a trained codebook L2-normalises decoded tokens, as the original (unit) vectors
    /// are: search then scores `q · (c + r) / ‖c + r‖` instead of `q · (c + r)`. Stored as a
    /// codebook flag; costs no bytes per token. On by default: it raised recall@10 vs exact
    /// on all three corpora measured at 2 and 4 bits (docs/benchmarks.md, "Fidelity"). Set
    /// explicitly with a given [`IndexParams::codebook`], it must match that codebook's;
    /// unset, the codebook decides.
    pub fn normalize_decoded(mut self, on: bool) -> Self {
        self.normalize_decoded = Some(on);
        self
    }
    /// How a trained codec places its residual buckets. The tables are stored in the codebook
    /// either way, so readers need not know which was used; unused with a given
    /// [`IndexParams::codebook`].
    pub fn buckets(mut self, buckets: Buckets) -> Self {
        self.buckets = buckets;
        self
    }
    /// The nearest-centroid search for `k` centroids and `n` points: the one set, or the
    /// default with `probes` applied.
    pub(crate) fn assignment_for(&self, k: usize, n: usize) -> Option<tartan_kmeans::Assignment> {
        use tartan_kmeans::Assignment;
        match (self.assignment, self.probes) {
            (Some(a), _) => Some(a),
            (None, Some(probes)) => Some(match Assignment::auto(k, n) {
                Assignment::Grouped { groups, .. } => {
                    Assignment::Grouped { groups, probes: probes.min(groups) }
                }
                exact => exact,
            }),
            (None, None) => None,
        }
    }
    /// Uses these centroids (`K × dim`, row-major; e.g. another index's
    /// [`Index::centroids`](crate::Index::centroids)) instead of training k-means. Builds of
    /// the same documents with the same seed train the same centroids whatever `nbits` is, so
    /// this gives the same index as a full build at a fraction of the time (nbits sweeps).
    pub fn centroids(mut self, centroids: Vec<f32>) -> Self {
        self.centroids = Some(centroids.into());
        self
    }
    /// Encodes with this codebook (e.g. from [`Codebook::train`], [`Codebook::open`] or
    /// another index's [`Index::codebook`](crate::Index::codebook)) instead of training one:
    /// no k-means and no codec training, so indexes built apart with one codebook are shards
    /// of one collection. The codebook settings (`nbits`, `n_centroids`, k-means, sample,
    /// `centroids`) are then unused. Deterministic: the same documents and codebook give the
    /// same index files, whatever the thread count.
    pub fn codebook(mut self, codebook: Arc<Codebook>) -> Self {
        self.codebook = Some(codebook);
        self
    }
    /// The build's memory budget in bytes, beside the codebook (at least 1 MiB). The build
    /// streams its input and output in chunks sized from it, which never changes a byte of
    /// the index; a budget too small for ColBERT's k-means sample caps the sample instead
    /// (recorded as `kmeans_points` in the manifest), which does.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = bytes;
        self
    }
    /// Whether an existing index in the target directory may be replaced.
    pub fn overwrite(mut self, yes: bool) -> Self {
        self.overwrite = yes;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |name, reason: &str| Err(IndexError::Param { name, reason: reason.into() });
        if !matches!(self.nbits, 1 | 2 | 4 | 8) {
            return bad("nbits", "must be 1, 2, 4 or 8");
        }
        if let (Some(cb), Some(n)) = (&self.codebook, self.normalize_decoded) {
            if cb.normalizes_decoded() != n {
                return bad(
                    "normalize_decoded",
                    "differs from the given codebook's (a codebook decodes one way)",
                );
            }
        }
        if self.n_centroids == Some(0) {
            return bad("n_centroids", "must be at least 1");
        }
        if self.n_centroids.is_some_and(|k| k > u32::MAX as usize) {
            return bad("n_centroids", "must fit in 32 bits");
        }
        if self.max_points_per_centroid == 0 {
            return bad("max_points_per_centroid", "must be at least 1");
        }
        if let Some(tartan_kmeans::Assignment::Grouped { groups, probes }) = self.assignment {
            if groups == 0 || probes == 0 {
                return bad(
                    "assignment",
                    "grouped assignment needs at least one group and one probe",
                );
            }
        }
        if self.memory < crate::budget::MIN_MEMORY {
            return bad("memory", "must be at least 1 MiB");
        }
        if self.probes == Some(0) {
            return bad("probes", "must be at least 1");
        }
        if self.sample_docs == Some(0) {
            return bad("sample_docs", "must be at least 1");
        }
        if let Some(c) = &self.centroids {
            if c.is_empty() || c.iter().any(|v| !v.is_finite()) {
                return bad("centroids", "must be non-empty and finite");
            }
        }
        Ok(())
    }
}

/// ColBERT's number of documents sampled for training: `min(1 + 16·√(120·n_docs), n_docs)`.
pub fn default_sample_docs(n_docs: usize) -> usize {
    ((1.0 + 16.0 * (120.0 * n_docs as f64).sqrt()) as usize).min(n_docs)
}

/// ColBERT's number of centroids: `2^floor(log2(16·√n_tokens))`.
pub fn default_n_centroids(n_tokens: usize) -> usize {
    let x = 16.0 * (n_tokens.max(1) as f64).sqrt();
    1usize << x.log2().floor().max(0.0) as u32
}

/// Search settings. `k` defaults to 10; the rest default by `k` as in ColBERT:
///
/// | k | `ncells` | `centroid_score_threshold` | `ndocs` |
/// |---|---|---|---|
/// | ≤ 10 | 1 | 0.5 | 256 |
/// | ≤ 100 | 2 | 0.45 | 1024 |
/// | > 100 | 4 | 0.4 | max(4·k, 4096) |
///
/// `ncells`: centroids each query token probes. `centroid_score_threshold`: in the first
/// approximate pass, centroids whose best score against the query is below it are ignored.
/// `ndocs`: candidates kept after that pass; a quarter of them (at least `k`) go on to exact
/// rescoring.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchParams {
    k: usize,
    ncells: Option<usize>,
    centroid_score_threshold: Option<f32>,
    ndocs: Option<usize>,
    pub(crate) filter: Option<Filter>,
}

impl Default for SearchParams {
    fn default() -> Self {
        Self::new(DEFAULT_K)
    }
}

/// Search settings with every default applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResolvedSearch {
    /// Hits returned.
    pub k: usize,
    /// Cells probed per query token.
    pub ncells: usize,
    /// Pruning threshold of the first approximate pass.
    pub centroid_score_threshold: f32,
    /// Candidates kept after the first pass.
    pub ndocs: usize,
}

impl SearchParams {
    /// Settings returning `k` hits, other knobs by `k`.
    pub fn new(k: usize) -> Self {
        Self { k, ncells: None, centroid_score_threshold: None, ndocs: None, filter: None }
    }
    /// The same settings returning `k` hits.
    pub fn with_k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }
    /// Hits returned.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Only documents whose metadata matches `filter` are returned. When few documents
    /// match, every one of them is scored (no recall lost to probing); otherwise probing
    /// widens until enough matching candidates are found.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }
    /// The filter, if any.
    pub fn filter_expr(&self) -> Option<&Filter> {
        self.filter.as_ref()
    }
    /// Cells probed per query token.
    pub fn ncells(mut self, n: usize) -> Self {
        self.ncells = Some(n);
        self
    }
    /// Pruning threshold.
    pub fn centroid_score_threshold(mut self, t: f32) -> Self {
        self.centroid_score_threshold = Some(t);
        self
    }
    /// Candidates kept after the first approximate pass.
    pub fn ndocs(mut self, n: usize) -> Self {
        self.ndocs = Some(n);
        self
    }

    /// Applies the defaults and checks every value.
    pub fn resolve(&self) -> Result<ResolvedSearch> {
        let bad = |name, reason: &str| Err(IndexError::Param { name, reason: reason.into() });
        let k = self.k;
        if k == 0 {
            return bad("k", "must be at least 1");
        }
        let (nc, th, nd) = if k <= 10 {
            (1, 0.5, 256)
        } else if k <= 100 {
            (2, 0.45, 1024)
        } else {
            (4, 0.4, k.saturating_mul(4).max(4096))
        };
        let r = ResolvedSearch {
            k,
            ncells: self.ncells.unwrap_or(nc),
            centroid_score_threshold: self.centroid_score_threshold.unwrap_or(th),
            ndocs: self.ndocs.unwrap_or(nd),
        };
        if r.ncells == 0 {
            return bad("ncells", "must be at least 1");
        }
        if r.ndocs < k {
            // Fewer candidates than hits would silently return fewer than k.
            return Err(IndexError::Param {
                name: "ndocs",
                reason: format!("{} is below k = {k}: at least k candidates are needed", r.ndocs),
            });
        }
        if !r.centroid_score_threshold.is_finite() {
            return bad("centroid_score_threshold", "must be finite");
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colbert_formulas() {
        // SciFact: the formula gives 12,668, more than the 5,183 documents.
        assert_eq!(default_sample_docs(5183), 5183);
        assert_eq!(default_sample_docs(100), 100);
        assert_eq!(default_sample_docs(100_000), 55_426);
        assert_eq!(default_sample_docs(1_000_000), 175_272);
        // SciFact-MiniLM: 1.24M tokens -> 16·1113 = 17,817 -> 2^14.
        assert_eq!(default_n_centroids(1_240_000), 16384);
        assert_eq!(default_n_centroids(1), 16);
    }

    #[test]
    fn search_defaults_by_k() {
        let r = SearchParams::new(10).resolve().unwrap();
        assert_eq!((r.ncells, r.centroid_score_threshold, r.ndocs), (1, 0.5, 256));
        let r = SearchParams::new(100).resolve().unwrap();
        assert_eq!((r.ncells, r.centroid_score_threshold, r.ndocs), (2, 0.45, 1024));
        let r = SearchParams::new(2000).ncells(8).resolve().unwrap();
        assert_eq!((r.ncells, r.centroid_score_threshold, r.ndocs), (8, 0.4, 8000));
        assert!(SearchParams::new(0).resolve().is_err());
        assert!(SearchParams::new(5).ndocs(0).resolve().is_err());
        let e = SearchParams::new(50).ndocs(20).resolve().unwrap_err().to_string();
        assert!(e.contains("below k = 50"), "{e}");
        assert!(SearchParams::new(5).ncells(0).resolve().is_err());
        assert!(SearchParams::new(5).centroid_score_threshold(f32::NAN).resolve().is_err());
    }
}
