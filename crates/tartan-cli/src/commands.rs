use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ndarray::ArrayView2;
use tartan_embeddings::{Embeddings, Kind, LoadOptions};
use tartan_eval::{overlap_at, Metrics, Qrels, Run};
use tartan_index::{Assignment, Extras, Filter, Index, IndexParams, KMeansAlgorithm, SearchParams};

use crate::progress::Bars;
use crate::timing::latency;
use crate::{EvalArgs, ExactArgs, IndexArgs, KMeansImpl, SearchArgs};

/// Documents to index or add, with what is stored beside them.
pub struct Loaded {
    pub docs: Embeddings,
    pub extras: Extras,
    /// The temporary embeddings directory of encoded text, removed on drop.
    _encoded: Option<tempfile::TempDir>,
}

/// Reads an embeddings directory, or with `--model` encodes a corpus file / BEIR directory
/// into a temporary embeddings directory beside `near` (streamed, then memory-mapped) and
/// keeps the texts; then attaches `--metadata` when given.
pub fn load_docs(
    input: &Path,
    encoder: &crate::EncoderArgs,
    normalize: bool,
    metadata: Option<&Path>,
    near: &Path,
) -> Result<Loaded> {
    let mut extras = Extras::new();
    let mut encoded = None;
    let docs = if encoder.model.is_some() {
        let enc = crate::encode::load_encoder(encoder)?;
        let items = tartan_eval::load_corpus(input).context("reading the corpus")?;
        let parent = near.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)?;
        let tmp = tempfile::Builder::new().prefix(".tartan-encode-").tempdir_in(parent)?;
        let t = Instant::now();
        let n = crate::encode::encode_into(
            &enc,
            &items,
            tmp.path(),
            Kind::Docs,
            tartan_embeddings::Precision::F16,
        )?;
        eprintln!(
            "encoded {} documents, {n} tokens in {:.1} s",
            items.len(),
            t.elapsed().as_secs_f64()
        );
        let docs = Embeddings::open(tmp.path(), Kind::Docs, LoadOptions::default())?;
        extras = extras.texts(items.into_iter().map(|i| i.text).collect());
        encoded = Some(tmp);
        docs
    } else {
        Embeddings::open(input, Kind::Docs, LoadOptions { normalize })
            .context("reading the documents")?
    };
    if let Some(path) = metadata {
        extras = extras.metadata(&read_metadata(path, docs.ids())?);
    }
    Ok(Loaded { docs, extras, _encoded: encoded })
}

/// Reads a JSON-lines metadata file: one object per line, naming its document by an `"id"`
/// string field (kept as a field too). Documents without a line get no metadata.
pub fn read_metadata(path: &Path, ids: &[String]) -> Result<Vec<serde_json::Value>> {
    let pos: HashMap<&str, usize> =
        ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let mut out = vec![serde_json::Value::Null; ids.len()];
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading metadata {}", path.display()))?;
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = || format!("{}:{}", path.display(), n + 1);
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{}: not JSON", at()))?;
        let Some(id) = v.as_object().and_then(|o| o.get("id")).and_then(|i| i.as_str()) else {
            bail!("{}: expected a JSON object with an \"id\" string field", at());
        };
        let Some(&i) = pos.get(id) else {
            bail!("{}: id {id:?} is not among the documents", at());
        };
        if !out[i].is_null() {
            bail!("{}: id {id:?} has metadata twice", at());
        }
        out[i] = v;
    }
    Ok(out)
}

