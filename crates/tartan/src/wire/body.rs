//! What every route shares: the limits a server applies, the error a request gets (and its
//! JSON body), and parsing a body into its type with the field at fault named.

use serde::{Deserialize, Serialize};

/// Limits a server applies to requests (defaults in [`Limits::default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `k`.
    pub max_k: usize,
    /// Most tokens in one query.
    pub max_query_tokens: usize,
    /// Most queries in one batch.
    pub max_batch: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest `ndocs` and `ncells`.
    pub max_candidates: usize,
}

impl Default for Limits {
    /// `k` ≤ 1,000, 1,024 tokens per query, 256 queries per batch, 64 MiB bodies, `ndocs` and
    /// `ncells` ≤ 1,000,000.
    fn default() -> Self {
        Self {
            max_k: 1000,
            max_query_tokens: 1024,
            max_batch: 256,
            max_body_bytes: 64 << 20,
            max_candidates: 1_000_000,
        }
    }
}

/// A request that cannot be served: the field at fault and why (HTTP 400 / 422).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// The field (a JSON path such as `query[2][7]`), or empty for the body as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl WireError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A stable code: `bad_json`, `invalid_request`, `not_found`, `payload_too_large`,
    /// `locked`, `unavailable`, `internal`, …
    pub code: String,
    /// A message for people.
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Parses a JSON body into `T`, naming the field at fault (`k: invalid type: string …`).
pub fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        // "." is the body itself; "?" a place the parser had not reached a field at (a
        // syntax error): no field to name.
        let field = if path == "." || path == "?" { String::new() } else { path };
        WireError::new(field, msg)
    })
}
