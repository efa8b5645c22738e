//! Index build: sample, k-means, codec, encode, write, publish.

use std::path::{Path, PathBuf};
use std::time::Instant;

use linfa::prelude::*;
use ndarray::ArrayView2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tartan_codec::{CodecParams, ResidualCodec};
use tartan_embeddings::Embeddings;
use tartan_kmeans::KMeansParams;

use crate::codebook::{self, Codebook};
use crate::container::FORMAT_VERSION;
use crate::error::{IndexError, Result};
use crate::lock::{collect_garbage, WriterLock};
use crate::manifest::{sync_dir, BuildInfo, FileRef, Manifest, META_FILE};
use crate::params::{default_n_centroids, default_sample_docs, IndexParams};
use crate::{segment, Extras, Index, Progress};

/// ColBERT holds out 5% of the training sample, at most 50,000 tokens, for the codec.
const HELDOUT_FRACTION: f64 = 0.05;
const HELDOUT_MAX: usize = 50_000;

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

/// Training data drawn from a sample of documents: k-means points and held-out tokens.
struct Sample {
    n_docs: usize,
    kmeans: Vec<f32>,
    heldout: Vec<f32>,
}

fn draw_sample(docs: &Embeddings, params: &IndexParams, rng: &mut ChaCha8Rng) -> Sample {
    let n_docs = docs.n_docs();
    let n_sample = params.sample_docs.unwrap_or_else(|| default_sample_docs(n_docs)).min(n_docs);
    let mut picked: Vec<usize> = rand::seq::index::sample(rng, n_docs, n_sample).into_vec();
    picked.sort_unstable();
    let dim = docs.dim();
    // Token positions of the sampled documents, shuffled; gathered into flat buffers so the
    // sample costs one allocation per buffer, not one per token.
    let mut tokens: Vec<usize> = picked
        .iter()
        .flat_map(|&d| docs.offsets()[d] as usize..docs.offsets()[d + 1] as usize)
        .collect();
    tokens.shuffle(rng);
    let n_held = ((tokens.len() as f64 * HELDOUT_FRACTION) as usize).clamp(1, HELDOUT_MAX);
    let n_held = if tokens.len() > 1 { n_held.min(tokens.len() - 1) } else { 0 };
    let gather = |ts: &[usize]| {
        let mut out = vec![0f32; ts.len() * dim];
        for (row, &t) in out.chunks_exact_mut(dim).zip(ts) {
            docs.read_tokens(t, row);
        }
        out
    };
    let heldout = gather(&tokens[..n_held]);
    let kmeans = gather(&tokens[n_held..]);
    Sample { n_docs: n_sample, kmeans, heldout }
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
        let target = prepare_target(dir, params.overwrite)?;
        let work = match &target {
            Target::Fresh { tmp, .. } => tmp.clone(),
            Target::NewGeneration { dir, .. } => dir.clone(),
        };
        let ids = match &target {
            Target::Fresh { .. } => (1, 1),
            Target::NewGeneration { old, .. } => (old.generation + 1, old.next_segment_id),
        };
        let result = build_into(docs, extras, &work, ids, params, progress);
        match (&target, result) {
            (Target::Fresh { tmp, dest }, Ok(())) => {
                std::fs::rename(tmp, dest).map_err(io(dest))?;
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
            (Target::NewGeneration { .. }, Err(e)) => return Err(e),
        }
        Index::open(dir)
    }
}

