//! The update queue of a named index: one thread applies additions and deletions in the order
//! they were accepted, each published as a new generation, while searches keep reading the
//! last published one.

use std::path::Path;

use serde_json::Value;
use tartan_embeddings::{Embeddings, Kind, LoadOptions, Precision};
use tartan_index::{Extras, Filter, Index, IndexParams, IndexWriter, NoProgress};

use super::config::NamedConfig;
use crate::error::{Error, Result};

/// Directory of the tartan index inside a named index's directory.
pub(crate) const INDEX_DIR: &str = "index";
/// Original vectors (and metadata) kept while the index is rebuilt from scratch on updates.
pub(crate) const RAW_DIR: &str = "raw";
const RAW_METADATA: &str = "metadata.json";

/// One accepted change.
pub(crate) enum Job {
    /// Documents with their tartan ids (decimal document numbers) and metadata objects.
    Add { docs: Embeddings, metadata: Vec<Value> },
    /// Documents whose metadata matches.
    Delete { filter: Filter },
    /// Apply the document limit now (after it was lowered).
    Evict,
    /// Set `updates`' fields in the metadata of the documents matching `filter`; the count
    /// (or the error) goes back through `done`.
    SetMetadata {
        filter: Filter,
        updates: serde_json::Map<String, Value>,
        done: std::sync::mpsc::Sender<Result<usize>>,
    },
}

/// An answer a requester waits for, owed once the change it asked for is published (sent
/// before, a read right after the answer could still see the old generation).
pub(crate) type Reply = Option<(std::sync::mpsc::Sender<Result<usize>>, Result<usize>)>;

/// Applies `job` to the named index in `dir`; an answer the job owes goes to `reply`.
pub(crate) fn apply(dir: &Path, config: &NamedConfig, job: Job, reply: &mut Reply) -> Result<()> {
    match job {
        Job::Add { docs, metadata } => add(dir, config, docs, metadata)?,
        Job::Delete { filter } => {
            let index_dir = dir.join(INDEX_DIR);
            if !index_dir.join(tartan_index::META_FILE).exists() {
                return Ok(());
            }
            let index = Index::open(&index_dir)?;
            let ids: Vec<String> = index
                .matching(Some(&filter))?
                .into_iter()
                .map(|d| index.id(d).expect("a live position").map(str::to_string))
                .collect::<std::result::Result<_, _>>()?;
            drop(index);
            delete_ids(dir, &ids)?;
        }
        Job::Evict => {}
        Job::SetMetadata { filter, updates, done } => {
            // The requester waits for the answer; a failure is its error, not the queue's.
            *reply = Some((done, set_metadata(dir, &filter, &updates)));
            return Ok(());
        }
    }
    evict(dir, config)
}

/// Rewrites the metadata of the documents matching `filter` with `updates` set (the index
/// and, while they are kept, the originals' copy); returns how many documents changed.
fn set_metadata(
    dir: &Path,
    filter: &Filter,
    updates: &serde_json::Map<String, Value>,
) -> Result<usize> {
    let index_dir = dir.join(INDEX_DIR);
    if !index_dir.join(tartan_index::META_FILE).exists() {
        return Ok(0);
    }
    let index = Index::open(&index_dir)?;
    let mut changes = std::collections::HashMap::new();
    for d in index.matching(Some(filter))? {
        let id = index.id(d).expect("a live position")?.to_string();
        let mut obj = match index.metadata(d).transpose()? {
            Some(text) if !text.is_empty() => serde_json::from_str(text).map_err(|e| {
                Error::Param { name: "metadata", reason: format!("stored metadata of {id}: {e}") }
            })?,
            _ => serde_json::Map::new(),
        };
        for (k, v) in updates {
            obj.insert(k.clone(), v.clone());
        }
        changes.insert(id, Value::Object(obj));
    }
    drop(index);
    let n = changes.len();
    if n == 0 {
        return Ok(0);
    }
    let raw_dir = dir.join(RAW_DIR);
    if raw_dir.exists() {
        let (raw, mut meta) = read_raw(&raw_dir)?;
        for (d, m) in meta.iter_mut().enumerate() {
            if let Some(new) = changes.get(raw.id(d)) {
                *m = new.clone();
            }
        }
        write_raw(&raw_dir, &raw, &meta)?;
    }
    let mut w = IndexWriter::open(&index_dir)?;
    w.set_metadata(&changes, &NoProgress)?;
    Ok(n)
}

