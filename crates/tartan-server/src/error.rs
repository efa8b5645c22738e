//! Errors as HTTP answers: a status and the JSON body of docs/openapi.json.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tartan::wire::{ErrorBody, ErrorDetail, WireError};
use tartan::{Error, IndexError};

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code (see [`ErrorDetail::code`]).
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// The request field at fault.
    pub field: Option<String>,
}

impl ApiError {
    /// An error of `status` with `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None }
    }
    /// 422: the request is well-formed JSON but a field is invalid.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_request",
            message: message.into(),
            field: Some(field.into()),
        }
    }
    /// 500 for what should not happen.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        if e.field.is_empty() {
            // Not a field of a valid JSON object: the body itself is not JSON of the right shape.
            Self::new(StatusCode::BAD_REQUEST, "bad_json", e.message)
        } else {
            Self::field(e.field, e.message)
        }
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        let msg = e.to_string();
        let field = |f: &str| Self::field(f, msg.clone());
        match &e {
            IndexError::QueryDim { .. }
            | IndexError::EmptyQuery { .. }
            | IndexError::QueryNonFinite { .. } => field("query"),
            IndexError::Filter { .. } => field("filter"),
            IndexError::Param { name, .. } => field(name),
            IndexError::DimMismatch { .. } | IndexError::Metadata { .. } => field("documents"),
            IndexError::NoDocuments => field("documents"),
            IndexError::Embeddings(_) => field("documents"),
            IndexError::UnknownId { .. } => Self::new(StatusCode::NOT_FOUND, "unknown_id", msg),
            IndexError::DuplicateId { .. } => Self::new(StatusCode::CONFLICT, "duplicate_id", msg),
            IndexError::Locked { .. } => Self::new(StatusCode::CONFLICT, "locked", msg),
            IndexError::CodebookMismatch { .. } => field("query"),
            _ => Self::internal(msg),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Index(e) => e.into(),
            Error::Embeddings(e) => Self::field("documents", e.to_string()),
            Error::Incomplete { .. } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string())
            }
            Error::Remote { .. } | Error::Shard { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, "shard_failed", e.to_string())
            }
            Error::Param { name, reason } => Self::field(name, reason),
            Error::RemoteShard { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "remote_shard", e.to_string())
            }
            Error::NoText(m) => Self::field("text", m),
            #[cfg(feature = "text")]
            Error::MissingText { .. } => Self::field("rerank", e.to_string()),
            other => Self::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail { code: self.code.into(), message: self.message, field: self.field },
        };
        (self.status, axum::Json(body)).into_response()
    }
}