pub(crate) fn build_into(
    docs: &Embeddings,
    extras: &Extras,
    work: &Path,
    (generation, seg_id): (u64, u64),
    params: &IndexParams,
    progress: &dyn Progress,
) -> Result<()> {
    let started = Instant::now();
    let dim = docs.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    progress.stage("sampling", 0);
    let sample = draw_sample(docs, params, &mut rng);
    let n_points = sample.kmeans.len() / dim;
    let (centroids, kmeans_points) = match &params.centroids {
        Some(given) => {
            if given.len() % dim != 0 || params.n_centroids.is_some_and(|k| k * dim != given.len())
            {
                return Err(IndexError::Param {
                    name: "centroids",
                    reason: format!(
                        "{} values are not whole {dim}-dimensional centroids (or not n_centroids of them)",
                        given.len()
                    ),
                });
            }
            (given.to_vec(), 0)
        }
        None => {
            let k = match params.n_centroids {
                Some(k) if k > n_points => {
                    return Err(IndexError::Param {
                        name: "n_centroids",
                        reason: format!(
                            "{k} centroids need at least {k} training tokens, the sample has {n_points}"
                        ),
                    })
                }
                Some(k) => k,
                None => {
                    // The formula can exceed the sample on tiny corpora: take the largest power of two
                    // that the sample can train.
                    let k = default_n_centroids(docs.n_tokens());
                    if k > n_points {
                        1usize << n_points.max(1).ilog2()
                    } else {
                        k
                    }
                }
            };
            progress.stage("k-means", 0);
            let points =
                ArrayView2::from_shape((n_points, dim), &sample.kmeans).expect("whole rows");
            let model = KMeansParams::new(k)
                .max_iters(params.kmeans_iters)
                .max_points_per_centroid(params.max_points_per_centroid)
                .seed(params.seed)
                .algorithm(params.kmeans_algorithm);
            let model = match params.assignment {
                Some(a) => model.assignment(a),
                None => model,
            }
            .fit(&DatasetBase::from(points))?;
            (
                model.centroids().as_slice().expect("standard layout").to_vec(),
                model.n_train_points(),
            )
        }
    };
    let mut centroids = centroids;
    codebook::round_to_stored(&mut centroids)?;
    let k = centroids.len() / dim;
    progress.stage("codec", 0);
    let codec_tokens = if sample.heldout.is_empty() { &sample.kmeans } else { &sample.heldout };
    let (labels, _) = tartan_kmeans::nearest_centroids(codec_tokens, &centroids, dim);
    let residuals: Vec<f32> = codec_tokens
        .chunks_exact(dim)
        .zip(&labels)
        .flat_map(|(t, &c)| t.iter().zip(&centroids[c as usize * dim..][..dim]).map(|(a, b)| a - b))
        .collect();
    let codec = ResidualCodec::train(CodecParams::new(params.nbits), &residuals, dim)?;

    let cb_name = format!("codebook.{generation:06}.tcb");
    let (cb_bytes, cb_crc) = codebook::write(&work.join(&cb_name), &centroids, &codec)?;
    let codebook = Codebook::open(&work.join(&cb_name), dim, k, params.nbits)?;
    let seg_name = format!("segment.{seg_id:06}.tseg");
    let written = segment::encode(
        &work.join(&seg_name),
        docs,
        extras,
        &codebook,
        params.assignment,
        progress,
    )?;
    sync_dir(work)?;

    let n_tokens = docs.n_tokens() as u64;
    let manifest = Manifest {
        format: "tartan-index".into(),
        format_version: FORMAT_VERSION,
        generation,
        created_by: format!("tartan {}", env!("CARGO_PKG_VERSION")),
        dim,
        nbits: params.nbits,
        n_centroids: k,
        n_docs: docs.n_docs() as u64,
        n_tokens,
        n_deleted: 0,
        next_segment_id: seg_id + 1,
        codebook: FileRef { file: cb_name, bytes: cb_bytes, crc32: cb_crc },
        segments: vec![written.meta(seg_id, seg_name, docs.n_docs() as u64, n_tokens)],
        build: BuildInfo {
            seed: params.seed,
            kmeans_iters: params.kmeans_iters,
            sample_docs: sample.n_docs as u64,
            kmeans_points: kmeans_points as u64,
            codec_tokens: (codec_tokens.len() / dim) as u64,
            centroids_from_user: params.n_centroids.is_some(),
            mean_sq_residual: written.sum_sq_residual / n_tokens as f64,
            build_seconds: started.elapsed().as_secs_f64(),
        },
    };
    manifest.publish(work)
}
