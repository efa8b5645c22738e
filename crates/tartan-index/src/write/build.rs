//! Index build: a codebook (trained, or given), one segment encoded with it, published
//! atomically.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tartan_embeddings::Embeddings;

use crate::budget::Budget;
use crate::codebook::Codebook;
use crate::error::{IndexError, Result};
use crate::format::container::FORMAT_VERSION;
use crate::format::lock::{collect_garbage, WriterLock};
use crate::format::manifest::{sync_dir, BuildInfo, FileRef, Manifest, META_FILE};
use crate::params::IndexParams;
use crate::{Extras, Index, Progress};

/// Where the build writes and how it publishes.
enum Target {
    /// A fresh directory built beside the target and renamed into place.
    Fresh { tmp: PathBuf, dest: PathBuf },
    /// An existing index replaced by a new generation in the same directory, under the
    /// writer lock.
    NewGeneration { dir: PathBuf, old: Box<Manifest>, _lock: WriterLock },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io { path: path.to_path_buf(), source }
}

fn prepare_target(dest: &Path, overwrite: bool) -> Result<Target> {
    if dest.exists() {
        let empty = std::fs::read_dir(dest).map_err(io(dest))?.next().is_none();
        if !empty {
            if !dest.join(META_FILE).exists() {
                // Never clobber a directory that is not ours.
                return Err(IndexError::Exists { path: dest.to_path_buf() });
            }
            if !overwrite {
                return Err(IndexError::Exists { path: dest.to_path_buf() });
            }
            let lock = WriterLock::acquire(dest)?;
            let old = Manifest::load(dest)?;
            collect_garbage(dest, &old)?;
            return Ok(Target::NewGeneration {
                dir: dest.to_path_buf(),
                old: Box::new(old),
                _lock: lock,
            });
        }
    }
    let name = dest.file_name().ok_or_else(|| IndexError::Param {
        name: "index directory",
        reason: format!("{} has no final component", dest.display()),
    })?;
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let tmp =
        parent.join(format!(".{}.tmp-{}-{nanos}", name.to_string_lossy(), std::process::id()));
    std::fs::create_dir(&tmp).map_err(io(&tmp))?;
    Ok(Target::Fresh { tmp, dest: dest.to_path_buf() })
}

impl Index {
    /// Builds an index of `docs` in `dir` and opens it (no texts, no metadata).
    ///
    /// A new directory is written beside `dir` and renamed into place; an existing index is
    /// only replaced with `overwrite`, by writing a new generation's files and publishing a
    /// new manifest. Either way a crash leaves the old index or the new one, never a mix.
    pub fn build(
        docs: &Embeddings,
        dir: &Path,
        params: &IndexParams,
        progress: &dyn Progress,
    ) -> Result<Index> {
        Self::build_with(docs, &Extras::new(), dir, params, progress)
    }

    /// [`Index::build`], also storing each document's text and metadata from `extras`.
    pub fn build_with(
        docs: &Embeddings,
        extras: &Extras,
        dir: &Path,
        params: &IndexParams,
        progress: &dyn Progress,
    ) -> Result<Index> {
        params.validate()?;
        if docs.n_docs() == 0 {
            return Err(IndexError::NoDocuments);
        }
        extras.check(docs)?;
        build_atomically(dir, params.overwrite, |work, ids| {
            build_into(docs, extras, work, ids, params, progress)
        })
    }
}

