//! Collections: shards encoded with one codebook, put together in a `collection.json`
//! (created, grown, shrunk here), and changed document by document through one writer that
//! routes every id to its shard.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tartan_embeddings::Embeddings;
use tartan_index::{
    relative_path, CodebookId, CollectionManifest, CommitStats, Extras, Index, IndexError,
    IndexWriter, Progress, ShardEntry, ShardLocation, WriterLock,
};

use crate::error::{Error, Result};
use crate::remote::RemoteShard;

/// The lock a collection's writers take (beside `collection.json`).
pub const COLLECTION_LOCK: &str = "collection.lock";

/// A shard to put in a collection: an index directory (as the caller names it) or the URL of
/// a `tartan serve`, with an optional name (default: the directory's name, or the URL's
/// `host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSpec {
    /// Its name in the collection.
    pub name: Option<String>,
    /// An index directory or an `http://` URL.
    pub location: String,
}

impl ShardSpec {
    /// Parses `[NAME=]LOCATION`.
    pub fn parse(s: &str) -> Self {
        match s.split_once('=') {
            Some((name, loc)) if !name.is_empty() && !name.contains('/') && !name.contains(':') => {
                Self { name: Some(name.into()), location: loc.into() }
            }
            _ => Self { name: None, location: s.into() },
        }
    }
    fn is_remote(&self) -> bool {
        self.location.starts_with("http://") || self.location.starts_with("https://")
    }
    fn default_name(&self) -> String {
        if self.is_remote() {
            let rest = self.location.split_once("://").map_or("", |(_, r)| r);
            rest.trim_end_matches('/').replace('/', "_")
        } else {
            let p = Path::new(&self.location);
            p.file_name()
                .map_or_else(|| self.location.clone(), |n| n.to_string_lossy().into_owned())
        }
    }
}

/// Opens a codebook from any place that holds one: a codebook directory or file (from
/// `tartan train` or [`Codebook::save`]), an index (its codebook), or a collection (its first
/// local shard's, which every shard shares).
pub fn open_codebook(path: &Path) -> Result<std::sync::Arc<tartan_index::Codebook>> {
    match crate::detect(path) {
        crate::Found::Index => Ok(Index::open(path)?.codebook().clone()),
        crate::Found::Collection => {
            let m = CollectionManifest::load(path)?;
            for e in &m.shards {
                if let ShardLocation::Local(dir) = e.resolve(path) {
                    return Ok(Index::open(&dir)?.codebook().clone());
                }
            }
            Err(Error::Param {
                name: "codebook",
                reason: format!("{} has no local shard to read the codebook from", path.display()),
            })
        }
        crate::Found::Codebook | crate::Found::Nothing => {
            Ok(std::sync::Arc::new(tartan_index::Codebook::open(path)?))
        }
    }
}

/// How long collection management waits for a remote shard's health and ids.
const REMOTE_DEADLINE: Duration = Duration::from_secs(30);

/// What a shard is, as far as joining a collection goes.
struct Probe {
    entry: ShardEntry,
    codebook: CodebookId,
    shape: (usize, u8, usize),
    ids: Vec<String>,
}

fn probe(coll: &Path, spec: &ShardSpec) -> Result<Probe> {
    let name = spec.name.clone().unwrap_or_else(|| spec.default_name());
    let shard_err = |reason: String| Error::Shard { shard: name.clone(), reason };
    if spec.is_remote() {
        let client = RemoteShard::new(&name, &spec.location);
        let h = client.health(REMOTE_DEADLINE)?;
        let codebook = CodebookId::from_hex(&h.codebook_id)
            .ok_or_else(|| shard_err(format!("bad codebook id {:?}", h.codebook_id)))?;
        let ids = client.ids(REMOTE_DEADLINE)?;
        let entry = ShardEntry {
            name: name.clone(),
            location: client.url().to_string(),
            n_docs: h.n_docs,
            generation: 0,
        };
        return Ok(Probe { entry, codebook, shape: (h.dim, h.nbits, h.n_centroids), ids });
    }
    let dir = PathBuf::from(&spec.location);
    let index = Index::open(&dir).map_err(|e| shard_err(e.to_string()))?;
    let m = index.manifest();
    let entry = ShardEntry {
        name: name.clone(),
        location: relative_path(coll, &dir)?,
        n_docs: index.n_docs(),
        generation: index.generation(),
    };
    let ids = index.ids()?.into_iter().map(str::to_string).collect();
    Ok(Probe {
        entry,
        codebook: index.codebook().id(),
        shape: (m.dim, m.nbits, m.n_centroids),
        ids,
    })
}