fn add(dir: &Path, config: &NamedConfig, docs: Embeddings, metadata: Vec<Value>) -> Result<()> {
    let index_dir = dir.join(INDEX_DIR);
    let raw_dir = dir.join(RAW_DIR);
    let exists = index_dir.join(tartan_index::META_FILE).exists();
    if exists && !raw_dir.exists() {
        let mut w = IndexWriter::open(&index_dir)?;
        w.add(&docs, &Extras::new().metadata(&metadata), &NoProgress)?;
        w.commit()?;
        return Ok(());
    }
    // Small index: rebuilt from the original vectors of every document so far.
    let (all, all_meta) = if raw_dir.exists() {
        let (old, old_meta) = read_raw(&raw_dir)?;
        (concat(&old, &docs)?, [old_meta, metadata].concat())
    } else {
        (docs, metadata)
    };
    let mut params = IndexParams::new().nbits(config.nbits).overwrite(true);
    if let Some(seed) = config.seed {
        params = params.seed(seed);
    }
    Index::build_with(&all, &Extras::new().metadata(&all_meta), &index_dir, &params, &NoProgress)?;
    if all.n_docs() <= config.start_from_scratch {
        write_raw(&raw_dir, &all, &all_meta)?;
    } else if raw_dir.exists() {
        // Large enough: the codebook stays; later documents are encoded with it.
        std::fs::remove_dir_all(&raw_dir).map_err(|source| Error::Io { path: raw_dir, source })?;
    }
    Ok(())
}

/// Deletes documents by tartan id from the index (and from the kept originals).
fn delete_ids(dir: &Path, ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut w = IndexWriter::open(&dir.join(INDEX_DIR))?;
    w.delete(ids)?;
    w.commit()?;
    let raw_dir = dir.join(RAW_DIR);
    if raw_dir.exists() {
        let (raw, meta) = read_raw(&raw_dir)?;
        let gone: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        let keep: Vec<usize> = (0..raw.n_docs()).filter(|&d| !gone.contains(raw.id(d))).collect();
        if keep.is_empty() {
            std::fs::remove_dir_all(&raw_dir)
                .map_err(|source| Error::Io { path: raw_dir.clone(), source })?;
        } else {
            let kept_meta: Vec<Value> = keep.iter().map(|&d| meta[d].clone()).collect();
            write_raw(&raw_dir, &raw.select(&keep)?, &kept_meta)?;
        }
    }
    Ok(())
}

/// Deletes the oldest documents (lowest numbers) beyond `max_documents`.
fn evict(dir: &Path, config: &NamedConfig) -> Result<()> {
    let Some(max) = config.max_documents else { return Ok(()) };
    let index_dir = dir.join(INDEX_DIR);
    if !index_dir.join(tartan_index::META_FILE).exists() {
        return Ok(());
    }
    let index = Index::open(&index_dir)?;
    let n = index.n_docs() as usize;
    if n <= max {
        return Ok(());
    }
    let mut numbered: Vec<(u64, String)> = index
        .ids()?
        .into_iter()
        .map(|id| (id.parse().unwrap_or(u64::MAX), id.to_string()))
        .collect();
    drop(index);
    numbered.sort_unstable();
    let oldest: Vec<String> = numbered.into_iter().take(n - max).map(|(_, id)| id).collect();
    delete_ids(dir, &oldest)
}

fn read_raw(raw_dir: &Path) -> Result<(Embeddings, Vec<Value>)> {
    let docs = Embeddings::open(raw_dir, Kind::Docs, LoadOptions::default())?;
    let path = raw_dir.join(RAW_METADATA);
    let bytes = std::fs::read(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
    let meta: Vec<Value> = serde_json::from_slice(&bytes).map_err(|e| Error::Param {
        name: "raw metadata",
        reason: format!("{}: {e}", path.display()),
    })?;
    if meta.len() != docs.n_docs() {
        return Err(Error::Param {
            name: "raw metadata",
            reason: format!(
                "{}: {} objects for {} documents",
                path.display(),
                meta.len(),
                docs.n_docs()
            ),
        });
    }
    Ok((docs, meta))
}

/// Writes the originals: vectors first (their writer renames into place), then the metadata
/// through a temporary file.
fn write_raw(raw_dir: &Path, docs: &Embeddings, meta: &[Value]) -> Result<()> {
    docs.write(raw_dir, Kind::Docs, Precision::F32)?;
    let path = raw_dir.join(RAW_METADATA);
    let tmp = raw_dir.join(format!("{RAW_METADATA}.tmp"));
    let text = serde_json::to_vec(meta).expect("JSON values serialise");
    std::fs::write(&tmp, text).map_err(|source| Error::Io { path: tmp.clone(), source })?;
    std::fs::rename(&tmp, &path).map_err(|source| Error::Io { path, source })
}

/// `a`'s documents then `b`'s, in memory.
fn concat(a: &Embeddings, b: &Embeddings) -> Result<Embeddings> {
    let mut lens = Vec::with_capacity(a.n_docs() + b.n_docs());
    let mut ids = Vec::with_capacity(lens.capacity());
    let mut tokens = Vec::with_capacity((a.n_tokens() + b.n_tokens()) * a.dim());
    for e in [a, b] {
        for d in 0..e.n_docs() {
            lens.push(e.doc_len(d) as u64);
            ids.push(e.id(d).to_string());
            tokens.extend(e.doc(d));
        }
    }
    Ok(Embeddings::from_parts(a.dim(), &lens, ids, tokens, LoadOptions::default())?)
}
