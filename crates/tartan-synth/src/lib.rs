//! Seeded synthetic corpora shaped like late-interaction data.
//!
//! Real token embeddings cluster twice over: tokens of one word in different contexts sit
//! close together, and words of one topic share a direction. The generator mirrors that:
//! `n_topics` random unit directions; around each, `words_per_topic` word vectors; each
//! document draws one to three topics and then its tokens as noisy copies of those topics'
//! words, with log-normal lengths like real passages. Queries copy tokens of a target
//! document with fresh noise, so the exact top-k is meaningful (and usually holds the
//! target). Everything is L2-normalised and deterministic for a seed.
//!
//! ```
//! use tartan_synth::SynthParams;
//!
//! let c = SynthParams::new(200).dim(32).n_queries(10).seed(1).generate();
//! assert_eq!(c.docs.n_docs(), 200);
//! assert_eq!(c.queries.n_docs(), 10);
//! assert_eq!(c.query_targets.len(), 10);
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod profile;
mod realistic;

pub use error::SynthError;
pub use profile::{Profile, ProfileParams};
pub use realistic::RealisticParams;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, StandardNormal};
use std::path::Path;

use tartan_embeddings::{EmbError, Embeddings, EmbeddingsWriter, Kind, LoadOptions, Precision};

/// Generator settings. Defaults (from [`SynthParams::new`]): dim 128, one topic per 20
/// documents (at least 8, at most 4,096), 48 words per topic, document lengths log-normal around 80 tokens
/// (clamped to 8..=300), 100 queries of 32 tokens, token noise 0.5 and query noise 0.5
/// (noise is the expected norm of the Gaussian added before normalising), seed 0.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthParams {
    n_docs: usize,
    dim: usize,
    n_topics: Option<usize>,
    words_per_topic: usize,
    mean_doc_len: f64,
    n_queries: usize,
    query_len: usize,
    token_noise: f32,
    query_noise: f32,
    seed: u64,
}

/// A generated corpus.
#[derive(Debug)]
pub struct SynthCorpus {
    /// Documents, ids `d0, d1, …`.
    pub docs: Embeddings,
    /// Queries, ids `q0, q1, …`.
    pub queries: Embeddings,
    /// The document each query was made from.
    pub query_targets: Vec<usize>,
}

impl SynthParams {
    /// Settings for `n_docs` documents with the defaults above.
    pub fn new(n_docs: usize) -> Self {
        Self {
            n_docs,
            dim: 128,
            n_topics: None,
            words_per_topic: 48,
            mean_doc_len: 80.0,
            n_queries: 100,
            query_len: 32,
            token_noise: 0.5,
            query_noise: 0.5,
            seed: 0,
        }
    }
    /// Vector dimension.
    pub fn dim(mut self, dim: usize) -> Self {
        self.dim = dim;
        self
    }
    /// Number of topics.
    pub fn n_topics(mut self, n: usize) -> Self {
        self.n_topics = Some(n);
        self
    }
    /// Mean document length in tokens.
    pub fn mean_doc_len(mut self, len: f64) -> Self {
        self.mean_doc_len = len;
        self
    }
    /// Number of queries.
    pub fn n_queries(mut self, n: usize) -> Self {
        self.n_queries = n;
        self
    }
    /// Tokens per query.
    pub fn query_len(mut self, n: usize) -> Self {
        self.query_len = n;
        self
    }
    /// Noise added to document tokens.
    pub fn token_noise(mut self, noise: f32) -> Self {
        self.token_noise = noise;
        self
    }
    /// Noise added to query tokens.
    pub fn query_noise(mut self, noise: f32) -> Self {
        self.query_noise = noise;
        self
    }
    /// Seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Generates the corpus in memory.
    ///
    /// # Panics
    /// If `n_docs`, `dim`, `n_queries` or `query_len` is 0.
    pub fn generate(&self) -> SynthCorpus {
        let mut sink = MemorySink::new(self.dim);
        let targets = self.stream(&mut sink).expect("memory sinks do not fail");
        sink.finish(targets)
    }

    /// Streams the corpus into an embeddings directory (documents, queries and `qrels.tsv`
    /// naming each query's target document) without holding it in memory: only the topic
    /// and word vectors are kept. Gives the same vectors as [`SynthParams::generate`].
    ///
    /// # Panics
    /// If `n_docs`, `dim`, `n_queries` or `query_len` is 0.
    pub fn write(&self, dir: &Path, precision: Precision) -> Result<SynthStats, EmbError> {
        let mut sink = DirSink::create(dir, self.dim, precision)?;
        let targets = self.stream(&mut sink)?;
        sink.finish(dir, &targets)
    }

