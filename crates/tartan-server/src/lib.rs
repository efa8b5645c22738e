//! `tartan serve`: an index or a collection over HTTP (axum on tokio).
//!
//! JSON routes (docs/openapi.json is the contract, checked against this server by a test):
//!
//! | route | what |
//! |---|---|
//! | `GET /health` | status, kind, generation, documents, dimension, codebook id |
//! | `GET /stats` | the same per shard, and the request limits |
//! | `GET /ids` | every live document id (for collection management) |
//! | `POST /search` | one query: token vectors (nested arrays, or base64 float16/float32 with a shape) or text; k, search settings, filter |
//! | `POST /search/batch` | many queries, one set of settings |
//! | `POST /search/candidates`, `POST /search/score` | the two rounds of a search split over servers (a collection naming this server as a shard) |
//! | `POST /explain` | a document's score for a query, token by token (compressed and exact) |
//! | `POST /documents`, `DELETE /documents`, `POST /compact` | add or upsert, delete, compact; each publishes a generation |
//!
//! New generations (published by this server, the CLI, or another process) are picked up
//! without a restart; a request keeps the generation it started with. Bad requests get a 4xx
//! with `{"error": {"code", "message", "field"}}`; a panic in one request is a 500 and the
//! server goes on. [`Server::run`] drains in-flight requests on SIGTERM or Ctrl-C.
//!
//! The library prints nothing: [`Server::bind`] returns the bound address for the caller to
//! report.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod auth;
mod compat;
mod error;
mod guard;
mod routes;
mod state;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use ndarray::Array2;
use routes::{documents, explain, search, shard, status};
use tartan::wire::Limits;
use tartan::ShardPolicy;

pub use auth::{KeyError, Keys, Scope};
/// next-plaid's routes on `tartan serve --indices`, with the scope each needs.
pub use compat::ROUTES as NEXT_PLAID_ROUTES;
pub use error::ApiError;
pub use guard::Access;
pub use state::{Served, Snapshot};
pub use tartan::wire::{Changed, LimitsJson, ShardStats, Stats};

/// Every route: method, path (what docs/openapi.json must describe, no more, no less) and the
/// scope a key needs for it. A route missing here is refused on a server with keys.
pub const ROUTES: [(&str, &str, Scope); 11] = [
    ("get", "/health", Scope::Read),
    ("get", "/stats", Scope::Read),
    ("get", "/ids", Scope::Read),
    ("post", "/search", Scope::Read),
    ("post", "/search/batch", Scope::Read),
    ("post", "/search/candidates", Scope::Read),
    ("post", "/search/score", Scope::Read),
    ("post", "/explain", Scope::Read),
    ("post", "/documents", Scope::Write),
    ("delete", "/documents", Scope::Write),
    ("post", "/compact", Scope::Write),
];

/// How often the server looks for a newly published generation.
const RELOAD_EVERY: Duration = Duration::from_millis(200);

/// Server settings. Defaults: [`Limits::default`], [`ShardPolicy::default`], no model.
#[derive(Default)]
pub struct Config {
    /// Request limits.
    pub limits: Limits,
    /// Remote shards: deadline, and whether all must answer.
    pub policy: ShardPolicy,
    /// A model for text queries and documents.
    #[cfg(feature = "text")]
    pub encoder: Option<tartan::Encoder>,
    /// A cross-encoder for requests that ask for a rerank.
    #[cfg(feature = "text")]
    pub reranker: Option<tartan::rerank::Reranker>,
    /// Worker threads of the HTTP runtime (default: the cores; searches run on the blocking
    /// pool and rayon).
    pub http_threads: Option<usize>,
    /// Keys, their scopes, read-only.
    pub access: Access,
}

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) served: Served,
    pub(crate) limits: Limits,
    pub(crate) writing: Mutex<()>,
    #[cfg(feature = "text")]
    encoder: Option<tartan::Encoder>,
    #[cfg(feature = "text")]
    reranker: Option<tartan::rerank::Reranker>,
}

