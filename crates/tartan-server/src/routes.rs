//! The routes (docs/openapi.json). Every handler parses its body with the shared wire types
//! and does its work on the blocking pool, where a panic becomes a 500 and the process lives.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::Json;
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tartan::wire::{
    self, BatchItem, BatchResponse, CandidatesResponse, CoverageJson, FailedShard, HitJson,
    ScoreRequest, ScoreResponse, SearchRequest, SearchResponse,
};
use tartan::{
    Embeddings, Extras, LoadOptions, NoProgress, Results, SearchOptions, ShardPolicy, ShardSet,
    Writer,
};

use crate::error::ApiError;
use crate::AppState;

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

/// `GET /health`.
pub async fn health(State(app): State<Arc<AppState>>) -> Json<tartan::Health> {
    let snap = app.served.get();
    let s = &snap.searcher;
    Json(tartan::Health {
        status: "ok".into(),
        kind: if s.collection().is_some() { "collection" } else { "index" }.into(),
        generation: s.generation(),
        n_docs: s.n_docs(),
        dim: s.dim(),
        nbits: s.shape().0,
        n_centroids: s.shape().1,
        codebook_id: s.codebook_id().to_hex(),
        text: app.has_text(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
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

/// `GET /stats`.
pub async fn stats(State(app): State<Arc<AppState>>) -> Answer<Stats> {
    blocking(move || {
        let snap = app.served.get();
        let s = &snap.searcher;
        let shards = s
            .shards()
            .iter()
            .map(|sh| match sh.index() {
                Some(i) => ShardStats {
                    name: sh.name().into(),
                    n_docs: sh.n_docs(),
                    kind: "local".into(),
                    generation: Some(i.generation()),
                    bytes_per_token: Some(i.stats().bytes_per_token()),
                    url: None,
                },
                None => ShardStats {
                    name: sh.name().into(),
                    n_docs: sh.n_docs(),
                    kind: "remote".into(),
                    generation: None,
                    bytes_per_token: None,
                    url: sh.url().map(str::to_string),
                },
            })
            .collect();
        let l = app.limits;
        Ok(Json(Stats {
            kind: if s.collection().is_some() { "collection" } else { "index" }.into(),
            path: app.served.path().display().to_string(),
            generation: s.generation(),
            snapshot: snap.id,
            n_docs: s.n_docs(),
            dim: s.dim(),
            codebook_id: s.codebook_id().to_hex(),
            shards,
            limits: LimitsJson {
                max_k: l.max_k,
                max_query_tokens: l.max_query_tokens,
                max_batch: l.max_batch,
                max_body_bytes: l.max_body_bytes,
            },
        }))
    })
    .await
}

/// `GET /ids`: every live id of the local shards.
pub async fn ids(State(app): State<Arc<AppState>>) -> Answer<Vec<String>> {
    blocking(move || {
        let snap = app.served.get();
        let mut out = Vec::new();
        for sh in snap.searcher.shards() {
            let index = sh.index().ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "remote_shard",
                    format!("shard {} is remote: ask its server", sh.name()),
                )
            })?;
            out.extend(index.ids().map_err(ApiError::from)?.into_iter().map(str::to_string));
        }
        Ok(Json(out))
    })
    .await
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

fn hits_json(r: &Results, names: &[String]) -> Vec<HitJson> {
    r.hits.iter().map(|h| hit_json(h, names, None)).collect()
}

fn hit_json(h: &tartan::Hit, names: &[String], rerank_score: Option<f32>) -> HitJson {
    HitJson {
        id: h.id.clone(),
        score: h.score,
        doc: None,
        shard: (names.len() > 1).then(|| names[h.shard].clone()),
        text: h.text.clone(),
        rerank_score,
    }
}

/// Searches `q` and reranks with the server's cross-encoder: the request's text is what the
/// cross-encoder reads with each passage. Texts are returned only if the request asked.
#[cfg(feature = "text")]
fn reranked(
    app: &AppState,
    s: &tartan::Searcher,
    q: ArrayView2<'_, f32>,
    text: Option<&str>,
    r: &wire::Resolved,
    depth: Option<usize>,
) -> Result<(Vec<HitJson>, CoverageJson), ApiError> {
    let rr = app.reranker()?;
    let text = text.ok_or_else(|| {
        ApiError::field("rerank", "a rerank reads the query as text: give text, not vectors")
    })?;
    let depth = depth.unwrap_or(rr.depth());
    let (hits, coverage) = rr.search_with(s, q, text, &r.params, &options(app, r), depth)?;
    let names: Vec<String> = s.shards().iter().map(|sh| sh.name().to_string()).collect();
    let hits = hits
        .into_iter()
        .map(|mut h| {
            if !r.with_text {
                h.hit.text = None;
            }
            hit_json(&h.hit, &names, h.rerank_score)
        })
        .collect();
    Ok((hits, coverage_json(&coverage)))
}

#[cfg(not(feature = "text"))]
fn reranked(
    _: &AppState,
    _: &tartan::Searcher,
    _: ArrayView2<'_, f32>,
    _: Option<&str>,
    _: &wire::Resolved,
    _: Option<usize>,
) -> Result<(Vec<HitJson>, CoverageJson), ApiError> {
    Err(ApiError::field("rerank", "this server was built without text support"))
}

fn coverage_json(c: &tartan::Coverage) -> CoverageJson {
    CoverageJson {
        shards: c.shards,
        shards_answered: c.answered,
        docs: c.docs,
        docs_answered: c.docs_answered,
        failed: c
            .failed
            .iter()
            .map(|(s, r)| FailedShard { shard: s.clone(), reason: r.clone() })
            .collect(),
    }
}

/// A filter may only name fields some document has (with every shard local, so that all are
/// known): a typo would otherwise match nothing, silently.
fn check_filter(snap: &crate::Snapshot, r: &wire::Resolved) -> Result<(), ApiError> {
    let Some(f) = r.params.filter_expr() else { return Ok(()) };
    if snap.searcher.shards().iter().any(|s| s.index().is_none()) {
        return Ok(());
    }
    let known = snap.metadata_fields().map_err(ApiError::internal)?;
    for field in f.fields() {
        if known.binary_search_by(|k| k.as_str().cmp(field)).is_err() {
            let list = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            return Err(ApiError::field(
                "filter",
                format!("no document has the metadata field {field:?} (fields: {list})"),
            ));
        }
    }
    Ok(())
}

/// The searcher's options for a request.
fn options(app: &AppState, r: &wire::Resolved) -> SearchOptions {
    let base = app.served.policy();
    SearchOptions {
        policy: Some(ShardPolicy {
            deadline: r.deadline.unwrap_or(base.deadline),
            require_all: r.require_all.unwrap_or(base.require_all),
        }),
        with_text: r.with_text,
    }
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    b: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    Ok(wire::parse_body(&body(b)?)?)
}

/// Refuses fields of the other search route.
fn only(req: &SearchRequest, batch: bool) -> Result<(), ApiError> {
    let (wrong, name) = if batch {
        (req.query.is_some() || req.text.is_some(), "query/text (use queries/texts)")
    } else {
        (req.queries.is_some() || req.texts.is_some(), "queries/texts (use /search/batch)")
    };
    if wrong {
        return Err(ApiError::field(
            name.split(' ').next().unwrap_or(name),
            format!("{name} do not belong here"),
        ));
    }
    Ok(())
}

/// `POST /search`.
pub async fn search(
    State(app): State<Arc<AppState>>,
    b: Result<Bytes, BytesRejection>,
) -> Answer<SearchResponse> {
    let t = Instant::now();
    let req: SearchRequest = parse(b)?;
    only(&req, false)?;
    blocking(move || {
        let r = req.resolve(&app.limits)?;
        let snap = app.served.get();
        check_filter(&snap, &r)?;
        let s = &snap.searcher;
        let q = query_of(
            &app,
            req.query.as_ref(),
            req.text.as_deref(),
            if req.text.is_some() { "text" } else { "query" },
            s.dim(),
        )?;
        let (hits, coverage) = match r.rerank {
            Some(depth) => reranked(&app, s, q.view(), req.text.as_deref(), &r, depth)?,
            None => {
                let res = s.search_with(q.view(), &r.params, &options(&app, &r))?;
                let names: Vec<String> =
                    s.shards().iter().map(|sh| sh.name().to_string()).collect();
                (hits_json(&res, &names), coverage_json(&res.coverage))
            }
        };
        Ok(Json(SearchResponse {
            generation: s.generation(),
            hits,
            coverage,
            took_ms: t.elapsed().as_secs_f64() * 1e3,
        }))
    })
    .await
}

/// The queries of a batch request, decoded.
fn batch_queries(
    app: &AppState,
    req: &SearchRequest,
    dim: usize,
) -> Result<Vec<Array2<f32>>, ApiError> {
    let n = req.queries.as_ref().map_or(0, Vec::len) + req.texts.as_ref().map_or(0, Vec::len);
    if n == 0 {
        return Err(ApiError::field(
            "queries",
            "no queries: give queries (token vectors) or texts",
        ));
    }
    if n > app.limits.max_batch {
        return Err(ApiError::field(
            "queries",
            format!("{n} queries, the limit is {}", app.limits.max_batch),
        ));
    }
    if req.queries.is_some() && req.texts.is_some() {
        return Err(ApiError::field("queries", "give queries or texts, not both"));
    }
    match (&req.queries, &req.texts) {
        (Some(qs), _) => qs
            .iter()
            .enumerate()
            .map(|(i, v)| query_of(app, Some(v), None, &format!("queries[{i}]"), dim))
            .collect(),
        (_, Some(ts)) => ts.iter().map(|t| app.encode_text(t, dim)).collect(),
        _ => unreachable!("n > 0"),
    }
}

/// `POST /search/batch`.
pub async fn search_batch(
    State(app): State<Arc<AppState>>,
    b: Result<Bytes, BytesRejection>,
) -> Answer<BatchResponse> {
    let t = Instant::now();
    let req: SearchRequest = parse(b)?;
    only(&req, true)?;
    blocking(move || {
        let r = req.resolve(&app.limits)?;
        let snap = app.served.get();
        check_filter(&snap, &r)?;
        let s = &snap.searcher;
        let qs = batch_queries(&app, &req, s.dim())?;
        let results = if let Some(depth) = r.rerank {
            let texts = req.texts.as_deref().unwrap_or_default();
            let mut out = Vec::with_capacity(qs.len());
            for (i, q) in qs.iter().enumerate() {
                let text = texts.get(i).map(String::as_str);
                let (hits, coverage) = reranked(&app, s, q.view(), text, &r, depth)?;
                out.push(BatchItem { hits, coverage });
            }
            out
        } else {
            let views: Vec<ArrayView2<'_, f32>> = qs.iter().map(|q| q.view()).collect();
            let res = s.search_batch(&views, &r.params, &options(&app, &r))?;
            let names: Vec<String> = s.shards().iter().map(|sh| sh.name().to_string()).collect();
            res.iter()
                .map(|r| BatchItem {
                    hits: hits_json(r, &names),
                    coverage: coverage_json(&r.coverage),
                })
                .collect()
        };
        Ok(Json(BatchResponse {
            generation: s.generation(),
            results,
            took_ms: t.elapsed().as_secs_f64() * 1e3,
        }))
    })
    .await
}

/// The served local shards as one pool, for the two rounds of a split search.
fn pool<'a>(s: &'a tartan::Searcher) -> Result<ShardSet<'a>, ApiError> {
    let mut local = Vec::new();
    for sh in s.shards() {
        local.push(sh.index().ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "remote_shard",
                "this server's collection has remote shards: it cannot be a shard of another",
            )
        })?);
    }
    Ok(ShardSet::new(&local)?)
}

