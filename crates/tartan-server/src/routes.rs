//! The routes (docs/openapi.json), one module per resource: [`status`] (`/health`, `/stats`,
//! `/ids`), [`search`] (`/search`, `/search/batch`), [`shard`] (the two rounds of a search
//! split over servers), [`explain`] and [`documents`] (changes). Every handler parses its
//! body with the wire types of [`tartan::wire`] and does its work on the blocking pool, where
//! a panic becomes a 500 and the process lives. Handlers only decode and route: what a
//! request does is the facade's.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{Method, StatusCode, Uri};
use axum::Json;
use ndarray::Array2;
use serde_json::Value;
use tartan::wire;

use crate::error::ApiError;
use crate::AppState;

pub(crate) mod documents;
pub(crate) mod explain;
pub(crate) mod search;
pub(crate) mod shard;
pub(crate) mod status;

pub(crate) type Answer<T> = Result<Json<T>, ApiError>;

/// [`crate::blocking`] answering in tartan's error form.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    crate::blocking(f).await
}

/// The body, or the reason it could not be read (too large: 413).
fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|r| {
        let status = r.status();
        let code =
            if status == StatusCode::PAYLOAD_TOO_LARGE { "payload_too_large" } else { "bad_body" };
        ApiError::new(status, code, r.body_text())
    })
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    b: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    Ok(wire::parse_body(&body(b)?)?)
}

/// The query of a request: token vectors, or text encoded with the server's model.
pub(crate) fn query_of(
    app: &AppState,
    vectors: Option<&Value>,
    text: Option<&str>,
    field: &str,
    dim: usize,
) -> Result<Array2<f32>, ApiError> {
    match (vectors, text) {
        (Some(v), None) => Ok(wire::decode_query(v, field, dim, &app.limits)?),
        (None, Some(t)) => app.encode_text(t, dim),
        (Some(_), Some(_)) => Err(ApiError::field(field, "give token vectors or text, not both")),
        (None, None) => Err(ApiError::field(field, "no query: give token vectors or text")),
    }
}

/// Unknown routes: 404 with the JSON error body.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no route {method} {}", uri.path()))
}

/// Known routes with another method: 405.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_request_is_a_500_and_the_runtime_goes_on() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let err = rt
            .block_on(blocking(|| -> Result<(), ApiError> { panic!("a bug in one request") }))
            .unwrap_err();
        assert_eq!((err.status, err.code), (StatusCode::INTERNAL_SERVER_ERROR, "internal"));
        assert_eq!(rt.block_on(blocking(|| Ok(7))).unwrap(), 7);
    }
}
