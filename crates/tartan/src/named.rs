//! Named indices under one data directory, the model of next-plaid's server: declare an index
//! by name with its settings, add documents (numbered 0, 1, 2, … in the order they are
//! accepted), delete by metadata condition, search, read metadata. Changes are queued and
//! applied in order by one thread per index, each published as a new generation; searches
//! read the last published generation and never wait for a change.
//!
//! Layout: `<data dir>/<name>/named.json` (settings and the next document number),
//! `<name>/index/` (a tartan index whose document ids are the decimal numbers, each
//! document's metadata holding its number as `_subset_`), and while the index is small
//! `<name>/raw/` (the original vectors, to rebuild from; see
//! [`NamedConfig::start_from_scratch`]).
//!
//! Document numbers are never reused or renumbered: after deleting 3 of 0..9, the survivors
//! keep their numbers and the next document added is 10.

mod config;
mod worker;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;

use arc_swap::ArcSwapOption;
use ndarray::ArrayView2;
use serde_json::{Map, Value};
use tartan_embeddings::{Embeddings, LoadOptions};
use tartan_index::{Filter, Index, SearchParams};

pub use config::NamedConfig;
use config::{State, STATE_FILE};
use worker::{Job, INDEX_DIR};

use crate::error::{Error, Result};

/// The metadata field holding a document's number (next-plaid's name for it).
pub const NUMBER_FIELD: &str = "_subset_";

/// Index names: 1 to 128 of `A–Z a–z 0–9 _ - .`, not starting with `.` (names are directory
/// names; nothing may climb out of the data directory).
pub fn check_name(name: &str) -> Result<()> {
    let ok = (1..=128).contains(&name.len())
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Param {
            name: "name",
            reason: format!(
                "{name:?}: an index name is 1 to 128 letters, digits, '_', '-' or '.', not \
                 starting with '.'"
            ),
        })
    }
}

/// The named indices of a data directory.
pub struct Registry {
    dir: PathBuf,
    indices: RwLock<BTreeMap<String, Arc<NamedIndex>>>,
    /// Held while open: one registry (one server) per data directory, since each keeps its
    /// indices' document counters in memory.
    _lock: std::fs::File,
}

/// The lock file of a data directory (hidden: never an index name).
const LOCK_FILE: &str = ".tartan-named.lock";

impl Registry {
    /// Opens (creating it if missing) the data directory and every named index in it.
    pub fn open(dir: &Path) -> Result<Self> {
        let io = |source| Error::Io { path: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|source| Error::Io { path: lock_path.clone(), source })?;
        if lock.try_lock().is_err() {
            let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
            return Err(Error::Param {
                name: "data directory",
                reason: format!(
                    "{} is in use by another server (pid {})",
                    dir.display(),
                    holder.trim()
                ),
            });
        }
        lock.set_len(0).map_err(|source| Error::Io { path: lock_path.clone(), source })?;
        std::io::Write::write_all(&mut &lock, std::process::id().to_string().as_bytes())
            .map_err(|source| Error::Io { path: lock_path.clone(), source })?;
        let mut indices = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            if check_name(&name).is_err() || !entry.path().join(STATE_FILE).exists() {
                continue;
            }
            let named = NamedIndex::load(name.clone(), entry.path())?;
            indices.insert(name, Arc::new(named));
        }
        Ok(Self { dir: dir.to_path_buf(), indices: RwLock::new(indices), _lock: lock })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every index name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.indices.read().expect("registry lock").keys().cloned().collect()
    }

    /// The index called `name`.
    ///
    /// # Errors
    /// [`Error::NamedIndex`] with `exists: false` if there is none.
    pub fn get(&self, name: &str) -> Result<Arc<NamedIndex>> {
        self.indices
            .read()
            .expect("registry lock")
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NamedIndex { name: name.to_string(), exists: false })
    }

    /// Declares a new, empty index.
    ///
    /// # Errors
    /// [`Error::NamedIndex`] with `exists: true` if the name is taken; [`Error::Param`] for a
    /// bad name or setting.
    pub fn create(&self, name: &str, config: NamedConfig) -> Result<Arc<NamedIndex>> {
        check_name(name)?;
        config.validate()?;
        let mut all = self.indices.write().expect("registry lock");
        let dir = self.dir.join(name);
        if all.contains_key(name) || dir.exists() {
            return Err(Error::NamedIndex { name: name.to_string(), exists: true });
        }
        std::fs::create_dir(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
        State { config, next_id: 0 }.save(&dir)?;
        let named = Arc::new(NamedIndex::load(name.to_string(), dir)?);
        all.insert(name.to_string(), named.clone());
        Ok(named)
    }

    /// Deletes the index called `name` and its files, after the change being applied (if
    /// any) finishes; changes still queued are dropped.
    pub fn delete(&self, name: &str) -> Result<()> {
        let named = self
            .indices
            .write()
            .expect("registry lock")
            .remove(name)
            .ok_or_else(|| Error::NamedIndex { name: name.to_string(), exists: false })?;
        named.stop();
        std::fs::remove_dir_all(&named.dir)
            .map_err(|source| Error::Io { path: named.dir.clone(), source })
    }
}

