use std::path::PathBuf;

/// Errors loading a checkpoint or encoding text.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// A required file of the model directory is missing.
    #[error("{} is missing from the model directory", path.display())]
    MissingFile {
        /// The expected path.
        path: PathBuf,
    },
    /// Reading a file failed.
    #[error("I/O on {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A JSON config file does not parse or lacks fields.
    #[error("{} is not a valid config", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The tokenizer file cannot be loaded, or tokenisation failed.
    #[error("tokenizer {}", path.display())]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A token the checkpoint needs is not in its vocabulary.
    #[error("token {token:?} is not in the vocabulary of {}", path.display())]
    MissingToken {
        /// The tokenizer file.
        path: PathBuf,
        /// The token.
        token: String,
    },
    /// Weights do not fit the config (missing tensor, wrong shape).
    #[error("weights in {} do not match the model", path.display())]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: candle_core::Error,
    },
    /// The projection layer has an unexpected shape.
    #[error("projection {name} in {} has shape {shape:?}, expected [dim, {hidden}]", path.display())]
    ProjectionShape {
        /// The weights file.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
        /// The model's hidden size.
        hidden: usize,
    },
    /// A classification head has an unexpected shape (a cross-encoder must give one logit).
    #[error("{name} in {} has shape {shape:?}, expected {expected}", path.display())]
    HeadShape {
        /// The weights file.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
        /// What was expected.
        expected: String,
    },
    /// A setting is invalid (e.g. a max length below what markers need).
    #[error("invalid setting {name}: {reason}")]
    Param {
        /// The setting.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// A document is left with no tokens (e.g. only punctuation in ColBERT mode).
    #[error("text {index} has no tokens left to embed")]
    EmptyText {
        /// Index of the text in the batch given.
        index: usize,
    },
    /// The forward pass failed.
    #[error("model forward pass")]
    Forward(#[source] candle_core::Error),
    /// Downloading from the hub failed.
    #[cfg(feature = "hub")]
    #[error("downloading {file} of {model}")]
    Hub {
        /// Model id.
        model: String,
        /// File.
        file: String,
        /// The cause.
        #[source]
        source: hf_hub::api::sync::ApiError,
    },
}
