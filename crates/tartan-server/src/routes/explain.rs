//! `POST /explain`: a document's score for a query, token by token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use tartan::explain::Explanation;
use tartan::wire::{self, ExplainRequest};

use crate::error::ApiError;
use crate::routes::{blocking, parse, query_of, Answer};
use crate::AppState;

/// `POST /explain`.
pub async fn explain(
    State(app): State<Arc<AppState>>,
    b: Result<Bytes, BytesRejection>,
) -> Answer<Explanation> {
    let req: ExplainRequest = parse(b)?;
    blocking(move || {
        let snap = app.served.get();
        let s = &snap.searcher;
        let dim = s.dim();
        #[cfg(feature = "text")]
        if let Some(text) = &req.text {
            if req.original.is_some() {
                return Err(ApiError::field(
                    "original",
                    "a text query's exact side comes from the stored text: leave original out",
                ));
            }
            let enc = app.encoder("text", dim)?;
            return Ok(Json(tartan::text::explain_text(s, enc, text, &req.id)?));
        }
        let field = if req.text.is_some() { "text" } else { "query" };
        let q = query_of(&app, req.query.as_ref(), req.text.as_deref(), field, dim)?;
        let mut e = Explanation::of(s, q.view(), &req.id)?;
        if let Some(orig) = &req.original {
            let d = wire::decode_query(orig, "original", dim, &app.limits)?;
            e = e.with_exact(q.view(), d.view())?;
        }
        Ok(Json(e))
    })
    .await
}
