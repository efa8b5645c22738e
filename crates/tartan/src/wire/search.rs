//! Search bodies: `/search`, `/search/batch`, `/explain`, and the two rounds of a search split
//! over servers (`/search/candidates`, `/search/score`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tartan_index::{IndexError, SearchParams};

use super::body::{Limits, WireError};
use crate::settings::{QuerySettings, DEFAULT_K};

/// The body of `POST /search` and `POST /search/batch`: the query (token vectors or text; a
/// batch gives several) and settings, every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// `/search`: token vectors, an array of `dim`-long arrays of numbers, or
    /// `{"dtype": "float16"|"float32", "shape": [n, dim], "data": base64 little-endian}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Value>,
    /// `/search`: the query as text (the server needs a model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `/search/batch`: each query's token vectors, in either form of `query`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queries: Option<Vec<Value>>,
    /// `/search/batch`: each query as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub texts: Option<Vec<String>>,
    /// Hits to return (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Centroids probed per query token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ncells: Option<usize>,
    /// Candidates kept after the first approximate pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ndocs: Option<usize>,
    /// Pruning threshold of the first approximate pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centroid_score_threshold: Option<f32>,
    /// A metadata filter (docs/filters.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Per remote shard, how long to wait (collections with remote shards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Fail instead of answering from the shards that answered in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_all: Option<bool>,
    /// Return each hit's stored text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_text: Option<bool>,
    /// Rerank text queries with the server's cross-encoder (`tartan serve --rerank`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank: Option<bool>,
    /// First-stage hits the cross-encoder reads (default: the server's `--rerank-depth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank_depth: Option<usize>,
}

/// The body of `POST /explain`: a query (token vectors, or text to a server with a model)
/// and the document to explain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// Token vectors, in either form of [`SearchRequest::query`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Value>,
    /// The query as text: tokens are named, and the document's stored text, encoded again,
    /// gives the exact side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The document's id.
    pub id: String,
    /// The document's original token vectors (either query form), for the exact side of a
    /// vector query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Value>,
}

/// One hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HitJson {
    /// External document id.
    pub id: String,
    /// MaxSim of the query and the decompressed document.
    pub score: f32,
    /// The document's number in the server's generation (`/search/score` answers, for the
    /// merge's tie-break).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<u64>,
    /// The shard that holds it (collections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Its stored text, when asked for and stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The cross-encoder's logit, for hits a rerank read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank_score: Option<f32>,
}

/// A shard that did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedShard {
    /// Its name.
    pub shard: String,
    /// Why.
    pub reason: String,
}

/// Which part of the collection an answer covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageJson {
    /// Shards searched.
    pub shards: usize,
    /// Shards that answered.
    pub shards_answered: usize,
    /// Live documents over all shards (as last known).
    pub docs: u64,
    /// Live documents of the shards that answered.
    pub docs_answered: u64,
    /// The shards that did not answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<FailedShard>,
}

/// `POST /search`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// The generation that answered (an index's, or a collection manifest's).
    pub generation: u64,
    /// Hits, best first.
    pub hits: Vec<HitJson>,
    /// What was searched.
    pub coverage: CoverageJson,
    /// Time spent on the server, in milliseconds.
    pub took_ms: f64,
}

/// One query's answer in a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchItem {
    /// Hits, best first.
    pub hits: Vec<HitJson>,
    /// What was searched.
    pub coverage: CoverageJson,
}

/// `POST /search/batch`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// The generation that answered.
    pub generation: u64,
    /// One answer per query, in order.
    pub results: Vec<BatchItem>,
    /// Time spent on the server, in milliseconds.
    pub took_ms: f64,
}

/// `POST /search/candidates` (round 1 of a search split over servers): the `queries` and
/// settings of a [`SearchRequest`]. The answer lists, per query, the documents that survive
/// the approximate passes as `[doc, pruned score, full score]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidatesResponse {
    /// The server's snapshot the document numbers belong to (give it back to
    /// `/search/score`; the server keeps recent snapshots for it).
    pub snapshot: u64,
    /// Documents stored (deleted ones included): bounds the selection like a single index's.
    pub n_stored: u64,
    /// Per query, `[doc, pruned, full]`, best pruned score first.
    pub lists: Vec<Vec<(u32, f32, f32)>>,
}

/// `POST /search/score` (round 2): exact scores of chosen documents of a generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    /// Each query's token vectors, in either form of [`SearchRequest::query`].
    pub queries: Vec<Value>,
    /// Per query, the documents (numbers from `/search/candidates`) to score.
    pub docs: Vec<Vec<u32>>,
    /// The snapshot the numbers belong to.
    pub snapshot: u64,
    /// Return each hit's stored text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_text: Option<bool>,
}

