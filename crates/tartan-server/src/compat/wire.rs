//! next-plaid's JSON: request and response bodies, token matrices (nested arrays or base64
//! float32 with a shape), and its error body `{code, message, error}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
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

/// A token matrix as next-plaid sends it: `{"embeddings": [[…], …]}` or
/// `{"embeddings_b64": base64 little-endian float32, "shape": [n, dim]}` (or the bare nested
/// array). `field` names it in errors; at most `max_rows` rows.
pub fn decode_matrix(v: &Value, field: &str, max_rows: usize) -> Result<Array2<f32>, NpError> {
    let bad = |f: String, m: String| Err(NpError::from(WireError::new(f, m)));
    let rows = match v {
        Value::Object(o) if o.contains_key("embeddings_b64") => {
            let Some(b64) = o.get("embeddings_b64").and_then(Value::as_str) else {
                return bad(format!("{field}.embeddings_b64"), "expected a base64 string".into());
            };
            let shape: Option<Vec<u64>> = o
                .get("shape")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(Value::as_u64).collect());
            let Some([n, d]) = shape.as_deref().and_then(|s| <[u64; 2]>::try_from(s).ok()) else {
                return bad(format!("{field}.shape"), "expected [num_tokens, dim]".into());
            };
            if n == 0 || d == 0 || n > max_rows as u64 {
                return bad(
                    format!("{field}.shape"),
                    format!("[{n}, {d}]: need 1 to {max_rows} tokens and dim ≥ 1"),
                );
            }
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| {
                NpError::from(WireError::new(
                    format!("{field}.embeddings_b64"),
                    format!("not base64: {e}"),
                ))
            })?;
            let want = (n * d * 4) as usize;
            if bytes.len() != want {
                return bad(
                    format!("{field}.embeddings_b64"),
                    format!("{} bytes, shape [{n}, {d}] of float32 needs {want}", bytes.len()),
                );
            }
            let data: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect();
            Array2::from_shape_vec((n as usize, d as usize), data).expect("n·d values")
        }
        Value::Object(o) => match o.get("embeddings") {
            Some(e) => return decode_matrix(e, &format!("{field}.embeddings"), max_rows),
            None => {
                return bad(field.into(), "expected embeddings or embeddings_b64 and shape".into())
            }
        },
        Value::Array(rows) => {
            if rows.is_empty() || rows.len() > max_rows {
                return bad(field.into(), format!("{} tokens: need 1 to {max_rows}", rows.len()));
            }
            let mut data = Vec::new();
            let mut dim = None;
            for (i, row) in rows.iter().enumerate() {
                let Some(row) = row.as_array() else {
                    return bad(format!("{field}[{i}]"), "expected an array of numbers".into());
                };
                if *dim.get_or_insert(row.len()) != row.len() || row.is_empty() {
                    return bad(
                        format!("{field}[{i}]"),
                        format!("{} values, token 0 has {}", row.len(), dim.unwrap_or(0)),
                    );
                }
                for (j, x) in row.iter().enumerate() {
                    match x.as_f64() {
                        Some(x) => data.push(x as f32),
                        None => return bad(format!("{field}[{i}][{j}]"), "not a number".into()),
                    }
                }
            }
            let dim = dim.unwrap_or(0);
            Array2::from_shape_vec((rows.len(), dim), data).expect("rows·dim values")
        }
        _ => return bad(field.into(), "expected token embeddings".into()),
    };
    if let Some(i) = rows.iter().position(|x| !x.is_finite()) {
        let d = rows.ncols();
        return bad(format!("{field}[{}][{}]", i / d, i % d), "not a finite number".into());
    }
    Ok(rows)
}
