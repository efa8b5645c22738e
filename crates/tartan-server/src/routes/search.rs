//! `POST /search` and `POST /search/batch`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use ndarray::{Array2, ArrayView2};
use tartan::wire::{
    self, BatchItem, BatchResponse, CoverageJson, FailedShard, HitJson, SearchRequest,
    SearchResponse,
};
use tartan::{Results, SearchOptions, ShardPolicy};

use super::{blocking, parse, query_of, Answer};
use crate::error::ApiError;
use crate::AppState;

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

/// Refuses fields of the other search route.
pub(super) fn only(req: &SearchRequest, batch: bool) -> Result<(), ApiError> {
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
pub(super) fn batch_queries(
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
