//! `tartan search`: a queries file into a TREC run, or one text query printed (or as JSON);
//! either one optionally reranked by a cross-encoder.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ndarray::{Array2, ArrayView2};
use tartan::eval::{Qrels, Run};
use tartan::rerank::{RerankSpec, Reranked, Reranker};
use tartan::settings::{shard_policy, DEFAULT_K, DEFAULT_RUN_K};
use tartan::{Latency, SearchOptions, SearchParams, Searcher};

use crate::commands::{print_metrics, write_run};
use crate::{RerankArgs, SearchArgs};
use tartan::timed_searches;

/// Characters of a hit's text shown (and in `--json`, given as its snippet).
const SNIPPET_CHARS: usize = 200;

impl RerankArgs {
    /// The cross-encoder `--rerank` names, loaded, with `--corpus` for texts, if any.
    pub fn load(&self) -> Result<Option<Reranker>> {
        let Some(model) = &self.rerank else { return Ok(None) };
        let spec = RerankSpec {
            model: model.clone(),
            max_length: self.rerank_max_length,
            batch_size: None,
            depth: Some(self.rerank_depth),
        };
        let mut r = spec.load().with_context(|| format!("loading the cross-encoder {model}"))?;
        if let Some(c) = &self.corpus {
            r = r.with_corpus(c).with_context(|| format!("reading the corpus {}", c.display()))?;
        }
        eprintln!(
            "cross-encoder {model}: max_length {}, reranking the first {} hits",
            r.model().max_length(),
            r.depth()
        );
        Ok(Some(r))
    }
}

fn search_params(a: &SearchArgs, default_k: usize) -> Result<SearchParams> {
    let settings = tartan::settings::QuerySettings {
        k: a.k,
        ncells: a.ncells,
        ndocs: a.ndocs,
        centroid_score_threshold: a.threshold,
        filter: a.filter.clone(),
    };
    Ok(settings.params(default_k)?)
}

/// Queries of a batch run: ids, token matrices, texts where known, judgements where found.
struct Queries {
    ids: Vec<String>,
    matrices: Vec<Array2<f32>>,
    texts: Option<Vec<String>>,
    qrels: Option<Qrels>,
}

