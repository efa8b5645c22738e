//! `POST /documents`, `DELETE /documents`, `POST /compact`: changes, each published as a new
//! generation and served at once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use serde_json::Value;
use tartan::wire::{self, AddRequest, Changed, DeleteRequest};
use tartan::{Embeddings, Extras, LoadOptions, NoProgress, Writer};

use super::{blocking, parse, Answer};
use crate::error::ApiError;
use crate::AppState;

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
pub async fn add(
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
pub async fn delete(
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