/// Settings, numbers and shape of a named index.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedInfo {
    /// Live documents.
    pub num_documents: u64,
    /// Their token vectors.
    pub num_embeddings: u64,
    /// Centroids (0 before the first documents).
    pub num_partitions: usize,
    /// Vector dimension (0 before the first documents).
    pub dimension: usize,
    /// The settings.
    pub config: NamedConfig,
    /// Changes accepted and not yet published.
    pub pending: usize,
    /// The last change that failed, if the latest one did.
    pub last_error: Option<String>,
}

/// One hit of a named index: document number, score, metadata (with its number).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedHit {
    /// The document's number.
    pub number: u64,
    /// MaxSim score.
    pub score: f32,
    /// Its metadata object.
    pub metadata: Value,
}

/// One named index.
pub struct NamedIndex {
    name: String,
    dir: PathBuf,
    state: Mutex<State>,
    queue: Mutex<Option<Sender<(Job, NamedConfig)>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
}

/// What the worker thread and the index share. Readers load `published` (never waiting);
/// the worker stores each generation it publishes.
struct Shared {
    pending: Mutex<usize>,
    idle: Condvar,
    last_error: Mutex<Option<String>>,
    published: ArcSwapOption<Index>,
}

impl NamedIndex {
    fn load(name: String, dir: PathBuf) -> Result<Self> {
        let state = State::load(&dir)?;
        let index_dir = dir.join(INDEX_DIR);
        let current = if index_dir.join(tartan_index::META_FILE).exists() {
            Some(Arc::new(Index::open(&index_dir)?))
        } else {
            None
        };
        let shared = Arc::new(Shared {
            pending: Mutex::new(0),
            idle: Condvar::new(),
            last_error: Mutex::new(None),
            published: ArcSwapOption::from(current),
        });
        let (tx, rx) = channel::<(Job, NamedConfig)>();
        let worker = {
            let (work_dir, shared) = (dir.clone(), shared.clone());
            std::thread::Builder::new()
                .name(format!("tartan-named-{name}"))
                .spawn(move || {
                    for (job, config) in rx {
                        let mut reply = None;
                        let outcome =
                            worker::apply(&work_dir, &config, job, &mut reply).and_then(|()| {
                                let index_dir = work_dir.join(INDEX_DIR);
                                if index_dir.join(tartan_index::META_FILE).exists() {
                                    let index = Index::open(&index_dir)?;
                                    shared.published.store(Some(Arc::new(index)));
                                }
                                Ok(())
                            });
                        // Answered only now: what the requester reads next is published.
                        if let Some((done, answer)) = reply {
                            let _ = done.send(answer);
                        }
                        *shared.last_error.lock().expect("error lock") =
                            outcome.err().map(|e| e.to_string());
                        let mut pending = shared.pending.lock().expect("pending lock");
                        *pending -= 1;
                        shared.idle.notify_all();
                    }
                })
                .map_err(|source| Error::Io { path: dir.clone(), source })?
        };
        let next = Self {
            name,
            dir,
            state: Mutex::new(state),
            queue: Mutex::new(Some(tx)),
            worker: Mutex::new(Some(worker)),
            shared,
        };
        next.fix_next_id()?;
        Ok(next)
    }

    /// A crash after documents were published and before the counter was saved must not hand
    /// their numbers out again.
    fn fix_next_id(&self) -> Result<()> {
        let Some(index) = self.index() else { return Ok(()) };
        let max = index.ids()?.iter().filter_map(|id| id.parse::<u64>().ok()).max();
        let mut state = self.state.lock().expect("state lock");
        if let Some(max) = max.filter(|&m| m >= state.next_id) {
            state.next_id = max + 1;
            state.save(&self.dir)?;
        }
        Ok(())
    }

    /// The index's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The last published generation (none before the first documents).
    pub fn index(&self) -> Option<Arc<Index>> {
        self.shared.published.load_full()
    }

