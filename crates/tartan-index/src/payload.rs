//! Per-document data stored beside the vectors: texts and metadata.

use serde_json::Value;
use tartan_embeddings::Embeddings;

use crate::error::{IndexError, Result};

/// Optional data stored with each document: its text (shown with results, see
/// [`Index::text`](crate::Index::text)) and a metadata object (matched by
/// [`Filter`](crate::Filter)s). Each list holds one entry per document, in order.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub(crate) texts: Option<Vec<String>>,
    /// Compact JSON objects, `""` for a document without metadata.
    pub(crate) metadata: Option<Vec<String>>,
    n_metadata_values: usize,
    metadata_error: Option<(usize, String)>,
}

impl Extras {
    /// Nothing stored.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores these texts.
    pub fn texts(mut self, texts: Vec<String>) -> Self {
        self.texts = Some(texts);
        self
    }

    /// Stores these metadata values: each a JSON object, or `null` for none. Anything else is
    /// reported when the documents are built or added.
    pub fn metadata(mut self, values: &[Value]) -> Self {
        self.n_metadata_values = values.len();
        self.metadata_error = None;
        let mut out = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            match v {
                Value::Object(_) => out.push(v.to_string()),
                Value::Null => out.push(String::new()),
                other => {
                    let kind = match other {
                        Value::Bool(_) => "a boolean",
                        Value::Number(_) => "a number",
                        Value::String(_) => "a string",
                        _ => "an array",
                    };
                    self.metadata_error.get_or_insert((
                        i,
                        format!("expected a JSON object or null, found {kind}"),
                    ));
                    out.push(String::new());
                }
            }
        }
        self.metadata = Some(out);
        self
    }

    /// The entries of the documents at `positions`, in that order (to split a batch between
    /// shards).
    ///
    /// # Panics
    /// If a position is out of range of a list.
    pub fn select(&self, positions: &[usize]) -> Self {
        let pick = |v: &Vec<String>| positions.iter().map(|&i| v[i].clone()).collect();
        Self {
            texts: self.texts.as_ref().map(pick),
            metadata: self.metadata.as_ref().map(pick),
            n_metadata_values: if self.metadata.is_some() { positions.len() } else { 0 },
            metadata_error: self.metadata_error.as_ref().and_then(|(at, why)| {
                positions.iter().position(|p| p == at).map(|i| (i, why.clone()))
            }),
        }
    }

    /// Whether texts are stored.
    pub fn has_texts(&self) -> bool {
        self.texts.is_some()
    }

    /// Checks that every list has one entry per document of `docs`.
    pub(crate) fn check(&self, docs: &Embeddings) -> Result<()> {
        self.check_ids(docs.ids())
    }

    /// [`Extras::check`] against documents named by `ids`.
    pub(crate) fn check_ids(&self, ids: &[String]) -> Result<()> {
        let n = ids.len();
        if let Some(t) = &self.texts {
            if t.len() != n {
                return Err(IndexError::Param {
                    name: "texts",
                    reason: format!("{} texts for {n} documents", t.len()),
                });
            }
        }
        if let Some((doc, reason)) = &self.metadata_error {
            let id = ids.get(*doc).cloned().unwrap_or_default();
            return Err(IndexError::Metadata { doc: *doc, id, reason: reason.clone() });
        }
        if self.metadata.is_some() && self.n_metadata_values != n {
            return Err(IndexError::Param {
                name: "metadata",
                reason: format!("{} metadata values for {n} documents", self.n_metadata_values),
            });
        }
        Ok(())
    }
}
