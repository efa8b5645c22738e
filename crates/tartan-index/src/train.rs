//! Training a codebook: sample documents, k-means for the centroids, quantiles of held-out
//! residuals for the codec.

use linfa::prelude::*;
use ndarray::ArrayView2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tartan_codec::{CodecParams, ResidualCodec};
use tartan_embeddings::Embeddings;
use tartan_kmeans::KMeansParams;

use crate::codebook::{round_to_stored, Codebook, TrainInfo};
use crate::error::{IndexError, Result};
use crate::params::{default_n_centroids, default_sample_docs, IndexParams};
use crate::Progress;

/// ColBERT holds out 5% of the training sample, at most 50,000 tokens, for the codec.
const HELDOUT_FRACTION: f64 = 0.05;
const HELDOUT_MAX: usize = 50_000;

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
    // The sample is copied: the pages its scattered reads mapped need not stay resident.
    docs.release_tokens(0..docs.n_tokens());
    Sample { n_docs: n_sample, kmeans, heldout }
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
        progress.stage("sampling", 0);
        let sample = draw_sample(docs, params, &mut rng);
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
                        // The formula can exceed the sample on tiny corpora: take the largest
                        // power of two that the sample can train.
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
        round_to_stored(&mut centroids)?;
        progress.stage("codec", 0);
        let codec_tokens = if sample.heldout.is_empty() { &sample.kmeans } else { &sample.heldout };
        let (labels, dists) = tartan_kmeans::nearest_centroids(codec_tokens, &centroids, dim);
        let residuals: Vec<f32> = codec_tokens
            .chunks_exact(dim)
            .zip(&labels)
            .flat_map(|(t, &c)| {
                t.iter().zip(&centroids[c as usize * dim..][..dim]).map(|(a, b)| a - b)
            })
            .collect();
        let codec = ResidualCodec::train(CodecParams::new(params.nbits), &residuals, dim)?;
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
        Codebook::from_parts(centroids, codec, Some(train))
    }
}