    /// The generator: hands every document and then every query to `sink`, in order;
    /// returns each query's target document.
    fn stream(&self, sink: &mut impl Sink) -> Result<Vec<usize>, EmbError> {
        assert!(self.n_docs > 0 && self.dim > 0 && self.n_queries > 0 && self.query_len > 0);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let dim = self.dim;
        let n_topics = self.n_topics.unwrap_or((self.n_docs / 20).clamp(8, MAX_DEFAULT_TOPICS));
        let topics: Vec<Vec<f32>> =
            (0..n_topics).map(|_| noisy(&vec![0.0; dim], 1.0, &mut rng)).collect();
        let words: Vec<Vec<f32>> = topics
            .iter()
            .flat_map(|t| {
                (0..self.words_per_topic).map(|_| noisy(t, 1.0, &mut rng)).collect::<Vec<_>>()
            })
            .collect();
        // Targets are drawn first so that only their words need keeping while streaming.
        let targets: Vec<usize> =
            (0..self.n_queries).map(|_| rng.gen_range(0..self.n_docs)).collect();
        let mut target_words: std::collections::HashMap<usize, Vec<usize>> =
            targets.iter().map(|&d| (d, Vec::new())).collect();
        let len_dist =
            LogNormal::new(self.mean_doc_len.ln() - 0.125, 0.5).expect("valid log-normal");
        let mut toks = Vec::new();
        for d in 0..self.n_docs {
            let len = (len_dist.sample(&mut rng) as usize).clamp(8, 300);
            let doc_topics: Vec<usize> =
                (0..rng.gen_range(1..=3)).map(|_| rng.gen_range(0..n_topics)).collect();
            toks.clear();
            let mut ws = target_words.get_mut(&d);
            for _ in 0..len {
                // The first topic dominates, as a passage has one main subject.
                let t = if rng.gen_bool(0.6) {
                    doc_topics[0]
                } else {
                    doc_topics[rng.gen_range(0..doc_topics.len())]
                };
                let w = t * self.words_per_topic + rng.gen_range(0..self.words_per_topic);
                toks.extend(noisy(&words[w], self.token_noise, &mut rng));
                if let Some(ws) = ws.as_mut() {
                    ws.push(w);
                }
            }
            sink.doc(&format!("d{d}"), &toks)?;
        }
        for (q, &d) in targets.iter().enumerate() {
            toks.clear();
            let ws = &target_words[&d];
            for _ in 0..self.query_len {
                let w = ws[rng.gen_range(0..ws.len())];
                toks.extend(noisy(&words[w], self.query_noise, &mut rng));
            }
            sink.query(&format!("q{q}"), &toks)?;
        }
        Ok(targets)
    }
}

/// What [`SynthParams::write`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthStats {
    /// Documents.
    pub n_docs: usize,
    /// Document tokens.
    pub n_tokens: usize,
    /// Queries.
    pub n_queries: usize,
}

/// Where generated vectors go: memory or an embeddings directory.
trait Sink {
    fn doc(&mut self, id: &str, tokens: &[f32]) -> Result<(), EmbError>;
    fn query(&mut self, id: &str, tokens: &[f32]) -> Result<(), EmbError>;
}

struct MemorySink {
    dim: usize,
    lens: Vec<u64>,
    toks: Vec<f32>,
    qlens: Vec<u64>,
    qtoks: Vec<f32>,
}

impl MemorySink {
    fn new(dim: usize) -> Self {
        Self { dim, lens: Vec::new(), toks: Vec::new(), qlens: Vec::new(), qtoks: Vec::new() }
    }

    fn finish(self, targets: Vec<usize>) -> SynthCorpus {
        let opts = LoadOptions::default();
        let ids = |p: &str, n: usize| (0..n).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        let doc_ids = ids("d", self.lens.len());
        let docs = Embeddings::from_parts(self.dim, &self.lens, doc_ids, self.toks, opts)
            .expect("generated documents are valid");
        let query_ids = ids("q", self.qlens.len());
        let queries = Embeddings::from_parts(self.dim, &self.qlens, query_ids, self.qtoks, opts)
            .expect("generated queries are valid");
        SynthCorpus { docs, queries, query_targets: targets }
    }
}

impl Sink for MemorySink {
    fn doc(&mut self, _: &str, tokens: &[f32]) -> Result<(), EmbError> {
        self.lens.push((tokens.len() / self.dim) as u64);
        self.toks.extend_from_slice(tokens);
        Ok(())
    }
    fn query(&mut self, _: &str, tokens: &[f32]) -> Result<(), EmbError> {
        self.qlens.push((tokens.len() / self.dim) as u64);
        self.qtoks.extend_from_slice(tokens);
        Ok(())
    }
}

