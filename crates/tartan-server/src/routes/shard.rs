//! `POST /search/candidates` and `POST /search/score`: the two rounds of a search split over
//! servers, answered by the facade ([`tartan::Searcher::shard_candidates`],
//! [`tartan::Searcher::shard_scores`]); this module only decodes, finds the snapshot and
//! routes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ndarray::{Array2, ArrayView2};
use tartan::wire::{self, CandidatesResponse, ScoreRequest, ScoreResponse, SearchRequest};

use super::search::{batch_queries, only};
use super::{blocking, parse, Answer};
use crate::error::ApiError;
use crate::AppState;

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
        let views: Vec<ArrayView2<'_, f32>> = qs.iter().map(|q| q.view()).collect();
        let c = snap.searcher.shard_candidates(&views, &r.params)?;
        Ok(Json(CandidatesResponse { snapshot: snap.id, n_stored: c.n_stored, lists: c.lists }))
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
        let dim = snap.searcher.dim();
        let qs: Vec<Array2<f32>> = req
            .queries
            .iter()
            .enumerate()
            .map(|(i, v)| Ok(wire::decode_query(v, &format!("queries[{i}]"), dim, &app.limits)?))
            .collect::<Result<_, ApiError>>()?;
        let views: Vec<ArrayView2<'_, f32>> = qs.iter().map(|q| q.view()).collect();
        let with_text = req.with_text.unwrap_or(false);
        let results = snap.searcher.shard_scores(&views, &req.docs, with_text)?;
        Ok(Json(ScoreResponse { results }))
    })
    .await
}
