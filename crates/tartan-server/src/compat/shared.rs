//! What the next-plaid routes share: the state, answering on the blocking pool, reading a
//! body, finding an index, queueing documents, and next-plaid's search settings as tartan's.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::Json;
use ndarray::Array2;
use serde_json::Value;
use tartan::named::{NamedIndex, Registry, NUMBER_FIELD};
use tartan::wire::Limits;
use tartan::{Filter, SearchParams};

use super::wire::{NpError, ParamsRequest, QueryResult, SearchResponse};

/// The server's model.
#[cfg(feature = "text")]
pub(crate) type Model = Arc<tartan::Encoder>;
/// Built without text support: there is never a model.
#[cfg(not(feature = "text"))]
pub(crate) type Model = std::convert::Infallible;

/// Tokens one document may have.
pub(crate) const MAX_DOC_TOKENS: usize = 1 << 16;

/// next-plaid's search defaults (its client sends them too).
pub(crate) const DEFAULT_PROBES: usize = 8;
pub(crate) const DEFAULT_FULL_SCORES: usize = 4096;
pub(crate) const DEFAULT_THRESHOLD: f32 = 0.4;

/// What the next-plaid routes share.
pub(crate) struct Compat {
    pub(crate) registry: Registry,
    pub(crate) limits: Limits,
    /// The model of the text routes, if the server has one.
    pub(crate) encoder: Option<Model>,
}

pub(crate) type Answer<T> = Result<Json<T>, NpError>;

/// [`crate::blocking`] answering in next-plaid's error form.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, NpError> + Send + 'static,
) -> Result<T, NpError> {
    crate::blocking(f).await
}

pub(crate) fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, NpError> {
    b.map_err(|r| {
        let status = r.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "PAYLOAD_TOO_LARGE"
        } else {
            "BAD_REQUEST"
        };
        NpError::new(status, code, r.body_text())
    })
}

pub(crate) fn named(app: &Compat, name: &str) -> Result<Arc<NamedIndex>, NpError> {
    Ok(app.registry.get(name)?)
}

/// Queues the documents `docs` makes (on the blocking pool: decoding or encoding them is
/// work) with their metadata; the 202 answer says which numbers they got.
pub(crate) async fn queue_documents(
    n: Arc<NamedIndex>,
    name: String,
    docs: impl FnOnce() -> Result<Vec<Array2<f32>>, NpError> + Send + 'static,
    metadata: Option<Vec<Value>>,
) -> Result<(StatusCode, Json<String>), NpError> {
    let (start, count) = blocking(move || {
        let docs = docs()?;
        let views: Vec<_> = docs.iter().map(|d| d.view()).collect();
        Ok((n.add(&views, metadata)?, docs.len()))
    })
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(format!(
            "Update queued for index {name}: {count} documents, numbered {start} to {}",
            start + count as u64 - 1
        )),
    ))
}

/// One to `max_batch` queries, texts or documents in a request.
pub(crate) fn check_batch(n: usize, limits: &Limits) -> Result<(), NpError> {
    if n == 0 || n > limits.max_batch {
        return Err(NpError::bad(format!(
            "{n} queries or documents in one request: need 1 to {}",
            limits.max_batch
        )));
    }
    Ok(())
}

/// Searches `queries` and answers in next-plaid's shape.
pub(crate) async fn run_search(
    n: Arc<NamedIndex>,
    queries: Vec<Array2<f32>>,
    params: SearchParams,
) -> Answer<SearchResponse> {
    let n_queries = queries.len();
    blocking(move || {
        let views: Vec<_> = queries.iter().map(|q| q.view()).collect();
        let hits = n.search(&views, &params)?;
        let results = hits
            .into_iter()
            .enumerate()
            .map(|(query_id, hits)| QueryResult {
                query_id,
                document_ids: hits.iter().map(|h| h.number).collect(),
                scores: hits.iter().map(|h| h.score).collect(),
                metadata: hits.into_iter().map(|h| Some(h.metadata)).collect(),
            })
            .collect();
        Ok(Json(SearchResponse { results, num_queries: n_queries }))
    })
    .await
}

/// next-plaid's settings as tartan's: `n_ivf_probe` centroids per query token, and
/// `n_full_scores` candidates kept by approximate score, which is tartan's `ndocs`: both
/// then score `max(n / 4, k)` of them exactly (next-plaid 1.8.5, `search.rs`), and tartan
/// needs `ndocs ≥ k`. A filter condition and a subset both restrict the documents.
pub(crate) fn search_params(
    p: &ParamsRequest,
    subset: &Option<Vec<i64>>,
    condition: &Option<String>,
    parameters: &[Value],
    limits: &Limits,
) -> Result<SearchParams, NpError> {
    let k = p.top_k.unwrap_or(10);
    if k == 0 || k > limits.max_k {
        return Err(NpError::bad(format!("params.top_k: {k}, need 1 to {}", limits.max_k)));
    }
    let full = p.n_full_scores.unwrap_or(DEFAULT_FULL_SCORES);
    if full == 0 || full > limits.max_candidates {
        return Err(NpError::bad(format!(
            "params.n_full_scores: {full}, need 1 to {}",
            limits.max_candidates
        )));
    }
    let probes = p.n_ivf_probe.unwrap_or(DEFAULT_PROBES);
    if probes == 0 || probes > limits.max_candidates {
        return Err(NpError::bad(format!(
            "params.n_ivf_probe: {probes}, need 1 to {}",
            limits.max_candidates
        )));
    }
    let threshold = match p.centroid_score_threshold {
        None => DEFAULT_THRESHOLD,
        Some(None) => f32::MIN,
        Some(Some(t)) => t,
    };
    let mut params =
        SearchParams::new(k).ncells(probes).ndocs(full.max(k)).centroid_score_threshold(threshold);
    let mut filter = match condition {
        Some(c) => Some(Filter::from_sql(c, parameters)?),
        None => None,
    };
    if let Some(subset) = subset {
        let only = Filter::field_in(NUMBER_FIELD, subset.iter().map(|&n| Value::from(n)).collect());
        filter = Some(match filter {
            Some(f) => f.and(only),
            None => only,
        });
    }
    if let Some(f) = filter {
        params = params.filter(f);
    }
    params.resolve()?;
    Ok(params)
}
