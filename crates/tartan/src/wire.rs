//! The JSON that `tartan serve` speaks (docs/openapi.json), shared by the server and the
//! client that searches remote shards, so the two cannot drift apart. Every body of every
//! route is here, by resource: [`search`](self::SearchRequest) (search, explain and the two
//! rounds of a split search), status (`/health`, `/stats`), documents (`/documents`,
//! `/compact`), and the token matrices that queries and documents travel as.

mod body;
mod documents;
mod search;
mod status;
mod tokens;

pub use body::{parse_body, ErrorBody, ErrorDetail, Limits, WireError};
pub use documents::{AddRequest, Changed, DeleteRequest, DocumentIn};
pub use search::{
    BatchItem, BatchResponse, CandidatesResponse, CoverageJson, ExplainRequest, FailedShard,
    HitJson, Resolved, ScoreRequest, ScoreResponse, SearchRequest, SearchResponse,
};
pub use status::{Health, LimitsJson, ShardStats, Stats};
pub use tokens::{decode_matrix, decode_query, encode_query};
