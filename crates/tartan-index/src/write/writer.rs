//! Live changes: add, delete, upsert, compact and retrain, each published as a generation.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use tartan_embeddings::{Embeddings, EmbeddingsWriter, Kind, LoadOptions, Precision};

use crate::budget::{Budget, DEFAULT_MEMORY};
use crate::error::{IndexError, Result};
use crate::format::container::FORMAT_VERSION;
use crate::format::lock::{collect_garbage, WriterLock};
use crate::format::manifest::{sync_dir, FileRef, Manifest, SegmentMeta};
use crate::segment::deletes::{self, Bitmap};
use crate::segment::{self, SegmentDocs};
use crate::{Extras, Index, IndexParams, Progress};

/// A fail point in tests, nothing otherwise.
#[cfg(test)]
macro_rules! fail_point {
    ($p:ident) => {
        FailPoint::$p
    };
}
#[cfg(not(test))]
macro_rules! fail_point {
    ($p:ident) => {
        ()
    };
}

/// Directory (inside the index) where `retrain` stages the decompressed documents.
const RETRAIN_DIR: &str = "retrain.tmp";

/// Where a live document is: segment id (stable across generations) and local number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    seg: u64,
    doc: u32,
}

/// The one writer of an index: stages adds and deletes, then publishes them together as a
/// new generation with [`IndexWriter::commit`].
///
/// Holds the index's lock file (`tartan.lock`) while it lives, so a second writer, in this
/// process or another, gets [`IndexError::Locked`]. Readers are never blocked: they keep the
/// generation they opened. Changes not committed are invisible and are discarded (their files
/// removed by the next writer) if the writer is dropped or the process dies.
#[derive(Debug)]
pub struct IndexWriter {
    dir: PathBuf,
    _lock: WriterLock,
    base: Index,
    /// Every live document, committed or staged.
    ids: HashMap<String, Loc>,
    /// Staged deletions of committed segments (whole bitmaps, old deletions included).
    deleted: HashMap<u64, Bitmap>,
    /// Staged segments, written but not published.
    added: Vec<SegmentMeta>,
    /// A generation was published but reopening it failed: reopen before the next change.
    stale: bool,
    /// The next step at which to fail (tests of commit's outcome).
    #[cfg(test)]
    fail_at: Option<FailPoint>,
}

/// Steps of publishing at which a test injects a failure.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailPoint {
    /// Writing the staged manifest (before the commit point).
    Stage,
    /// Syncing the directory after the rename.
    SyncAfter,
    /// Reopening the published generation.
    Reopen,
}

/// What a commit published.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitStats {
    /// The generation now published (unchanged when there was nothing to commit).
    pub generation: u64,
    /// Documents added.
    pub added: u64,
    /// Documents deleted.
    pub deleted: u64,
    /// Files of older generations removed.
    pub removed_files: usize,
    /// Unused files kept because a reader still has them open (removed by a later writer).
    pub files_in_use: usize,
}

impl IndexWriter {
    /// Takes the index's writer lock, opens its latest generation and removes files no
    /// generation uses (leftovers of crashed writers, old generations no reader holds).
    pub fn open(dir: &Path) -> Result<Self> {
        // No lock file is created where there is no index.
        if !dir.join(crate::format::manifest::META_FILE).is_file() {
            return Err(IndexError::NoIndex { path: dir.to_path_buf() });
        }
        let lock = WriterLock::acquire(dir)?;
        let base = Index::open(dir)?;
        collect_garbage(dir, &base.manifest)?;
        let _ = std::fs::remove_dir_all(dir.join(RETRAIN_DIR));
        let mut w = Self {
            dir: dir.to_path_buf(),
            _lock: lock,
            base,
            ids: HashMap::new(),
            deleted: HashMap::new(),
            added: Vec::new(),
            stale: false,
            #[cfg(test)]
            fail_at: None,
        };
        w.index_ids()?;
        Ok(w)
    }

    fn index_ids(&mut self) -> Result<()> {
        self.ids.clear();
        self.ids.reserve(self.base.n_docs() as usize);
        for (seg, meta) in self.base.segments.iter().zip(&self.base.manifest.segments) {
            for d in seg.live_docs() {
                let loc = Loc { seg: meta.id, doc: d as u32 };
                if self.ids.insert(seg.id(d)?.to_string(), loc).is_some() {
                    return Err(IndexError::Corrupt {
                        path: seg.file.path.clone(),
                        reason: format!("id {:?} is live twice", seg.id(d)?),
                    });
                }
            }
        }
        Ok(())
    }