fn prepare(
    s: &tartan::Searcher,
    qs: &[Array2<f32>],
) -> Result<Vec<tartan::PreparedQuery>, ApiError> {
    let cb = s.codebook().ok_or_else(|| ApiError::internal("no local codebook"))?;
    qs.iter().enumerate().map(|(i, q)| cb.prepare(q.view(), i).map_err(ApiError::from)).collect()
}

/// `POST /search/candidates`: round 1 of a search split over servers.
pub async fn candidates(
    State(app): State<Arc<AppState>>,
    b: Result<Bytes, BytesRejection>,
) -> Answer<CandidatesResponse> {
    let req: SearchRequest = parse(b)?;
    only(&req, true)?;
    blocking(move || {
        let r = req.resolve(&app.limits)?;
        let snap = app.served.get();
        let qs = batch_queries(&app, &req, snap.searcher.dim())?;
        let pool = pool(&snap.searcher)?;
        let lists = pool.candidates_batch(&prepare(&snap.searcher, &qs)?, &r.params)?;
        Ok(Json(CandidatesResponse {
            snapshot: snap.id,
            n_stored: pool.n_docs(),
            lists: lists
                .into_iter()
                .map(|l| l.into_iter().map(|c| (c.doc, c.pruned, c.full)).collect())
                .collect(),
        }))
    })
    .await
}

