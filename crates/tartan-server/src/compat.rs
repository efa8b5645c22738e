//! next-plaid's REST API (1.8.x) over named indices in a data directory
//! ([`tartan::named::Registry`]), so that its clients work against `tartan serve --indices
//! DIR` unchanged. docs/next-plaid-compat.md has the route table and what differs.

mod shared;
mod text;
pub(crate) mod wire;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::{Method, StatusCode, Uri};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use ndarray::Array2;
use serde::Serialize;
use serde_json::{json, Value};
use tartan::named::{NamedInfo, Registry};
use tartan::wire::{parse_body, Limits};
use tartan::Filter;

use crate::auth::Scope;
use shared::{
    blocking, body, check_batch, named, queue_documents, run_search, search_params, Answer, Compat,
    Model, MAX_DOC_TOKENS,
};
use wire::*;

/// Every next-plaid route with the scope a key needs: searches, reads of indices and
/// metadata, encoding and reranking are `read`; creating, configuring, deleting and
/// updating indices, documents and metadata are `write`.
pub const ROUTES: [(&str, &str, Scope); 24] = [
    ("get", "/", Scope::Read),
    ("get", "/health", Scope::Read),
    ("get", "/indices", Scope::Read),
    ("post", "/indices", Scope::Write),
    ("get", "/indices/{name}", Scope::Read),
    ("delete", "/indices/{name}", Scope::Write),
    ("put", "/indices/{name}/config", Scope::Write),
    ("post", "/indices/{name}/update", Scope::Write),
    ("post", "/indices/{name}/documents", Scope::Write),
    ("delete", "/indices/{name}/documents", Scope::Write),
    ("post", "/indices/{name}/search", Scope::Read),
    ("post", "/indices/{name}/search/filtered", Scope::Read),
    ("get", "/indices/{name}/metadata", Scope::Read),
    ("get", "/indices/{name}/metadata/count", Scope::Read),
    ("post", "/indices/{name}/metadata/check", Scope::Read),
    ("post", "/indices/{name}/metadata/query", Scope::Read),
    ("post", "/indices/{name}/metadata/get", Scope::Read),
    ("post", "/indices/{name}/metadata/update", Scope::Write),
    ("post", "/indices/{name}/search_with_encoding", Scope::Read),
    ("post", "/indices/{name}/search/filtered_with_encoding", Scope::Read),
    ("post", "/indices/{name}/update_with_encoding", Scope::Write),
    ("post", "/encode", Scope::Read),
    ("post", "/rerank", Scope::Read),
    ("post", "/rerank_with_encoding", Scope::Read),
];

/// The next-plaid routes over the named indices of `dir`.
pub(crate) fn router(dir: &Path, limits: Limits, encoder: Option<Model>) -> tartan::Result<Router> {
    let state = Arc::new(Compat { registry: Registry::open(dir)?, limits, encoder });
    Ok(Router::new()
        .route("/", get(health))
        .route("/health", get(health))
        .route("/indices", get(list).post(create))
        .route("/indices/{name}", get(info).delete(delete_index))
        .route("/indices/{name}/config", put(set_config))
        .route("/indices/{name}/update", post(add))
        .route("/indices/{name}/documents", post(add).delete(delete_documents))
        .route("/indices/{name}/search", post(search))
        .route("/indices/{name}/search/filtered", post(search))
        .route("/indices/{name}/metadata", get(metadata_all))
        .route("/indices/{name}/metadata/count", get(metadata_count))
        .route("/indices/{name}/metadata/check", post(metadata_check))
        .route("/indices/{name}/metadata/query", post(metadata_query))
        .route("/indices/{name}/metadata/get", post(metadata_get))
        .route("/indices/{name}/metadata/update", post(metadata_update))
        .route("/indices/{name}/search_with_encoding", post(text::search))
        .route("/indices/{name}/search/filtered_with_encoding", post(text::search))
        .route("/indices/{name}/update_with_encoding", post(text::add))
        .route("/encode", post(text::encode))
        .route("/rerank", post(text::rerank))
        .route("/rerank_with_encoding", post(text::rerank_text))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state))
}

/// One index in `/health`.
#[derive(Serialize)]
struct Summary {
    name: String,
    num_documents: u64,
    num_embeddings: u64,
    num_partitions: usize,
    dimension: usize,
    nbits: u8,
    avg_doclen: f64,
    has_metadata: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_documents: Option<usize>,
}

fn summary(name: &str, i: &NamedInfo) -> Summary {
    Summary {
        name: name.to_string(),
        num_documents: i.num_documents,
        num_embeddings: i.num_embeddings,
        num_partitions: i.num_partitions,
        dimension: i.dimension,
        nbits: i.config.nbits,
        avg_doclen: i.num_embeddings as f64 / i.num_documents.max(1) as f64,
        has_metadata: i.num_documents > 0,
        max_documents: i.config.max_documents,
    }
}

