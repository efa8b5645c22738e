//! Reading a model directory: which mode, which settings, which files.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::EncoderError;

/// How token vectors are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every token's last hidden state (including `[CLS]`/`[SEP]`), L2-normalised; no
    /// projection, no markers. For plain BERT models used as stand-ins.
    Raw,
    /// ColBERT: BERT plus a bias-free linear projection, `[Q]`/`[D]` markers after `[CLS]`,
    /// queries padded with `[MASK]` to `query_maxlen` (all vectors kept), punctuation dropped
    /// from documents, every vector L2-normalised.
    ColBert,
}

/// Where the projection weights live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Projection {
    /// `linear.weight` inside `model.safetensors` (Stanford ColBERT layout).
    InModel,
    /// `linear.weight` in `1_Dense/model.safetensors` (PyLate / sentence-transformers layout).
    Dense(PathBuf),
}

/// Settings found in the checkpoint's own files; `None` where it says nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Found {
    pub colbert: bool,
    pub projection: Option<Projection>,
    pub query_marker: Option<String>,
    pub doc_marker: Option<String>,
    pub query_maxlen: Option<usize>,
    pub doc_maxlen: Option<usize>,
    pub mask_punctuation: Option<bool>,
    pub attend_to_mask_tokens: Option<bool>,
}

pub(crate) fn read_json(path: &Path) -> Result<Option<Value>, EncoderError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| EncoderError::Config { path: path.to_path_buf(), source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(EncoderError::Io { path: path.to_path_buf(), source }),
    }
}

fn usize_of(v: &Value, key: &str) -> Option<usize> {
    v.get(key).and_then(Value::as_u64).map(|n| n as usize)
}

/// Inspects a model directory. `has_linear` says whether `model.safetensors` holds
/// `linear.weight`.
pub(crate) fn inspect(dir: &Path, has_linear: bool) -> Result<Found, EncoderError> {
    let mut f = Found::default();
    // Stanford ColBERT: artifact.metadata (JSON) beside the weights.
    if let Some(meta) = read_json(&dir.join("artifact.metadata"))? {
        f.colbert = true;
        f.query_marker = meta.get("query_token_id").and_then(Value::as_str).map(str::to_string);
        f.doc_marker = meta.get("doc_token_id").and_then(Value::as_str).map(str::to_string);
        f.query_maxlen = usize_of(&meta, "query_maxlen");
        f.doc_maxlen = usize_of(&meta, "doc_maxlen");
        f.mask_punctuation = meta.get("mask_punctuation").and_then(Value::as_bool);
        f.attend_to_mask_tokens = meta.get("attend_to_mask_tokens").and_then(Value::as_bool);
    }
    if has_linear {
        f.colbert = true;
        f.projection = Some(Projection::InModel);
    }
    // PyLate: 1_Dense/ holds the projection, prefixes in config_sentence_transformers.json.
    let dense = dir.join("1_Dense").join("model.safetensors");
    if dense.exists() {
        f.colbert = true;
        f.projection = Some(Projection::Dense(dense));
        if let Some(st) = read_json(&dir.join("config_sentence_transformers.json"))? {
            let prefix = |k: &str| st.get(k).and_then(Value::as_str).map(str::to_string);
            f.query_marker = f.query_marker.or(prefix("query_prefix"));
            f.doc_marker = f.doc_marker.or(prefix("document_prefix"));
            f.query_maxlen = f.query_maxlen.or(usize_of(&st, "query_length"));
            f.doc_maxlen = f.doc_maxlen.or(usize_of(&st, "document_length"));
            f.attend_to_mask_tokens = f
                .attend_to_mask_tokens
                .or(st.get("attend_to_expansion_tokens").and_then(Value::as_bool));
        }
    } else if dir.join("1_Dense").exists() {
        return Err(EncoderError::MissingFile { path: dense });
    }
    // sentence-transformers' sequence cap, for raw mode.
    if !f.colbert {
        if let Some(sb) = read_json(&dir.join("sentence_bert_config.json"))? {
            f.doc_maxlen = usize_of(&sb, "max_seq_length");
        }
    }
    Ok(f)
}
