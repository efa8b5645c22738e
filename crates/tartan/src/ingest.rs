//! Documents in: an embeddings directory, or texts encoded with a model, with JSON-lines
//! metadata beside them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tartan_embeddings::{Embeddings, Kind, LoadOptions};
use tartan_index::{Extras, Progress};

use crate::error::{Error, Result};

/// Documents ready to index or add: their vectors and what is stored beside them.
#[derive(Debug)]
pub struct Documents {
    /// The vectors, ids and lengths.
    pub docs: Embeddings,
    /// Texts and metadata.
    pub extras: Extras,
    /// The temporary embeddings directory of encoded text, removed on drop.
    _encoded: Option<tempfile::TempDir>,
}

/// How to read documents. Defaults: vectors must be unit length, no metadata, no model,
/// temporary files beside the target.
#[derive(Default, Clone)]
pub struct IngestOptions {
    /// L2-normalise vectors as they are read instead of rejecting non-unit ones.
    pub normalize: bool,
    /// A JSON-lines metadata file: one object per document, naming it by an `"id"` field.
    pub metadata: Option<PathBuf>,
    /// Encode text input with this model (and store the texts).
    #[cfg(feature = "text")]
    pub encoder: Option<std::sync::Arc<tartan_encoder::Encoder>>,
    /// Where encoded text is staged (a hidden directory is created inside; default: the
    /// current directory). Put it on the disk the index goes to.
    pub scratch_dir: Option<PathBuf>,
}

/// Reads documents: `input` is an embeddings directory (`doc_embs.npy`, `doc_lens.npy`,
/// `doc_ids.txt`), or, with an encoder, a BEIR directory or a corpus `.jsonl[.zst]` file
/// (`{"_id", "title", "text"}` per line) whose texts are encoded into a temporary embeddings
/// directory (streamed, then memory-mapped) and stored with the documents.
pub fn load_documents(
    input: &Path,
    opts: &IngestOptions,
    progress: &dyn Progress,
) -> Result<Documents> {
    let mut extras = Extras::new();
    // Assigned only when text is encoded (the `text` feature).
    #[cfg_attr(not(feature = "text"), allow(unused_mut))]
    let mut encoded = None;
    #[cfg(feature = "text")]
    let docs = if let Some(enc) = &opts.encoder {
        let items = tartan_eval::load_corpus(input)?;
        let parent = opts.scratch_dir.clone().unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&parent)
            .map_err(|source| Error::Io { path: parent.clone(), source })?;
        let tmp = tempfile::Builder::new()
            .prefix(".tartan-encode-")
            .tempdir_in(&parent)
            .map_err(|source| Error::Io { path: parent.clone(), source })?;
        crate::text::encode_items(
            enc,
            &items,
            tmp.path(),
            Kind::Docs,
            tartan_embeddings::Precision::F16,
            progress,
        )?;
        let docs = Embeddings::open(tmp.path(), Kind::Docs, LoadOptions::default())?;
        extras = extras.texts(items.into_iter().map(|i| i.text).collect());
        encoded = Some(tmp);
        docs
    } else {
        Embeddings::open(input, Kind::Docs, LoadOptions { normalize: opts.normalize })?
    };
    #[cfg(not(feature = "text"))]
    let docs = {
        let _ = progress;
        Embeddings::open(input, Kind::Docs, LoadOptions { normalize: opts.normalize })?
    };
    if let Some(path) = &opts.metadata {
        extras = extras.metadata(&read_metadata(path, docs.ids())?);
    }
    Ok(Documents { docs, extras, _encoded: encoded })
}

/// Reads a JSON-lines metadata file: one object per line, naming its document by an `"id"`
/// string field (kept as a field too). Documents without a line get no metadata (`null`).
/// Errors name the file and line: not JSON, no `"id"`, an unknown id, an id twice.
pub fn read_metadata(path: &Path, ids: &[String]) -> Result<Vec<Value>> {
    let pos: HashMap<&str, usize> =
        ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let mut out = vec![Value::Null; ids.len()];
    let text = std::fs::read_to_string(path)
        .map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad =
            |reason: String| Error::Metadata { path: path.to_path_buf(), line: n + 1, reason };
        let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
        let Some(id) = v.as_object().and_then(|o| o.get("id")).and_then(|i| i.as_str()) else {
            return Err(bad("expected a JSON object with an \"id\" string field".into()));
        };
        let Some(&i) = pos.get(id) else {
            return Err(bad(format!("id {id:?} is not among the documents")));
        };
        if !out[i].is_null() {
            return Err(bad(format!("id {id:?} has metadata twice")));
        }
        out[i] = v;
    }
    Ok(out)
}

/// Opens the queries of an embeddings directory (`query_embs.npy`, `query_lens.npy`,
/// `query_ids.txt`).
pub fn load_queries(dir: &Path, normalize: bool) -> Result<Embeddings> {
    if !Embeddings::exists(dir, Kind::Queries) {
        return Err(Error::Param {
            name: "queries",
            reason: format!("{} has no query_embs.npy", dir.display()),
        });
    }
    Ok(Embeddings::open(dir, Kind::Queries, LoadOptions { normalize })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_lines_name_their_problems() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.jsonl");
        let ids = vec!["a".to_string(), "b".to_string()];
        std::fs::write(&p, "{\"id\": \"b\", \"year\": 2020}\n\n").unwrap();
        let m = read_metadata(&p, &ids).unwrap();
        assert_eq!((m[0].clone(), m[1]["year"].clone()), (Value::Null, Value::from(2020)));
        for (text, want) in [
            ("{\"id\": \"z\"}", "line 1"),
            ("{\"id\": \"a\"}\n{\"id\": \"a\"}", "twice"),
            ("[1]", "\"id\" string"),
            ("{oops", "not JSON"),
        ] {
            std::fs::write(&p, text).unwrap();
            let err = read_metadata(&p, &ids).unwrap_err().to_string();
            let want = if want == "line 1" { "m.jsonl:1: id \"z\" is not among" } else { want };
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
