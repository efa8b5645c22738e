//! `GET /health`, `GET /stats`, `GET /ids`.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use tartan::wire::{ShardStats, Stats};

use super::{blocking, Answer};
use crate::AppState;

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
        Ok(Json(Stats {
            kind: if s.collection().is_some() { "collection" } else { "index" }.into(),
            path: app.served.path().display().to_string(),
            generation: s.generation(),
            snapshot: snap.id,
            n_docs: s.n_docs(),
            dim: s.dim(),
            codebook_id: s.codebook_id().to_hex(),
            shards,
            limits: app.limits.into(),
        }))
    })
    .await
}

/// `GET /ids`: every live id of the local shards.
pub async fn ids(State(app): State<Arc<AppState>>) -> Answer<Vec<String>> {
    blocking(move || Ok(Json(app.served.get().searcher.local_ids()?))).await
}