impl AppState {
    pub(crate) fn has_text(&self) -> bool {
        #[cfg(feature = "text")]
        return self.encoder.is_some();
        #[cfg(not(feature = "text"))]
        false
    }

    #[cfg(feature = "text")]
    pub(crate) fn encoder(&self, field: &str, dim: usize) -> Result<&tartan::Encoder, ApiError> {
        let enc = self.encoder.as_ref().ok_or_else(|| {
            ApiError::field(
                field,
                "this server has no model: start it with --model, or send token vectors",
            )
        })?;
        tartan::text::check_model_dim(enc, dim).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(enc)
    }

    /// The cross-encoder, for a request that asks for a rerank.
    #[cfg(feature = "text")]
    pub(crate) fn reranker(&self) -> Result<&tartan::rerank::Reranker, ApiError> {
        self.reranker.as_ref().ok_or_else(|| {
            ApiError::field("rerank", "this server has no cross-encoder: start it with --rerank")
        })
    }

    /// A query text as token vectors.
    #[cfg(feature = "text")]
    pub(crate) fn encode_text(&self, text: &str, dim: usize) -> Result<Array2<f32>, ApiError> {
        let q = tartan::text::encode_query(self.encoder("text", dim)?, text)?;
        if q.nrows() > self.limits.max_query_tokens {
            return Err(ApiError::field(
                "text",
                format!("{} tokens, the limit is {}", q.nrows(), self.limits.max_query_tokens),
            ));
        }
        Ok(q)
    }

    /// A document text as token vectors.
    #[cfg(feature = "text")]
    pub(crate) fn encode_doc(&self, text: &str, dim: usize) -> Result<Array2<f32>, ApiError> {
        let enc = self.encoder("documents", dim)?;
        tartan::text::encode_doc(enc, text).map_err(|e| ApiError::field("documents", e.to_string()))
    }

    #[cfg(not(feature = "text"))]
    pub(crate) fn encode_text(&self, _: &str, _: usize) -> Result<Array2<f32>, ApiError> {
        Err(ApiError::field("text", "this server was built without text support"))
    }

    #[cfg(not(feature = "text"))]
    pub(crate) fn encode_doc(&self, _: &str, _: usize) -> Result<Array2<f32>, ApiError> {
        Err(ApiError::field("documents", "this server was built without text support"))
    }
}

/// A bound server, ready to run.
pub struct Server {
    runtime: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    app: Router,
    /// The served index or collection (none when serving named indices).
    state: Option<Arc<AppState>>,
    /// The access check, whose key file is read again while the server runs.
    guard: Arc<guard::Guard>,
    addr: SocketAddr,
}

impl Server {
    /// Opens the index or collection at `path` and binds `addr` (port 0: any free port).
    pub fn bind(path: &Path, addr: SocketAddr, config: Config) -> tartan::Result<Self> {
        let guard = open_guard(&config.access, addr, &ROUTES, guard::Shape::Tartan)?;
        let served = Served::open(path, config.policy)?;
        let (runtime, listener, addr) = listen(addr, config.http_threads)?;
        let state = Arc::new(AppState {
            served,
            limits: config.limits,
            writing: Mutex::new(()),
            #[cfg(feature = "text")]
            encoder: config.encoder,
            #[cfg(feature = "text")]
            reranker: config.reranker,
        });
        let app = router(state.clone(), config.limits.max_body_bytes)
            .route_layer(axum::middleware::from_fn_with_state(guard.clone(), guard::check));
        Ok(Self { runtime, listener, app, state: Some(state), guard, addr })
    }

