//! next-plaid's JSON: request and response bodies, token matrices (nested arrays or base64
//! float32 with a shape), and its error body `{code, message, error}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tartan::named::NamedConfig;
use tartan::wire::WireError;
use tartan::{Error, IndexError};

/// An error answer in next-plaid's form.
#[derive(Debug)]
pub struct NpError {
    /// HTTP status.
    pub status: StatusCode,
    /// next-plaid's error code (`INDEX_NOT_FOUND` …).
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl NpError {
    /// An error of `status` with `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
    /// 400: a value the request gave is invalid.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }
    /// 500 for what should not happen.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", message)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    /// The same text under the name tartan's own API and some clients read.
    error: &'a str,
}

impl crate::Internal for NpError {
    fn internal(message: String) -> Self {
        Self::internal(message)
    }
}

impl IntoResponse for NpError {
    fn into_response(self) -> Response {
        let body = ErrorBody { code: self.code, message: &self.message, error: &self.message };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<WireError> for NpError {
    fn from(e: WireError) -> Self {
        if e.field.is_empty() {
            Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", e.message)
        } else {
            Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNPROCESSABLE_ENTITY",
                format!("{}: {}", e.field, e.message),
            )
        }
    }
}

impl From<Error> for NpError {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::NamedIndex { exists: true, .. } => {
                Self::new(StatusCode::CONFLICT, "INDEX_ALREADY_EXISTS", msg)
            }
            Error::NamedIndex { exists: false, .. } => {
                Self::new(StatusCode::NOT_FOUND, "INDEX_NOT_FOUND", msg)
            }
            Error::Param { .. } | Error::Embeddings(_) => Self::bad(msg),
            Error::Index(e) => e.into(),
            _ => Self::internal(msg),
        }
    }
}

impl From<IndexError> for NpError {
    fn from(e: IndexError) -> Self {
        let msg = e.to_string();
        match e {
            IndexError::Filter { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_CONDITION", msg)
            }
            IndexError::QueryDim { .. } | IndexError::DimMismatch { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "DIMENSION_MISMATCH", msg)
            }
            IndexError::EmptyQuery { .. }
            | IndexError::QueryNonFinite { .. }
            | IndexError::Param { .. }
            | IndexError::Metadata { .. }
            | IndexError::NoDocuments
            | IndexError::Embeddings(_) => Self::bad(msg),
            _ => Self::internal(msg),
        }
    }
}

/// `POST /indices`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIndex {
    pub name: String,
    #[serde(default)]
    pub config: ConfigRequest,
}

/// Index settings as a request gives them (every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRequest {
    pub nbits: Option<u8>,
    pub batch_size: Option<usize>,
    pub seed: Option<u64>,
    pub start_from_scratch: Option<usize>,
    pub max_documents: Option<usize>,
    /// next-plaid's full-text options: accepted only at their defaults (tartan has no
    /// full-text index; see docs/next-plaid-compat.md).
    pub fts_tokenizer: Option<String>,
    pub binary: Option<bool>,
}

impl ConfigRequest {
    pub fn into_config(self) -> Result<NamedConfig, NpError> {
        if self.binary == Some(true) {
            return Err(NpError::bad("binary indexes are not supported by tartan; use nbits 1"));
        }
        if self.fts_tokenizer.is_some() {
            return Err(NpError::bad(
                "fts_tokenizer: tartan has no full-text search over metadata",
            ));
        }
        let d = NamedConfig::default();
        Ok(NamedConfig {
            nbits: self.nbits.unwrap_or(d.nbits),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            seed: self.seed,
            start_from_scratch: self.start_from_scratch.unwrap_or(d.start_from_scratch),
            max_documents: self.max_documents,
        })
    }
}

/// The stored settings in answers.
#[derive(Debug, Serialize)]
pub struct ConfigJson {
    pub nbits: u8,
    pub batch_size: usize,
    pub seed: Option<u64>,
    pub start_from_scratch: usize,
    pub max_documents: Option<usize>,
}

impl From<&NamedConfig> for ConfigJson {
    fn from(c: &NamedConfig) -> Self {
        Self {
            nbits: c.nbits,
            batch_size: c.batch_size,
            seed: c.seed,
            start_from_scratch: c.start_from_scratch,
            max_documents: c.max_documents,
        }
    }
}

/// `PUT /indices/{name}/config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetConfig {
    pub max_documents: Option<usize>,
}

/// `POST /indices/{name}/update` (and `/documents`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddDocuments {
    pub documents: Vec<Value>,
    #[serde(default)]
    pub metadata: Option<Vec<Value>>,
}

/// `DELETE /indices/{name}/documents`, `POST .../metadata/query`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub condition: String,
    #[serde(default)]
    pub parameters: Vec<Value>,
}

/// `POST /indices/{name}/metadata/update`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMetadata {
    pub condition: String,
    #[serde(default)]
    pub parameters: Vec<Value>,
    pub updates: serde_json::Map<String, Value>,
}

/// Search settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamsRequest {
    pub top_k: Option<usize>,
    pub n_ivf_probe: Option<usize>,
    pub n_full_scores: Option<usize>,
    /// Absent: next-plaid's default; `null`: no pruning.
    #[serde(default, deserialize_with = "present")]
    pub centroid_score_threshold: Option<Option<f32>>,
}

/// Tells an explicit `null` (Some(None)) from an absent field (None).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f32>>, D::Error> {
    Option::<f32>::deserialize(d).map(Some)
}

/// `POST /indices/{name}/search` and `/search/filtered`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    #[serde(default)]
    pub queries: Vec<Value>,
    #[serde(default)]
    pub params: ParamsRequest,
    #[serde(default)]
    pub subset: Option<Vec<i64>>,
    #[serde(default)]
    pub filter_condition: Option<String>,
    #[serde(default)]
    pub filter_parameters: Vec<Value>,
    /// Keyword and hybrid search (next-plaid's FTS5): refused with a clear error.
    #[serde(default)]
    pub text_query: Option<Value>,
    #[serde(default)]
    pub alpha: Option<f32>,
    #[serde(default)]
    pub fusion: Option<String>,
}

/// One query's hits.
#[derive(Debug, Serialize)]
pub struct QueryResult {
    pub query_id: usize,
    pub document_ids: Vec<u64>,
    pub scores: Vec<f32>,
    pub metadata: Vec<Option<Value>>,
}

/// A search answer.
#[derive(Debug, Serialize)]
pub struct SearchResponse {
    pub results: Vec<QueryResult>,
    pub num_queries: usize,
}

/// `POST .../metadata/check`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Numbers {
    pub document_ids: Vec<i64>,
}

/// `POST .../metadata/get`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetMetadata {
    #[serde(default)]
    pub document_ids: Option<Vec<i64>>,
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub parameters: Vec<Value>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// A token matrix as next-plaid sends it ([`tartan::wire::decode_matrix`]), refused in
/// next-plaid's error form.
pub fn decode_matrix(v: &Value, field: &str, max_rows: usize) -> Result<Array2<f32>, NpError> {
    Ok(tartan::wire::decode_matrix(v, field, max_rows)?)
}
