//! The storage/quality/latency trade-off on one embeddings directory, for the CLI
//! (`tartan sweep`) and Python (`tartan.sweep`) alike.
//!
//! One index per (K, nbits), built once (the first nbits trains k-means, the others reuse its
//! centroids) and searched at every (ncells, ndocs); beside them the reference points: exact
//! MaxSim over the stored vectors, exact MaxSim over vectors rounded to float16 (an
//! uncompressed float16 index; only for float32 input, float16 input is that index already),
//! a single-vector bi-encoder (mean-pooled, normalised vectors, brute-force dot product), and
//! with a cross-encoder ([`SweepParams::rerank`]) exact MaxSim's first hits reread by it (the
//! three systems side by side). [`Sweep::write`] writes `sweep.csv`, `sweep.json` and the SVG
//! plots with the Pareto fronts marked.

use std::path::Path;
use std::time::{Duration, Instant};

use ndarray::{Array2, ArrayView2};
use tartan_embeddings::{Embeddings, Kind, LoadOptions, Precision};
use tartan_eval::{Qrels, Run};
use tartan_index::{Index, IndexParams, NoProgress, SearchParams};

use crate::error::{Error, Result};
use crate::settings::{DEFAULT_RUN_K, DEFAULT_SEED};

mod baselines;
mod plot;
mod report;

pub use report::{pareto, Row, Sweep};

use baselines::{bi_encoder, brute_force, Judge, RoundedF16};

/// What a sweep builds and searches. Defaults ([`SweepParams::new`]): nbits 1, 2, 4; K by the
/// formula; ncells 1, 2, 4; ndocs 256, 1024, 4096; k [`DEFAULT_RUN_K`]; every query; seed
/// [`DEFAULT_SEED`]; indexes removed after use.
#[derive(Debug)]
pub struct SweepParams {
    /// Residual bits per dimension to build.
    pub nbits: Vec<u8>,
    /// Codebook sizes to build (`None`: the formula's K).
    pub centroids: Vec<Option<usize>>,
    /// Centroids probed per query token, searched at each.
    pub ncells: Vec<usize>,
    /// Candidates kept after the pruned pass, searched at each.
    pub ndocs: Vec<usize>,
    /// Hits per query (Recall@100 and recall@100 vs exact need 100).
    pub k: usize,
    /// Only the first this many queries.
    pub max_queries: Option<usize>,
    /// Seed of sampling and k-means.
    pub seed: u64,
    /// L2-normalise vectors on load instead of refusing non-unit ones.
    pub normalize: bool,
    /// Keep the built indexes in the output directory (`idx-K<k>-<n>bit`).
    pub keep_indexes: bool,
    /// A cross-encoder and the queries' texts by id (a queries.jsonl file or a BEIR
    /// directory): exact MaxSim's first hits reread.
    #[cfg(feature = "text")]
    pub rerank: Option<(crate::rerank::Reranker, std::path::PathBuf)>,
}

impl Default for SweepParams {
    fn default() -> Self {
        Self::new()
    }
}