    /// Serves next-plaid's REST API over the named indices of the data directory `dir`
    /// (created if missing) and binds `addr`. See docs/next-plaid-compat.md.
    pub fn bind_named(dir: &Path, addr: SocketAddr, config: Config) -> tartan::Result<Self> {
        let guard = open_guard(&config.access, addr, &compat::ROUTES, guard::Shape::NextPlaid)?;
        let (runtime, listener, addr) = listen(addr, config.http_threads)?;
        #[cfg(feature = "text")]
        let encoder = config.encoder.map(Arc::new);
        #[cfg(not(feature = "text"))]
        let encoder = None;
        let app = compat::router(dir, config.limits, encoder)?
            .route_layer(axum::middleware::from_fn_with_state(guard.clone(), guard::check))
            .layer(DefaultBodyLimit::max(config.limits.max_body_bytes));
        Ok(Self { runtime, listener, app, state: None, guard, addr })
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until SIGTERM or Ctrl-C, then stops taking connections and lets in-flight
    /// requests finish.
    pub fn run(self) -> tartan::Result<()> {
        self.run_until(shutdown_signal())
    }

    /// Serves until `stop` completes, then drains as [`Server::run`].
    pub fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tartan::Result<()> {
        let Self { runtime, listener, app, state, guard, addr } = self;
        if let Some(state) = state {
            runtime.spawn(reload_loop(state));
        }
        runtime.spawn(guard::reload_keys(vec![guard]));
        runtime
            .block_on(async move { axum::serve(listener, app).with_graceful_shutdown(stop).await })
            .map_err(|source| tartan::Error::Io { path: addr.to_string().into(), source })
    }
}

/// An error answer that can report a failure of the server itself (each API has its own body).
pub(crate) trait Internal: Send + 'static {
    /// A 500 saying `message`.
    fn internal(message: String) -> Self;
}

impl Internal for ApiError {
    fn internal(message: String) -> Self {
        ApiError::internal(message)
    }
}

/// Runs `f` on the blocking pool; a panic in it is a 500 and the server goes on.
pub(crate) async fn blocking<T: Send + 'static, E: Internal>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => {
            Err(E::internal("the request panicked; the server goes on".into()))
        }
        Err(e) => Err(E::internal(e.to_string())),
    }
}

/// The access check of a server on `addr`. Without keys a server listens on loopback only,
/// unless told otherwise: anyone who reaches the port could change or delete data.
fn open_guard(
    access: &Access,
    addr: SocketAddr,
    table: guard::Table,
    shape: guard::Shape,
) -> tartan::Result<Arc<guard::Guard>> {
    let g = guard::Guard::new(access, table, shape)
        .map_err(|e| tartan::Error::Param { name: "keys", reason: error_chain(&e) })?;
    if !g.keyed() && !addr.ip().is_loopback() && !access.insecure_no_auth {
        return Err(tartan::Error::Param {
            name: "addr",
            reason: format!(
                "{addr} is not a loopback address and the server has no keys: anyone who \
                 reaches it could change or delete data. Give keys (--api-keys FILE, or \
                 TARTAN_API_KEY), listen on 127.0.0.1, or pass --insecure-no-auth"
            ),
        });
    }
    Ok(Arc::new(g))
}

/// An error with its causes, for a message that names the file and what went wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// A runtime and a listener on `addr`.
fn listen(
    addr: SocketAddr,
    threads: Option<usize>,
) -> tartan::Result<(tokio::runtime::Runtime, tokio::net::TcpListener, SocketAddr)> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        rt.worker_threads(n.max(1));
    }
    let io = |source| tartan::Error::Io { path: addr.to_string().into(), source };
    let runtime = rt.enable_all().build().map_err(io)?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind(addr)).map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    Ok((runtime, listener, addr))
}

fn router(state: Arc<AppState>, max_body: usize) -> Router {
    Router::new()
        .route("/health", get(status::health))
        .route("/stats", get(status::stats))
        .route("/ids", get(status::ids))
        .route("/search", post(search::search))
        .route("/search/batch", post(search::search_batch))
        .route("/search/candidates", post(shard::candidates))
        .route("/search/score", post(shard::score))
        .route("/explain", post(explain::explain))
        .route("/documents", post(documents::add).delete(documents::delete))
        .route("/compact", post(documents::compact))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Looks for new generations every [`RELOAD_EVERY`]; a failed reload keeps serving the last
/// good snapshot and tries again.
async fn reload_loop(state: Arc<AppState>) {
    loop {
        tokio::time::sleep(RELOAD_EVERY).await;
        let s = state.clone();
        let _ = tokio::task::spawn_blocking(move || s.served.refresh(false)).await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
