//! next-plaid's text routes: search and update with texts encoded by the server's model,
//! `/encode`, and MaxSim reranking of given documents (`/rerank`, `/rerank_with_encoding`).
//! Without a model the text routes answer 503 `MODEL_NOT_LOADED`, as next-plaid does.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use base64::Engine;
use ndarray::Array2;
use serde::Deserialize;
use serde_json::{json, Value};
use tartan::wire::parse_body;

use super::shared::{
    blocking, body, check_batch, named, queue_documents, run_search, search_params, Compat, Model,
    MAX_DOC_TOKENS,
};
use super::wire::{decode_matrix, NpError, ParamsRequest, SearchResponse};

/// `POST /indices/{name}/search_with_encoding` and `/search/filtered_with_encoding`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSearch {
    queries: Vec<String>,
    #[serde(default)]
    params: ParamsRequest,
    #[serde(default)]
    subset: Option<Vec<i64>>,
    #[serde(default)]
    filter_condition: Option<String>,
    #[serde(default)]
    filter_parameters: Vec<Value>,
}

/// `POST /indices/{name}/update_with_encoding`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextAdd {
    documents: Vec<String>,
    #[serde(default)]
    metadata: Option<Vec<Value>>,
    #[serde(default)]
    pool_factor: Option<usize>,
}

/// `POST /encode`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encode {
    texts: Vec<String>,
    #[serde(default = "document")]
    input_type: String,
    #[serde(default)]
    pool_factor: Option<usize>,
}

fn document() -> String {
    "document".into()
}

/// `POST /rerank`: the query as base64 float32 with a shape, or nested arrays.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rerank {
    #[serde(default)]
    query: Option<Value>,
    #[serde(default)]
    query_b64: Option<String>,
    #[serde(default)]
    query_shape: Option<Vec<u64>>,
    documents: Vec<Value>,
}

/// `POST /rerank_with_encoding`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RerankText {
    query: String,
    documents: Vec<String>,
    #[serde(default)]
    pool_factor: Option<usize>,
}

fn model(app: &Compat) -> Result<Model, NpError> {
    app.encoder.clone().ok_or_else(|| {
        NpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "MODEL_NOT_LOADED",
            "No model loaded. Start the server with --model to enable encoding.",
        )
    })
}

/// Token pooling is next-plaid's; tartan keeps every token.
fn no_pooling(pool_factor: Option<usize>) -> Result<(), NpError> {
    match pool_factor {
        None | Some(1) => Ok(()),
        Some(f) => Err(NpError::bad(format!(
            "pool_factor: {f}: tartan does not pool tokens (leave it out, or 1)"
        ))),
    }
}

/// Encodes texts as queries or documents, one `n × dim` matrix each.
#[cfg(feature = "text")]
fn encode_texts(enc: &Model, texts: &[String], queries: bool) -> Result<Vec<Array2<f32>>, NpError> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    if queries {
        enc.encode_query_matrices(&refs)
    } else {
        enc.encode_doc_matrices(&refs, &mut |_| {})
    }
    .map_err(|e| NpError::new(StatusCode::INTERNAL_SERVER_ERROR, "MODEL_ERROR", e.to_string()))
}

#[cfg(not(feature = "text"))]
fn encode_texts(enc: &Model, _: &[String], _: bool) -> Result<Vec<Array2<f32>>, NpError> {
    match *enc {}
}