    /// After a publish whose reopen failed: opens the published generation now.
    fn ensure_fresh(&mut self) -> Result<()> {
        if self.stale {
            self.base = Index::open(&self.dir)?;
            self.index_ids()?;
            self.stale = false;
        }
        Ok(())
    }

    /// Fails here if a test asked for it.
    #[cfg(test)]
    fn fail(&mut self, at: FailPoint) -> Result<()> {
        if self.fail_at == Some(at) {
            self.fail_at = None;
            let source = std::io::Error::other(format!("injected failure at {at:?}"));
            return Err(IndexError::Io { path: self.dir.clone(), source });
        }
        Ok(())
    }
    #[cfg(not(test))]
    fn fail(&mut self, _: ()) -> Result<()> {
        Ok(())
    }

    /// The committed generation this writer builds on.
    pub fn index(&self) -> &Index {
        &self.base
    }

    /// Whether `id` is a live document (committed or staged).
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// Live documents, staged changes included.
    pub fn n_docs(&self) -> u64 {
        self.ids.len() as u64
    }

    /// Whether there are staged changes.
    pub fn has_changes(&self) -> bool {
        !self.added.is_empty() || !self.deleted.is_empty()
    }

    /// Stages `docs` (with their texts / metadata) as a new segment encoded with the index's
    /// codebook. Their ids must not be live.
    pub fn add(
        &mut self,
        docs: &Embeddings,
        extras: &Extras,
        progress: &dyn Progress,
    ) -> Result<()> {
        self.ensure_fresh()?;
        if docs.n_docs() == 0 {
            return Err(IndexError::NoDocuments);
        }
        if docs.dim() != self.base.dim() {
            return Err(IndexError::DimMismatch { expected: self.base.dim(), got: docs.dim() });
        }
        extras.check(docs)?;
        let mut batch = HashSet::with_capacity(docs.n_docs());
        for id in docs.ids() {
            if self.ids.contains_key(id) || !batch.insert(id.as_str()) {
                return Err(IndexError::DuplicateId { id: id.clone() });
            }
        }
        let seg_id = self.base.manifest.next_segment_id + self.added.len() as u64;
        let name = format!("segment.{seg_id:06}.tseg");
        let path = self.dir.join(&name);
        // Only an unpublished leftover can have this name (ids are never reused).
        let _ = std::fs::remove_file(&path);
        let written = match crate::write::encode::encode_segment(
            &path,
            docs,
            extras,
            self.base.codebook(),
            None,
            Budget::new(DEFAULT_MEMORY),
            progress,
        ) {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        let n_tokens = docs.n_tokens() as u64;
        self.added.push(written.meta(seg_id, name, docs.n_docs() as u64, n_tokens));
        for (d, id) in docs.ids().iter().enumerate() {
            self.ids.insert(id.clone(), Loc { seg: seg_id, doc: d as u32 });
        }
        Ok(())
    }

    /// Stages the deletion of every id in `ids`. All or nothing: an id that is not live (or
    /// is named twice) fails the call and stages nothing. Returns the number deleted.
    pub fn delete<S: AsRef<str>>(&mut self, ids: &[S]) -> Result<usize> {
        self.ensure_fresh()?;
        let mut locs = Vec::with_capacity(ids.len());
        let mut seen = HashSet::with_capacity(ids.len());
        for id in ids {
            let id = id.as_ref();
            let loc = self.ids.get(id).filter(|_| seen.insert(id));
            let Some(&loc) = loc else {
                return Err(IndexError::UnknownId { id: id.to_string() });
            };
            if loc.seg >= self.base.manifest.next_segment_id {
                return Err(IndexError::Param {
                    name: "ids",
                    reason: format!("{id:?} was added in this uncommitted batch; commit first"),
                });
            }
            locs.push((id, loc));
        }
        for (id, loc) in locs {
            if !self.deleted.contains_key(&loc.seg) {
                let seg = &self.base.segments[self.segment_index(loc.seg)];
                let current = seg.deleted.as_ref().map(|(_, b)| b.clone());
                self.deleted.insert(loc.seg, current.unwrap_or_else(|| Bitmap::new(seg.n_docs)));
            }
            self.deleted.get_mut(&loc.seg).expect("inserted").insert(loc.doc as usize);
            self.ids.remove(id);
        }
        Ok(ids.len())
    }

    /// Stages `docs` replacing the live documents with the same ids (others are added), so
    /// that the next commit publishes the delete and the add together.
    pub fn upsert(
        &mut self,
        docs: &Embeddings,
        extras: &Extras,
        progress: &dyn Progress,
    ) -> Result<usize> {
        let existing: Vec<&str> =
            docs.ids().iter().map(String::as_str).filter(|id| self.ids.contains_key(*id)).collect();
        let saved = (self.ids.clone(), self.deleted.clone());
        let replaced = self.delete(&existing)?;
        if let Err(e) = self.add(docs, extras, progress) {
            (self.ids, self.deleted) = saved;
            return Err(e);
        }
        Ok(replaced)
    }

    fn segment_index(&self, seg_id: u64) -> usize {
        self.base.manifest.segments.iter().position(|s| s.id == seg_id).expect("a live segment")
    }

    /// Publishes the staged changes as a new generation, then removes files of older
    /// generations that no reader holds.
    pub fn commit(&mut self) -> Result<CommitStats> {
        self.ensure_fresh()?;
        let old = &self.base.manifest;
        if !self.has_changes() {
            return Ok(CommitStats {
                generation: old.generation,
                added: 0,
                deleted: 0,
                removed_files: 0,
                files_in_use: 0,
            });
        }
        let generation = old.generation + 1;
        let mut segments = Vec::with_capacity(old.segments.len() + self.added.len());
        let mut n_deleted_now = 0;
        for meta in &old.segments {
            let mut meta = meta.clone();
            if let Some(bitmap) = self.deleted.get(&meta.id) {
                let count = bitmap.count() as u64;
                n_deleted_now += count - meta.n_deleted;
                if count == meta.n_docs {
                    continue; // nothing left to keep
                }
                let name = format!("deletes.{:06}.{generation:06}.tdel", meta.id);
                let path = self.dir.join(&name);
                let _ = std::fs::remove_file(&path);
                let (bytes, crc32) = deletes::write(&path, meta.id, bitmap)?;
                meta.n_deleted = count;
                meta.deletions = Some(FileRef { file: name, bytes, crc32 });
            }
            segments.push(meta);
        }
        let added: u64 = self.added.iter().map(|s| s.n_docs).sum();
        let next_segment_id = old.next_segment_id + self.added.len() as u64;
        segments.extend(self.added.iter().cloned());
        // The outcome is exact: before the commit point nothing changed and the staged work
        // stays staged (a retry publishes it); after it the writer moves on.
        match self.publish(generation, segments, next_segment_id) {
            Ok(()) => {}
            Err(e @ IndexError::Published { .. }) => {
                self.added.clear();
                self.deleted.clear();
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        self.added.clear();
        self.deleted.clear();
        let collected = collect_garbage(&self.dir, &self.base.manifest)?;
        Ok(CommitStats {
            generation,
            added,
            deleted: n_deleted_now,
            removed_files: collected.removed.len(),
            files_in_use: collected.in_use.len(),
        })
    }

    /// Writes and publishes a manifest of `segments` (files already written), then reopens.
    fn publish(
        &mut self,
        generation: u64,
        segments: Vec<SegmentMeta>,
        next_segment_id: u64,
    ) -> Result<()> {
        let old = &self.base.manifest;
        let manifest = Manifest {
            format: "tartan-index".into(),
            format_version: FORMAT_VERSION,
            generation,
            created_by: format!("tartan {}", env!("CARGO_PKG_VERSION")),
            dim: old.dim,
            nbits: old.nbits,
            n_centroids: old.n_centroids,
            n_docs: segments.iter().map(|s| s.n_docs).sum(),
            n_tokens: segments.iter().map(|s| s.n_tokens).sum(),
            n_deleted: segments.iter().map(|s| s.n_deleted).sum(),
            next_segment_id,
            codebook_id: Some(self.base.codebook().id().to_hex()),
            codebook: old.codebook.clone(),
            segments,
            build: old.build.clone(),
        };
        sync_dir(&self.dir)?;
        self.fail(fail_point!(Stage))?;
        let staged = manifest.write_staged(&self.dir)?;
        Manifest::install(&self.dir, &staged)?;
        // Published. What follows cannot undo it; a failure is reported as such.
        // Reopen before collecting: our own mappings of the old files must go first. The
        // codebook is unchanged (retrain publishes through the build), so it is shared.
        let after = self
            .fail(fail_point!(SyncAfter))
            .and_then(|()| sync_dir(&self.dir))
            .and_then(|()| self.fail(fail_point!(Reopen)))
            .and_then(|()| Index::open_with_scorer(&self.dir, self.base.scorer().clone()));
        match after {
            Ok(index) => {
                self.base = index;
                Ok(())
            }
            Err(e) => {
                self.stale = true;
                Err(IndexError::Published { generation, source: Box::new(e) })
            }
        }
    }

    /// Commits staged changes, then rewrites every segment's live documents into one new
    /// segment (codes and residuals are copied, not re-encoded) and publishes it. Old files
    /// are removed once no reader holds them. Nothing to do for one segment without deletions.
    pub fn compact(&mut self, progress: &dyn Progress) -> Result<CommitStats> {
        self.ensure_fresh()?;
        let pending = self.commit()?;
        let m = &self.base.manifest;
        if m.segments.len() <= 1 && m.n_deleted == 0 {
            return Ok(pending);
        }
        self.rewrite(&HashMap::new(), progress)
    }

    /// Commits staged changes, then replaces the metadata of the documents named in `changes`
    /// (id → the whole new metadata object) by rewriting the index as [`IndexWriter::compact`]
    /// does: vectors, codes and the other documents' metadata are copied unchanged, and the
    /// result is published as one generation.
    ///
    /// # Errors
    /// [`IndexError::UnknownId`] for an id that is not a live document, [`IndexError::Param`]
    /// for a value that is not a JSON object.
    pub fn set_metadata(
        &mut self,
        changes: &HashMap<String, serde_json::Value>,
        progress: &dyn Progress,
    ) -> Result<CommitStats> {
        self.ensure_fresh()?;
        self.commit()?;
        let mut compact = HashMap::with_capacity(changes.len());
        for (id, v) in changes {
            if !self.ids.contains_key(id.as_str()) {
                return Err(IndexError::UnknownId { id: id.clone() });
            }
            if !v.is_object() {
                return Err(IndexError::Param {
                    name: "metadata",
                    reason: format!("the metadata of {id:?} must be a JSON object"),
                });
            }
            compact.insert(id.clone(), v.to_string());
        }
        if compact.is_empty() {
            return Ok(CommitStats {
                generation: self.base.manifest.generation,
                added: 0,
                deleted: 0,
                removed_files: 0,
                files_in_use: 0,
            });
        }
        self.rewrite(&compact, progress)
    }

    /// One new segment of every live document, with `metadata` (id → compact JSON) replacing
    /// the stored objects it names.
    fn rewrite(
        &mut self,
        metadata: &HashMap<String, String>,
        progress: &dyn Progress,
    ) -> Result<CommitStats> {
        let m = &self.base.manifest;
        let base = &self.base;
        let (generation, removed_docs) = (m.generation + 1, m.n_deleted);
        let live: Vec<(usize, usize)> = base
            .segments
            .iter()
            .enumerate()
            .flat_map(|(si, s)| s.live_docs().map(move |d| (si, d)))
            .collect();
        if live.is_empty() {
            // Everything is deleted: the new generation has no segments.
            let next = m.next_segment_id;
            self.publish(generation, Vec::new(), next)?;
            return self.finish_rewrite(generation, 0, removed_docs);
        }
        let mut offsets = Vec::with_capacity(live.len() + 1);
        offsets.push(0u64);
        let mut ids = Vec::with_capacity(live.len());
        let any_texts = base.segments.iter().any(|s| s.has_texts());
        let any_meta = !metadata.is_empty() || base.segments.iter().any(|s| s.has_metadata());
        let mut texts = any_texts.then(Vec::new);
        let mut meta = any_meta.then(Vec::new);
        for &(si, d) in &live {
            let seg = &base.segments[si];
            let o = seg.doc_offsets();
            offsets.push(offsets.last().expect("non-empty") + o[d + 1] - o[d]);
            let id = seg.id(d)?;
            ids.push(id);
            if let Some(t) = &mut texts {
                t.push(seg.text(d).transpose()?.unwrap_or(""));
            }
            if let Some(md) = &mut meta {
                match metadata.get(id) {
                    Some(new) => md.push(new.as_str()),
                    None => md.push(seg.metadata(d).transpose()?.unwrap_or("")),
                }
            }
        }
        let n_tokens = *offsets.last().expect("non-empty");
        let parts = SegmentDocs { offsets: Cow::Owned(offsets), ids, texts, metadata: meta };
        let seg_id = m.next_segment_id;
        let name = format!("segment.{seg_id:06}.tseg");
        let path = self.dir.join(&name);
        let _ = std::fs::remove_file(&path);
        let budget = Budget::new(DEFAULT_MEMORY);
        let written = segment::write_segment(
            &path,
            &parts,
            base.codebook(),
            budget,
            progress,
            |w, spill| {
                progress.stage("compacting", live.len() as u64);
                let mut codes = Vec::new();
                let mut sum_sq = 0.0;
                for &(si, d) in &live {
                    let seg = &base.segments[si];
                    w.write(seg.residuals(d))?;
                    seg.codes(d).read_into(&mut codes);
                    // Codes of formats 1 and 2 were never range-checked at open; packing one at
                    // ceil(log2 K) bits must not meet a larger one.
                    if codes.iter().any(|&c| c as usize >= m.n_centroids) {
                        return Err(base.corrupt_codes(si));
                    }
                    spill.push(&codes)?;
                    let msr = m.segments[si].mean_sq_residual.unwrap_or(m.build.mean_sq_residual);
                    sum_sq += msr * codes.len() as f64;
                    progress.advance(1);
                }
                Ok(sum_sq)
            },
        )?;
        let meta = written.meta(seg_id, name, live.len() as u64, n_tokens);
        self.publish(generation, vec![meta], seg_id + 1)?;
        self.finish_rewrite(generation, 0, removed_docs)
    }

    /// After a generation that moved documents: re-map ids, collect old files.
    fn finish_rewrite(&mut self, generation: u64, added: u64, deleted: u64) -> Result<CommitStats> {
        self.index_ids()?;
        let collected = collect_garbage(&self.dir, &self.base.manifest)?;
        Ok(CommitStats {
            generation,
            added,
            deleted,
            removed_files: collected.removed.len(),
            files_in_use: collected.in_use.len(),
        })
    }

    /// Commits staged changes, then trains a new codebook on the live documents (their
    /// decompressed vectors: the originals are not kept) and re-encodes them into one
    /// segment, published as a new generation. `params` sets K, nbits, k-means passes and
    /// the sample as for a build. Ids, texts and metadata are kept.
    pub fn retrain(
        &mut self,
        params: &IndexParams,
        progress: &dyn Progress,
    ) -> Result<CommitStats> {
        params.validate()?;
        self.commit()?;
        if self.base.n_docs() == 0 {
            return Err(IndexError::NoDocuments);
        }
        let stage = self.dir.join(RETRAIN_DIR);
        let _ = std::fs::remove_dir_all(&stage);
        let result = self.retrain_via(&stage, params, progress);
        let _ = std::fs::remove_dir_all(&stage);
        if result.is_err() {
            // A failed retrain leaves no codebook or segment of the generation it did not
            // publish (the next retrain would find their names taken).
            let _ = collect_garbage(&self.dir, &self.base.manifest);
        }
        result
    }

    fn retrain_via(
        &mut self,
        stage: &Path,
        params: &IndexParams,
        progress: &dyn Progress,
    ) -> Result<CommitStats> {
        let base = &self.base;
        let dim = base.dim();
        progress.stage("decompressing", base.n_docs());
        let mut out = EmbeddingsWriter::create(stage, Kind::Docs, dim, Precision::F32, true)?;
        let (mut texts, mut metadata) = (Vec::new(), Vec::new());
        let any_texts = base.segments.iter().any(|s| s.has_texts());
        let any_meta = !metadata.is_empty() || base.segments.iter().any(|s| s.has_metadata());
        let mut buf = Vec::new();
        for (si, seg) in base.segments.iter().enumerate() {
            for d in seg.live_docs() {
                base.decompress_into(si, d, &mut buf)?;
                out.push(seg.id(d)?, &buf)?;
                if any_texts {
                    texts.push(seg.text(d).transpose()?.unwrap_or("").to_string());
                }
                if any_meta {
                    let m = seg.metadata(d).transpose()?.unwrap_or("");
                    let v = if m.is_empty() {
                        serde_json::Value::Null
                    } else {
                        serde_json::from_str(m).map_err(|e| IndexError::Corrupt {
                            path: seg.file.path.clone(),
                            reason: format!("metadata of document {d}: {e}"),
                        })?
                    };
                    metadata.push(v);
                }
                progress.advance(1);
            }
        }
        out.finish()?;
        let docs = Embeddings::open(stage, Kind::Docs, LoadOptions { normalize: true })?;
        let mut extras = Extras::new();
        if any_texts {
            extras = extras.texts(texts);
        }
        if any_meta {
            extras = extras.metadata(&metadata);
        }
        let m = &self.base.manifest;
        let (generation, seg_id, n) = (m.generation + 1, m.next_segment_id, m.n_live());
        crate::write::build::build_into(
            &docs,
            &extras,
            &self.dir,
            (generation, seg_id),
            params,
            progress,
        )?;
        drop(docs);
        self.base = Index::open(&self.dir)?;
        self.finish_rewrite(generation, n, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoProgress;

    fn setup() -> (tempfile::TempDir, PathBuf, tartan_synth::SynthCorpus) {
        let c = tartan_synth::SynthParams::new(60).dim(16).mean_doc_len(10.0).seed(4).generate();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("idx");
        let first = c.docs.select(&(0..40).collect::<Vec<_>>()).unwrap();
        Index::build(&first, &p, &IndexParams::new().n_centroids(16), &NoProgress).unwrap();
        (dir, p, c)
    }

    #[test]
    fn a_failure_before_the_commit_point_keeps_the_staged_work() {
        let (_d, p, c) = setup();
        let mut w = IndexWriter::open(&p).unwrap();
        w.add(&c.docs.select(&[40, 41]).unwrap(), &Extras::new(), &NoProgress).unwrap();
        w.delete(&["d3"]).unwrap();
        w.fail_at = Some(FailPoint::Stage);
        let err = w.commit().unwrap_err();
        assert!(!matches!(err, IndexError::Published { .. }), "{err}");
        // Nothing changed on disk; everything is still staged.
        assert_eq!(Index::open(&p).unwrap().generation(), 1);
        assert!(w.has_changes() && w.contains("d40") && !w.contains("d3"));
        // The retry publishes it, whole.
        let s = w.commit().unwrap();
        assert_eq!((s.generation, s.added, s.deleted), (2, 2, 1));
        let index = Index::open(&p).unwrap();
        index.verify().unwrap();
        assert_eq!(index.n_docs(), 41);
        let ids = index.ids().unwrap();
        assert!(ids.contains(&"d41") && !ids.contains(&"d3"));
    }

    #[test]
    fn a_failure_after_the_commit_point_reports_the_publish_and_moves_on() {
        for at in [FailPoint::SyncAfter, FailPoint::Reopen] {
            let (_d, p, c) = setup();
            let mut w = IndexWriter::open(&p).unwrap();
            w.add(&c.docs.select(&[40]).unwrap(), &Extras::new(), &NoProgress).unwrap();
            w.fail_at = Some(at);
            match w.commit() {
                Err(IndexError::Published { generation: 2, .. }) => {}
                other => panic!("{at:?}: {other:?}"),
            }
            // Published, and the writer does not stage it again.
            assert_eq!(Index::open(&p).unwrap().n_docs(), 41);
            assert!(!w.has_changes());
            // The next change builds on the published generation: no generation number is
            // reused and no published segment is collected.
            w.add(&c.docs.select(&[41]).unwrap(), &Extras::new(), &NoProgress).unwrap();
            let s = w.commit().unwrap();
            assert_eq!(s.generation, 3, "{at:?}");
            let index = Index::open(&p).unwrap();
            index.verify().unwrap();
            assert_eq!(index.n_docs(), 42);
            assert!(index.ids().unwrap().contains(&"d40"), "{at:?}");
        }
    }
}
