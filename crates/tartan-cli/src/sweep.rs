//! `tartan sweep`: the storage/quality/latency trade-off on one embeddings directory.
//!
//! One index per (K, nbits), built once (the first nbits trains k-means, the others reuse its
//! centroids) and searched at every (ncells, ndocs); beside them three reference points:
//! exact MaxSim over the stored vectors, exact MaxSim over vectors rounded to float16 (an
//! uncompressed float16 index; only for float32 input, float16 input is that index already)
//! and a single-vector bi-encoder (mean-pooled, normalised
//! vectors, brute-force dot product); with `--rerank`, a cross-encoder rereading exact MaxSim's
//! first hits (the three systems side by side: bi-encoder, late interaction, cross-encoder). Writes `sweep.csv`, `sweep.json` and two SVG plots.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ndarray::ArrayView2;
use serde::Serialize;
use tartan_embeddings::{Embeddings, Kind, LoadOptions, Precision};
use tartan_eval::{overlap_at, Metrics, Qrels, Run};
use tartan_index::{Index, IndexParams, NoProgress, SearchParams};
use tartan_maxsim::{exact_search, Corpus, Hit};

use crate::commands::timed_searches;
use crate::plot::Point;
use crate::SweepArgs;

/// A quality axis: how a row scores on it.
type Score = fn(&Row) -> f64;

/// One point of the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `tartan`, `exact`, `float16` or `bi-encoder`.
    pub system: String,
    pub n_centroids: Option<usize>,
    pub nbits: Option<u8>,
    pub ncells: Option<usize>,
    pub ndocs: Option<usize>,
    pub bytes_per_token: f64,
    pub build_s: Option<f64>,
    pub p50_ms: f64,
    pub p95_ms: f64,
    /// nDCG@10 against the qrels, when the directory has `qrels.tsv`.
    pub ndcg_10: Option<f64>,
    /// Recall@100 against the qrels.
    pub recall_100: Option<f64>,
    /// Overlap of the top 10 with exact MaxSim's top 10.
    pub recall_10_vs_exact: f64,
    /// Overlap of the top 100 with exact MaxSim's top 100 (k permitting).
    pub recall_100_vs_exact: f64,
    /// On the Pareto front of quality against bytes per token.
    pub pareto_bytes: bool,
    /// On the Pareto front of quality against p50 latency.
    pub pareto_latency: bool,
    /// The cross-encoder row: milliseconds per (query, document) pair read.
    pub rerank_ms_per_doc: Option<f64>,
}

impl Row {
    /// The quality axis of the plots: nDCG@10 if there are qrels, else recall@10 vs exact.
    pub fn quality(&self) -> f64 {
        self.ndcg_10.unwrap_or(self.recall_10_vs_exact)
    }
    /// The plots' legend entry.
    pub fn series(&self) -> &'static str {
        match (self.system.as_str(), self.nbits) {
            ("tartan", Some(1)) => "tartan 1-bit",
            ("tartan", Some(2)) => "tartan 2-bit",
            ("tartan", Some(4)) => "tartan 4-bit",
            ("tartan", _) => "tartan 8-bit",
            ("exact", _) => "exact MaxSim",
            ("float16", _) => "float16 MaxSim",
            ("cross-encoder", _) => "exact + cross-encoder",
            _ => "bi-encoder (mean-pooled)",
        }
    }
    /// Short label for plots and tables.
    pub fn label(&self) -> String {
        match (self.nbits, self.ncells, self.ndocs) {
            (Some(b), Some(c), Some(d)) => format!(
                "{b}-bit K{} c{c} d{d}",
                self.n_centroids.map_or(String::new(), |k| k.to_string())
            ),
            _ => self.system.clone(),
        }
    }
}

#[derive(Serialize)]
struct Report<'a> {
    embeddings: String,
    n_docs: usize,
    n_tokens: usize,
    dim: usize,
    n_queries: usize,
    k: usize,
    threads: usize,
    quality: &'static str,
    rows: &'a [Row],
}

/// Scores runs the same way for every system.
struct Judge {
    qrels: Option<Qrels>,
    exact: Run,
}