/// `POST /indices/{name}/search_with_encoding`, `/search/filtered_with_encoding`.
pub(crate) async fn search(
    State(app): State<Arc<Compat>>,
    UrlPath(name): UrlPath<String>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Json<SearchResponse>, NpError> {
    let req: TextSearch = parse_body(&body(b)?)?;
    let n = named(&app, &name)?;
    let enc = model(&app)?;
    check_batch(req.queries.len(), &app.limits)?;
    let params = search_params(
        &req.params,
        &req.subset,
        &req.filter_condition,
        &req.filter_parameters,
        &app.limits,
    )?;
    let queries = blocking(move || encode_texts(&enc, &req.queries, true)).await?;
    run_search(n, queries, params).await
}

/// `POST /indices/{name}/update_with_encoding`: 202, applied in the background.
pub(crate) async fn add(
    State(app): State<Arc<Compat>>,
    UrlPath(name): UrlPath<String>,
    b: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<String>), NpError> {
    let req: TextAdd = parse_body(&body(b)?)?;
    let n = named(&app, &name)?;
    let enc = model(&app)?;
    no_pooling(req.pool_factor)?;
    if req.documents.is_empty() {
        return Err(NpError::bad("documents: no documents"));
    }
    let texts = req.documents;
    let encode = move || {
        let docs = encode_texts(&enc, &texts, false)?;
        if let Some(i) = docs.iter().position(|d| d.nrows() > MAX_DOC_TOKENS) {
            return Err(NpError::bad(format!("documents[{i}]: more than {MAX_DOC_TOKENS} tokens")));
        }
        Ok(docs)
    };
    queue_documents(n, name, encode, req.metadata).await
}

/// `POST /encode`: nested arrays, or base64 float32 with shapes when the request has
/// `X-Embeddings-Format: base64`.
pub(crate) async fn encode(
    State(app): State<Arc<Compat>>,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, NpError> {
    let req: Encode = parse_body(&body(b)?)?;
    let enc = model(&app)?;
    no_pooling(req.pool_factor)?;
    let queries = match req.input_type.as_str() {
        "query" => true,
        "document" => false,
        other => {
            return Err(NpError::bad(format!(
                "input_type: {other:?}, expected \"document\" or \"query\""
            )))
        }
    };
    check_batch(req.texts.len(), &app.limits)?;
    let b64 = headers
        .get("x-embeddings-format")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("base64"));
    let n = req.texts.len();
    let mats = blocking(move || encode_texts(&enc, &req.texts, queries)).await?;
    if b64 {
        let engine = base64::engine::general_purpose::STANDARD;
        let data: Vec<String> = mats
            .iter()
            .map(|m| engine.encode(m.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()))
            .collect();
        let shapes: Vec<[usize; 2]> = mats.iter().map(|m| [m.nrows(), m.ncols()]).collect();
        return Ok(Json(json!({ "embeddings_b64": data, "shapes": shapes, "num_texts": n })));
    }
    let nested: Vec<Vec<Vec<f32>>> =
        mats.iter().map(|m| m.rows().into_iter().map(|r| r.to_vec()).collect()).collect();
    Ok(Json(json!({ "embeddings": nested, "num_texts": n })))
}

/// Ranks `docs` by MaxSim against `query`: `{results: [{index, score}], num_documents}`.
fn ranked(query: Array2<f32>, docs: Vec<Array2<f32>>) -> Result<Json<Value>, NpError> {
    let views: Vec<_> = docs.iter().map(|d| d.view()).collect();
    let order = tartan::maxsim_rank(query.view(), &views)?;
    let results: Vec<Value> =
        order.iter().map(|&(i, s)| json!({ "index": i, "score": s })).collect();
    Ok(Json(json!({ "results": results, "num_documents": docs.len() })))
}

/// `POST /rerank`: given token embeddings, exact MaxSim (no model needed).
pub(crate) async fn rerank(
    State(app): State<Arc<Compat>>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, NpError> {
    let req: Rerank = parse_body(&body(b)?)?;
    let query = match (req.query, req.query_b64, req.query_shape) {
        (Some(q), None, None) => decode_matrix(&q, "query", app.limits.max_query_tokens)?,
        (None, Some(b64), Some(shape)) => decode_matrix(
            &json!({ "embeddings_b64": b64, "shape": shape }),
            "query",
            app.limits.max_query_tokens,
        )?,
        _ => return Err(NpError::bad("give query, or query_b64 with query_shape")),
    };
    check_batch(req.documents.len(), &app.limits)?;
    let docs: Vec<Array2<f32>> = req
        .documents
        .iter()
        .enumerate()
        .map(|(i, d)| decode_matrix(d, &format!("documents[{i}]"), MAX_DOC_TOKENS))
        .collect::<Result<_, _>>()?;
    blocking(move || ranked(query, docs)).await
}

/// `POST /rerank_with_encoding`: the query and documents encoded by the model, then MaxSim.
pub(crate) async fn rerank_text(
    State(app): State<Arc<Compat>>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, NpError> {
    let req: RerankText = parse_body(&body(b)?)?;
    let enc = model(&app)?;
    no_pooling(req.pool_factor)?;
    check_batch(req.documents.len(), &app.limits)?;
    blocking(move || {
        let query = encode_texts(&enc, std::slice::from_ref(&req.query), true)?.remove(0);
        let docs = encode_texts(&enc, &req.documents, false)?;
        ranked(query, docs)
    })
    .await
}