    /// Settings, sizes, and what is queued.
    pub fn info(&self) -> NamedInfo {
        let index = self.index();
        let config = self.state.lock().expect("state lock").config.clone();
        let stats = index.as_ref().map(|i| i.stats());
        NamedInfo {
            num_documents: stats.as_ref().map_or(0, |s| s.n_docs),
            num_embeddings: stats.as_ref().map_or(0, |s| s.n_tokens),
            num_partitions: index.as_ref().map_or(0, |i| i.manifest().n_centroids),
            dimension: index.as_ref().map_or(0, |i| i.dim()),
            config,
            pending: *self.shared.pending.lock().expect("pending lock"),
            last_error: self.shared.last_error.lock().expect("error lock").clone(),
        }
    }

    /// Changes the document limit (None: none); a lower limit evicts at once (queued).
    pub fn set_max_documents(&self, max: Option<usize>) -> Result<NamedConfig> {
        let mut state = self.state.lock().expect("state lock");
        let mut config = state.config.clone();
        config.max_documents = max;
        config.validate()?;
        state.config = config.clone();
        state.save(&self.dir)?;
        self.enqueue(Job::Evict, config.clone())?;
        Ok(config)
    }

    /// Accepts documents (each `n_i × dim`, row-major) with optional metadata objects, numbers
    /// them and queues them; returns the first number given. They are searchable once the
    /// worker publishes them ([`NamedIndex::wait_idle`]).
    ///
    /// # Errors
    /// [`Error::Param`] or [`Error::Embeddings`] naming the document for empty, non-finite,
    /// non-unit or wrongly shaped vectors, a metadata count or object that does not fit, or a
    /// dimension other than the index's.
    pub fn add(&self, docs: &[ArrayView2<'_, f32>], metadata: Option<Vec<Value>>) -> Result<u64> {
        let bad = |reason: String| Error::Param { name: "documents", reason };
        let Some(first) = docs.first() else { return Err(bad("no documents".into())) };
        let dim = first.ncols();
        if let Some(want) = self.index().map(|i| i.dim()) {
            if want != dim {
                return Err(bad(format!("document 0 has dimension {dim}, the index {want}")));
            }
        }
        let metadata = match metadata {
            None => vec![Value::Object(Map::new()); docs.len()],
            Some(m) if m.len() != docs.len() => {
                return Err(Error::Param {
                    name: "metadata",
                    reason: format!("{} objects for {} documents", m.len(), docs.len()),
                })
            }
            Some(m) => m,
        };
        let mut lens = Vec::with_capacity(docs.len());
        let mut tokens = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            if d.ncols() != dim {
                return Err(bad(format!(
                    "document {i} has dimension {}, document 0 {dim}",
                    d.ncols()
                )));
            }
            lens.push(d.nrows() as u64);
            tokens.extend(d.iter().copied());
        }
        let mut objects = Vec::with_capacity(docs.len());
        for (i, m) in metadata.into_iter().enumerate() {
            match m {
                Value::Object(o) if o.contains_key(NUMBER_FIELD) => {
                    return Err(Error::Param {
                        name: "metadata",
                        reason: format!(
                            "object {i} sets {NUMBER_FIELD}, which holds the document number"
                        ),
                    })
                }
                Value::Object(o) => objects.push(o),
                Value::Null => objects.push(Map::new()),
                other => {
                    return Err(Error::Param {
                        name: "metadata",
                        reason: format!("entry {i} is {other}, not an object"),
                    })
                }
            }
        }
        let mut state = self.state.lock().expect("state lock");
        let start = state.next_id;
        let ids: Vec<String> = (start..start + docs.len() as u64).map(|n| n.to_string()).collect();
        // Validates shapes and values, naming the document by its new number.
        let embeddings = Embeddings::from_parts(dim, &lens, ids, tokens, LoadOptions::default())?;
        let metadata = objects
            .into_iter()
            .zip(start..)
            .map(|(mut o, n)| {
                o.insert(NUMBER_FIELD.to_string(), Value::from(n));
                Value::Object(o)
            })
            .collect();
        state.next_id = start + docs.len() as u64;
        state.save(&self.dir)?;
        let config = state.config.clone();
        drop(state);
        self.enqueue(Job::Add { docs: embeddings, metadata }, config)?;
        Ok(start)
    }

    /// Queues the deletion of every document whose metadata matches `filter`; returns how
    /// many match now.
    pub fn delete_where(&self, filter: Filter) -> Result<usize> {
        let now = match self.index() {
            Some(i) => i.matching(Some(&filter))?.len(),
            None => 0,
        };
        let config = self.state.lock().expect("state lock").config.clone();
        self.enqueue(Job::Delete { filter }, config)?;
        Ok(now)
    }