impl Judge {
    fn row(&self, system: &str, run: &Run, times: &[Duration], bytes_per_token: f64) -> Row {
        // The qrels were cut to the searched queries, so every judged query has a ranking.
        let m = self.qrels.as_ref().map(|q| Metrics::compute(run, q));
        let l = tartan::Latency::of(times);
        Row {
            system: system.into(),
            n_centroids: None,
            nbits: None,
            ncells: None,
            ndocs: None,
            bytes_per_token,
            build_s: None,
            p50_ms: l.p50_ms,
            p95_ms: l.p95_ms,
            ndcg_10: m.map(|m| m.ndcg_10),
            recall_100: m.map(|m| m.recall_100),
            recall_10_vs_exact: overlap_at(run, &self.exact, 10),
            recall_100_vs_exact: overlap_at(run, &self.exact, 100),
            pareto_bytes: false,
            pareto_latency: false,
            rerank_ms_per_doc: None,
        }
    }
}

/// Documents' vectors rounded to float16 and back, as a float16 index would hold them.
struct RoundedF16<'a>(&'a Embeddings);

impl Corpus for RoundedF16<'_> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn doc_offsets(&self) -> &[u64] {
        self.0.offsets()
    }
    fn read_tokens(&self, start: usize, out: &mut [f32]) {
        self.0.read_tokens(start, out);
        out.iter_mut().for_each(|v| *v = half::f16::from_f32(*v).to_f32());
    }
}

/// Exact MaxSim, one query at a time: the run and each query's time.
fn brute_force(
    corpus: &dyn Corpus,
    docs: &Embeddings,
    queries: &Embeddings,
    toks: &[Vec<f32>],
    k: usize,
) -> (Run, Vec<Duration>) {
    let mut run = Run::new();
    let mut times = Vec::with_capacity(toks.len());
    for (i, q) in toks.iter().enumerate() {
        let t = Instant::now();
        let hits = exact_search(corpus, &[q.as_slice()], k).remove(0);
        times.push(t.elapsed());
        run.insert(queries.id(i), to_ranking(docs, hits));
    }
    (run, times)
}

fn to_ranking(docs: &Embeddings, hits: Vec<Hit>) -> Vec<(String, f32)> {
    hits.into_iter().map(|h| (docs.id(h.doc as usize).to_string(), h.score)).collect()
}

/// Mean of each group's vectors, L2-normalised (a zero mean stays zero).
fn mean_pool(e: &Embeddings, round_f16: bool) -> Vec<f32> {
    let dim = e.dim();
    let mut out = vec![0f32; e.n_docs() * dim];
    for (d, row) in out.chunks_exact_mut(dim).enumerate() {
        for tok in e.doc(d).chunks_exact(dim) {
            row.iter_mut().zip(tok).for_each(|(a, b)| *a += b);
        }
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v /= norm);
        }
        if round_f16 {
            row.iter_mut().for_each(|v| *v = half::f16::from_f32(*v).to_f32());
        }
    }
    out
}

/// The single-vector baseline: float16 mean-pooled documents, brute-force dot product.
fn bi_encoder(docs: &Embeddings, queries: &Embeddings, k: usize) -> (Run, Vec<Duration>) {
    let dim = docs.dim();
    let pooled = mean_pool(docs, true);
    let q_pooled = mean_pool(queries, false);
    let mut run = Run::new();
    let mut times = Vec::with_capacity(queries.n_docs());
    let mut scores = vec![0f32; docs.n_docs()];
    for (i, q) in q_pooled.chunks_exact(dim).enumerate() {
        let t = Instant::now();
        for (s, d) in scores.iter_mut().zip(pooled.chunks_exact(dim)) {
            *s = q.iter().zip(d).map(|(a, b)| a * b).sum();
        }
        let mut top = tartan_maxsim::TopK::new(k);
        for (doc, &score) in scores.iter().enumerate() {
            top.push(Hit { doc: doc as u32, score });
        }
        let hits = top.into_sorted();
        times.push(t.elapsed());
        run.insert(queries.id(i), to_ranking(docs, hits));
    }
    (run, times)
}

