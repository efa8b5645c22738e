//! The client side of a remote shard: a `tartan serve` asked over HTTP, each request within
//! a deadline.

use std::time::Duration;

use ndarray::ArrayView2;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::wire::{
    self, BatchResponse, CandidatesResponse, ErrorBody, Health, HitJson, ScoreRequest,
    ScoreResponse, SearchRequest,
};

/// Queries per request to a remote shard (a server's batch limit is 256 by default).
pub const REMOTE_BATCH: usize = 64;

/// A shard served by `tartan serve` at a base URL.
#[derive(Debug, Clone)]
pub struct RemoteShard {
    name: String,
    url: String,
    agent: ureq::Agent,
}

impl RemoteShard {
    /// A client of the server at `url` (e.g. `http://127.0.0.1:7701`), named `name` in errors.
    pub fn new(name: &str, url: &str) -> Self {
        let agent = ureq::AgentBuilder::new().max_idle_connections_per_host(4).build();
        Self { name: name.into(), url: url.trim_end_matches('/').into(), agent }
    }

    /// Its base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Remote { shard: self.name.clone(), url: self.url.clone(), reason: reason.into() }
    }

    /// Turns a failed call into an error naming the shard: the server's own message for an
    /// HTTP error, the transport's (refused, timed out) otherwise.
    fn failed(&self, e: ureq::Error, deadline: Duration) -> Error {
        match e {
            ureq::Error::Status(code, resp) => {
                let text = resp.into_string().unwrap_or_default();
                let msg = serde_json::from_str::<ErrorBody>(&text)
                    .map(|b| b.error.message)
                    .unwrap_or(text);
                self.err(format!("HTTP {code}: {msg}"))
            }
            ureq::Error::Transport(t) => {
                let s = t.to_string();
                if s.contains("timed out") || s.contains("Timeout") {
                    self.err(format!(
                        "no answer within the deadline of {} ms",
                        deadline.as_millis()
                    ))
                } else {
                    self.err(s)
                }
            }
        }
    }

    /// `GET /health` within `deadline`.
    pub fn health(&self, deadline: Duration) -> Result<Health> {
        let resp = self
            .agent
            .get(&format!("{}/health", self.url))
            .timeout(deadline)
            .call()
            .map_err(|e| self.failed(e, deadline))?;
        resp.into_json().map_err(|e| self.err(format!("bad /health answer: {e}")))
    }

    /// `GET /ids`: every live document's id.
    pub fn ids(&self, deadline: Duration) -> Result<Vec<String>> {
        let resp = self
            .agent
            .get(&format!("{}/ids", self.url))
            .timeout(deadline)
            .call()
            .map_err(|e| self.failed(e, deadline))?;
        resp.into_json().map_err(|e| self.err(format!("bad /ids answer: {e}")))
    }

    fn post<T: serde::de::DeserializeOwned>(
        &self,
        route: &str,
        body: &impl Serialize,
        deadline: Duration,
    ) -> Result<T> {
        let resp = self
            .agent
            .post(&format!("{}{route}", self.url))
            .timeout(deadline)
            .send_json(body)
            .map_err(|e| self.failed(e, deadline))?;
        resp.into_json().map_err(|e| self.err(format!("bad {route} answer: {e}")))
    }

    /// Round 1: `POST /search/candidates` with `queries` as packed float32, in requests of
    /// at most [`REMOTE_BATCH`] queries (a server limits its batches), each within `deadline`.
    /// Every request must be answered from one snapshot (round 2 names its documents).
    pub fn candidates(
        &self,
        queries: &[ArrayView2<'_, f32>],
        settings: &SearchRequest,
        deadline: Duration,
    ) -> Result<CandidatesResponse> {
        let mut all: Option<CandidatesResponse> = None;
        for chunk in queries.chunks(REMOTE_BATCH) {
            let mut body = settings.clone();
            body.queries = Some(chunk.iter().map(wire::encode_query).collect());
            let answer: CandidatesResponse = self.post("/search/candidates", &body, deadline)?;
            if answer.lists.len() != chunk.len() {
                return Err(self.err(format!(
                    "{} lists for {} queries",
                    answer.lists.len(),
                    chunk.len()
                )));
            }
            match &mut all {
                None => all = Some(answer),
                Some(a) if a.snapshot == answer.snapshot => a.lists.extend(answer.lists),
                Some(_) => return Err(self.err("it moved to a new generation during the search")),
            }
        }
        all.ok_or_else(|| self.err("no queries"))
    }

    /// Round 2: `POST /search/score`: exact scores of `docs[i]` for query `i`, in the
    /// snapshot round 1 named, in requests of at most [`REMOTE_BATCH`] queries.
    pub fn score(
        &self,
        queries: &[ArrayView2<'_, f32>],
        docs: Vec<Vec<u32>>,
        snapshot: u64,
        with_text: bool,
        deadline: Duration,
    ) -> Result<Vec<Vec<HitJson>>> {
        let mut out = Vec::with_capacity(queries.len());
        for (chunk, docs) in queries.chunks(REMOTE_BATCH).zip(docs.chunks(REMOTE_BATCH)) {
            let body = ScoreRequest {
                queries: chunk.iter().map(wire::encode_query).collect(),
                docs: docs.to_vec(),
                snapshot,
                with_text: with_text.then_some(true),
            };
            let answer: ScoreResponse = self.post("/search/score", &body, deadline)?;
            if answer.results.len() != chunk.len() {
                return Err(self.err(format!(
                    "{} answers to {} queries",
                    answer.results.len(),
                    chunk.len()
                )));
            }
            out.extend(answer.results);
        }
        Ok(out)
    }

    /// `POST /search/batch` with `queries` as packed float32 and the settings of `settings`;
    /// one ranking per query. The whole exchange must end within `deadline`.
    pub fn search_batch(
        &self,
        queries: &[ArrayView2<'_, f32>],
        settings: &SearchRequest,
        deadline: Duration,
    ) -> Result<Vec<Vec<HitJson>>> {
        let mut out = Vec::with_capacity(queries.len());
        for chunk in queries.chunks(REMOTE_BATCH) {
            let mut body = settings.clone();
            body.queries = Some(chunk.iter().map(wire::encode_query).collect());
            let answer: BatchResponse = self.post("/search/batch", &body, deadline)?;
            if answer.results.len() != chunk.len() {
                return Err(self.err(format!(
                    "{} answers to {} queries",
                    answer.results.len(),
                    chunk.len()
                )));
            }
            // A shard that is itself a collection answers with coverage; a partial answer from
            // it counts as an answer (its own coverage is not nested).
            out.extend(answer.results.into_iter().map(|r| r.hits));
        }
        Ok(out)
    }
}