/// `POST /search/score`: round 2.
pub async fn score(
    State(app): State<Arc<AppState>>,
    b: Result<Bytes, BytesRejection>,
) -> Answer<ScoreResponse> {
    let req: ScoreRequest = parse(b)?;
    blocking(move || {
        let snap = app.served.at(req.snapshot).ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "snapshot_gone",
                format!("snapshot {} is no longer served; search again", req.snapshot),
            )
        })?;
        if req.queries.len() > app.limits.max_batch {
            return Err(ApiError::field(
                "queries",
                format!("{} queries, the limit is {}", req.queries.len(), app.limits.max_batch),
            ));
        }
        let qs: Vec<Array2<f32>> = req
            .queries
            .iter()
            .enumerate()
            .map(|(i, v)| {
                Ok(wire::decode_query(
                    v,
                    &format!("queries[{i}]"),
                    snap.searcher.dim(),
                    &app.limits,
                )?)
            })
            .collect::<Result<_, ApiError>>()?;
        let pool = pool(&snap.searcher)?;
        let lists = pool.score_batch(&prepare(&snap.searcher, &qs)?, &req.docs)?;
        let with_text = req.with_text.unwrap_or(false);
        let shards = snap.searcher.shards();
        let results = lists
            .into_iter()
            .map(|hits| {
                hits.into_iter()
                    .map(|h| {
                        let text = match with_text {
                            true => shards[h.shard]
                                .index()
                                .and_then(|i| i.text(h.hit.doc))
                                .transpose()
                                .map_err(ApiError::from)?
                                .map(str::to_string),
                            false => None,
                        };
                        Ok(HitJson {
                            rerank_score: None,
                            id: h.hit.id,
                            score: h.hit.score,
                            doc: None,
                            shard: None,
                            text,
                        })
                    })
                    .collect::<Result<Vec<_>, ApiError>>()
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(Json(ScoreResponse { results }))
    })
    .await
}