/// Every live id of the collection's shards, for the uniqueness check.
fn all_ids(coll: &Path, m: &CollectionManifest) -> Result<HashSet<String>> {
    let mut ids = HashSet::new();
    for e in &m.shards {
        let list: Vec<String> = match e.resolve(coll) {
            ShardLocation::Local(dir) => {
                Index::open(&dir)?.ids()?.into_iter().map(str::to_string).collect()
            }
            ShardLocation::Remote(url) => RemoteShard::new(&e.name, &url).ids(REMOTE_DEADLINE)?,
        };
        ids.extend(list);
    }
    Ok(ids)
}

/// Checks that `p` may join `m` (same codebook and shape, a new name and location, no id
/// already held) and records it.
fn admit(m: &mut CollectionManifest, p: Probe, ids: &mut HashSet<String>) -> Result<()> {
    let shard_err = |reason: String| Error::Shard { shard: p.entry.name.clone(), reason };
    if p.codebook != m.codebook() {
        return Err(shard_err(format!(
            "encoded with codebook {}, the collection's is {}",
            p.codebook.short(),
            m.codebook().short()
        )));
    }
    let (dim, nbits, k) = p.shape;
    if (dim, nbits, k) != (m.dim, m.nbits, m.n_centroids) {
        return Err(shard_err("its shape differs from the collection's".into()));
    }
    if m.shard(&p.entry.name).is_some() {
        return Err(shard_err(
            "the collection has a shard of that name; name it NAME=LOCATION".into(),
        ));
    }
    if m.shards.iter().any(|s| s.location == p.entry.location) {
        return Err(shard_err(format!("{} is in the collection already", p.entry.location)));
    }
    for id in p.ids {
        if !ids.insert(id.clone()) {
            return Err(shard_err(format!("document id {id:?} is also in another shard")));
        }
    }
    m.shards.push(p.entry);
    Ok(())
}

fn lock(dir: &Path) -> Result<WriterLock> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    Ok(WriterLock::acquire_file(&dir.join(COLLECTION_LOCK))?)
}

/// Creates the collection `dir` of `shards` (at least one). The codebook is `codebook`'s id
/// when given, else the first shard's; every shard must share it, and no document id may be
/// in two shards. Refuses a directory that holds a collection already.
pub fn create_collection(
    dir: &Path,
    codebook: Option<CodebookId>,
    shards: &[ShardSpec],
) -> Result<CollectionManifest> {
    if shards.is_empty() {
        return Err(Error::Param {
            name: "shards",
            reason: "a collection needs at least one shard".into(),
        });
    }
    let _lock = lock(dir)?;
    if CollectionManifest::exists(dir) {
        return Err(IndexError::Exists { path: dir.to_path_buf() }.into());
    }
    let first = probe(dir, &shards[0])?;
    let (dim, nbits, k) = first.shape;
    let mut m = CollectionManifest::new(codebook.unwrap_or(first.codebook), dim, nbits, k);
    let mut ids = HashSet::new();
    admit(&mut m, first, &mut ids)?;
    for spec in &shards[1..] {
        admit(&mut m, probe(dir, spec)?, &mut ids)?;
    }
    m.publish(dir)?;
    Ok(m)
}

