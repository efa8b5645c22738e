//! Training a codebook: sample documents, k-means for the centroids, quantiles of held-out
//! residuals for the codec.

use half::f16;
use linfa::ParamGuard;
use ndarray::ArrayView2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tartan_codec::{CodecParams, ResidualCodec};
use tartan_embeddings::Embeddings;
use tartan_kmeans::KMeansParams;

use crate::budget::Budget;
use crate::codebook::{round_to_stored, Codebook, TrainInfo};
use crate::error::{IndexError, Result};
use crate::params::{default_n_centroids, default_sample_docs, IndexParams};
use crate::Progress;

/// ColBERT holds out 5% of the training sample, at most 50,000 tokens, for the codec.
const HELDOUT_FRACTION: f64 = 0.05;
const HELDOUT_MAX: usize = 50_000;

/// Training data drawn from a sample of documents: k-means points (float16, the precision
/// centroids are stored in: half the memory of f32) and held-out tokens for the codec.
struct Sample {
    n_docs: usize,
    kmeans: Vec<f16>,
    heldout: Vec<f32>,
}

/// Input bytes read between two releases of the mapped pages behind the reader.
const RELEASE_EVERY: usize = 16 << 20;

/// Samples documents, shuffles their tokens, holds out the codec's share and keeps at most
/// `max_points` of the rest for k-means. `k` is the number of centroids k-means will train
/// (it bounds the points with `max_points_per_centroid`).
fn draw_sample(
    docs: &Embeddings,
    params: &IndexParams,
    k: impl Fn(usize) -> Result<usize>,
    rng: &mut ChaCha8Rng,
    progress: &dyn Progress,
) -> Result<Sample> {
    let n_docs = docs.n_docs();
    let n_sample = params.sample_docs.unwrap_or_else(|| default_sample_docs(n_docs)).min(n_docs);
    let mut picked: Vec<usize> = rand::seq::index::sample(rng, n_docs, n_sample).into_vec();
    picked.sort_unstable();
    // Token positions of the sampled documents, shuffled.
    let mut tokens: Vec<usize> = picked
        .iter()
        .flat_map(|&d| docs.offsets()[d] as usize..docs.offsets()[d + 1] as usize)
        .collect();
    tokens.shuffle(rng);
    let n_held = ((tokens.len() as f64 * HELDOUT_FRACTION) as usize).clamp(1, HELDOUT_MAX);
    let n_held = if tokens.len() > 1 { n_held.min(tokens.len() - 1) } else { 0 };
    let available = tokens.len() - n_held;
    // With nothing held out (a one-token corpus) the codec trains on the k-means points.
    let n_points = if n_held == 0 { available } else { available.min(k(available)?) };
    progress.stage("sampling", (n_held + n_points) as u64);
    let heldout = gather(docs, &tokens[..n_held], 0f32, |v| v, progress);
    let kmeans =
        gather(docs, &tokens[n_held..n_held + n_points], f16::ZERO, f16::from_f32, progress);
    Ok(Sample { n_docs: n_sample, kmeans, heldout })
}

/// The vectors of `tokens`, in that order, as one flat buffer. The input is read in file
/// order (tokens sorted by position, each written to its slot), releasing the mapped pages
/// behind the reader: a sample scattered over a 16 GB input touches every part of it, and
/// mapped pages count in the resident set.
fn gather<T: Copy>(
    docs: &Embeddings,
    tokens: &[usize],
    zero: T,
    cast: fn(f32) -> T,
    progress: &dyn Progress,
) -> Vec<T> {
    let dim = docs.dim();
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_unstable_by_key(|&i| tokens[i]);
    let mut out = vec![zero; tokens.len() * dim];
    let mut row = vec![0f32; dim];
    let tokens_per_release = (RELEASE_EVERY / (dim * 4)).max(1);
    let (mut released, mut reported) = (0, 0);
    for (n, i) in order.into_iter().enumerate() {
        let t = tokens[i];
        if t - released >= tokens_per_release {
            docs.release_tokens(released..t);
            released = t;
            progress.advance((n - reported) as u64);
            reported = n;
        }
        docs.read_tokens(t, &mut row);
        for (o, &v) in out[i * dim..(i + 1) * dim].iter_mut().zip(&row) {
            *o = cast(v);
        }
    }
    docs.release_tokens(released..docs.n_tokens());
    progress.advance((tokens.len() - reported) as u64);
    out
}

