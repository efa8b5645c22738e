//! `tartan serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use tartan::wire::Limits;
use tartan_server::{Access, Config, Keys, Scope, Server};

use crate::{EncoderArgs, RerankArgs};

/// `tartan serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Index or collection directory (tartan's API, docs/openapi.json).
    #[arg(required_unless_present = "indices", conflicts_with = "indices")]
    pub index: Option<PathBuf>,
    /// Serve next-plaid's REST API instead, over the named indices of this data directory
    /// (created if missing): its clients work unchanged (docs/next-plaid-compat.md).
    #[arg(long, value_name = "DATA_DIR")]
    pub indices: Option<PathBuf>,
    /// Address to listen on (port 0: any free port, printed on start).
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub addr: SocketAddr,
    /// A model for text queries and text documents.
    #[command(flatten)]
    pub encoder: EncoderArgs,
    /// A cross-encoder for requests with `"rerank": true`.
    #[command(flatten)]
    pub rerank: RerankArgs,
    /// Largest k a request may ask for.
    #[arg(long, default_value_t = Limits::default().max_k)]
    pub max_k: usize,
    /// Most tokens in one query.
    #[arg(long, default_value_t = Limits::default().max_query_tokens)]
    pub max_query_tokens: usize,
    /// Most queries in one batch.
    #[arg(long, default_value_t = Limits::default().max_batch)]
    pub max_batch: usize,
    /// Largest request body, in MiB.
    #[arg(long, default_value_t = Limits::default().max_body_bytes >> 20)]
    pub max_body_mib: usize,
    /// Collections with remote shards: how long each may take, in milliseconds (a request may
    /// set its own).
    #[arg(long, default_value_t = tartan::settings::DEFAULT_DEADLINE_MS)]
    pub deadline_ms: u64,
    /// Collections: fail a search unless every shard answers.
    #[arg(long)]
    pub require_all: bool,
    /// API keys: a file of `NAME SCOPE sha256:HEX` lines (`tartan keys new` writes them),
    /// read again when it changes or on SIGHUP. TARTAN_API_KEY (an admin key) and
    /// TARTAN_READ_API_KEY (a read key) in the environment add keys given in plain text.
    #[arg(long, value_name = "FILE")]
    pub api_keys: Option<PathBuf>,
    /// Serve only what a read key may do: searches, explain, stats (changes get 403).
    #[arg(long)]
    pub read_only: bool,
    /// Listen on a non-loopback address without keys (anyone who reaches it can change or
    /// delete data).
    #[arg(long)]
    pub insecure_no_auth: bool,
}

/// Keys from `--api-keys` and the environment.
fn access(a: &ServeArgs) -> Result<Access> {
    let mut keys = Keys::new();
    for (var, scope) in [("TARTAN_API_KEY", Scope::Admin), ("TARTAN_READ_API_KEY", Scope::Read)] {
        if let Ok(key) = std::env::var(var) {
            keys = keys.with_plain(var, scope, &key).with_context(|| format!("${var}"))?;
        }
    }
    Ok(Access {
        key_file: a.api_keys.clone(),
        keys,
        read_only: a.read_only,
        insecure_no_auth: a.insecure_no_auth,
    })
}

pub fn run(a: &ServeArgs) -> Result<()> {
    if a.indices.is_some() && a.rerank.rerank.is_some() {
        anyhow::bail!("--rerank applies to tartan's API (an INDEX), not to --indices");
    }
    let limits = Limits {
        max_k: a.max_k,
        max_query_tokens: a.max_query_tokens,
        max_batch: a.max_batch,
        max_body_bytes: a.max_body_mib << 20,
        ..Limits::default()
    };
    let config = Config {
        limits,
        policy: tartan::settings::shard_policy(a.deadline_ms, a.require_all)?,
        encoder: a.encoder.load()?,
        reranker: a.rerank.load()?,
        http_threads: None,
        access: access(a)?,
    };
    let (server, what) = match (&a.index, &a.indices) {
        (Some(index), _) => (Server::bind(index, a.addr, config), index.display().to_string()),
        (None, Some(dir)) => (
            Server::bind_named(dir, a.addr, config),
            format!("next-plaid API, named indices in {}", dir.display()),
        ),
        (None, None) => unreachable!("clap requires INDEX or --indices"),
    };
    let server = server.with_context(|| format!("serving {what} on {}", a.addr))?;
    outln!("listening on http://{} (serving {what})", server.local_addr());
    server.run()?;
    outln!("stopped: every request answered");
    Ok(())
}