/// One document of `POST /documents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentIn {
    /// External id.
    pub id: String,
    /// Token vectors (either query form); or leave out and give `text` to a server with a
    /// model.
    #[serde(default)]
    pub tokens: Option<Value>,
    /// Text: stored, and encoded when `tokens` is absent.
    #[serde(default)]
    pub text: Option<String>,
    /// A metadata object for filters.
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// `POST /documents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    /// The documents.
    pub documents: Vec<DocumentIn>,
    /// Replace documents with the same ids instead of refusing them.
    #[serde(default)]
    pub upsert: bool,
    /// L2-normalise the token vectors instead of refusing non-unit ones.
    #[serde(default)]
    pub normalize: bool,
}

/// `DELETE /documents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteRequest {
    /// Ids to delete.
    pub ids: Vec<String>,
    /// Skip ids that are not live instead of failing.
    #[serde(default)]
    pub ignore_missing: bool,
}

/// What a change published.
#[derive(Debug, Serialize, Deserialize)]
pub struct Changed {
    /// The generation now (index, or collection manifest).
    pub generation: u64,
    /// Documents added.
    pub added: u64,
    /// Documents deleted (replaced ones included).
    pub deleted: u64,
    /// Live documents now.
    pub n_docs: u64,
}

/// Opens the writer, applies `f`, commits, serves the new generation.
fn write(
    app: &AppState,
    f: impl FnOnce(&mut Writer) -> Result<(), ApiError>,
) -> Result<Json<Changed>, ApiError> {
    let _one = app.writing.lock().expect("writer lock");
    let mut w = Writer::open(app.served.path())?;
    f(&mut w)?;
    let c = w.commit()?;
    let n_docs = w.n_docs();
    drop(w);
    app.served.refresh(true)?;
    Ok(Json(Changed { generation: c.generation, added: c.added, deleted: c.deleted, n_docs }))
}

