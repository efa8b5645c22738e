//! The sweep's reference points beside tartan's rows: exact MaxSim over the stored vectors,
//! over vectors rounded to float16, a mean-pooled single-vector bi-encoder, and (with the
//! `text` feature) a cross-encoder rereading exact MaxSim's first hits.

use std::time::{Duration, Instant};

use tartan_embeddings::Embeddings;
use tartan_eval::{overlap_at, Metrics, Qrels, Run};
use tartan_maxsim::{exact_search, Corpus, Hit};

use super::report::Row;

/// Scores runs the same way for every system.
pub(crate) struct Judge {
    pub(crate) qrels: Option<Qrels>,
    pub(crate) exact: Run,
}

impl Judge {
    pub(crate) fn row(
        &self,
        system: &str,
        run: &Run,
        times: &[Duration],
        bytes_per_token: f64,
    ) -> Row {
        // The qrels were cut to the searched queries, so every judged query has a ranking.
        let m = self.qrels.as_ref().map(|q| Metrics::compute(run, q));
        let l = crate::Latency::of(times);
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
pub(crate) struct RoundedF16<'a>(pub(crate) &'a Embeddings);

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
pub(crate) fn brute_force(
    corpus: &dyn Corpus,
    docs: &Embeddings,
    queries: &Embeddings,
    toks: &[ndarray::Array2<f32>],
    k: usize,
) -> (Run, Vec<Duration>) {
    let mut run = Run::new();
    let mut times = Vec::with_capacity(toks.len());
    for (i, q) in toks.iter().enumerate() {
        let t = Instant::now();
        let hits = exact_search(corpus, &[q.as_slice().expect("standard layout")], k).remove(0);
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
pub(crate) fn bi_encoder(
    docs: &Embeddings,
    queries: &Embeddings,
    k: usize,
) -> (Run, Vec<Duration>) {
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
#[cfg(feature = "text")]
pub(crate) fn cross_encoder(
    rr: &crate::rerank::Reranker,
    query_texts: &std::path::Path,
    queries: &Embeddings,
    judge: &Judge,
    exact_times: &[Duration],
) -> crate::Result<Row> {
    let by_id: std::collections::HashMap<String, String> =
        tartan_eval::load_query_texts(query_texts)?.into_iter().map(|q| (q.id, q.text)).collect();
    let mut run = Run::new();
    let mut times = Vec::with_capacity(queries.n_docs());
    let (mut pairs, mut rerank_time) = (0usize, Duration::ZERO);
    for (i, first) in exact_times.iter().enumerate() {
        let id = queries.id(i);
        let text = by_id.get(id).ok_or_else(|| crate::Error::Param {
            name: "query_texts",
            reason: format!("query {id} has no text in {}", query_texts.display()),
        })?;
        let ranking = judge.exact.get(id).unwrap_or_default();
        let hits = ranking
            .iter()
            .map(|(doc, score)| crate::Hit {
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
    Ok(row)
}