impl SweepParams {
    /// The defaults above.
    pub fn new() -> Self {
        Self {
            nbits: vec![1, 2, 4],
            centroids: vec![None],
            ncells: vec![1, 2, 4],
            ndocs: vec![256, 1024, 4096],
            k: DEFAULT_RUN_K,
            max_queries: None,
            seed: DEFAULT_SEED,
            normalize: false,
            keep_indexes: false,
            #[cfg(feature = "text")]
            rerank: None,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |name, reason: &str| Err(Error::Param { name, reason: reason.into() });
        if self.nbits.is_empty() || self.nbits.iter().any(|b| !matches!(b, 1 | 2 | 4 | 8)) {
            return bad("nbits", "give one or more of 1, 2, 4 and 8");
        }
        if self.centroids.is_empty() || self.centroids.contains(&Some(0)) {
            return bad("centroids", "give one or more sizes of at least 1");
        }
        if self.ncells.is_empty() || self.ncells.contains(&0) {
            return bad("ncells", "give one or more values of at least 1");
        }
        if self.ndocs.is_empty() || self.ndocs.contains(&0) {
            return bad("ndocs", "give one or more values of at least 1");
        }
        if self.k == 0 {
            return bad("k", "must be at least 1");
        }
        if self.max_queries == Some(0) {
            return bad("max_queries", "must be at least 1");
        }
        Ok(())
    }
}

/// What a sweep reports as it goes (the library prints nothing).
#[derive(Debug)]
pub enum SweepEvent<'a> {
    /// The corpus was read: documents, tokens, dimension, queries.
    Started {
        /// Documents.
        n_docs: usize,
        /// Document tokens.
        n_tokens: usize,
        /// Dimension.
        dim: usize,
        /// Queries searched.
        n_queries: usize,
    },
    /// The exact MaxSim oracle ran in this time.
    Exact(Duration),
    /// The float16 row repeats the exact one (the stored vectors are float16), so none is
    /// made.
    StoredAsF16,
    /// A row is done.
    Row(&'a Row),
}

/// Runs a sweep over the embeddings directory `embeddings` (documents, queries, and
/// `qrels.tsv` for nDCG@10), building its indexes in `out` (created if missing). `on` hears
/// of each step.
pub fn sweep(
    embeddings: &Path,
    out: &Path,
    p: &SweepParams,
    on: &mut dyn FnMut(SweepEvent<'_>),
) -> Result<Sweep> {
    p.validate()?;
    let docs = Embeddings::open(embeddings, Kind::Docs, LoadOptions { normalize: p.normalize })?;
    let mut queries = crate::load_queries(embeddings, p.normalize)?;
    if queries.dim() != docs.dim() {
        return Err(Error::Param {
            name: "queries",
            reason: format!("dimension {}, the documents' is {}", queries.dim(), docs.dim()),
        });
    }
    if let Some(m) = p.max_queries {
        queries = queries.select(&(0..m.min(queries.n_docs())).collect::<Vec<_>>())?;
    }
    let dim = docs.dim();
    let n_tokens = docs.n_tokens() as f64;
    std::fs::create_dir_all(out).map_err(|source| Error::Io { path: out.into(), source })?;
    let toks: Vec<Array2<f32>> = (0..queries.n_docs()).map(|i| queries.doc_matrix(i)).collect();
    let qrels_path = embeddings.join("qrels.tsv");
    let mut qrels = if qrels_path.exists() { Some(Qrels::load(&qrels_path)?) } else { None };
    if let Some(q) = &mut qrels {
        q.retain(&queries.ids().iter().map(String::as_str).collect());
    }
    on(SweepEvent::Started {
        n_docs: docs.n_docs(),
        n_tokens: docs.n_tokens(),
        dim,
        n_queries: queries.n_docs(),
    });

    let mut rows = Vec::new();
    let t = Instant::now();
    let (exact, exact_times) = brute_force(&docs, &docs, &queries, &toks, p.k);
    on(SweepEvent::Exact(t.elapsed()));
    let judge = Judge { qrels, exact };
    let stored = docs.precision();
    let stored_bytes = match stored {
        Precision::F16 => 2.0,
        Precision::F32 => 4.0,
    };
    if stored == Precision::F16 {
        // The stored vectors already are float16: a float16 index holds exactly them, so its
        // row would repeat the exact one number for number.
        on(SweepEvent::StoredAsF16);
    }
    let mut push = |rows: &mut Vec<Row>, row: Row| {
        on(SweepEvent::Row(&row));
        rows.push(row);
    };
    push(&mut rows, judge.row("exact", &judge.exact, &exact_times, dim as f64 * stored_bytes));
    if stored == Precision::F32 {
        let (run, times) = brute_force(&RoundedF16(&docs), &docs, &queries, &toks, p.k);
        push(&mut rows, judge.row("float16", &run, &times, dim as f64 * 2.0));
    }
    let (run, times) = bi_encoder(&docs, &queries, p.k);
    let pooled_bytes = (docs.n_docs() * dim * 2) as f64 / n_tokens;
    push(&mut rows, judge.row("bi-encoder", &run, &times, pooled_bytes));
    #[cfg(feature = "text")]
    if let Some((rr, texts)) = &p.rerank {
        let row = baselines::cross_encoder(rr, texts, &queries, &judge, &exact_times)?;
        push(&mut rows, Row { bytes_per_token: dim as f64 * stored_bytes, ..row });
    }

    let views: Vec<ArrayView2<'_, f32>> = toks.iter().map(Array2::view).collect();
    for k_cent in &p.centroids {
        let mut centroids: Option<Vec<f32>> = None;
        for &b in &p.nbits {
            let name = format!("idx-K{}-{b}bit", k_cent.map_or("auto".into(), |k| k.to_string()));
            let dir = out.join(&name);
            let mut ip = IndexParams::new().nbits(b).seed(p.seed).overwrite(true);
            if let Some(k) = k_cent {
                ip = ip.n_centroids(*k);
            }
            if let Some(c) = &centroids {
                ip = ip.centroids(c.clone());
            }
            let t = Instant::now();
            let index = Index::build(&docs, &dir, &ip, &NoProgress)?;
            let build_s = t.elapsed().as_secs_f64();
            centroids.get_or_insert_with(|| index.centroids().to_vec());
            let stats = index.stats();
            for &c in &p.ncells {
                for &d in &p.ndocs {
                    let params = SearchParams::new(p.k).ncells(c).ndocs(d);
                    let (hits, times) =
                        crate::measure::timed_searches(&views, |q| index.search(q, &params))?;
                    let mut run = Run::new();
                    for (i, h) in hits.into_iter().enumerate() {
                        run.insert(queries.id(i), h.into_iter().map(|h| (h.id, h.score)).collect());
                    }
                    let row = Row {
                        n_centroids: Some(stats.n_centroids),
                        nbits: Some(b),
                        ncells: Some(c),
                        ndocs: Some(d),
                        build_s: Some(build_s),
                        ..judge.row("tartan", &run, &times, stats.bytes_per_token())
                    };
                    push(&mut rows, row);
                }
            }
            if !p.keep_indexes {
                drop(index);
                std::fs::remove_dir_all(&dir)
                    .map_err(|source| Error::Io { path: dir.clone(), source })?;
            }
        }
    }
    report::mark_fronts(&mut rows);
    Ok(Sweep {
        embeddings: embeddings.display().to_string(),
        n_docs: docs.n_docs(),
        n_tokens: docs.n_tokens(),
        dim,
        n_queries: queries.n_docs(),
        k: p.k,
        threads: rayon::current_num_threads(),
        quality: if judge.qrels.is_some() { "nDCG@10" } else { report::RECALL_VS_EXACT },
        rows,
    })
}
