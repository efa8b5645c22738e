/// What can go wrong building or loading a codec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecError {
    /// nbits outside {1, 2, 4, 8}.
    #[error("nbits must be 1, 2, 4 or 8, got {0}")]
    BadNbits(u8),
    /// `dim · nbits` is not a whole number of bytes.
    #[error("dimension {dim} at {nbits} bits per value is not a whole number of bytes")]
    DimNotByteAligned {
        /// Vector dimension.
        dim: usize,
        /// Bits per dimension.
        nbits: u8,
    },
    /// The training sample is empty or not a multiple of `dim`.
    #[error("residual sample of {len} values does not hold a whole, non-zero number of {dim}-dim vectors")]
    BadSample {
        /// Values given.
        len: usize,
        /// Vector dimension.
        dim: usize,
    },
    /// The sample holds NaN or infinity.
    #[error("residual sample holds a non-finite value at position {0}")]
    NonFinite(usize),
    /// A bucket placement name that is not `lloyd-max` or `quantiles`.
    #[error("unknown bucket placement {0:?}: expected \"lloyd-max\" or \"quantiles\"")]
    UnknownBuckets(String),
    /// Stored cutoffs or weights have the wrong count, are not finite or not sorted.
    #[error("codec tables are invalid: {0}")]
    BadTables(&'static str),
}
