/// What can go wrong configuring or training k-means.
#[derive(Debug, thiserror::Error)]
pub enum KMeansError {
    /// `n_centroids` was 0.
    #[error("k-means needs at least one centroid (n_centroids = 0)")]
    ZeroCentroids,
    /// `max_points_per_centroid` was 0.
    #[error("max_points_per_centroid must be at least 1")]
    ZeroPointsPerCentroid,
    /// A grouped assignment with 0 groups or 0 probes.
    #[error("grouped assignment needs at least one group and one probe, got {groups} groups and {probes} probes")]
    BadAssignment {
        /// Groups requested.
        groups: usize,
        /// Probes requested.
        probes: usize,
    },
    /// Fewer training points than centroids.
    #[error("k-means with {n_centroids} centroids needs at least as many points, got {n_points}")]
    TooFewPoints {
        /// Points in the dataset.
        n_points: usize,
        /// Requested centroids.
        n_centroids: usize,
    },
    /// The points have no columns.
    #[error("k-means points have dimension 0")]
    ZeroDim,
    /// A precomputed initialisation does not match the requested shape.
    #[error("initial centroids have shape {got:?}, expected {expected:?}")]
    InitShape {
        /// `(n_centroids, dim)` expected.
        expected: (usize, usize),
        /// Shape given.
        got: (usize, usize),
    },
    /// A point holds NaN or infinity.
    #[error("k-means point {row} holds a non-finite value")]
    NonFinite {
        /// Row index in the dataset.
        row: usize,
    },
    /// linfa-clustering's k-means failed (only with `Algorithm::Linfa`).
    #[error("linfa-clustering k-means")]
    LinfaClustering(#[source] linfa_clustering::KMeansError),
    /// An error raised by linfa itself.
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
}
