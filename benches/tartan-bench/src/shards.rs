//! shards-bench: one corpus split into 1, 2, 4 and 8 shards of one codebook, searched in
//! process and through `tartan serve` on loopback; and a load run against one server.
//!
//! ```text
//! shards-bench split EMB_DIR EXACT_RUN --tartan target/release/tartan [--work DIR] [--k 100] [--shards 1,2,4,8] [--out shards.json]
//! shards-bench load  INDEX_OR_COLLECTION EMB_DIR --tartan target/release/tartan [--clients 1,4,16] [--seconds 20] [--k 10] [--out load.json]
//! ```
//!
//! `split` prints, per shard count and mode: p50/p95/p99 one query at a time, QPS of the whole
//! batch, recall@10/100 against the exact run, nDCG@10 (with `qrels.tsv` beside the queries);
//! the query × centroids time (the fixed cost every shard would pay without the shared
//! product), the HTTP overhead per query and the bytes each search puts on the wire.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a measurement program reports

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ndarray::{Array2, ArrayView2};
use serde_json::json;
use tartan::wire::{self, SearchRequest};
use tartan::{
    Codebook, Embeddings, Index, IndexParams, Kind, Latency, LoadOptions, NoProgress,
    SearchOptions, SearchParams, Searcher, ShardSpec,
};
use tartan_eval::{overlap_at, Metrics, Qrels, Run};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn list(s: &str) -> Result<Vec<usize>> {
    s.split(',').map(|x| x.trim().parse().context("a list of numbers")).collect()
}