/// The centroids k-means trains for `n_points` available points: `n_centroids`, or the
/// formula (capped to a power of two the points can train, on tiny corpora).
fn n_centroids(params: &IndexParams, n_tokens: usize, n_points: usize) -> usize {
    match params.n_centroids {
        Some(k) => k,
        None => {
            let k = default_n_centroids(n_tokens);
            if k > n_points {
                1usize << n_points.max(1).ilog2()
            } else {
                k
            }
        }
    }
}

impl Codebook {
    /// Trains a codebook on a sample of `docs` with the codebook settings of `params`
    /// (`nbits`, `n_centroids`, `kmeans_iters`, `max_points_per_centroid`, `sample_docs`,
    /// `seed`, `assignment`, `kmeans_algorithm`, or given `centroids`). Deterministic for a
    /// seed. Indexes and shards built with the result share it exactly
    /// ([`IndexParams::codebook`]).
    pub fn train(docs: &Embeddings, params: &IndexParams, progress: &dyn Progress) -> Result<Self> {
        params.validate()?;
        if docs.n_docs() == 0 {
            return Err(IndexError::NoDocuments);
        }
        let dim = docs.dim();
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let budget = Budget::new(params.memory);
        // k-means points: at most max_points_per_centroid per centroid (faiss's cap), and what
        // the memory budget holds. Given centroids need none beyond the codec's.
        let points_for = |available: usize| -> Result<usize> {
            if params.centroids.is_some() {
                return Ok(0);
            }
            let k = n_centroids(params, docs.n_tokens(), available);
            Ok(params.max_points_per_centroid.saturating_mul(k).min(budget.kmeans_points(k, dim)?))
        };
        let sample = draw_sample(docs, params, points_for, &mut rng, progress)?;
        let n_points = sample.kmeans.len() / dim;
        let (centroids, kmeans_points) = match &params.centroids {
            Some(given) => {
                if !given.len().is_multiple_of(dim)
                    || params.n_centroids.is_some_and(|k| k * dim != given.len())
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
                let k = n_centroids(params, docs.n_tokens(), n_points);
                if k > n_points {
                    return Err(IndexError::Param {
                        name: "n_centroids",
                        reason: format!(
                            "{k} centroids need at least {k} training tokens, the sample has {n_points}"
                        ),
                    });
                }
                progress.stage("k-means", (params.kmeans_iters * n_points) as u64);
                let points =
                    ArrayView2::from_shape((n_points, dim), &sample.kmeans).expect("whole rows");
                let model = KMeansParams::new(k)
                    .max_iters(params.kmeans_iters)
                    .max_points_per_centroid(params.max_points_per_centroid)
                    .seed(params.seed)
                    .algorithm(params.kmeans_algorithm);
                let model = match params.assignment_for(k, n_points) {
                    Some(a) => model.assignment(a),
                    None => model,
                }
                .check()?
                .fit_observed(points, &|n| progress.advance(n as u64))?;
                (
                    model.centroids().as_slice().expect("standard layout").to_vec(),
                    model.n_train_points(),
                )
            }
        };
        let mut centroids = centroids;
        round_to_stored(&mut centroids)?;
        progress.stage("codec", 0);
        // A one-token corpus holds nothing out: the codec trains on the k-means point.
        let widened: Vec<f32>;
        let codec_tokens = if sample.heldout.is_empty() {
            widened = sample.kmeans.iter().map(|v| v.to_f32()).collect();
            &widened
        } else {
            &sample.heldout
        };
        let (labels, dists) = tartan_kmeans::nearest_centroids(codec_tokens, &centroids, dim);
        let residuals: Vec<f32> = codec_tokens
            .chunks_exact(dim)
            .zip(&labels)
            .flat_map(|(t, &c)| {
                t.iter().zip(&centroids[c as usize * dim..][..dim]).map(|(a, b)| a - b)
            })
            .collect();
        let codec = ResidualCodec::train(
            CodecParams::new(params.nbits).buckets(params.buckets),
            &residuals,
            dim,
        )?;
        let n_codec = codec_tokens.len() / dim;
        let train = TrainInfo {
            seed: params.seed,
            kmeans_iters: params.kmeans_iters as u64,
            sample_docs: sample.n_docs as u64,
            kmeans_points: kmeans_points as u64,
            codec_tokens: n_codec as u64,
            centroids_from_user: params.n_centroids.is_some(),
            mean_sq_residual: dists.iter().map(|&d| d as f64).sum::<f64>() / n_codec.max(1) as f64,
        };
        Codebook::from_parts(centroids, codec, Some(train), params.normalize_decoded != Some(false))
    }
}
