//! One writer for an index or a collection alike, for front ends that take either.

use std::path::Path;

use tartan_embeddings::Embeddings;
use tartan_index::{Extras, IndexWriter, Progress};

use crate::collection::CollectionWriter;
use crate::error::Result;

/// The writer of an index ([`IndexWriter`]) or of a collection ([`CollectionWriter`]).
#[derive(Debug)]
pub enum Writer {
    /// An index.
    Index(Box<IndexWriter>),
    /// A collection of local shards.
    Collection(CollectionWriter),
}

/// What a commit published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The index's (or the collection manifest's) generation now.
    pub generation: u64,
    /// Documents added.
    pub added: u64,
    /// Documents deleted.
    pub deleted: u64,
}

impl Writer {
    /// Opens the writer of the index or collection at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if crate::detect(path) == crate::Found::Collection {
            Ok(Self::Collection(CollectionWriter::open(path)?))
        } else {
            Ok(Self::Index(Box::new(IndexWriter::open(path)?)))
        }
    }
    /// Vector dimension.
    pub fn dim(&self) -> usize {
        match self {
            Self::Index(w) => w.index().dim(),
            Self::Collection(w) => w.manifest().dim,
        }
    }
    /// Live documents, staged changes included.
    pub fn n_docs(&self) -> u64 {
        match self {
            Self::Index(w) => w.n_docs(),
            Self::Collection(w) => w.n_docs(),
        }
    }
    /// Whether `id` is live.
    pub fn contains(&self, id: &str) -> bool {
        match self {
            Self::Index(w) => w.contains(id),
            Self::Collection(w) => w.contains(id),
        }
    }
    /// Stages new documents.
    pub fn add(
        &mut self,
        docs: &Embeddings,
        extras: &Extras,
        progress: &dyn Progress,
    ) -> Result<()> {
        match self {
            Self::Index(w) => Ok(w.add(docs, extras, progress)?),
            Self::Collection(w) => w.add(docs, extras, progress).map(|_| ()),
        }
    }
    /// Stages documents replacing those with the same ids (others are added); returns how
    /// many replaced.
    pub fn upsert(
        &mut self,
        docs: &Embeddings,
        extras: &Extras,
        progress: &dyn Progress,
    ) -> Result<usize> {
        match self {
            Self::Index(w) => Ok(w.upsert(docs, extras, progress)?),
            Self::Collection(w) => w.upsert(docs, extras, progress),
        }
    }
    /// Stages deletions by id, all or nothing.
    pub fn delete<S: AsRef<str>>(&mut self, ids: &[S]) -> Result<usize> {
        match self {
            Self::Index(w) => Ok(w.delete(ids)?),
            Self::Collection(w) => w.delete(ids),
        }
    }
    /// Publishes the staged changes.
    pub fn commit(&mut self) -> Result<Committed> {
        match self {
            Self::Index(w) => {
                let s = w.commit()?;
                Ok(Committed { generation: s.generation, added: s.added, deleted: s.deleted })
            }
            Self::Collection(w) => {
                let c = w.commit()?;
                Ok(Committed { generation: c.generation, added: c.added(), deleted: c.deleted() })
            }
        }
    }
    /// Commits, then merges segments and drops deleted documents (every shard's).
    pub fn compact(&mut self, progress: &dyn Progress) -> Result<Committed> {
        match self {
            Self::Index(w) => {
                let s = w.compact(progress)?;
                Ok(Committed { generation: s.generation, added: s.added, deleted: s.deleted })
            }
            Self::Collection(w) => {
                let c = w.compact(progress)?;
                Ok(Committed { generation: c.generation, added: c.added(), deleted: c.deleted() })
            }
        }
    }
}
