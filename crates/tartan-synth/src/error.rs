use tartan_embeddings::EmbError;

/// What can go wrong fitting a [`crate::Profile`] to real embeddings.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// Reading the real embeddings (or writing the corpus) failed.
    #[error(transparent)]
    Embeddings(#[from] EmbError),
    /// Documents and queries have different dimensions.
    #[error("documents have dimension {docs} but queries have dimension {queries}")]
    DimMismatch {
        /// Documents' dimension.
        docs: usize,
        /// Queries' dimension.
        queries: usize,
    },
    /// The requested dimension is 0 or larger than the real vectors'.
    #[error("cannot project vectors of dimension {source_dim} to dimension {dim}")]
    BadDim {
        /// Requested output dimension.
        dim: usize,
        /// The real vectors' dimension.
        source_dim: usize,
    },
    /// A setting is out of range.
    #[error("{name} must be {expected}, got {got}")]
    BadSetting {
        /// The setting.
        name: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What was given.
        got: String,
    },
    /// Too few real tokens (or documents, or queries) to fit the profile.
    #[error("fitting a profile needs at least {need} {what}, the real embeddings have {have}")]
    TooFew {
        /// Tokens, documents or queries.
        what: &'static str,
        /// How many are needed.
        need: usize,
        /// How many there are.
        have: usize,
    },
    /// The eigendecomposition of the tokens' second moment failed.
    #[error("eigendecomposition of the token second moment failed: {reason}")]
    Eigen {
        /// The solver's message.
        reason: String,
    },
    /// Clustering the projected tokens failed.
    #[error(transparent)]
    KMeans(#[from] tartan_kmeans::KMeansError),
}
