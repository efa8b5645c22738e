//! Corpora drawn from a [`Profile`] of real token embeddings.
//!
//! Each document takes a real document as its template and one of that document's nearest
//! real documents as a second source: its first and last tokens are the template's (where an
//! encoder puts its special tokens), and each token between is a cluster drawn from the
//! template's (three times in four) or the neighbour's tokens. A token is then its cluster's
//! mean plus a mix of two real members' residuals plus a little Gaussian jitter,
//! renormalised, so tokens keep the real residuals' covariance and size, which is what
//! decides how well a residual codec does. Lengths follow the template's, scaled to the
//! requested mean.
//!
//! Each query takes a real query as its template (its length and its query-only tokens) and
//! a target document: a share of its middle tokens (`query_overlap`) are the target's tokens
//! moved by a real residual, the rest are the template's clusters with fresh residuals.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, StandardNormal};
use std::collections::HashMap;
use std::path::Path;
use tartan_embeddings::{EmbError, Precision};

use crate::{normalize, Profile, SynthCorpus, SynthError, SynthStats};

/// Settings for a corpus drawn from a [`Profile`]. Defaults (from [`RealisticParams::new`]):
/// mean document length 80 tokens (`None` keeps the real lengths), 100 queries, query
/// overlap 0.4, query noise 0.6 (the scale of the real residual that moves a target token
/// into a query), residual mix 0.3, no jitter, seed 0. The query settings were chosen so that
/// a corpus drawn from SciFact's MiniLM profile at SciFact's size and lengths has SciFact's
/// exact-MaxSim nDCG@10 (0.69 against 0.70); see docs/benchmarks.md.
#[derive(Debug, Clone, PartialEq)]
pub struct RealisticParams {
    n_docs: usize,
    mean_doc_len: Option<f64>,
    n_queries: usize,
    query_overlap: f64,
    query_noise: f32,
    residual_mix: f32,
    jitter: f32,
    seed: u64,
}

/// Share of a document's tokens drawn from its template rather than the neighbour.
const TEMPLATE_SHARE: f64 = 0.75;
/// Longest generated document, in tokens.
const MAX_DOC_LEN: usize = 512;

impl RealisticParams {
    /// Settings for `n_docs` documents with the defaults above.
    pub fn new(n_docs: usize) -> Self {
        Self {
            n_docs,
            mean_doc_len: Some(80.0),
            n_queries: 100,
            query_overlap: 0.4,
            query_noise: 0.6,
            residual_mix: 0.3,
            jitter: 0.0,
            seed: 0,
        }
    }
    /// Mean document length in tokens; `None` keeps the templates' lengths.
    pub fn mean_doc_len(mut self, len: Option<f64>) -> Self {
        self.mean_doc_len = len;
        self
    }
    /// Number of queries.
    pub fn n_queries(mut self, n: usize) -> Self {
        self.n_queries = n;
        self
    }
    /// Share of a query's middle tokens taken from its target document.
    pub fn query_overlap(mut self, share: f64) -> Self {
        self.query_overlap = share;
        self
    }
    /// Scale of the real residual added to a target token taken into a query.
    pub fn query_noise(mut self, noise: f32) -> Self {
        self.query_noise = noise;
        self
    }
    /// Weight of a second real residual mixed into each token's (0 draws real residuals as
    /// they are).
    pub fn residual_mix(mut self, mix: f32) -> Self {
        self.residual_mix = mix;
        self
    }
    /// Gaussian jitter added to each token, as a share of its cluster's RMS residual norm.
    pub fn jitter(mut self, jitter: f32) -> Self {
        self.jitter = jitter;
        self
    }
    /// Seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn check(&self) -> Result<(), SynthError> {
        let bad = |name, expected, got: String| Err(SynthError::BadSetting { name, expected, got });
        if self.n_docs == 0 {
            return bad("n_docs", "at least 1", "0".into());
        }
        if self.n_queries == 0 {
            return bad("n_queries", "at least 1", "0".into());
        }
        if let Some(l) = self.mean_doc_len.filter(|l| !(l.is_finite() && *l >= 1.0)) {
            return bad("mean_doc_len", "a number of at least 1", l.to_string());
        }
        if !(0.0..=1.0).contains(&self.query_overlap) {
            return bad("query_overlap", "within 0..=1", self.query_overlap.to_string());
        }
        if !(self.query_noise.is_finite() && self.query_noise >= 0.0) {
            return bad("query_noise", "a number of at least 0", self.query_noise.to_string());
        }
        if !(self.residual_mix.is_finite() && self.residual_mix >= 0.0) {
            return bad("residual_mix", "a number of at least 0", self.residual_mix.to_string());
        }
        if !(self.jitter.is_finite() && self.jitter >= 0.0) {
            return bad("jitter", "a number of at least 0", self.jitter.to_string());
        }
        Ok(())
    }

    /// Generates the corpus in memory.
    ///
    /// # Errors
    /// [`SynthError::BadSetting`] for a setting out of range.
    pub fn generate(&self, profile: &Profile) -> Result<SynthCorpus, SynthError> {
        self.check()?;
        let mut sink = crate::MemorySink::new(profile.dim);
        let targets = self.stream(profile, &mut sink)?;
        Ok(sink.finish(targets))
    }

    /// Streams the corpus into an embeddings directory (documents, queries, `qrels.tsv`), as
    /// [`crate::SynthParams::write`] does. Gives the same vectors as
    /// [`RealisticParams::generate`].
    ///
    /// # Errors
    /// [`SynthError::BadSetting`], or an I/O error writing `dir`.
    pub fn write(
        &self,
        profile: &Profile,
        dir: &Path,
        precision: Precision,
    ) -> Result<SynthStats, SynthError> {
        self.check()?;
        let mut sink = crate::DirSink::create(dir, profile.dim, precision)?;
        let targets = self.stream(profile, &mut sink)?;
        Ok(sink.finish(dir, &targets)?)
    }

    fn stream(&self, p: &Profile, sink: &mut impl crate::Sink) -> Result<Vec<usize>, EmbError> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let dim = p.dim;
        let targets: Vec<usize> =
            (0..self.n_queries).map(|_| rng.gen_range(0..self.n_docs)).collect();
        let mut kept: HashMap<usize, Vec<(u32, Vec<f32>)>> =
            targets.iter().map(|&d| (d, Vec::new())).collect();
        let scale = self.mean_doc_len.map_or(1.0, |m| m / p.mean_doc_len());
        let len_jitter = LogNormal::new(-0.02, 0.2).expect("valid log-normal");
        let mut toks = Vec::new();
        for d in 0..self.n_docs {
            let a = rng.gen_range(0..p.docs.len());
            let near = &p.neighbours[a];
            let b = if near.is_empty() { a } else { near[rng.gen_range(0..near.len())] as usize };
            let (ta, tb) = (&p.docs[a], &p.docs[b]);
            let want = ta.len() as f64 * scale * len_jitter.sample(&mut rng);
            let len = (want.round() as usize).clamp(ta.len().min(2), MAX_DOC_LEN).max(1);
            toks.clear();
            let mut keep = kept.get_mut(&d);
            for i in 0..len {
                let k = if i == 0 {
                    ta[0]
                } else if i + 1 == len {
                    ta[ta.len() - 1]
                } else {
                    let src = if rng.gen_bool(TEMPLATE_SHARE) { ta } else { tb };
                    src[middle(src.len(), &mut rng)]
                };
                let at = toks.len();
                token(p, k, (self.residual_mix, self.jitter), &mut rng, &mut toks);
                if let Some(keep) = keep.as_mut() {
                    keep.push((k, toks[at..].to_vec()));
                }
            }
            sink.doc(&format!("d{d}"), &toks)?;
        }
        for (q, &d) in targets.iter().enumerate() {
            let tq = &p.queries[rng.gen_range(0..p.queries.len())];
            let target = &kept[&d];
            toks.clear();
            for (i, &k) in tq.iter().enumerate() {
                let edge = i == 0 || i + 1 == tq.len();
                if !edge && rng.gen_bool(self.query_overlap) {
                    let (k, t) = &target[rng.gen_range(0..target.len())];
                    moved(p, *k, t, self.query_noise, &mut rng, &mut toks);
                } else {
                    token(p, k, (self.residual_mix, self.jitter), &mut rng, &mut toks);
                }
            }
            debug_assert_eq!(toks.len(), tq.len() * dim);
            sink.query(&format!("q{q}"), &toks)?;
        }
        Ok(targets)
    }
}

