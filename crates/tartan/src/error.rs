use std::path::PathBuf;

/// Errors of the facade: those of the layers below, and its own (ingest, shards, remote).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building, opening, writing or searching an index failed.
    #[error(transparent)]
    Index(#[from] tartan_index::IndexError),
    /// Reading or writing an embeddings directory failed.
    #[error(transparent)]
    Embeddings(#[from] tartan_embeddings::EmbError),
    /// Reading a corpus, queries or qrels failed.
    #[error(transparent)]
    Eval(#[from] tartan_eval::EvalError),
    /// Loading a model or encoding text failed.
    #[cfg(feature = "text")]
    #[error(transparent)]
    Encoder(#[from] tartan_encoder::EncoderError),
    /// An I/O operation failed.
    #[error("I/O on {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A metadata file has a bad line.
    #[error("{}:{line}: {reason}", path.display())]
    Metadata {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An argument is invalid.
    #[error("invalid {name}: {reason}")]
    Param {
        /// The argument.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// A path is neither an index nor a collection.
    #[error("{} is neither a tartan index (meta.json) nor a collection (collection.json)", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// A shard cannot join a collection or be used with it.
    #[error("shard {shard}: {reason}")]
    Shard {
        /// The shard's name or location.
        shard: String,
        /// Why.
        reason: String,
    },
    /// A remote shard did not answer, or answered with an error.
    #[error("shard {shard} ({url}): {reason}")]
    Remote {
        /// The shard's name.
        shard: String,
        /// Its URL.
        url: String,
        /// What went wrong (timeout, refused, HTTP status and the server's message).
        reason: String,
    },
    /// Something only local shards can do was asked of a searcher with a remote shard.
    #[error("shard {shard} is remote: {reason}")]
    RemoteShard {
        /// The remote shard's name.
        shard: String,
        /// What could not be done.
        reason: &'static str,
    },
    /// No shard answered, or not every shard answered and the search required all of them.
    #[error("{answered} of {shards} shards answered{}: {failures}", if *answered > 0 { " and every shard was required" } else { "" })]
    Incomplete {
        /// Shards that answered.
        answered: usize,
        /// Shards searched.
        shards: usize,
        /// Each failure, `shard: reason`, joined.
        failures: String,
    },
    /// A named index ([`crate::named`]) that does not exist, or already does.
    #[error("{}", if *exists { format!("index {name:?} already exists") } else { format!("index {name:?} not found") })]
    NamedIndex {
        /// The name.
        name: String,
        /// Whether the error is that it exists.
        exists: bool,
    },
    /// Another engine's index cannot be imported.
    #[error("{}: {reason}", path.display())]
    Import {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A plot could not be drawn.
    #[error("drawing {}: {reason}", path.display())]
    Plot {
        /// The SVG file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A hit to rerank has no text: its index stores none and no corpus holds its id.
    #[error("document {id:?} has no text to rerank: its index was built from embeddings, so give the corpus (a BEIR directory or corpus .jsonl) that holds it")]
    MissingText {
        /// The document's id.
        id: String,
    },
    /// Text input or output was asked of a build without the `text` feature, or of a searcher
    /// without a model.
    #[error("{0}")]
    NoText(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
