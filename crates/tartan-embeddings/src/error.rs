use std::path::PathBuf;

/// What is wrong with an embeddings directory; every variant names the file and the place.
#[derive(Debug, thiserror::Error)]
pub enum EmbError {
    /// Reading or writing a file failed.
    #[error("I/O on {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A `.npy` file is malformed or of an unsupported kind.
    #[error("{}: {reason}", path.display())]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Vector data is not a whole number of vectors, or the dimension is 0.
    #[error("{}: {len} values do not form vectors of dimension {dim}", path.display())]
    Shape {
        /// Source.
        path: PathBuf,
        /// Values.
        len: usize,
        /// Dimension.
        dim: usize,
    },
    /// A negative token count.
    #[error("{}: entry {index} is {value}; token counts cannot be negative", path.display())]
    NegativeLen {
        /// The lengths file.
        path: PathBuf,
        /// Entry index.
        index: usize,
        /// Value.
        value: i64,
    },
    /// Lengths do not sum to the number of vector rows.
    #[error("{}: document lengths sum to {sum} but there are {rows} token vectors", path.display())]
    LensSum {
        /// The vectors file.
        path: PathBuf,
        /// Sum of lengths.
        sum: u64,
        /// Rows present.
        rows: usize,
    },
    /// A range of documents that is empty or goes past the last one.
    #[error("{}: documents {start}..{end} asked for, but there are {n_docs}", path.display())]
    Range {
        /// The vectors file.
        path: PathBuf,
        /// First position asked for.
        start: usize,
        /// One past the last position asked for.
        end: usize,
        /// Documents in the directory.
        n_docs: usize,
    },
    /// The number of ids differs from the number of lengths.
    #[error("{}: {ids} ids but {lens} lengths", path.display())]
    IdCount {
        /// The vectors file.
        path: PathBuf,
        /// Ids.
        ids: usize,
        /// Lengths.
        lens: usize,
    },
    /// A document (or query) with no tokens.
    #[error("{}: document {index} (id {id:?}) has no tokens", path.display())]
    EmptyDoc {
        /// The vectors file.
        path: PathBuf,
        /// Index.
        index: usize,
        /// External id.
        id: String,
    },
    /// An id file line is unusable.
    #[error("{}:{line}: {reason}", path.display())]
    Ids {
        /// The ids file.
        path: PathBuf,
        /// 1-based line (0: the whole file).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The same id twice.
    #[error("{}: id {id:?} on line {line} already appears on line {first_line}", path.display())]
    DuplicateId {
        /// The ids file.
        path: PathBuf,
        /// The id.
        id: String,
        /// First occurrence (1-based).
        first_line: usize,
        /// Repeat (1-based).
        line: usize,
    },
    /// NaN or infinity in a vector.
    #[error("{}: token {token} (document {doc}, id {id:?}) holds a non-finite value", path.display())]
    NonFinite {
        /// The vectors file.
        path: PathBuf,
        /// Row.
        token: usize,
        /// Document index.
        doc: usize,
        /// External id.
        id: String,
    },
    /// A vector is not unit length (and normalisation was not asked for).
    #[error("{}: token {token} (document {doc}, id {id:?}) has norm {norm}, not unit length; ask for normalisation (`--normalize`, `normalize=True`) to normalise vectors as they are read", path.display())]
    NotUnit {
        /// The vectors file.
        path: PathBuf,
        /// Row.
        token: usize,
        /// Document index.
        doc: usize,
        /// External id.
        id: String,
        /// Its norm.
        norm: f32,
    },
    /// A zero vector cannot be normalised.
    #[error("{}: token {token} (document {doc}, id {id:?}) is all zeros and cannot be normalised", path.display())]
    ZeroVector {
        /// The vectors file.
        path: PathBuf,
        /// Row.
        token: usize,
        /// Document index.
        doc: usize,
        /// External id.
        id: String,
    },
    /// Documents and queries of one directory have different dimensions.
    #[error("documents have dimension {docs} but queries have {queries}")]
    DimMismatch {
        /// Document dimension.
        docs: usize,
        /// Query dimension.
        queries: usize,
    },
}