/// Resident memory of this process (Linux), 0 where unknown.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// `GET /`, `GET /health`.
async fn health(State(app): State<Arc<Compat>>) -> Json<Value> {
    let indices: Vec<Summary> = app
        .registry
        .names()
        .iter()
        .filter_map(|n| app.registry.get(n).ok())
        .map(|n| summary(n.name(), &n.info()))
        .collect();
    Json(json!({
        "status": "healthy",
        "version": env!("CARGO_PKG_VERSION"),
        "engine": "tartan",
        "loaded_indices": indices.len(),
        "index_dir": app.registry.dir().display().to_string(),
        "memory_usage_bytes": rss_bytes(),
        "indices": indices,
    }))
}

/// `GET /indices`.
async fn list(State(app): State<Arc<Compat>>) -> Json<Vec<String>> {
    Json(app.registry.names())
}

/// `POST /indices`.
async fn create(State(app): State<Arc<Compat>>, b: Result<Bytes, BytesRejection>) -> Answer<Value> {
    let req: CreateIndex = parse_body(&body(b)?)?;
    let config = req.config.into_config()?;
    let name = req.name;
    blocking(move || {
        let n = app.registry.create(&name, config)?;
        let info = n.info();
        Ok(Json(json!({
            "name": name,
            "config": ConfigJson::from(&info.config),
            "message": format!("Index declared. Use POST /indices/{name}/update to add documents."),
        })))
    })
    .await
}

/// `GET /indices/{name}`.
async fn info(State(app): State<Arc<Compat>>, UrlPath(name): UrlPath<String>) -> Answer<Value> {
    let n = named(&app, &name)?;
    let i = n.info();
    let s = summary(&name, &i);
    Ok(Json(json!({
        "name": s.name,
        "num_documents": s.num_documents,
        "num_embeddings": s.num_embeddings,
        "num_partitions": s.num_partitions,
        "avg_doclen": s.avg_doclen,
        "dimension": s.dimension,
        "has_metadata": s.has_metadata,
        "metadata_count": s.num_documents,
        "max_documents": s.max_documents,
        "nbits": s.nbits,
        "pending_updates": i.pending,
        "last_error": i.last_error,
    })))
}

/// `DELETE /indices/{name}`.
async fn delete_index(
    State(app): State<Arc<Compat>>,
    UrlPath(name): UrlPath<String>,
) -> Answer<Value> {
    blocking(move || {
        app.registry.delete(&name)?;
        Ok(Json(json!({ "deleted": true, "name": name })))
    })
    .await
}

/// `PUT /indices/{name}/config`.
async fn set_config(
    State(app): State<Arc<Compat>>,
    UrlPath(name): UrlPath<String>,
    b: Result<Bytes, BytesRejection>,
) -> Answer<Value> {
    let req: SetConfig = parse_body(&body(b)?)?;
    let n = named(&app, &name)?;
    blocking(move || {
        let config = n.set_max_documents(req.max_documents)?;
        Ok(Json(json!({ "name": name, "config": ConfigJson::from(&config) })))
    })
    .await
}

/// `POST /indices/{name}/update` and `/documents`: 202, applied in the background.
async fn add(
    State(app): State<Arc<Compat>>,
    UrlPath(name): UrlPath<String>,
    b: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<String>), NpError> {
    let req: AddDocuments = parse_body(&body(b)?)?;
    let n = named(&app, &name)?;
    if req.documents.is_empty() {
        return Err(NpError::bad("documents: no documents"));
    }
    let docs: Vec<Array2<f32>> = req
        .documents
        .iter()
        .enumerate()
        .map(|(i, d)| decode_matrix(d, &format!("documents[{i}]"), MAX_DOC_TOKENS))
        .collect::<Result<_, _>>()?;
    queue_documents(n, name, move || Ok(docs), req.metadata).await
}

/// `DELETE /indices/{name}/documents`: 202, applied in the background.
async fn delete_documents(
    State(app): State<Arc<Compat>>,
    UrlPath(name): UrlPath<String>,
    b: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<String>), NpError> {
    let req: Condition = parse_body(&body(b)?)?;
    let n = named(&app, &name)?;
    let filter = Filter::from_sql(&req.condition, &req.parameters)?;
    let matching = blocking(move || Ok(n.delete_where(filter)?)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(format!("Delete queued for index {name}: {matching} documents match now")),
    ))
}

/// `POST /indices/{name}/search` and `/search/filtered`.
async fn search(
    State(app): State<Arc<Compat>>,
    UrlPath(name): UrlPath<String>,
    b: Result<Bytes, BytesRejection>,
) -> Answer<SearchResponse> {
    let req: Search = parse_body(&body(b)?)?;
    let n = named(&app, &name)?;
    if req.text_query.is_some() || req.alpha.is_some() || req.fusion.is_some() {
        return Err(NpError::bad(
            "text_query, alpha, fusion: keyword and hybrid search need next-plaid's full-text \
             index over metadata, which tartan does not have",
        ));
    }
    check_batch(req.queries.len(), &app.limits)?;
    let queries: Vec<Array2<f32>> = req
        .queries
        .iter()
        .enumerate()
        .map(|(i, q)| decode_matrix(q, &format!("queries[{i}]"), app.limits.max_query_tokens))
        .collect::<Result<_, _>>()?;
    let params = search_params(
        &req.params,
        &req.subset,
        &req.filter_condition,
        &req.filter_parameters,
        &app.limits,
    )?;
    run_search(n, queries, params).await
}