pub fn index(a: &IndexArgs) -> Result<()> {
    let loaded =
        load_docs(&a.embeddings, &a.encoder, a.normalize, a.metadata.as_deref(), &a.index)?;
    let docs = &loaded.docs;
    let algorithm = match a.kmeans {
        KMeansImpl::Blocked => KMeansAlgorithm::Blocked,
        KMeansImpl::Linfa => KMeansAlgorithm::Linfa,
    };
    let mut p = IndexParams::new()
        .nbits(a.nbits)
        .kmeans_iters(a.kmeans_iters)
        .kmeans_algorithm(algorithm)
        .seed(a.seed)
        .overwrite(a.overwrite);
    if a.exact_assign {
        p = p.assignment(Assignment::Exact);
    }
    if let Some(k) = a.centroids {
        p = p.n_centroids(k);
    }
    if let Some(n) = a.sample_docs {
        p = p.sample_docs(n);
    }
    if let Some(from) = &a.centroids_from {
        let other = Index::open(from).with_context(|| format!("opening {}", from.display()))?;
        if other.dim() != docs.dim() {
            bail!("{} has dimension {}, the documents {}", from.display(), other.dim(), docs.dim());
        }
        p = p.centroids(other.centroids().to_vec());
    }
    let bars = Bars::default();
    let t = Instant::now();
    let built = Index::build_with(docs, &loaded.extras, &a.index, &p, &bars);
    bars.finish();
    let index = built.with_context(|| format!("building the index in {}", a.index.display()))?;
    let s = index.stats();
    outln!(
        "indexed {} documents ({} tokens) in {:.1} s: K {}, {} bits, {:.2} bytes/token, {} on disk",
        s.n_docs,
        s.n_tokens,
        t.elapsed().as_secs_f64(),
        s.n_centroids,
        s.nbits,
        s.bytes_per_token(),
        human_bytes(s.total_bytes)
    );
    Ok(())
}

/// Each query's tokens as an owned f32 vector (queries are small).
pub fn load_queries(dir: &Path, normalize: bool) -> Result<Embeddings> {
    if !Embeddings::exists(dir, Kind::Queries) {
        bail!("{} has no query_embs.npy", dir.display());
    }
    Embeddings::open(dir, Kind::Queries, LoadOptions { normalize }).context("reading the queries")
}

pub fn search(a: &SearchArgs) -> Result<()> {
    let index = Index::open(&a.index).with_context(|| format!("opening {}", a.index.display()))?;
    let default_k = if a.query.is_some() { 10 } else { 100 };
    let mut params = SearchParams::new(a.k.unwrap_or(default_k));
    if let Some(n) = a.ncells {
        params = params.ncells(n);
    }
    if let Some(n) = a.ndocs {
        params = params.ndocs(n);
    }
    if let Some(t) = a.threshold {
        params = params.centroid_score_threshold(t);
    }
    if let Some(f) = &a.filter {
        params = params.filter(Filter::parse(f).context("--filter")?);
    }
    if let Some(text) = &a.query {
        return search_text(&index, text, &a.encoder, &params);
    }
    let (Some(queries_dir), Some(out)) = (&a.queries, &a.out) else {
        bail!("give --queries and --out, or --query with --model");
    };
    let queries = load_queries(queries_dir, a.normalize)?;
    if queries.dim() != index.dim() {
        bail!("queries have dimension {}, the index {}", queries.dim(), index.dim());
    }
    let r = params.resolve()?;
    let toks: Vec<Vec<f32>> = (0..queries.n_docs()).map(|i| queries.doc(i)).collect();
    let dim = index.dim();
    let views: Vec<ArrayView2<'_, f32>> = toks
        .iter()
        .map(|q| ArrayView2::from_shape((q.len() / dim, dim), q).expect("whole rows"))
        .collect();

    // One query at a time for latency; then the whole batch over all cores for throughput.
    let (results, times) = timed_searches(&index, &views, &params)?;
    let t = Instant::now();
    let batch = index.search_batch(&views, &params)?;
    let qps = views.len() as f64 / t.elapsed().as_secs_f64();
    debug_assert_eq!(batch, results);

    let mut run = Run::new();
    for (i, hits) in results.into_iter().enumerate() {
        run.insert(queries.id(i), hits.into_iter().map(|h| (h.id, h.score)).collect());
    }
    write_run(&run, out, "tartan")?;
    let l = latency(&times);
    outln!(
        "generation {}, {} queries, k {} (ncells {}, threshold {}, ndocs {}): p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, {:.0} QPS on {} threads; run in {}",
        index.generation(),
        views.len(),
        r.k,
        r.ncells,
        r.centroid_score_threshold,
        r.ndocs,
        l.p50_ms,
        l.p95_ms,
        l.p99_ms,
        qps,
        rayon::current_num_threads(),
        out.display()
    );
    let qrels = queries_dir.join("qrels.tsv");
    if qrels.exists() {
        print_metrics(&run, &Qrels::load(&qrels)?);
    }
    Ok(())
}