    /// Sets the fields of `updates` in the metadata of every document matching `filter`,
    /// after the changes queued before it, and returns how many documents it changed.
    ///
    /// # Errors
    /// [`Error::Param`] if `updates` sets the document number field.
    pub fn update_metadata(&self, filter: Filter, updates: Map<String, Value>) -> Result<usize> {
        if updates.contains_key(NUMBER_FIELD) {
            return Err(Error::Param {
                name: "updates",
                reason: format!("{NUMBER_FIELD} holds the document number and cannot change"),
            });
        }
        let (done, answer) = channel();
        let config = self.state.lock().expect("state lock").config.clone();
        self.enqueue(Job::SetMetadata { filter, updates, done }, config)?;
        answer.recv().map_err(|_| Error::NamedIndex { name: self.name.clone(), exists: false })?
    }

    fn enqueue(&self, job: Job, config: NamedConfig) -> Result<()> {
        let queue = self.queue.lock().expect("queue lock");
        let tx = queue
            .as_ref()
            .ok_or_else(|| Error::NamedIndex { name: self.name.clone(), exists: false })?;
        *self.shared.pending.lock().expect("pending lock") += 1;
        if tx.send((job, config)).is_err() {
            *self.shared.pending.lock().expect("pending lock") -= 1;
            return Err(Error::NamedIndex { name: self.name.clone(), exists: false });
        }
        Ok(())
    }

    /// Waits until every accepted change is published (or has failed).
    pub fn wait_idle(&self) {
        let mut pending = self.shared.pending.lock().expect("pending lock");
        while *pending > 0 {
            pending = self.shared.idle.wait(pending).expect("pending lock");
        }
    }

    /// Stops taking changes and waits for the worker to finish the one it is applying.
    fn stop(&self) {
        self.queue.lock().expect("queue lock").take();
        if let Some(handle) = self.worker.lock().expect("worker lock").take() {
            let _ = handle.join();
        }
    }

    /// Searches each query (`n × dim`) with `params` (its filter included); hits carry their
    /// document numbers and metadata. No documents yet: no hits.
    pub fn search(
        &self,
        queries: &[ArrayView2<'_, f32>],
        params: &SearchParams,
    ) -> Result<Vec<Vec<NamedHit>>> {
        let Some(index) = self.index() else { return Ok(vec![Vec::new(); queries.len()]) };
        if index.n_docs() == 0 {
            return Ok(vec![Vec::new(); queries.len()]);
        }
        let results = index.search_batch(queries, params)?;
        results
            .into_iter()
            .map(|hits| {
                hits.into_iter()
                    .map(|h| {
                        Ok(NamedHit {
                            number: number(&h.id)?,
                            score: h.score,
                            metadata: metadata_of(&index, h.doc)?,
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// Numbers of the live documents matching `filter` (all without one), ascending.
    pub fn numbers(&self, filter: Option<&Filter>) -> Result<Vec<u64>> {
        let Some(index) = self.index() else { return Ok(Vec::new()) };
        let mut out = index
            .matching(filter)?
            .into_iter()
            .map(|d| number(index.id(d).expect("a live position")?))
            .collect::<Result<Vec<u64>>>()?;
        out.sort_unstable();
        Ok(out)
    }

    /// Metadata objects (with their numbers) of the live documents matching `filter` and, if
    /// given, numbered in `numbers`, by ascending number, at most `limit`.
    pub fn metadata(
        &self,
        filter: Option<&Filter>,
        numbers: Option<&[u64]>,
        limit: Option<usize>,
    ) -> Result<Vec<Value>> {
        let Some(index) = self.index() else { return Ok(Vec::new()) };
        let wanted: Option<std::collections::HashSet<u64>> =
            numbers.map(|n| n.iter().copied().collect());
        let mut rows = Vec::new();
        for d in index.matching(filter)? {
            let n = number(index.id(d).expect("a live position")?)?;
            if wanted.as_ref().is_none_or(|w| w.contains(&n)) {
                rows.push((n, d));
            }
        }
        rows.sort_unstable();
        rows.truncate(limit.unwrap_or(usize::MAX));
        rows.into_iter().map(|(_, d)| metadata_of(&index, d)).collect()
    }
}

impl Drop for NamedIndex {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A tartan id of a named index as its document number.
fn number(id: &str) -> Result<u64> {
    id.parse().map_err(|_| Error::Param {
        name: "index",
        reason: format!("document id {id:?} is not a number: not a named index's document"),
    })
}

/// The stored metadata object of the document at position `doc` (an empty object if none).
fn metadata_of(index: &Index, doc: u64) -> Result<Value> {
    match index.metadata(doc).transpose()? {
        Some(text) if !text.is_empty() => serde_json::from_str(text).map_err(|e| Error::Param {
            name: "metadata",
            reason: format!("stored metadata of document {doc}: {e}"),
        }),
        _ => Ok(Value::Object(Map::new())),
    }
}