/// `POST /documents`: add (or upsert) documents.
pub async fn add_documents(
    State(app): State<Arc<AppState>>,
    b: Result<Bytes, BytesRejection>,
) -> Answer<Changed> {
    let req: AddRequest = parse(b)?;
    blocking(move || {
        if req.documents.is_empty() {
            return Err(ApiError::field("documents", "no documents"));
        }
        let dim = app.served.get().searcher.dim();
        let (mut lens, mut ids, mut toks) = (Vec::new(), Vec::new(), Vec::new());
        for (i, d) in req.documents.iter().enumerate() {
            let field = format!("documents[{i}].tokens");
            let m = match (&d.tokens, &d.text) {
                (Some(v), _) => wire::decode_query(
                    v,
                    &field,
                    dim,
                    &wire::Limits { max_query_tokens: usize::MAX, ..app.limits },
                )?,
                (None, Some(t)) => app.encode_doc(t, dim)?,
                (None, None) => {
                    return Err(ApiError::field(
                        field,
                        "give the document's token vectors (or text to a server with a model)",
                    ))
                }
            };
            lens.push(m.nrows() as u64);
            ids.push(d.id.clone());
            toks.extend(m.iter().copied());
        }
        let docs =
            Embeddings::from_parts(dim, &lens, ids, toks, LoadOptions { normalize: req.normalize })
                .map_err(|e| ApiError::field("documents", e.to_string()))?;
        let mut extras = Extras::new();
        if req.documents.iter().any(|d| d.text.is_some()) {
            extras = extras
                .texts(req.documents.iter().map(|d| d.text.clone().unwrap_or_default()).collect());
        }
        if req.documents.iter().any(|d| d.metadata.is_some()) {
            let meta: Vec<Value> =
                req.documents.iter().map(|d| d.metadata.clone().unwrap_or(Value::Null)).collect();
            extras = extras.metadata(&meta);
        }
        write(&app, |w| {
            if req.upsert {
                w.upsert(&docs, &extras, &NoProgress)?;
            } else {
                w.add(&docs, &extras, &NoProgress)?;
            }
            Ok(())
        })
    })
    .await
}

/// `DELETE /documents`.
pub async fn delete_documents(
    State(app): State<Arc<AppState>>,
    b: Result<Bytes, BytesRejection>,
) -> Answer<Changed> {
    let req: DeleteRequest = parse(b)?;
    blocking(move || {
        if req.ids.is_empty() {
            return Err(ApiError::field("ids", "no ids"));
        }
        write(&app, |w| {
            let mut ids = req.ids.clone();
            if req.ignore_missing {
                ids.sort();
                ids.dedup();
                ids.retain(|id| w.contains(id));
            }
            if !ids.is_empty() {
                w.delete(&ids)?;
            }
            Ok(())
        })
    })
    .await
}

/// `POST /compact`.
pub async fn compact(State(app): State<Arc<AppState>>) -> Answer<Changed> {
    blocking(move || {
        let _one = app.writing.lock().expect("writer lock");
        let mut w = Writer::open(app.served.path())?;
        let c = w.compact(&NoProgress)?;
        let n_docs = w.n_docs();
        drop(w);
        app.served.refresh(true)?;
        Ok(Json(Changed { generation: c.generation, added: c.added, deleted: c.deleted, n_docs }))
    })
    .await
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