/// A random position strictly inside a template of `len` tokens (any position when it has
/// no inside).
fn middle(len: usize, rng: &mut impl Rng) -> usize {
    if len > 2 {
        rng.gen_range(1..len - 1)
    } else {
        rng.gen_range(0..len)
    }
}

/// Appends `normalize(centroid_k + residual + jitter)` to `out`.
fn token(p: &Profile, k: u32, (mix, jitter): (f32, f32), rng: &mut impl Rng, out: &mut Vec<f32>) {
    let dim = p.dim;
    let k = k as usize;
    let at = out.len();
    out.extend_from_slice(&p.centroids[k * dim..(k + 1) * dim]);
    add_residual(p, k, 1.0, mix, rng, &mut out[at..]);
    let scale = jitter * p.spread[k] / (dim as f32).sqrt();
    for x in &mut out[at..] {
        *x += scale * Distribution::<f32>::sample(&StandardNormal, rng);
    }
    normalize(&mut out[at..]);
}

/// Appends `normalize(t + noise · residual of a member of cluster k)`: the target's token in
/// another context.
fn moved(p: &Profile, k: u32, t: &[f32], noise: f32, rng: &mut impl Rng, out: &mut Vec<f32>) {
    let at = out.len();
    out.extend_from_slice(t);
    add_residual(p, k as usize, noise, 0.0, rng, &mut out[at..]);
    normalize(&mut out[at..]);
}

/// Adds `scale · (rᵢ + mix · rⱼ) / √(1 + mix²)` for two random real members of cluster `k`.
/// That keeps the cluster's residual covariance (for zero-mean, independent members), and a
/// mix above 0 turns a few hundred real residuals into a continuum, so that a large corpus
/// does not repeat them.
fn add_residual(p: &Profile, k: usize, scale: f32, mix: f32, rng: &mut impl Rng, v: &mut [f32]) {
    let pool = &p.residuals[k];
    if !pool.is_empty() {
        let n = pool.len() / p.dim;
        let (i, j) = (rng.gen_range(0..n), rng.gen_range(0..n));
        let a = scale / (1.0 + mix * mix).sqrt();
        let b = a * mix;
        let (ri, rj) = (&pool[i * p.dim..(i + 1) * p.dim], &pool[j * p.dim..(j + 1) * p.dim]);
        for ((x, y), z) in v.iter_mut().zip(ri).zip(rj) {
            *x += a * y + b * z;
        }
    }
}