/// An embeddings directory (texts from `--query-texts` by id), or with `--model` a BEIR
/// directory (the test split and its qrels) or a `queries.jsonl` file, encoded here.
fn load_queries(a: &SearchArgs, dir: &Path, dim: usize) -> Result<Queries> {
    let texts_by_id = |path: &Path| -> Result<HashMap<String, String>> {
        let items = tartan::eval::load_query_texts(path)
            .with_context(|| format!("reading query texts from {}", path.display()))?;
        Ok(items.into_iter().map(|q| (q.id, q.text)).collect())
    };
    if dir.join("query_embs.npy").exists() || a.encoder.model.is_none() {
        let q = tartan::load_queries(dir, a.normalize)?;
        if q.dim() != dim {
            bail!("queries have dimension {}, the index {dim}", q.dim());
        }
        let ids: Vec<String> = (0..q.n_docs()).map(|i| q.id(i).to_string()).collect();
        let matrices = (0..q.n_docs()).map(|i| q.doc_matrix(i)).collect();
        let texts = match &a.query_texts {
            None => None,
            Some(path) => {
                let by_id = texts_by_id(path)?;
                let texts = ids.iter().map(|id| {
                    by_id
                        .get(id)
                        .cloned()
                        .with_context(|| format!("query {id} has no text in {}", path.display()))
                });
                Some(texts.collect::<Result<Vec<_>>>()?)
            }
        };
        let qrels = dir.join("qrels.tsv");
        let qrels = if qrels.exists() { Some(Qrels::load(&qrels)?) } else { None };
        return Ok(Queries { ids, matrices, texts, qrels });
    }
    let enc = a.encoder.load()?.context("text queries need --model")?;
    tartan::text::check_model_dim(&enc, dim)?;
    let (items, qrels) = if dir.is_dir() {
        let (items, qrels) = tartan::eval::load_queries(dir, "test")?;
        (items, Some(qrels))
    } else {
        (tartan::eval::load_query_texts(dir)?, None)
    };
    let matrices = items
        .iter()
        .map(|q| tartan::text::encode_query(&enc, &q.text).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    let (ids, texts) = items.into_iter().map(|q| (q.id, q.text)).unzip();
    Ok(Queries { ids, matrices, texts: Some(texts), qrels })
}

pub fn search(a: &SearchArgs) -> Result<()> {
    let policy = shard_policy(a.deadline_ms, a.require_all)?;
    let searcher = Searcher::open_with(&a.index, policy)
        .with_context(|| format!("opening {}", a.index.display()))?;
    let reranker = a.rerank.load()?;
    if let Some(text) = &a.query {
        return search_text(&searcher, text, a, reranker.as_ref());
    }
    let params = search_params(a, DEFAULT_RUN_K)?;
    let (Some(queries_dir), Some(out)) = (&a.queries, &a.out) else {
        bail!("give --queries and --out, or --query with --model");
    };
    let queries = load_queries(a, queries_dir, searcher.dim())?;
    let r = params.resolve()?;
    let views: Vec<ArrayView2<'_, f32>> = queries.matrices.iter().map(|m| m.view()).collect();

    let mut run = Run::new();
    let mut partial = None;
    let mut note_partial = |c: &tartan::Coverage| {
        if !c.complete() {
            partial.get_or_insert(c.clone());
        }
    };
    let (times, qps) = if let Some(rr) = &reranker {
        let texts = queries.texts.as_ref().context(
            "--rerank needs each query's text: --query-texts FILE beside an embeddings \
             directory, or --queries as texts with --model",
        )?;
        if r.k > rr.depth() {
            bail!(
                "--k {} is larger than --rerank-depth {}: a run ranks by score, and hits past \
                 the depth have no rerank score",
                r.k,
                rr.depth()
            );
        }
        let mut times = Vec::with_capacity(views.len());
        for (i, v) in views.iter().enumerate() {
            let t = Instant::now();
            let (hits, coverage) = rr.search(&searcher, v.view(), &texts[i], &params)?;
            times.push(t.elapsed());
            note_partial(&coverage);
            let ranking =
                hits.into_iter().map(|h| (h.hit.id, h.rerank_score.unwrap_or(f32::MIN))).collect();
            run.insert(&queries.ids[i], ranking);
        }
        (times, None)
    } else {
        // One query at a time for latency; then the whole batch over all cores for throughput.
        let (results, times) = timed_searches(&views, |q| searcher.search(q, &params))?;
        let t = Instant::now();
        let batch = searcher.search_batch(&views, &params, &SearchOptions::default())?;
        let qps = views.len() as f64 / t.elapsed().as_secs_f64();
        debug_assert_eq!(batch, results);
        for (i, res) in results.into_iter().enumerate() {
            note_partial(&res.coverage);
            run.insert(&queries.ids[i], res.hits.into_iter().map(|h| (h.id, h.score)).collect());
        }
        (times, Some(qps))
    };
    write_run(&run, out, if reranker.is_some() { "tartan-rerank" } else { "tartan" })?;
    let l = Latency::of(&times);
    let what = match searcher.collection() {
        Some(m) => format!("collection generation {}, {} shards", m.generation, m.shards.len()),
        None => format!("generation {}", searcher.generation()),
    };
    let rerank = match &reranker {
        Some(rr) => format!(", reranked to depth {}", rr.depth()),
        None => String::new(),
    };
    let qps = match qps {
        Some(q) => format!(", {q:.0} QPS on {} threads", rayon::current_num_threads()),
        None => String::new(),
    };
    outln!(
        "{what}, {} queries, k {} (ncells {}, threshold {}, ndocs {}){rerank}: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms{qps}; run in {}",
        views.len(),
        r.k,
        r.ncells,
        r.centroid_score_threshold,
        r.ndocs,
        l.p50_ms,
        l.p95_ms,
        l.p99_ms,
        out.display()
    );
    if let Some(c) = partial {
        outln!("partial results: {}; missing: {}", c.describe(), describe_failures(&c));
    }
    if let Some(qrels) = &queries.qrels {
        print_metrics(&run, qrels);
    }
    Ok(())
}

fn describe_failures(c: &tartan::Coverage) -> String {
    c.failed.iter().map(|(s, r)| format!("{s} ({r})")).collect::<Vec<_>>().join(", ")
}

fn snippet(text: Option<&str>) -> Option<String> {
    text.map(|t| t.chars().take(SNIPPET_CHARS).collect::<String>().replace('\n', " "))
}

/// Encodes one text query, searches (and reranks), and prints the hits with the start of
/// their text, or with `--json` one JSON object.
fn search_text(
    searcher: &Searcher,
    text: &str,
    a: &SearchArgs,
    reranker: Option<&Reranker>,
) -> Result<()> {
    let params = search_params(a, DEFAULT_K)?;
    let enc = a.encoder.load()?.context("--query needs --model")?;
    tartan::text::check_model_dim(&enc, searcher.dim())?;
    let q = tartan::text::encode_query(&enc, text)?;
    let t = Instant::now();
    let (hits, coverage) = match reranker {
        Some(rr) => rr.search(searcher, q.view(), text, &params)?,
        None => {
            let opts = SearchOptions { with_text: true, ..SearchOptions::default() };
            let res = searcher.search_with(q.view(), &params, &opts)?;
            let hits = res.hits.into_iter().enumerate();
            let hits =
                hits.map(|(first_rank, hit)| Reranked { hit, first_rank, rerank_score: None });
            (hits.collect(), res.coverage)
        }
    };
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if a.json {
        let hits: Vec<_> = hits
            .iter()
            .enumerate()
            .map(|(rank, h)| {
                serde_json::json!({
                    "rank": rank + 1,
                    "id": h.hit.id,
                    "score": h.hit.score,
                    "first_stage_rank": h.first_rank + 1,
                    "rerank_score": h.rerank_score,
                    "snippet": snippet(h.hit.text.as_deref()),
                })
            })
            .collect();
        let out = serde_json::json!({
            "query": text,
            "ms": ms,
            "reranked": reranker.map(|r| r.depth()),
            "coverage": {
                "shards": coverage.shards,
                "answered": coverage.answered,
                "failed": coverage.failed,
            },
            "hits": hits,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    outln!("{} hits in {ms:.1} ms for {text:?}", hits.len());
    if !coverage.complete() {
        outln!("partial results: {}", coverage.describe());
    }
    if reranker.is_some() {
        outln!("rank  rerank     maxsim    (was)  id            text");
    }
    for (rank, h) in hits.iter().enumerate() {
        let text = snippet(h.hit.text.as_deref())
            .unwrap_or_else(|| "(no text stored: index built from embeddings)".into());
        let text: String = text.chars().take(100).collect();
        if reranker.is_none() {
            outln!("{:>3}  {:>9.4}  {:<12}  {text}", rank + 1, h.hit.score, h.hit.id);
            continue;
        }
        let rerank = h.rerank_score.map_or("-".into(), |s| format!("{s:.3}"));
        let was = format!("({})", h.first_rank + 1);
        outln!(
            "{:>4}  {rerank:>7}  {:>9.4}  {was:>7}  {:<12}  {text}",
            rank + 1,
            h.hit.score,
            h.hit.id
        );
    }
    Ok(())
}