/// `GET /indices/{name}/metadata`.
async fn metadata_all(
    State(app): State<Arc<Compat>>,
    UrlPath(name): UrlPath<String>,
) -> Answer<Value> {
    let n = named(&app, &name)?;
    blocking(move || {
        let rows = n.metadata(None, None, None)?;
        Ok(Json(json!({ "count": rows.len(), "metadata": rows })))
    })
    .await
}

/// `GET /indices/{name}/metadata/count`.
async fn metadata_count(
    State(app): State<Arc<Compat>>,
    UrlPath(name): UrlPath<String>,
) -> Answer<Value> {
    let n = named(&app, &name)?;
    let count = n.info().num_documents;
    Ok(Json(json!({ "count": count, "has_metadata": count > 0 })))
}

/// `POST /indices/{name}/metadata/check`.
async fn metadata_check(
    State(app): State<Arc<Compat>>,
    UrlPath(name): UrlPath<String>,
    b: Result<Bytes, BytesRejection>,
) -> Answer<Value> {
    let req: Numbers = parse_body(&body(b)?)?;
    let n = named(&app, &name)?;
    blocking(move || {
        let live: HashSet<u64> = n.numbers(None)?.into_iter().collect();
        let (existing, missing): (Vec<i64>, Vec<i64>) = req
            .document_ids
            .iter()
            .partition(|&&d| u64::try_from(d).is_ok_and(|d| live.contains(&d)));
        Ok(Json(json!({
            "existing_count": existing.len(),
            "missing_count": missing.len(),
            "existing_ids": existing,
            "missing_ids": missing,
        })))
    })
    .await
}

/// `POST /indices/{name}/metadata/query`.
async fn metadata_query(
    State(app): State<Arc<Compat>>,
    UrlPath(name): UrlPath<String>,
    b: Result<Bytes, BytesRejection>,
) -> Answer<Value> {
    let req: Condition = parse_body(&body(b)?)?;
    let n = named(&app, &name)?;
    let filter = Filter::from_sql(&req.condition, &req.parameters)?;
    blocking(move || {
        let ids = n.numbers(Some(&filter))?;
        Ok(Json(json!({ "count": ids.len(), "document_ids": ids })))
    })
    .await
}

/// `POST /indices/{name}/metadata/get`.
async fn metadata_get(
    State(app): State<Arc<Compat>>,
    UrlPath(name): UrlPath<String>,
    b: Result<Bytes, BytesRejection>,
) -> Answer<Value> {
    let bytes = body(b)?;
    let req: GetMetadata =
        if bytes.is_empty() { GetMetadata::default() } else { parse_body(&bytes)? };
    let n = named(&app, &name)?;
    let filter = match &req.condition {
        Some(c) => Some(Filter::from_sql(c, &req.parameters)?),
        None if !req.parameters.is_empty() => {
            return Err(NpError::bad("parameters: given without a condition"))
        }
        None => None,
    };
    blocking(move || {
        let numbers: Option<Vec<u64>> = req
            .document_ids
            .map(|ids| ids.into_iter().filter_map(|d| u64::try_from(d).ok()).collect());
        let rows = n.metadata(filter.as_ref(), numbers.as_deref(), req.limit)?;
        Ok(Json(json!({ "count": rows.len(), "metadata": rows })))
    })
    .await
}

/// `POST /indices/{name}/metadata/update`: applied after the changes queued before it;
/// answers how many documents changed.
async fn metadata_update(
    State(app): State<Arc<Compat>>,
    UrlPath(name): UrlPath<String>,
    b: Result<Bytes, BytesRejection>,
) -> Answer<Value> {
    let req: UpdateMetadata = parse_body(&body(b)?)?;
    let n = named(&app, &name)?;
    let filter = Filter::from_sql(&req.condition, &req.parameters)?;
    blocking(move || {
        let updated = n.update_metadata(filter, req.updates)?;
        Ok(Json(json!({ "updated": updated })))
    })
    .await
}

async fn not_found(method: Method, uri: Uri) -> NpError {
    NpError::new(StatusCode::NOT_FOUND, "NOT_FOUND", format!("no route {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> NpError {
    NpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("{} does not take {method}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_full_scores_is_ndocs_as_next_plaid_reads_it() {
        let limits = Limits::default();
        let ndocs = |top_k, full| {
            let p = ParamsRequest {
                top_k: Some(top_k),
                n_full_scores: Some(full),
                ..Default::default()
            };
            let params = search_params(&p, &None, &None, &[], &limits).expect("valid");
            params.resolve().expect("resolves").ndocs
        };
        // next-plaid keeps n_full_scores candidates and scores max(n / 4, top_k) exactly,
        // as tartan does with ndocs.
        assert_eq!(ndocs(10, 256), 256);
        assert_eq!(ndocs(10, 4096), 4096);
        // tartan needs ndocs ≥ k; next-plaid then scores top_k of its candidates.
        assert_eq!(ndocs(40, 16), 40);
    }
}