/// The three-system comparison's third: exact MaxSim's first `depth` hits per query reread by
/// a cross-encoder. Latency per query is the exact search's plus the cross-encoder's.
fn cross_encoder(
    rr: &tartan::rerank::Reranker,
    query_texts: &Path,
    queries: &Embeddings,
    judge: &Judge,
    exact_times: &[Duration],
) -> Result<Row> {
    let by_id: std::collections::HashMap<String, String> =
        tartan_eval::load_query_texts(query_texts)?.into_iter().map(|q| (q.id, q.text)).collect();
    let mut run = Run::new();
    let mut times = Vec::with_capacity(queries.n_docs());
    let (mut pairs, mut rerank_time) = (0usize, Duration::ZERO);
    for (i, first) in exact_times.iter().enumerate() {
        let id = queries.id(i);
        let text = by_id.get(id).with_context(|| format!("query {id} has no text"))?;
        let ranking = judge.exact.get(id).unwrap_or_default();
        let hits = ranking
            .iter()
            .map(|(doc, score)| tartan::Hit {
                id: doc.clone(),
                score: *score,
                shard: 0,
                doc: None,
                text: None,
            })
            .collect();
        let t = Instant::now();
        let reranked = rr.rerank(text, hits)?;
        let took = t.elapsed();
        rerank_time += took;
        pairs += rr.depth().min(ranking.len());
        times.push(*first + took);
        // Past the depth, hits keep exact order below every reranked one.
        let floor = reranked.iter().filter_map(|h| h.rerank_score).fold(f32::MAX, f32::min);
        let ranked = reranked
            .into_iter()
            .enumerate()
            .map(|(r, h)| (h.hit.id, h.rerank_score.unwrap_or(floor - 1.0 - r as f32)))
            .collect();
        run.insert(id, ranked);
    }
    let mut row = judge.row("cross-encoder", &run, &times, 0.0);
    row.rerank_ms_per_doc = Some(rerank_time.as_secs_f64() * 1e3 / pairs.max(1) as f64);
    outln!(
        "cross-encoder over exact's top {}: {:.3} ms per (query, document) pair",
        rr.depth(),
        row.rerank_ms_per_doc.unwrap_or_default()
    );
    Ok(row)
}

/// Marks the rows no other row beats on both quality and cost (lower `cost`, higher
/// `quality`).
pub fn pareto(
    rows: &[&Row],
    cost: impl Fn(&Row) -> f64,
    quality: impl Fn(&Row) -> f64,
) -> Vec<bool> {
    rows.iter()
        .map(|r| {
            let (rc, rq) = (cost(r), quality(r));
            !rows.iter().any(|o| {
                let (oc, oq) = (cost(o), quality(o));
                oc <= rc && oq >= rq && (oc < rc || oq > rq)
            })
        })
        .collect()
}

fn parse_list<T: std::str::FromStr>(name: &str, s: &str) -> Result<Vec<T>> {
    let v: Vec<T> = s
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse::<T>().map_err(|_| anyhow::anyhow!("--{name}: bad value {p:?}")))
        .collect::<Result<_>>()?;
    if v.is_empty() {
        bail!("--{name} needs at least one value");
    }
    Ok(v)
}