/// A `tartan serve` child on an ephemeral port.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(tartan: &Path, path: &Path) -> Result<Self> {
        let mut child = Command::new(tartan)
            .args(["serve", path.to_str().context("UTF-8 path")?, "--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .with_context(|| format!("no address in {line:?}"))?
            .to_string();
        Ok(Self { child, url })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Measured {
    latency: Latency,
    qps: f64,
    run: Run,
}

fn measure(
    s: &Searcher,
    views: &[ArrayView2<'_, f32>],
    ids: &[String],
    p: &SearchParams,
) -> Result<Measured> {
    let mut times = Vec::with_capacity(views.len());
    let mut run = Run::new();
    for (q, id) in views.iter().zip(ids) {
        let t = Instant::now();
        let r = s.search(q.view(), p)?;
        times.push(t.elapsed());
        if !r.coverage.complete() {
            bail!("incomplete: {}", r.coverage.describe());
        }
        run.insert(id, r.hits.into_iter().map(|h| (h.id, h.score)).collect());
    }
    let t = Instant::now();
    s.search_batch(views, p, &SearchOptions::default())?;
    let qps = views.len() as f64 / t.elapsed().as_secs_f64();
    Ok(Measured { latency: Latency::of(&times), qps, run })
}

/// Bytes of one query's two rounds against one remote shard, as the searcher sends them.
fn wire_bytes(url: &str, q: ArrayView2<'_, f32>, p: &SearchParams) -> Result<(usize, usize)> {
    let mut req = SearchRequest::from_params(p, false);
    req.queries = Some(vec![wire::encode_query(&q)]);
    let body1 = serde_json::to_vec(&req)?;
    let resp1 =
        ureq::post(&format!("{url}/search/candidates")).send_bytes(&body1)?.into_string()?;
    let c: wire::CandidatesResponse = serde_json::from_str(&resp1)?;
    let r = p.resolve()?;
    let cands: Vec<tartan::Candidate> = c.lists[0]
        .iter()
        .map(|&(doc, pruned, full)| tartan::Candidate { doc, pruned, full })
        .collect();
    let docs: Vec<u32> =
        tartan::select_finalists(&[&cands], &r, c.n_stored).into_iter().map(|(_, d)| d).collect();
    let req2 = wire::ScoreRequest {
        queries: vec![wire::encode_query(&q)],
        docs: vec![docs],
        snapshot: c.snapshot,
        with_text: None,
    };
    let body2 = serde_json::to_vec(&req2)?;
    let resp2 = ureq::post(&format!("{url}/search/score")).send_bytes(&body2)?.into_string()?;
    Ok((body1.len() + body2.len(), resp1.len() + resp2.len()))
}

fn split(args: &[String]) -> Result<()> {
    let emb = PathBuf::from(args.get(2).context("EMB_DIR")?);
    let exact = Run::load(Path::new(args.get(3).context("EXACT_RUN")?))?;
    let tartan = PathBuf::from(arg(args, "--tartan").context("--tartan BIN")?);
    let work = PathBuf::from(arg(args, "--work").unwrap_or_else(|| "shards-work".into()));
    let k: usize = arg(args, "--k").map_or(Ok(100), |s| s.parse())?;
    let counts = list(&arg(args, "--shards").unwrap_or_else(|| "1,2,4,8".into()))?;
    let out = arg(args, "--out").unwrap_or_else(|| "shards.json".into());
    std::fs::create_dir_all(&work)?;

    let docs = Embeddings::open(&emb, Kind::Docs, LoadOptions::default())?;
    let queries = tartan::load_queries(&emb, false)?;
    let qrels = Qrels::load(&emb.join("qrels.tsv")).ok();
    let toks: Vec<Array2<f32>> = (0..queries.n_docs()).map(|i| queries.doc_matrix(i)).collect();
    let views: Vec<ArrayView2<'_, f32>> = toks.iter().map(Array2::view).collect();
    let ids: Vec<String> = queries.ids().to_vec();

    let cb_dir = work.join("codebook");
    let codebook = if cb_dir.exists() {
        Arc::new(Codebook::open(&cb_dir)?)
    } else {
        let t = Instant::now();
        let cb = Codebook::train(&docs, &IndexParams::new().nbits(2), &NoProgress)?;
        cb.save(&cb_dir, false)?;
        eprintln!("trained K {} in {:.1} s", cb.n_centroids(), t.elapsed().as_secs_f64());
        Arc::new(cb)
    };
    // The per-shard fixed cost a shared product saves: query × centroids.
    let t = Instant::now();
    let scorer = tartan::Scorer::new(codebook.clone());
    for q in &views {
        scorer.prepare(q.view(), 0)?;
    }
    let prepare_ms = t.elapsed().as_secs_f64() * 1e3 / views.len() as f64;
    eprintln!("query × centroids: {prepare_ms:.2} ms per query (K {})", codebook.n_centroids());

    let params = SearchParams::new(k);
    let mut rows = Vec::new();
    println!("| shards | mode | p50 ms | p95 ms | p99 ms | QPS | recall@10 | recall@100 | nDCG@10 | bytes sent / received per query |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &counts {
        let per = docs.n_docs().div_ceil(n);
        let mut specs = Vec::new();
        let mut dirs = Vec::new();
        for i in 0..n {
            let dir = work.join(format!("split{n}/shard{i}"));
            if !dir.exists() {
                let part: Vec<usize> = (i * per..((i + 1) * per).min(docs.n_docs())).collect();
                let p = IndexParams::new().codebook(codebook.clone());
                Index::build(&docs.select(&part)?, &dir, &p, &NoProgress)?;
            }
            specs.push(ShardSpec::parse(dir.to_str().context("UTF-8")?));
            dirs.push(dir);
        }
        let local = work.join(format!("split{n}/local"));
        if !local.exists() {
            tartan::create_collection(&local, Some(codebook.id()), &specs)?;
        }
        let servers: Vec<Server> =
            dirs.iter().map(|d| Server::start(&tartan, d)).collect::<Result<_>>()?;
        let remote = work.join(format!("split{n}/remote"));
        let _ = std::fs::remove_dir_all(&remote);
        let rspecs: Vec<ShardSpec> = servers.iter().map(|s| ShardSpec::parse(&s.url)).collect();
        tartan::create_collection(&remote, Some(codebook.id()), &rspecs)?;
        for (mode, path) in [("in process", &local), ("tartan serve", &remote)] {
            let s = Searcher::open(path)?;
            let m = measure(&s, &views, &ids, &params)?;
            let ndcg = qrels.as_ref().map(|q| Metrics::compute(&m.run, q).ndcg_10);
            let (r10, r100) = (overlap_at(&m.run, &exact, 10), overlap_at(&m.run, &exact, 100));
            let (sent, recv) = if mode == "tartan serve" {
                let mut tot = (0, 0);
                for srv in &servers {
                    let (a, b) = wire_bytes(&srv.url, views[0], &params)?;
                    tot = (tot.0 + a, tot.1 + b);
                }
                tot
            } else {
                (0, 0)
            };
            let l = m.latency;
            println!(
                "| {n} | {mode} | {:.2} | {:.2} | {:.2} | {:.1} | {r10:.4} | {r100:.4} | {} | {} |",
                l.p50_ms,
                l.p95_ms,
                l.p99_ms,
                m.qps,
                ndcg.map_or("-".into(), |x| format!("{x:.4}")),
                if sent > 0 { format!("{sent} / {recv}") } else { "-".into() }
            );
            rows.push(
                json!({"shards": n, "mode": mode, "latency": l, "qps": m.qps, "recall_10": r10,
                "recall_100": r100, "ndcg_10": ndcg, "bytes_sent": sent, "bytes_received": recv}),
            );
        }
    }
    let report = json!({"embeddings": emb, "k": k, "n_docs": docs.n_docs(), "n_queries": views.len(),
        "n_centroids": codebook.n_centroids(), "prepare_ms_per_query": prepare_ms,
        "threads": rayon_threads(), "rows": rows});
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {out}");
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn load(args: &[String]) -> Result<()> {
    let path = PathBuf::from(args.get(2).context("INDEX_OR_COLLECTION")?);
    let emb = PathBuf::from(args.get(3).context("EMB_DIR")?);
    let tartan = PathBuf::from(arg(args, "--tartan").context("--tartan BIN")?);
    let clients = list(&arg(args, "--clients").unwrap_or_else(|| "1,4,16".into()))?;
    let seconds: f64 = arg(args, "--seconds").map_or(Ok(20.0), |s| s.parse())?;
    let k: usize = arg(args, "--k").map_or(Ok(10), |s| s.parse())?;
    let out = arg(args, "--out").unwrap_or_else(|| "load.json".into());
    let queries = tartan::load_queries(&emb, false)?;
    let bodies: Vec<Vec<u8>> = (0..queries.n_docs())
        .map(|i| {
            let v = queries.doc_matrix(i);
            let req = SearchRequest {
                query: Some(wire::encode_query(&v.view())),
                k: Some(k),
                ..SearchRequest::default()
            };
            serde_json::to_vec(&req).expect("serialises")
        })
        .collect();
    let server = Server::start(&tartan, &path)?;
    let url = format!("{}/search", server.url);
    println!("| clients | requests | errors | QPS | p50 ms | p95 ms | p99 ms |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for &n in &clients {
        let until = Instant::now() + Duration::from_secs_f64(seconds);
        let t = Instant::now();
        let per_client: Vec<(Vec<Duration>, usize)> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..n)
                .map(|c| {
                    let (url, bodies) = (&url, &bodies);
                    s.spawn(move || {
                        let agent =
                            ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
                        let (mut times, mut errors) = (Vec::new(), 0);
                        let mut i = c;
                        while Instant::now() < until {
                            let t = Instant::now();
                            let ok = agent
                                .post(url)
                                .send_bytes(&bodies[i % bodies.len()])
                                .is_ok_and(|r| r.status() == 200 && r.into_string().is_ok());
                            if ok {
                                times.push(t.elapsed());
                            } else {
                                errors += 1;
                            }
                            i += n;
                        }
                        (times, errors)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("client")).collect()
        });
        let wall = t.elapsed().as_secs_f64();
        let times: Vec<Duration> = per_client.iter().flat_map(|(t, _)| t.iter().copied()).collect();
        let errors: usize = per_client.iter().map(|(_, e)| e).sum();
        let l = Latency::of(&times);
        let qps = times.len() as f64 / wall;
        println!(
            "| {n} | {} | {errors} | {qps:.1} | {:.2} | {:.2} | {:.2} |",
            times.len(),
            l.p50_ms,
            l.p95_ms,
            l.p99_ms
        );
        rows.push(json!({"clients": n, "requests": times.len(), "errors": errors, "qps": qps, "latency": l}));
    }
    std::fs::write(
        &out,
        serde_json::to_string_pretty(
            &json!({"path": path, "k": k, "seconds": seconds, "rows": rows}),
        )?,
    )?;
    eprintln!("wrote {out}");
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("split") => split(&args),
        Some("load") => load(&args),
        _ => bail!("usage: shards-bench split EMB_DIR EXACT_RUN --tartan BIN ... | shards-bench load PATH EMB_DIR --tartan BIN ..."),
    }
}