struct DirSink {
    dim: usize,
    docs: EmbeddingsWriter,
    queries: EmbeddingsWriter,
    stats: SynthStats,
}

impl DirSink {
    fn create(dir: &Path, dim: usize, precision: Precision) -> Result<Self, EmbError> {
        let docs = EmbeddingsWriter::create(dir, Kind::Docs, dim, precision, false)?;
        let queries = EmbeddingsWriter::create(dir, Kind::Queries, dim, precision, false)?;
        let stats = SynthStats { n_docs: 0, n_tokens: 0, n_queries: 0 };
        Ok(Self { dim, docs, queries, stats })
    }

    /// Closes both files.
    fn close(self) -> Result<SynthStats, EmbError> {
        self.docs.finish()?;
        self.queries.finish()?;
        Ok(self.stats)
    }

    /// Closes both files and writes `qrels.tsv` naming each query's target.
    fn finish(self, dir: &Path, targets: &[usize]) -> Result<SynthStats, EmbError> {
        let stats = self.close()?;
        let qrels: String = std::iter::once("query-id\tcorpus-id\tscore\n".to_string())
            .chain(targets.iter().enumerate().map(|(q, d)| format!("q{q}\td{d}\t1\n")))
            .collect();
        let path = dir.join("qrels.tsv");
        std::fs::write(&path, qrels).map_err(|source| EmbError::Io { path, source })?;
        Ok(stats)
    }
}

impl Sink for DirSink {
    fn doc(&mut self, id: &str, tokens: &[f32]) -> Result<(), EmbError> {
        self.stats.n_docs += 1;
        self.stats.n_tokens += tokens.len() / self.dim;
        self.docs.push(id, tokens)
    }
    fn query(&mut self, id: &str, tokens: &[f32]) -> Result<(), EmbError> {
        self.stats.n_queries += 1;
        self.queries.push(id, tokens)
    }
}

/// Default topics stop growing here (a few thousand directions, like a real vocabulary's
/// senses), so that a million-document corpus keeps its word table at ~100 MB.
const MAX_DEFAULT_TOPICS: usize = 4096;

/// `normalize(base + noise · g)` with `g` Gaussian of expected norm 1.
fn noisy(base: &[f32], noise: f32, rng: &mut impl Rng) -> Vec<f32> {
    let scale = noise / (base.len() as f32).sqrt();
    let mut v: Vec<f32> = base
        .iter()
        .map(|b| b + scale * Distribution::<f32>::sample(&StandardNormal, rng))
        .collect();
    normalize(&mut v);
    v
}

/// Scales `v` to unit length (a zero vector stays zero).
fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped() {
        let a = SynthParams::new(50).dim(16).n_queries(5).seed(3).generate();
        let b = SynthParams::new(50).dim(16).n_queries(5).seed(3).generate();
        assert_eq!(a.docs.doc(7), b.docs.doc(7));
        assert_eq!(a.query_targets, b.query_targets);
        let c = SynthParams::new(50).dim(16).n_queries(5).seed(4).generate();
        assert_ne!(a.docs.doc(7), c.docs.doc(7));
        assert!((0..50).all(|d| (8..=300).contains(&a.docs.doc_len(d))));
        assert_eq!(a.queries.n_tokens(), 5 * 32);
    }

    #[test]
    fn streaming_writes_what_generate_returns() {
        let p = SynthParams::new(40).dim(8).n_queries(4).seed(9);
        let dir = tempfile::tempdir().unwrap();
        let stats = p.write(dir.path(), Precision::F32).unwrap();
        let mem = p.generate();
        assert_eq!((stats.n_docs, stats.n_tokens), (40, mem.docs.n_tokens()));
        let docs = Embeddings::open(dir.path(), Kind::Docs, LoadOptions::default()).unwrap();
        let qs = Embeddings::open(dir.path(), Kind::Queries, LoadOptions::default()).unwrap();
        assert_eq!(docs.ids(), mem.docs.ids());
        assert!((0..40).all(|d| docs.doc(d) == mem.docs.doc(d)));
        assert!((0..4).all(|q| qs.doc(q) == mem.queries.doc(q)));
        let qrels = std::fs::read_to_string(dir.path().join("qrels.tsv")).unwrap();
        assert_eq!(qrels.lines().nth(1).unwrap(), format!("q0\td{}\t1", mem.query_targets[0]));
    }
}