/// Encodes one text query, searches, and prints the hits with the start of their text.
fn search_text(
    index: &Index,
    text: &str,
    enc_args: &crate::EncoderArgs,
    params: &SearchParams,
) -> Result<()> {
    let enc = crate::encode::load_encoder(enc_args)?;
    if enc.dim() != index.dim() {
        bail!("the model gives {}-dimensional vectors, the index holds {}", enc.dim(), index.dim());
    }
    let q = enc.encode_queries(&[text])?.remove(0);
    let t = Instant::now();
    let hits =
        index.search(ArrayView2::from_shape((q.len() / enc.dim(), enc.dim()), &q)?, params)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    outln!("{} hits in {ms:.1} ms for {text:?}", hits.len());
    for (rank, h) in hits.iter().enumerate() {
        let snippet: String = match index.text(h.doc) {
            Some(t) => t?.chars().take(100).collect(),
            None => "(no text stored: index built from embeddings)".into(),
        };
        outln!("{:>3}  {:>9.4}  {:<12}  {}", rank + 1, h.score, h.id, snippet.replace('\n', " "));
    }
    Ok(())
}

pub fn exact(a: &ExactArgs) -> Result<()> {
    let opts = LoadOptions { normalize: a.normalize };
    let docs =
        Embeddings::open(&a.embeddings, Kind::Docs, opts).context("reading the documents")?;
    let queries = load_queries(&a.embeddings, a.normalize)?;
    if queries.dim() != docs.dim() {
        bail!("queries have dimension {}, documents {}", queries.dim(), docs.dim());
    }
    if a.k == 0 {
        bail!("--k must be at least 1");
    }
    let toks: Vec<Vec<f32>> = (0..queries.n_docs()).map(|i| queries.doc(i)).collect();
    let refs: Vec<&[f32]> = toks.iter().map(Vec::as_slice).collect();
    let t = Instant::now();
    let hits = tartan_maxsim::exact_search(&docs, &refs, a.k);
    let secs = t.elapsed().as_secs_f64();
    let mut run = Run::new();
    for (i, hs) in hits.into_iter().enumerate() {
        run.insert(
            queries.id(i),
            hs.into_iter().map(|h| (docs.id(h.doc as usize).to_string(), h.score)).collect(),
        );
    }
    write_run(&run, &a.out, "exact")?;
    outln!(
        "exact MaxSim: {} queries × {} documents in {secs:.2} s ({:.1} ms/query); run in {}",
        queries.n_docs(),
        docs.n_docs(),
        secs * 1e3 / queries.n_docs() as f64,
        a.out.display()
    );
    let qrels = a.embeddings.join("qrels.tsv");
    if qrels.exists() {
        print_metrics(&run, &Qrels::load(&qrels)?);
    }
    Ok(())
}

pub fn eval(a: &EvalArgs) -> Result<()> {
    if a.qrels.is_none() && a.against.is_none() {
        bail!("give --qrels, --against, or both");
    }
    let run = Run::load(&a.run)?;
    if let Some(q) = &a.qrels {
        print_metrics(&run, &Qrels::load(q)?);
    }
    if let Some(o) = &a.against {
        let oracle = Run::load(o)?;
        outln!(
            "against {}: recall@10 {:.4}, recall@100 {:.4}",
            o.display(),
            overlap_at(&run, &oracle, 10),
            overlap_at(&run, &oracle, 100)
        );
    }
    Ok(())
}

fn print_metrics(run: &Run, qrels: &Qrels) {
    let m = Metrics::compute(run, qrels);
    outln!(
        "nDCG@10 {:.4}  Recall@100 {:.4}  MRR@10 {:.4}  ({} judged queries{})",
        m.ndcg_10,
        m.recall_100,
        m.mrr_10,
        m.n_queries,
        if m.n_missing > 0 {
            format!(", {} missing from the run", m.n_missing)
        } else {
            String::new()
        }
    );
}

