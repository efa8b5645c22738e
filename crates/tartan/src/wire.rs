//! The JSON that `tartan serve` speaks (docs/openapi.json), shared by the server and the
//! client that searches remote shards, so the two cannot drift apart.

use std::time::Duration;

use base64::Engine as _;
use half::f16;
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tartan_index::{Filter, SearchParams};

/// Limits a server applies to requests (defaults in [`Limits::default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `k`.
    pub max_k: usize,
    /// Most tokens in one query.
    pub max_query_tokens: usize,
    /// Most queries in one batch.
    pub max_batch: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest `ndocs` and `ncells`.
    pub max_candidates: usize,
}

impl Default for Limits {
    /// `k` ≤ 1,000, 1,024 tokens per query, 256 queries per batch, 64 MiB bodies, `ndocs` and
    /// `ncells` ≤ 1,000,000.
    fn default() -> Self {
        Self {
            max_k: 1000,
            max_query_tokens: 1024,
            max_batch: 256,
            max_body_bytes: 64 << 20,
            max_candidates: 1_000_000,
        }
    }
}

/// A request that cannot be served: the field at fault and why (HTTP 400 / 422).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// The field (a JSON path such as `query[2][7]`), or empty for the body as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl WireError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

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

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A stable code: `bad_json`, `invalid_request`, `not_found`, `payload_too_large`,
    /// `locked`, `unavailable`, `internal`, …
    pub code: String,
    /// A message for people.
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Parses a JSON body into `T`, naming the field at fault (`k: invalid type: string …`).
pub fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        // "." is the body itself; "?" a place the parser had not reached a field at (a
        // syntax error): no field to name.
        let field = if path == "." || path == "?" { String::new() } else { path };
        WireError::new(field, msg)
    })
}

/// Decodes a query's token vectors (`field` names it in errors) into an `n × dim` matrix,
/// checking the shape against `dim` and `limits`, and every value finite.
pub fn decode_query(
    v: &Value,
    field: &str,
    dim: usize,
    limits: &Limits,
) -> Result<Array2<f32>, WireError> {
    let bad = |f: String, m: String| Err(WireError::new(f, m));
    let (n, data) = match v {
        Value::Array(rows) => {
            let mut data = Vec::with_capacity(rows.len() * dim);
            if rows.len() > limits.max_query_tokens {
                return bad(
                    field.into(),
                    format!("{} tokens, the limit is {}", rows.len(), limits.max_query_tokens),
                );
            }
            for (i, row) in rows.iter().enumerate() {
                let Some(row) = row.as_array() else {
                    return bad(format!("{field}[{i}]"), "expected an array of numbers".into());
                };
                if row.len() != dim {
                    return bad(
                        format!("{field}[{i}]"),
                        format!("has {} values, the index's dimension is {dim}", row.len()),
                    );
                }
                for (j, x) in row.iter().enumerate() {
                    match x.as_f64() {
                        Some(x) => data.push(x as f32),
                        None => return bad(format!("{field}[{i}][{j}]"), "not a number".into()),
                    }
                }
            }
            (rows.len(), data)
        }
        Value::Object(o) => {
            for key in o.keys() {
                if !matches!(key.as_str(), "dtype" | "shape" | "data") {
                    return bad(
                        format!("{field}.{key}"),
                        "unknown field; expected dtype, shape, data".into(),
                    );
                }
            }
            let dtype = o.get("dtype").and_then(Value::as_str).unwrap_or("float32");
            let width = match dtype {
                "float32" | "f32" => 4,
                "float16" | "f16" => 2,
                other => {
                    return bad(
                        format!("{field}.dtype"),
                        format!("{other:?} is not float16 or float32"),
                    )
                }
            };
            let shape: Option<Vec<u64>> = o
                .get("shape")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(Value::as_u64).collect());
            let Some([n, d]) = shape.as_deref().and_then(|s| <[u64; 2]>::try_from(s).ok()) else {
                return bad(format!("{field}.shape"), "expected [n_tokens, dim]".into());
            };
            if d != dim as u64 {
                return bad(
                    format!("{field}.shape"),
                    format!("dimension {d}, the index's is {dim}"),
                );
            }
            if n > limits.max_query_tokens as u64 {
                return bad(
                    format!("{field}.shape"),
                    format!("{n} tokens, the limit is {}", limits.max_query_tokens),
                );
            }
            let Some(b64) = o.get("data").and_then(Value::as_str) else {
                return bad(format!("{field}.data"), "expected a base64 string".into());
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| WireError::new(format!("{field}.data"), format!("not base64: {e}")))?;
            let want = n as usize * dim * width;
            if bytes.len() != want {
                return bad(
                    format!("{field}.data"),
                    format!("{} bytes, shape {n}×{dim} of {dtype} needs {want}", bytes.len()),
                );
            }
            let data: Vec<f32> = if width == 4 {
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().expect("4")))
                    .collect()
            } else {
                bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            };
            (n as usize, data)
        }
        _ => {
            return bad(
                field.into(),
                "expected an array of token vectors or {dtype, shape, data}".into(),
            )
        }
    };
    if n == 0 {
        return bad(field.into(), "the query has no tokens".into());
    }
    if let Some(i) = data.iter().position(|x| !x.is_finite()) {
        return bad(
            format!("{field}[{}][{}]", i / dim, i % dim),
            "not a finite number (NaN, infinity, or beyond float32)".into(),
        );
    }
    Ok(Array2::from_shape_vec((n, dim), data).expect("n·dim values"))
}