/// Runs `write` (given the working directory and the new generation's and segment's
/// numbers) so that its result appears under `dir` atomically: a fresh directory renamed into
/// place, or with `overwrite` a new generation of the index there. Opens the result.
pub(crate) fn build_atomically(
    dir: &Path,
    overwrite: bool,
    write: impl FnOnce(&Path, (u64, u64)) -> Result<()>,
) -> Result<Index> {
    let target = prepare_target(dir, overwrite)?;
    let work = match &target {
        Target::Fresh { tmp, .. } => tmp.clone(),
        Target::NewGeneration { dir, .. } => dir.clone(),
    };
    let ids = match &target {
        Target::Fresh { .. } => (1, 1),
        Target::NewGeneration { old, .. } => (old.generation + 1, old.next_segment_id),
    };
    let result = write(&work, ids);
    match (&target, result) {
        (Target::Fresh { tmp, dest }, Ok(())) => {
            if let Err(e) = std::fs::rename(tmp, dest) {
                // Nothing was published: leave no half of it behind either.
                let _ = std::fs::remove_dir_all(tmp);
                return Err(io(dest)(e));
            }
            if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        (Target::Fresh { tmp, .. }, Err(e)) => {
            // Best effort: the half-built directory was never visible under `dir`.
            let _ = std::fs::remove_dir_all(tmp);
            return Err(e);
        }
        (Target::NewGeneration { dir, .. }, Ok(())) => {
            // Old files go once no reader holds them (a later writer retries the rest).
            collect_garbage(dir, &Manifest::load(dir)?)?;
        }
        (Target::NewGeneration { dir, old, .. }, Err(e)) => {
            // The unpublished files of the failed generation go now, not at the next
            // writer's open (a retry would trip over them).
            let _ = collect_garbage(dir, old);
            return Err(e);
        }
    }
    Index::open(dir)
}

pub(crate) fn build_into(
    docs: &Embeddings,
    extras: &Extras,
    work: &Path,
    (generation, seg_id): (u64, u64),
    params: &IndexParams,
    progress: &dyn Progress,
) -> Result<()> {
    let dim = docs.dim();
    let codebook = match &params.codebook {
        Some(cb) => {
            if cb.dim() != dim {
                return Err(IndexError::DimMismatch { expected: cb.dim(), got: dim });
            }
            cb.clone()
        }
        None => Arc::new(Codebook::train(docs, params, progress)?),
    };
    let cb_name = format!("codebook.{generation:06}.tcb");
    let (cb_bytes, cb_crc) = codebook.write_file(&work.join(&cb_name))?;
    let seg_name = format!("segment.{seg_id:06}.tseg");
    let written = crate::write::encode::encode_segment(
        &work.join(&seg_name),
        docs,
        extras,
        &codebook,
        params.assignment_for(codebook.n_centroids(), docs.n_tokens()),
        Budget::new(params.memory),
        progress,
    )?;
    sync_dir(work)?;

    let n_tokens = docs.n_tokens() as u64;
    let train = codebook.train_info().copied();
    let msr_all = written.sum_sq_residual / n_tokens.max(1) as f64;
    let build = BuildInfo {
        seed: train.map_or(params.seed, |t| t.seed),
        kmeans_iters: train.map_or(params.kmeans_iters, |t| t.kmeans_iters as usize),
        sample_docs: train.map_or(0, |t| t.sample_docs),
        kmeans_points: train.map_or(0, |t| t.kmeans_points),
        codec_tokens: train.map_or(0, |t| t.codec_tokens),
        centroids_from_user: train.is_some_and(|t| t.centroids_from_user),
        // The drift baseline: the codebook's held-out tokens, so that every index or shard
        // encoded with one codebook compares its data with the same training data.
        mean_sq_residual: train.map_or(msr_all, |t| t.mean_sq_residual),
        // Not recorded: the same inputs and codebook give the same bytes.
        build_seconds: None,
    };
    let codebook_file = FileRef { file: cb_name, bytes: cb_bytes, crc32: cb_crc };
    let segment = written.meta(seg_id, seg_name, docs.n_docs() as u64, n_tokens);
    let manifest = one_segment(&codebook, codebook_file, generation, segment, build);
    manifest.publish(work)
}

/// The manifest of a fresh generation holding one segment.
pub(crate) fn one_segment(
    codebook: &Codebook,
    codebook_file: FileRef,
    generation: u64,
    segment: crate::format::manifest::SegmentMeta,
    build: BuildInfo,
) -> Manifest {
    Manifest {
        format: "tartan-index".into(),
        format_version: FORMAT_VERSION,
        generation,
        created_by: format!("tartan {}", env!("CARGO_PKG_VERSION")),
        dim: codebook.dim(),
        nbits: codebook.nbits(),
        n_centroids: codebook.n_centroids(),
        n_docs: segment.n_docs,
        n_tokens: segment.n_tokens,
        n_deleted: 0,
        next_segment_id: segment.id + 1,
        codebook: codebook_file,
        codebook_id: Some(codebook.id().to_hex()),
        segments: vec![segment],
        build,
    }
}