fn write_run(run: &Run, path: &Path, tag: &str) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::new(f);
    run.write(&mut w, tag)?;
    w.flush()?;
    Ok(())
}

/// Codebook drift above which `inspect` recommends retraining: tokens 25% farther (in squared
/// distance) from their centroids than the build's lose noticeably more to quantisation.
const DRIFT_WARNING: f64 = 1.25;

pub fn inspect(dir: &Path) -> Result<()> {
    let index = Index::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let s = index.stats();
    let m = index.manifest();
    outln!("index        {}", dir.display());
    outln!(
        "generation   {} ({} segment{})",
        s.generation,
        s.n_segments,
        if s.n_segments == 1 { "" } else { "s" }
    );
    outln!(
        "documents    {} live, {} deleted (stored until `tartan compact`)",
        s.n_docs,
        s.n_deleted
    );
    for &(id, docs, deleted, tokens, msr) in &s.segments {
        let msr = msr.map_or("-".to_string(), |m| format!("{m:.4}"));
        outln!(
            "  segment {id:>6}: {docs:>9} docs, {deleted:>7} deleted, {tokens:>11} tokens, mean sq residual {msr}"
        );
    }
    outln!(
        "tokens       {} stored ({:.1} per document)",
        s.n_tokens,
        s.n_tokens as f64 / (s.n_docs + s.n_deleted).max(1) as f64
    );
    outln!("dim          {}", s.dim);
    outln!(
        "centroids    {}{}",
        s.n_centroids,
        if m.build.centroids_from_user { " (set by user)" } else { "" }
    );
    outln!("nbits        {}", s.nbits);
    outln!("size         {} ({:.2} bytes/token)", human_bytes(s.total_bytes), s.bytes_per_token());
    outln!("  codebook   {:>12}", human_bytes(s.codebook_bytes));
    for (name, bytes) in &s.components {
        outln!(
            "  {name:<10} {:>12}  {:.2} B/token",
            human_bytes(*bytes),
            *bytes as f64 / s.n_tokens.max(1) as f64
        );
    }
    let (min, med, mean, max, empty) = s.ivf_lists;
    outln!("ivf lists    min {min}, median {med}, mean {mean:.1}, max {max}, empty {empty}");
    outln!("residual     mean squared token-centroid distance {:.4} at build", s.mean_sq_residual);
    let drift = s.codebook_drift();
    let advice = if drift > DRIFT_WARNING {
        "  <- the codebook no longer fits the data: run `tartan retrain`"
    } else {
        ""
    };
    outln!("drift        {drift:.2}x the build's residual over all segments{advice}");
    outln!(
        "build        seed {}, {} k-means passes on {} points from {} docs, codec on {} tokens{}",
        m.build.seed,
        m.build.kmeans_iters,
        m.build.kmeans_points,
        m.build.sample_docs,
        m.build.codec_tokens,
        m.build.build_seconds.map_or(String::new(), |s| format!(", {s:.1} s"))
    );
    outln!("codebook     {}", index.codebook().id());
    Ok(())
}

pub fn verify(dir: &Path) -> Result<()> {
    let t = Instant::now();
    let index = Index::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    index.verify().with_context(|| format!("verifying {}", dir.display()))?;
    outln!(
        "ok: {} verified ({} documents, {}) in {:.2} s",
        dir.display(),
        index.n_docs(),
        human_bytes(index.stats().total_bytes),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn human_bytes(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// Times each query alone (one after the other); returns the hits and the durations.
pub fn timed_searches(
    index: &Index,
    views: &[ArrayView2<'_, f32>],
    params: &SearchParams,
) -> Result<(Vec<Vec<tartan_index::SearchHit>>, Vec<Duration>)> {
    let mut hits = Vec::with_capacity(views.len());
    let mut times = Vec::with_capacity(views.len());
    for v in views {
        let t = Instant::now();
        hits.push(index.search(v.view(), params)?);
        times.push(t.elapsed());
    }
    Ok((hits, times))
}
