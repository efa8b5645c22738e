//! Documents in: an embeddings directory, or texts encoded with a model, with JSON-lines
//! metadata beside them.

use std::collections::HashMap;
use std::ops::Range;
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
    /// Read only this part of the documents (one shard's share; see [`Part`]). Metadata lines
    /// naming documents of other parts are skipped.
    pub part: Option<Part>,
}

/// Part `index` of `count` of a corpus: a contiguous run of documents in input order, the
/// parts' sizes differing by at most one. The split every front end uses (`tartan index
/// --part I/N`, Python's `part=(i, n)`), so that a shard built anywhere from the same input and
/// part holds the same documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    index: usize,
    count: usize,
}

impl Part {
    /// Part `index` (from 0) of `count`.
    ///
    /// # Errors
    /// [`Error::Param`] if `count` is 0 or `index >= count`.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || index >= count {
            return Err(Error::Param {
                name: "part",
                reason: format!("part {index} of {count}: need 0 <= part < count and count >= 1"),
            });
        }
        Ok(Self { index, count })
    }

    /// Parses `I/N` (part I of N, counting from 0).
    ///
    /// # Errors
    /// [`Error::Param`] if the text is not two numbers with `I < N`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::Param {
            name: "part",
            reason: format!("{text:?}: expected I/N, part I (from 0) of N parts, e.g. 0/4"),
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let i = i.trim().parse().map_err(|_| bad())?;
        let n = n.trim().parse().map_err(|_| bad())?;
        Self::new(i, n)
    }

    /// The part's document positions among `n_docs`. Computed in u128, so no product
    /// overflows.
    pub fn range(&self, n_docs: usize) -> Range<usize> {
        let at = |i: usize| (n_docs as u128 * i as u128 / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
    }

    /// [`Part::range`] of the `n_docs` documents read from `input`, refused when it is empty
    /// (more parts than documents): a shard needs documents.
    fn non_empty_range(&self, n_docs: usize, input: &Path) -> Result<Range<usize>> {
        let range = self.range(n_docs);
        if range.is_empty() {
            return Err(Error::Param {
                name: "part",
                reason: format!(
                    "part {}/{} of {} holds no documents ({n_docs} in all)",
                    self.index,
                    self.count,
                    input.display(),
                ),
            });
        }
        Ok(range)
    }

    /// The part's number (from 0).
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many parts.
    pub fn count(&self) -> usize {
        self.count
    }
}

/// Opens the documents of an embeddings directory, or only `part` of them: a window on the
/// map that validates and touches only the part's vectors.
fn open_part(input: &Path, part: Option<Part>, normalize: bool) -> Result<Embeddings> {
    let opts = LoadOptions { normalize };
    let Some(part) = part else { return Ok(Embeddings::open(input, Kind::Docs, opts)?) };
    let range = part.non_empty_range(Embeddings::count(input, Kind::Docs)?, input)?;
    Ok(Embeddings::open_docs(input, Kind::Docs, opts, Some(range))?)
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
        let mut items = tartan_eval::load_corpus(input)?;
        if let Some(part) = opts.part {
            let range = part.non_empty_range(items.len(), input)?;
            items = items.drain(range).collect();
        }
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
        open_part(input, opts.part, opts.normalize)?
    };
    #[cfg(not(feature = "text"))]
    let docs = {
        let _ = progress;
        open_part(input, opts.part, opts.normalize)?
    };
    if let Some(path) = &opts.metadata {
        extras = extras.metadata(&metadata_for(path, docs.ids(), opts.part.is_some())?);
    }
    Ok(Documents { docs, extras, _encoded: encoded })
}

/// Reads a JSON-lines metadata file: one object per line, naming its document by an `"id"`
/// string field (kept as a field too). Documents without a line get no metadata (`null`).
/// Errors name the file and line: not JSON, no `"id"`, an unknown id, an id twice.
pub fn read_metadata(path: &Path, ids: &[String]) -> Result<Vec<Value>> {
    metadata_for(path, ids, false)
}

/// [`read_metadata`]; with `skip_others`, lines naming ids not among `ids` (another part's
/// documents) are skipped instead of refused.
fn metadata_for(path: &Path, ids: &[String], skip_others: bool) -> Result<Vec<Value>> {
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
            if skip_others {
                continue;
            }
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
    fn parts_cover_the_corpus_once_in_order() {
        for n_docs in [0usize, 1, 5, 7, 100, 1001] {
            for count in [1usize, 2, 3, 4, 8] {
                let ranges: Vec<_> =
                    (0..count).map(|i| Part::new(i, count).unwrap().range(n_docs)).collect();
                assert_eq!(ranges[0].start, 0);
                assert_eq!(ranges[count - 1].end, n_docs);
                for w in ranges.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let sizes: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "{n_docs} in {count}: {sizes:?}");
            }
        }
        assert_eq!(Part::parse(" 2/8").unwrap().range(16), 4..6);
        assert_eq!(Part::new(3, 4).unwrap().range(usize::MAX).end, usize::MAX);
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2", ""] {
            let err = Part::parse(bad).unwrap_err().to_string();
            assert!(err.contains("part"), "{bad}: {err}");
        }
    }

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
