use std::path::PathBuf;

/// Errors of building, opening, verifying and searching an index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// An I/O operation on a file failed.
    #[error("I/O on {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The directory holds no tartan index (no `meta.json`).
    #[error("{} is not a tartan index (no meta.json)", path.display())]
    NoIndex {
        /// The directory.
        path: PathBuf,
    },
    /// The directory holds no collection (no `collection.json`).
    #[error("{} is not a tartan collection (no collection.json)", path.display())]
    NoCollection {
        /// The directory.
        path: PathBuf,
    },
    /// No codebook at the path given.
    #[error("{} holds no tartan codebook (a codebook directory with codebook.tcb, a .tcb file, or an index)", path.display())]
    NoCodebook {
        /// The path.
        path: PathBuf,
    },
    /// An index or shard was encoded with another codebook than the one it is used with.
    #[error("{} was encoded with codebook {found}, expected {expected}", path.display())]
    CodebookMismatch {
        /// The index or shard.
        path: PathBuf,
        /// Its codebook id (short form).
        found: String,
        /// The codebook id required (short form).
        expected: String,
    },
    /// A file that should be a tartan file is something else.
    #[error("{} is not a tartan index file (bad magic)", path.display())]
    NotTartan {
        /// The file.
        path: PathBuf,
    },
    /// Written by a newer tartan.
    #[error("{} has format version {found}; this tartan reads versions up to {supported}, upgrade tartan", path.display())]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// A file's contents are inconsistent: truncated, bit-flipped or edited.
    #[error("{} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },
    /// The target directory exists and is not empty.
    #[error("{} already exists; pass overwrite to replace the index in it", path.display())]
    Exists {
        /// The directory.
        path: PathBuf,
    },
    /// A build or search parameter is invalid.
    #[error("invalid parameter {name}: {reason}")]
    Param {
        /// The parameter.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// A query's dimension differs from the index's.
    #[error("query {query} has dimension {got}, the index has {expected}")]
    QueryDim {
        /// Query index in the batch.
        query: usize,
        /// Index dimension.
        expected: usize,
        /// Query dimension.
        got: usize,
    },
    /// A query has no tokens.
    #[error("query {query} has no tokens")]
    EmptyQuery {
        /// Query index in the batch.
        query: usize,
    },
    /// A query holds NaN or infinity.
    #[error("query {query} holds a non-finite value")]
    QueryNonFinite {
        /// Query index in the batch.
        query: usize,
    },
    /// A filter expression does not parse.
    #[error("filter: {reason} at byte {pos}")]
    Filter {
        /// Byte offset in the filter text.
        pos: usize,
        /// What was expected.
        reason: String,
    },
    /// A document's metadata is not a JSON object.
    #[error("metadata of document {doc} ({id}): {reason}")]
    Metadata {
        /// Position of the document in its input.
        doc: usize,
        /// Its external id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// Another writer holds the index's lock.
    #[error("{} is locked by another writer (pid {holder}); wait for it to finish", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The process id recorded by the holder, or "unknown".
        holder: String,
    },
    /// A delete names an id that is not a live document.
    #[error("no live document has id {id:?}")]
    UnknownId {
        /// The id.
        id: String,
    },
    /// An added document's id is already live (or added twice in one batch).
    #[error("document id {id:?} is already in the index; delete it first or upsert")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// Added documents have another dimension than the index.
    #[error("documents have dimension {got}, the index has {expected}")]
    DimMismatch {
        /// The index's dimension.
        expected: usize,
        /// The documents'.
        got: usize,
    },
    /// A change was published (readers see the new generation) but a step after the commit
    /// point failed (syncing the directory, reopening). The writer has moved on from its staged
    /// work; it reopens the index before its next change.
    #[error("generation {generation} was published, but a step after publishing failed")]
    Published {
        /// The generation now published.
        generation: u64,
        /// What failed.
        #[source]
        source: Box<IndexError>,
    },
    /// There is nothing to index.
    #[error("no documents to index")]
    NoDocuments,
    /// Reading or writing an embeddings directory failed.
    #[error("embeddings")]
    Embeddings(#[from] tartan_embeddings::EmbError),
    /// k-means failed.
    #[error("k-means")]
    KMeans(#[from] tartan_kmeans::KMeansError),
    /// Codec training or loading failed.
    #[error("residual codec")]
    Codec(#[from] tartan_codec::CodecError),
}

/// Result alias of this crate.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