/// Adds a shard to the collection `dir` (same checks as at creation).
pub fn add_shard(dir: &Path, spec: &ShardSpec) -> Result<CollectionManifest> {
    let _lock = lock(dir)?;
    let mut m = CollectionManifest::load(dir)?;
    let mut ids = all_ids(dir, &m)?;
    admit(&mut m, probe(dir, spec)?, &mut ids)?;
    m.publish(dir)?;
    Ok(m)
}

/// Removes the shard `name` from the collection `dir` (its files are left alone).
pub fn remove_shard(dir: &Path, name: &str) -> Result<CollectionManifest> {
    let _lock = lock(dir)?;
    let mut m = CollectionManifest::load(dir)?;
    let before = m.shards.len();
    m.shards.retain(|s| s.name != name);
    if m.shards.len() == before {
        return Err(Error::Shard { shard: name.into(), reason: "no shard of that name".into() });
    }
    m.publish(dir)?;
    Ok(m)
}

/// The writer of a collection: changes documents of its shards by id, as one.
///
/// Holds the collection's lock and every shard's writer lock. New documents go to the shard
/// with the fewest live documents (the first such in collection order); an upsert replaces a
/// document in the shard that holds it; a delete goes to the shard that holds the id.
/// [`CollectionWriter::commit`] publishes each changed shard's generation, then the
/// collection's manifest with the new counts. Each shard's change is atomic, and every
/// document lives in exactly one shard; a crash between two shards' publishes leaves the
/// first changed and the second not (one `add` batch always goes to one shard).
///
/// Shards served remotely are changed through their own servers: a collection with a remote
/// shard has no collection writer.
#[derive(Debug)]
pub struct CollectionWriter {
    dir: PathBuf,
    _lock: WriterLock,
    manifest: CollectionManifest,
    writers: Vec<IndexWriter>,
}

/// What a collection commit published, per changed shard.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionCommit {
    /// The collection manifest's generation now.
    pub generation: u64,
    /// `(shard name, what its commit published)`, for the shards that changed.
    pub shards: Vec<(String, CommitStats)>,
}

impl CollectionCommit {
    /// Documents added over all shards.
    pub fn added(&self) -> u64 {
        self.shards.iter().map(|(_, s)| s.added).sum()
    }
    /// Documents deleted over all shards.
    pub fn deleted(&self) -> u64 {
        self.shards.iter().map(|(_, s)| s.deleted).sum()
    }
}

impl CollectionWriter {
    /// Takes the collection's lock and a writer for every shard.
    pub fn open(dir: &Path) -> Result<Self> {
        let lock = lock(dir)?;
        let manifest = CollectionManifest::load(dir)?;
        let mut writers = Vec::with_capacity(manifest.shards.len());
        for e in &manifest.shards {
            match e.resolve(dir) {
                ShardLocation::Local(p) => {
                    let w = IndexWriter::open(&p)?;
                    if w.index().codebook().id() != manifest.codebook() {
                        return Err(Error::Shard {
                            shard: e.name.clone(),
                            reason: "its codebook is no longer the collection's (retrained?)"
                                .into(),
                        });
                    }
                    writers.push(w);
                }
                ShardLocation::Remote(url) => {
                    return Err(Error::Shard {
                        shard: e.name.clone(),
                        reason: format!(
                            "served at {url}: change its documents through that server"
                        ),
                    })
                }
            }
        }
        Ok(Self { dir: dir.to_path_buf(), _lock: lock, manifest, writers })
    }

    /// The collection's manifest as last published.
    pub fn manifest(&self) -> &CollectionManifest {
        &self.manifest
    }
    /// Live documents, staged changes included.
    pub fn n_docs(&self) -> u64 {
        self.writers.iter().map(IndexWriter::n_docs).sum()
    }
    /// The shard holding `id` (a position in the manifest's shards), staged changes included.
    pub fn shard_of(&self, id: &str) -> Option<usize> {
        self.writers.iter().position(|w| w.contains(id))
    }
    /// Whether `id` is live in some shard.
    pub fn contains(&self, id: &str) -> bool {
        self.shard_of(id).is_some()
    }

