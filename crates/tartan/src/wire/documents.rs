//! Document bodies: `POST /documents`, `DELETE /documents`, and what a change published
//! (also `POST /compact`'s answer).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One document of `POST /documents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentIn {
    /// External id.
    pub id: String,
    /// Token vectors (either query form); or leave out and give `text` to a server with a
    /// model.
    #[serde(default)]
    pub tokens: Option<Value>,
    /// Text: stored, and encoded when `tokens` is absent.
    #[serde(default)]
    pub text: Option<String>,
    /// A metadata object for filters.
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// `POST /documents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    /// The documents.
    pub documents: Vec<DocumentIn>,
    /// Replace documents with the same ids instead of refusing them.
    #[serde(default)]
    pub upsert: bool,
    /// L2-normalise the token vectors instead of refusing non-unit ones.
    #[serde(default)]
    pub normalize: bool,
}

/// `DELETE /documents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteRequest {
    /// Ids to delete.
    pub ids: Vec<String>,
    /// Skip ids that are not live instead of failing.
    #[serde(default)]
    pub ignore_missing: bool,
}

/// What a change published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changed {
    /// The generation now (index, or collection manifest).
    pub generation: u64,
    /// Documents added.
    pub added: u64,
    /// Documents deleted (replaced ones included).
    pub deleted: u64,
    /// Live documents now.
    pub n_docs: u64,
}
