use linfa::ParamGuard;
use ndarray::Array2;

use crate::coarse::Assignment;
use crate::KMeansError;

/// How the first centroids are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum KMeansInit {
    /// `n_centroids` distinct points drawn from the (subsampled) training set with the seed.
    RandomPoints,
    /// These centroids, `n_centroids × dim`.
    Precomputed(Array2<f32>),
}

/// Which implementation runs the Lloyd passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// tartan's own: blocked matrix-product assignment over rayon. The default; the only
    /// practical choice beyond ~100k points × 1k centroids.
    #[default]
    Blocked,
    /// linfa-clustering's `KMeans` from the same initial centroids. It assigns point by point
    /// and counts the old centroid as one more member in each update ("m_k-means"), so it is
    /// slower and lands on slightly different centroids; offered for small corpora and as the
    /// reference implementation.
    Linfa,
}

/// Unchecked k-means settings (a builder). Defaults, set by [`KMeansParams::new`]:
///
/// | setting | default | why |
/// |---|---|---|
/// | `max_iters` | 4 | ColBERT/PLAID train with 4 passes; more barely moves retrieval quality |
/// | `max_points_per_centroid` | 256 | faiss's cap: larger samples cost time, not quality |
/// | `seed` | 0 | results are deterministic for a seed |
/// | `normalize` | true | centroids are L2-normalised after training, as in ColBERT |
/// | `init` | [`KMeansInit::RandomPoints`] | faiss's initialisation |
/// | `algorithm` | [`Algorithm::Blocked`] | see [`Algorithm`] |
/// | `assignment` | [`Assignment::auto`] | grouped (coarse-to-fine) from 4,096 centroids: ~14× less arithmetic per pass at K = 16,384 |
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansParams(KMeansValidParams);

/// Checked settings, produced by linfa's `ParamGuard::check` (which `fit` calls).
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansValidParams {
    pub(crate) n_centroids: usize,
    pub(crate) max_iters: usize,
    pub(crate) max_points_per_centroid: usize,
    pub(crate) seed: u64,
    pub(crate) normalize: bool,
    pub(crate) init: KMeansInit,
    pub(crate) algorithm: Algorithm,
    pub(crate) assignment: Option<Assignment>,
}

impl KMeansParams {
    /// Settings for `n_centroids` centroids with the defaults in the table above.
    pub fn new(n_centroids: usize) -> Self {
        Self(KMeansValidParams {
            n_centroids,
            max_iters: 4,
            max_points_per_centroid: 256,
            seed: 0,
            normalize: true,
            init: KMeansInit::RandomPoints,
            algorithm: Algorithm::Blocked,
            assignment: None,
        })
    }
    /// Number of Lloyd passes (0 keeps the initial centroids).
    pub fn max_iters(mut self, n: usize) -> Self {
        self.0.max_iters = n;
        self
    }
    /// Cap on the training points per centroid; larger inputs are subsampled with the seed.
    pub fn max_points_per_centroid(mut self, n: usize) -> Self {
        self.0.max_points_per_centroid = n;
        self
    }
    /// Seed of the subsampling, initialisation and empty-cluster splits.
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
    }
    /// Whether to L2-normalise the centroids after the last pass.
    pub fn normalize(mut self, yes: bool) -> Self {
        self.0.normalize = yes;
        self
    }
    /// How to choose the initial centroids.
    pub fn init(mut self, init: KMeansInit) -> Self {
        self.0.init = init;
        self
    }
    /// Which implementation runs the passes.
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.0.algorithm = algorithm;
        self
    }
    /// How the blocked passes find each point's nearest centroid (the linfa path is always
    /// exact).
    pub fn assignment(mut self, assignment: Assignment) -> Self {
        self.0.assignment = Some(assignment);
        self
    }
}

impl KMeansValidParams {
    /// Number of centroids.
    pub fn n_centroids(&self) -> usize {
        self.n_centroids
    }
    /// Number of Lloyd passes.
    pub fn max_iters(&self) -> usize {
        self.max_iters
    }
    /// Cap on training points per centroid.
    pub fn max_points_per_centroid(&self) -> usize {
        self.max_points_per_centroid
    }
    /// Seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

impl ParamGuard for KMeansParams {
    type Checked = KMeansValidParams;
    type Error = KMeansError;

    fn check_ref(&self) -> Result<&KMeansValidParams, KMeansError> {
        let p = &self.0;
        if p.n_centroids == 0 {
            return Err(KMeansError::ZeroCentroids);
        }
        if p.max_points_per_centroid == 0 {
            return Err(KMeansError::ZeroPointsPerCentroid);
        }
        if let Some(Assignment::Grouped { groups, probes }) = p.assignment {
            if groups == 0 || probes == 0 {
                return Err(KMeansError::BadAssignment { groups, probes });
            }
        }
        if let KMeansInit::Precomputed(c) = &p.init {
            if c.nrows() != p.n_centroids {
                return Err(KMeansError::InitShape {
                    expected: (p.n_centroids, c.ncols()),
                    got: c.dim(),
                });
            }
        }
        Ok(p)
    }

    fn check(self) -> Result<KMeansValidParams, KMeansError> {
        self.check_ref()?;
        Ok(self.0)
    }
}