/// Encodes token vectors as the packed float32 form of a query.
pub fn encode_query(q: &ndarray::ArrayView2<'_, f32>) -> Value {
    let mut bytes = Vec::with_capacity(q.len() * 4);
    for x in q.iter() {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    serde_json::json!({
        "dtype": "float32",
        "shape": [q.nrows(), q.ncols()],
        "data": base64::engine::general_purpose::STANDARD.encode(bytes),
    })
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
        let k = self.k.unwrap_or(10);
        if k == 0 || k > limits.max_k {
            return Err(WireError::new("k", format!("must be 1 to {}", limits.max_k)));
        }
        let mut p = SearchParams::new(k);
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
        if let Some(n) = self.ncells {
            p = p.ncells(n);
        }
        if let Some(n) = self.ndocs {
            p = p.ndocs(n);
        }
        if let Some(t) = self.centroid_score_threshold {
            if !t.is_finite() {
                return Err(WireError::new("centroid_score_threshold", "must be finite"));
            }
            p = p.centroid_score_threshold(t);
        }
        if let Some(f) = &self.filter {
            p = p.filter(Filter::parse(f).map_err(|e| WireError::new("filter", e.to_string()))?);
        }
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
    use serde_json::json;

    #[test]
    fn both_query_forms_decode_alike() {
        let l = Limits::default();
        let nested = json!([[1.0, 0.0], [0.0, -1.0]]);
        let a = decode_query(&nested, "query", 2, &l).unwrap();
        let packed = encode_query(&a.view());
        assert_eq!(decode_query(&packed, "query", 2, &l).unwrap(), a);
        let halves: Vec<u8> =
            [1.0f32, 0.0, 0.0, -1.0].iter().flat_map(|&x| f16::from_f32(x).to_le_bytes()).collect();
        let f16q = json!({"dtype": "float16", "shape": [2, 2],
            "data": base64::engine::general_purpose::STANDARD.encode(halves)});
        assert_eq!(decode_query(&f16q, "query", 2, &l).unwrap(), a);
    }

    #[test]
    fn bad_queries_name_the_field() {
        let l = Limits { max_query_tokens: 3, ..Limits::default() };
        for (v, field, msg) in [
            (json!([[1.0, 0.0], [0.0]]), "query[1]", "has 1 values"),
            (json!([[1.0, "x"]]), "query[0][1]", "not a number"),
            (json!([]), "query", "no tokens"),
            (json!([[1, 0], [1, 0], [1, 0], [1, 0]]), "query", "limit is 3"),
            (json!({"dtype": "int8", "shape": [1, 2], "data": ""}), "query.dtype", "not float16"),
            (json!({"shape": [1, 3], "data": ""}), "query.shape", "dimension 3"),
            (json!({"shape": [1, 2], "data": "!!"}), "query.data", "not base64"),
            (json!({"shape": [1, 2], "data": "AAAA"}), "query.data", "needs 8"),
            (json!({"shape": [1, 2], "data": "AAAA", "x": 1}), "query.x", "unknown field"),
            (json!("text"), "query", "expected an array"),
            (json!([[1e39, 0.0]]), "query[0][0]", "finite"),
        ] {
            let e = decode_query(&v, "query", 2, &l).unwrap_err();
            assert_eq!(e.field, field, "{v}");
            assert!(e.message.contains(msg), "{v}: {}", e.message);
        }
    }

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