/// `POST /search/score`'s answer: per query, the documents' hits, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreResponse {
    /// Per query, hits with `doc` set.
    pub results: Vec<Vec<HitJson>>,
}

/// What a request's settings resolve to.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Search parameters.
    pub params: SearchParams,
    /// Per remote shard deadline, if the request set one.
    pub deadline: Option<Duration>,
    /// Whether every shard must answer, if the request said.
    pub require_all: Option<bool>,
    /// Whether hits carry their texts.
    pub with_text: bool,
    /// `Some(depth)` to rerank (`None` inside: the server's depth).
    pub rerank: Option<Option<usize>>,
}

impl SearchRequest {
    /// Checks the settings against `limits` and turns them into search parameters and the
    /// shard policy; errors name the field.
    pub fn resolve(&self, limits: &Limits) -> Result<Resolved, WireError> {
        let k = self.k.unwrap_or(DEFAULT_K);
        if k == 0 || k > limits.max_k {
            return Err(WireError::new("k", format!("must be 1 to {}", limits.max_k)));
        }
        for (name, v) in [("ncells", self.ncells), ("ndocs", self.ndocs)] {
            if let Some(n) = v {
                if n == 0 || n > limits.max_candidates {
                    return Err(WireError::new(
                        name,
                        format!("must be 1 to {}", limits.max_candidates),
                    ));
                }
            }
        }
        if self.centroid_score_threshold.is_some_and(|t| !t.is_finite()) {
            return Err(WireError::new("centroid_score_threshold", "must be finite"));
        }
        let settings = QuerySettings {
            k: Some(k),
            ncells: self.ncells,
            ndocs: self.ndocs,
            centroid_score_threshold: self.centroid_score_threshold,
            filter: self.filter.clone(),
        };
        let p = settings.params(DEFAULT_K).map_err(|e| match &e {
            crate::Error::Index(IndexError::Param { name, .. }) => {
                WireError::new(*name, e.to_string())
            }
            _ => WireError::new("filter", e.to_string()),
        })?;
        let rerank = match (self.rerank.unwrap_or(false), self.rerank_depth) {
            (false, Some(_)) => {
                return Err(WireError::new("rerank_depth", "only with \"rerank\": true"));
            }
            (true, Some(d)) if d == 0 || d > limits.max_k => {
                return Err(WireError::new(
                    "rerank_depth",
                    format!("must be 1 to {}", limits.max_k),
                ));
            }
            (true, d) => Some(d),
            (false, None) => None,
        };
        Ok(Resolved {
            params: p,
            rerank,
            deadline: self.deadline_ms.map(Duration::from_millis),
            require_all: self.require_all,
            with_text: self.with_text.unwrap_or(false),
        })
    }

    /// A request that reproduces `params` on a remote shard (no query set).
    pub fn from_params(params: &SearchParams, with_text: bool) -> Self {
        let r = params.resolve().ok();
        Self {
            k: r.map(|r| r.k),
            ncells: r.map(|r| r.ncells),
            ndocs: r.map(|r| r.ndocs),
            centroid_score_threshold: r.map(|r| r.centroid_score_threshold),
            filter: params.filter_expr().map(|f| f.source().to_string()),
            with_text: with_text.then_some(true),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::body::{parse_body, Limits};

    #[test]
    fn settings_are_checked_and_round_trip() {
        let l = Limits::default();
        let s: SearchRequest = parse_body(br#"{"k": 5, "ndocs": 64, "filter": "a = 1"}"#).unwrap();
        let p = s.resolve(&l).unwrap().params;
        let back = SearchRequest::from_params(&p, false);
        assert_eq!(
            (back.k, back.ndocs, back.filter.as_deref()),
            (Some(5), Some(64), Some("a = 1"))
        );
        for (body, field) in [
            (r#"{"k": 0}"#, "k"),
            (r#"{"k": 1000000}"#, "k"),
            (r#"{"ndocs": 0}"#, "ndocs"),
            (r#"{"filter": "a = "}"#, "filter"),
        ] {
            let s: SearchRequest = parse_body(body.as_bytes()).unwrap();
            assert_eq!(s.resolve(&l).unwrap_err().field, field, "{body}");
        }
        let e = parse_body::<SearchRequest>(br#"{"k": "ten"}"#).unwrap_err();
        assert_eq!(e.field, "k");
        let e = parse_body::<SearchRequest>(br#"{"kk": 1}"#).unwrap_err();
        assert!(e.message.contains("unknown field") && e.field == "kk", "{e:?}");
        let e = parse_body::<SearchRequest>(b"{not json").unwrap_err();
        assert!(e.field.is_empty(), "{e:?}");
    }
}