    /// Where new documents go: the shard with the fewest live documents, the first on ties.
    pub fn target_shard(&self) -> usize {
        (0..self.writers.len()).min_by_key(|&i| (self.writers[i].n_docs(), i)).expect("a shard")
    }

    /// Stages `docs` as new documents of one shard ([`CollectionWriter::target_shard`]); their
    /// ids must not be live in any shard. Returns the shard.
    pub fn add(
        &mut self,
        docs: &Embeddings,
        extras: &Extras,
        progress: &dyn Progress,
    ) -> Result<usize> {
        if let Some(id) = docs.ids().iter().find(|id| self.contains(id)) {
            return Err(IndexError::DuplicateId { id: id.clone() }.into());
        }
        let target = self.target_shard();
        self.writers[target].add(docs, extras, progress)?;
        Ok(target)
    }

    /// Stages `docs`, each replacing the live document with its id in the shard that holds it,
    /// the others added to [`CollectionWriter::target_shard`]. Returns how many replaced.
    pub fn upsert(
        &mut self,
        docs: &Embeddings,
        extras: &Extras,
        progress: &dyn Progress,
    ) -> Result<usize> {
        let target = self.target_shard();
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); self.writers.len()];
        for (d, id) in docs.ids().iter().enumerate() {
            groups[self.shard_of(id).unwrap_or(target)].push(d);
        }
        let mut replaced = 0;
        for (si, positions) in groups.iter().enumerate().filter(|(_, p)| !p.is_empty()) {
            let part =
                if positions.len() == docs.n_docs() { None } else { Some(docs.select(positions)?) };
            let part_extras = extras.select(positions);
            replaced +=
                self.writers[si].upsert(part.as_ref().unwrap_or(docs), &part_extras, progress)?;
        }
        Ok(replaced)
    }

    /// Stages the deletion of `ids`, all or nothing: an id live in no shard (or named twice)
    /// fails the call and stages nothing.
    pub fn delete<S: AsRef<str>>(&mut self, ids: &[S]) -> Result<usize> {
        let mut groups: Vec<Vec<&str>> = vec![Vec::new(); self.writers.len()];
        let mut seen = HashSet::with_capacity(ids.len());
        for id in ids {
            let id = id.as_ref();
            match self.shard_of(id) {
                Some(s) if seen.insert(id) => groups[s].push(id),
                _ => return Err(IndexError::UnknownId { id: id.to_string() }.into()),
            }
        }
        for (w, group) in self.writers.iter_mut().zip(&groups).filter(|(_, g)| !g.is_empty()) {
            w.delete(group)?;
        }
        Ok(ids.len())
    }

    /// Publishes every shard's staged changes, then the collection's manifest with the shards'
    /// new counts and generations.
    pub fn commit(&mut self) -> Result<CollectionCommit> {
        let mut shards = Vec::new();
        for (w, e) in self.writers.iter_mut().zip(&self.manifest.shards) {
            if w.has_changes() {
                shards.push((e.name.clone(), w.commit()?));
            }
        }
        self.record(shards)
    }

    /// Commits, then compacts every shard.
    pub fn compact(&mut self, progress: &dyn Progress) -> Result<CollectionCommit> {
        let mut shards = Vec::new();
        for (w, e) in self.writers.iter_mut().zip(&self.manifest.shards) {
            shards.push((e.name.clone(), w.compact(progress)?));
        }
        self.record(shards)
    }

    fn record(&mut self, shards: Vec<(String, CommitStats)>) -> Result<CollectionCommit> {
        let mut changed = false;
        for (w, e) in self.writers.iter().zip(self.manifest.shards.iter_mut()) {
            let (n, g) = (w.index().n_docs(), w.index().generation());
            changed |= (e.n_docs, e.generation) != (n, g);
            (e.n_docs, e.generation) = (n, g);
        }
        if changed {
            self.manifest.publish(&self.dir)?;
        }
        Ok(CollectionCommit { generation: self.manifest.generation, shards })
    }
}
