//! Status bodies: `GET /health` and `GET /stats`.

use serde::{Deserialize, Serialize};

use super::body::Limits;

/// `GET /health`'s answer: what a server serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Always "ok" from a server that answers.
    pub status: String,
    /// "index" or "collection".
    pub kind: String,
    /// The generation served (an index's, or a collection's manifest's).
    pub generation: u64,
    /// Live documents.
    pub n_docs: u64,
    /// Vector dimension.
    pub dim: usize,
    /// Residual bits per dimension.
    pub nbits: u8,
    /// Centroids K.
    pub n_centroids: usize,
    /// The codebook's id (64 hex digits).
    pub codebook_id: String,
    /// Whether the server encodes text queries.
    pub text: bool,
    /// The tartan that serves.
    pub version: String,
}

/// One shard in `GET /stats`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ShardStats {
    /// Name.
    pub name: String,
    /// Live documents.
    pub n_docs: u64,
    /// `local` or `remote`.
    pub kind: String,
    /// Local: generation, bytes per token, segments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Local: bytes of the index per token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_token: Option<f64>,
    /// Remote: its URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// `GET /stats`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Stats {
    /// `index` or `collection`.
    pub kind: String,
    /// The served path.
    pub path: String,
    /// The index's or the collection's generation.
    pub generation: u64,
    /// The server's snapshot number.
    pub snapshot: u64,
    /// Live documents.
    pub n_docs: u64,
    /// Dimension.
    pub dim: usize,
    /// Codebook id.
    pub codebook_id: String,
    /// Shards (one for an index).
    pub shards: Vec<ShardStats>,
    /// Limits applied to requests.
    pub limits: LimitsJson,
}

/// The request limits, as `/stats` shows them.
#[derive(Debug, Serialize, Deserialize)]
pub struct LimitsJson {
    /// Largest k.
    pub max_k: usize,
    /// Most tokens per query.
    pub max_query_tokens: usize,
    /// Most queries per batch.
    pub max_batch: usize,
    /// Largest body in bytes.
    pub max_body_bytes: usize,
}

impl From<Limits> for LimitsJson {
    fn from(l: Limits) -> Self {
        Self {
            max_k: l.max_k,
            max_query_tokens: l.max_query_tokens,
            max_batch: l.max_batch,
            max_body_bytes: l.max_body_bytes,
        }
    }
}