pub fn run(a: &SweepArgs) -> Result<()> {
    let nbits: Vec<u8> = parse_list("nbits", &a.nbits)?;
    let ncells: Vec<usize> = parse_list("ncells", &a.ncells)?;
    let ndocs: Vec<usize> = parse_list("ndocs", &a.ndocs)?;
    let ks: Vec<Option<usize>> = match &a.centroids {
        Some(s) => parse_list::<usize>("centroids", s)?.into_iter().map(Some).collect(),
        None => vec![None],
    };
    if nbits.iter().any(|b| !matches!(b, 1 | 2 | 4 | 8)) {
        bail!("--nbits values must be 1, 2, 4 or 8");
    }
    if ncells.contains(&0) || ndocs.contains(&0) || ks.contains(&Some(0)) || a.k == 0 {
        bail!("--ncells, --ndocs, --centroids and --k values must be at least 1");
    }
    let opts = LoadOptions { normalize: a.normalize };
    let docs =
        Embeddings::open(&a.embeddings, Kind::Docs, opts).context("reading the documents")?;
    let mut queries = tartan::load_queries(&a.embeddings, a.normalize)?;
    if queries.dim() != docs.dim() {
        bail!("queries have dimension {}, documents {}", queries.dim(), docs.dim());
    }
    if let Some(m) = a.max_queries {
        queries = queries.select(&(0..m.min(queries.n_docs())).collect::<Vec<_>>())?;
    }
    let dim = docs.dim();
    let n_tokens = docs.n_tokens() as f64;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let toks: Vec<Vec<f32>> = (0..queries.n_docs()).map(|i| queries.doc(i)).collect();
    let qrels_path = a.embeddings.join("qrels.tsv");
    let mut qrels = if qrels_path.exists() { Some(Qrels::load(&qrels_path)?) } else { None };
    if let Some(q) = &mut qrels {
        q.retain(&queries.ids().iter().map(String::as_str).collect());
    }
    outln!(
        "sweep over {}: {} documents, {} tokens, dim {dim}, {} queries, k {}",
        a.embeddings.display(),
        docs.n_docs(),
        docs.n_tokens(),
        queries.n_docs(),
        a.k
    );

    let mut rows = Vec::new();
    let t = Instant::now();
    let (exact, exact_times) = brute_force(&docs, &docs, &queries, &toks, a.k);
    outln!("exact MaxSim: {:.1} s", t.elapsed().as_secs_f64());
    let judge = Judge { qrels, exact };
    let stored = docs.precision();
    let stored_bytes = match stored {
        Precision::F16 => 2.0,
        Precision::F32 => 4.0,
    };
    rows.push(judge.row("exact", &judge.exact, &exact_times, dim as f64 * stored_bytes));
    if stored == Precision::F16 {
        // The stored vectors already are float16: a float16 index holds exactly them, so its
        // row would repeat the exact one number for number. Say so instead of printing it.
        outln!("float16 MaxSim: the stored vectors are float16, so it is the exact row");
    } else {
        let (run, times) = brute_force(&RoundedF16(&docs), &docs, &queries, &toks, a.k);
        rows.push(judge.row("float16", &run, &times, dim as f64 * 2.0));
    }
    let (run, times) = bi_encoder(&docs, &queries, a.k);
    rows.push(judge.row("bi-encoder", &run, &times, (docs.n_docs() * dim * 2) as f64 / n_tokens));
    if let Some(rr) = a.rerank.load()? {
        let texts = a.query_texts.as_deref().context("--rerank needs --query-texts")?;
        let row = cross_encoder(&rr, texts, &queries, &judge, &exact_times)?;
        rows.push(Row { bytes_per_token: dim as f64 * stored_bytes, ..row });
    }
    for r in &rows {
        print_row(r);
    }

    let views: Vec<ArrayView2<'_, f32>> = toks
        .iter()
        .map(|q| ArrayView2::from_shape((q.len() / dim, dim), q).expect("whole rows"))
        .collect();
    for k_cent in &ks {
        let mut centroids: Option<Vec<f32>> = None;
        for &b in &nbits {
            let name = format!("idx-K{}-{b}bit", k_cent.map_or("auto".into(), |k| k.to_string()));
            let dir = a.out.join(&name);
            let mut p = IndexParams::new().nbits(b).seed(a.seed).overwrite(true);
            if let Some(k) = k_cent {
                p = p.n_centroids(*k);
            }
            if let Some(c) = &centroids {
                p = p.centroids(c.clone());
            }
            let t = Instant::now();
            let index = Index::build(&docs, &dir, &p, &NoProgress)
                .with_context(|| format!("building {}", dir.display()))?;
            let build_s = t.elapsed().as_secs_f64();
            centroids.get_or_insert_with(|| index.centroids().to_vec());
            let stats = index.stats();
            for &c in &ncells {
                for &d in &ndocs {
                    let params = SearchParams::new(a.k).ncells(c).ndocs(d);
                    let (hits, times) = timed_searches(&views, |q| index.search(q, &params))?;
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
                    print_row(&row);
                    rows.push(row);
                }
            }
            if !a.keep_indexes {
                drop(index);
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
        }
    }

    let refs: Vec<&Row> = rows.iter().collect();
    let by_bytes = pareto(&refs, |r| r.bytes_per_token, Row::quality);
    let by_latency = pareto(&refs, |r| r.p50_ms, Row::quality);
    for (r, (b, l)) in rows.iter_mut().zip(by_bytes.into_iter().zip(by_latency)) {
        r.pareto_bytes = b;
        r.pareto_latency = l;
    }
    let quality = if judge.qrels.is_some() { "nDCG@10" } else { "recall@10 vs exact" };
    write_outputs(a, &docs, &queries, quality, &rows)?;
    Ok(())
}

fn print_row(r: &Row) {
    let opt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
    outln!(
        "{:<24} {:>8.1} B/tok  p50 {:>8.2} ms  nDCG@10 {}  R@100 {}  recall@10 vs exact {:.3}",
        r.label(),
        r.bytes_per_token,
        r.p50_ms,
        opt(r.ndcg_10),
        opt(r.recall_100),
        r.recall_10_vs_exact
    );
}

fn write_outputs(
    a: &SweepArgs,
    docs: &Embeddings,
    queries: &Embeddings,
    quality: &'static str,
    rows: &[Row],
) -> Result<()> {
    let out = &a.out;
    let mut csv = String::from("system,n_centroids,nbits,ncells,ndocs,bytes_per_token,build_s,p50_ms,p95_ms,ndcg_10,recall_100,recall_10_vs_exact,recall_100_vs_exact,pareto_bytes,pareto_latency,rerank_ms_per_doc\n");
    let o = |v: Option<String>| v.unwrap_or_default();
    for r in rows {
        csv += &format!(
            "{},{},{},{},{},{:.3},{},{:.3},{:.3},{},{},{:.4},{:.4},{},{},{}\n",
            r.system,
            o(r.n_centroids.map(|v| v.to_string())),
            o(r.nbits.map(|v| v.to_string())),
            o(r.ncells.map(|v| v.to_string())),
            o(r.ndocs.map(|v| v.to_string())),
            r.bytes_per_token,
            o(r.build_s.map(|v| format!("{v:.2}"))),
            r.p50_ms,
            r.p95_ms,
            o(r.ndcg_10.map(|v| format!("{v:.4}"))),
            o(r.recall_100.map(|v| format!("{v:.4}"))),
            r.recall_10_vs_exact,
            r.recall_100_vs_exact,
            r.pareto_bytes,
            r.pareto_latency,
            o(r.rerank_ms_per_doc.map(|v| format!("{v:.4}")))
        );
    }
    write(&out.join("sweep.csv"), csv.as_bytes())?;
    let report = Report {
        embeddings: a.embeddings.display().to_string(),
        n_docs: docs.n_docs(),
        n_tokens: docs.n_tokens(),
        dim: docs.dim(),
        n_queries: queries.n_docs(),
        k: a.k,
        threads: rayon::current_num_threads(),
        quality,
        rows,
    };
    write(&out.join("sweep.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    let rows_ref: Vec<&Row> = rows.iter().collect();
    let bytes = ("bytes", "bytes per token (log scale)");
    let latency = ("latency", "search latency p50, ms (log scale)");
    let mut written = Vec::new();
    for (name, x_label) in [bytes, latency] {
        let cost = |r: &Row| if name == "bytes" { r.bytes_per_token } else { r.p50_ms };
        // With qrels, the main axis is nDCG@10; fidelity to exact MaxSim gets its own plots.
        let mut plots: Vec<(String, &str, Score)> =
            vec![(format!("quality_vs_{name}.svg"), quality, Row::quality)];
        if quality != "recall@10 vs exact" {
            plots.push((format!("recall_vs_{name}.svg"), "recall@10 vs exact", |r| {
                r.recall_10_vs_exact
            }));
        }
        for (file, axis, score) in plots {
            let front = pareto(&rows_ref, cost, score);
            let points: Vec<Point> = rows
                .iter()
                .zip(front)
                .map(|(r, on_front)| Point {
                    x: cost(r),
                    y: score(r),
                    series: r.series(),
                    on_front,
                })
                .collect();
            crate::plot::tradeoff(&out.join(&file), &points, axis, x_label)?;
            written.push(file);
        }
    }
    outln!("wrote sweep.csv, sweep.json, {} to {}", written.join(", "), out.display());
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bytes: f64, q: f64) -> Row {
        Row {
            system: "t".into(),
            n_centroids: None,
            nbits: None,
            ncells: None,
            ndocs: None,
            bytes_per_token: bytes,
            build_s: None,
            p50_ms: 1.0,
            p95_ms: 1.0,
            ndcg_10: Some(q),
            recall_100: None,
            recall_10_vs_exact: 0.0,
            recall_100_vs_exact: 0.0,
            pareto_bytes: false,
            pareto_latency: false,
            rerank_ms_per_doc: None,
        }
    }

    #[test]
    fn pareto_front_keeps_only_undominated_points() {
        let rows =
            [row(10.0, 0.5), row(20.0, 0.7), row(20.0, 0.6), row(30.0, 0.65), row(40.0, 0.8)];
        let rows: Vec<&Row> = rows.iter().collect();
        let front = pareto(&rows, |r| r.bytes_per_token, Row::quality);
        assert_eq!(front, [true, true, false, false, true]);
        // Equal points do not dominate each other.
        let twins = [row(1.0, 0.5), row(1.0, 0.5)];
        let twins: Vec<&Row> = twins.iter().collect();
        assert_eq!(pareto(&twins, |r| r.bytes_per_token, Row::quality), [true, true]);
        // Another quality axis gives another front.
        let by_recall = pareto(&rows, |r| r.bytes_per_token, |r| -r.bytes_per_token);
        assert_eq!(by_recall, [true, false, false, false, false]);
    }

    #[test]
    fn lists_parse_and_reject_garbage() {
        assert_eq!(parse_list::<u8>("nbits", "1, 2,4").unwrap(), [1, 2, 4]);
        assert!(parse_list::<u8>("nbits", "1,x").is_err());
        assert!(parse_list::<u8>("nbits", ",").is_err());
    }
}
