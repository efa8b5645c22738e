//! tartan and next-plaid side by side on exactly the same vectors.
//!
//! ```sh
//! cargo run --release --manifest-path benches/vs-next-plaid/Cargo.toml -- \
//!     EMB_DIR [--nbits 2,4] [--k 100] [--out bench-out] [--engines tartan,next-plaid] \
//!     [--reuse next-plaid] [--repeats 1]
//! ```
//!
//! `--reuse` names engines whose index from an earlier run in the same output directory is
//! searched again instead of rebuilt (next-plaid's SciFact builds take most of a run): only
//! when that run recorded its build report for the same data fingerprint and nbits, and the
//! table then shows the recorded build time and memory.
//!
//! `--repeats N` searches every row N times, in rounds: each round runs every row once,
//! next-plaid's and tartan's rows of one setting back to back, so that both engines meet the
//! same moments of a noisy machine. Rows report the median of the rounds' latencies and QPS
//! with the spread of p50; the equal-recall table compares p50s within each round and gives
//! the median ratio with its spread.
//!
//! Every build and every search session runs in a child process (this program re-invoked),
//! which reports its own wall time and peak RSS (`VmHWM`), so neither engine's memory counts
//! against the other. Each engine is searched with its own default settings and with the
//! other's (and a light setting: two cells, `k` documents scored exactly), one query at a
//! time for latency, then as one batch over all cores for QPS. Runs
//! are scored against `EMB_DIR/qrels.tsv` (when present) and against exact MaxSim's top-k
//! (computed once, cached in the output directory). Prints a Markdown table, then for every
//! next-plaid row the fastest tartan row at equal or better recall@10 against exact and the
//! ratio of their p50s, and writes `results.json` with the commit the binary was built from
//! (`+changes` if tracked files differed), the machine and a fingerprint of the data.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a bench reports

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use tartan_embeddings::{Embeddings, Kind, LoadOptions};
use tartan_eval::{overlap_at, Metrics, Qrels, Run};

/// Search settings: cells probed per query token, candidates kept after approximate scoring,
/// centroid pruning threshold.
#[derive(Debug, Clone, Copy, Serialize)]
struct Settings {
    name: &'static str,
    ncells: usize,
    /// next-plaid's `n_full_scores` and tartan's `ndocs`: the candidates kept by approximate
    /// score, of which both engines score `max(full_scores / 4, k)` exactly (next-plaid
    /// 1.8.5, `search.rs`: `n_decompress`).
    full_scores: usize,
    threshold: f32,
}

const SETTING_NAMES: [&str; 3] = ["tartan defaults", "next-plaid defaults", "light"];

fn settings(k: usize) -> Result<[Settings; 3]> {
    let r = tartan_index::SearchParams::new(k).resolve()?;
    let np = next_plaid::SearchParameters::default();
    Ok([
        Settings {
            name: "tartan defaults",
            ncells: r.ncells,
            full_scores: r.ndocs,
            threshold: r.centroid_score_threshold,
        },
        Settings {
            name: "next-plaid defaults",
            ncells: np.n_ivf_probe,
            full_scores: np.n_full_scores,
            threshold: np.centroid_score_threshold.unwrap_or(f32::NEG_INFINITY),
        },
        Settings {
            name: "light",
            ncells: r.ncells,
            full_scores: k,
            threshold: r.centroid_score_threshold,
        },
    ])
}

/// What a child process reports on its last stdout line.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct ChildReport {
    seconds: f64,
    peak_rss_kb: u64,
    rss_after_load_kb: u64,
    load_seconds: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    qps: f64,
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn docs_as_arrays(docs: &Embeddings) -> Vec<Array2<f32>> {
    (0..docs.n_docs())
        .map(|d| Array2::from_shape_vec((docs.doc_len(d), docs.dim()), docs.doc(d)).expect("rows"))
        .collect()
}

fn child_build(engine: &str, emb: &Path, idx: &Path, nbits: u8) -> Result<ChildReport> {
    let t = Instant::now();
    let docs = Embeddings::open(emb, Kind::Docs, LoadOptions::default())?;
    match engine {
        "tartan" => {
            let p = tartan_index::IndexParams::new().nbits(nbits);
            tartan_index::Index::build(&docs, idx, &p, &tartan_index::NoProgress)?;
        }
        "next-plaid" => {
            let embs = docs_as_arrays(&docs);
            let config = next_plaid::IndexConfig { nbits: nbits as usize, ..Default::default() };
            let path = idx.to_str().context("index path is not UTF-8")?;
            next_plaid::MmapIndex::create_with_kmeans(&embs, path, &config)?;
        }
        other => bail!("unknown engine {other}"),
    }
    Ok(ChildReport {
        seconds: t.elapsed().as_secs_f64(),
        peak_rss_kb: status_kb("VmHWM:"),
        ..Default::default()
    })
}

/// Opens the index, times single queries then a parallel batch, writes the run.
fn child_search(
    engine: &str,
    idx: &Path,
    emb: &Path,
    k: usize,
    s: Settings,
    run_out: &Path,
) -> Result<ChildReport> {
    let queries = Embeddings::open(emb, Kind::Queries, LoadOptions::default())?;
    let docs_ids: Vec<String> =
        Embeddings::open(emb, Kind::Docs, LoadOptions::default())?.ids().to_vec();
    let qs: Vec<Array2<f32>> = docs_as_arrays(&queries);
    let mut times = Vec::with_capacity(qs.len());
    let mut run = Run::new();
    let t = Instant::now();
    let qps;
    let load_seconds;
    let rss_after_load_kb;
    match engine {
        "tartan" => {
            let index = tartan_index::Index::open(idx)?;
            load_seconds = t.elapsed().as_secs_f64();
            rss_after_load_kb = status_kb("VmRSS:");
            let p = tartan_index::SearchParams::new(k)
                .ncells(s.ncells)
                .ndocs(s.full_scores)
                .centroid_score_threshold(s.threshold);
            for (i, q) in qs.iter().enumerate() {
                let t = Instant::now();
                let hits = index.search(q.view(), &p)?;
                times.push(t.elapsed());
                run.insert(queries.id(i), hits.into_iter().map(|h| (h.id, h.score)).collect());
            }
            let views: Vec<ArrayView2<'_, f32>> = qs.iter().map(|q| q.view()).collect();
            let t = Instant::now();
            index.search_batch(&views, &p)?;
            qps = qs.len() as f64 / t.elapsed().as_secs_f64();
        }
        "next-plaid" => {
            let index = next_plaid::MmapIndex::load(idx.to_str().context("UTF-8 path")?)?;
            load_seconds = t.elapsed().as_secs_f64();
            rss_after_load_kb = status_kb("VmRSS:");
            let p = next_plaid::SearchParameters {
                top_k: k,
                n_ivf_probe: s.ncells,
                n_full_scores: s.full_scores,
                centroid_score_threshold: Some(s.threshold),
                ..Default::default()
            };
            for (i, q) in qs.iter().enumerate() {
                let t = Instant::now();
                let r = index.search(q, &p, None)?;
                times.push(t.elapsed());
                let ranking = r
                    .passage_ids
                    .iter()
                    .zip(&r.scores)
                    .map(|(&d, &sc)| (docs_ids[d as usize].clone(), sc))
                    .collect();
                run.insert(queries.id(i), ranking);
            }
            let t = Instant::now();
            index.search_batch(&qs, &p, true, None)?;
            qps = qs.len() as f64 / t.elapsed().as_secs_f64();
        }
        other => bail!("unknown engine {other}"),
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(run_out)?);
    run.write(&mut f, engine)?;
    let l = tartan::Latency::of(&times);
    Ok(ChildReport {
        seconds: t.elapsed().as_secs_f64(),
        peak_rss_kb: status_kb("VmHWM:"),
        rss_after_load_kb,
        load_seconds,
        p50_ms: l.p50_ms,
        p95_ms: l.p95_ms,
        p99_ms: l.p99_ms,
        qps,
    })
}

/// A build's report, kept beside its index for `--reuse`.
#[derive(Debug, Serialize, Deserialize)]
struct BuildRecord {
    fingerprint: String,
    nbits: u8,
    report: ChildReport,
}

fn build_record_path(idx: &Path) -> PathBuf {
    idx.with_extension("build.json")
}

/// The recorded build of `idx`, if it was of this data and nbits and the index is still there.
fn recorded_build(idx: &Path, fingerprint: &str, nbits: u8) -> Option<ChildReport> {
    let text = std::fs::read_to_string(build_record_path(idx)).ok()?;
    let rec: BuildRecord = serde_json::from_str(&text).ok()?;
    (idx.is_dir() && rec.fingerprint == fingerprint && rec.nbits == nbits).then_some(rec.report)
}

fn run_child(args: &[String]) -> Result<ChildReport> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe).arg("--child").args(args).output()?;
    if !out.status.success() {
        bail!("child {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8(out.stdout)?;
    let last = text.lines().last().context("child printed nothing")?;
    Ok(serde_json::from_str(last)?)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let m = e.metadata().ok();
                    match m {
                        Some(m) if m.is_dir() => dir_bytes(&e.path()),
                        Some(m) => m.len(),
                        None => 0,
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// FNV-1a over the ids, the lengths and the vector file's size and first and last MiB.
fn fingerprint(emb: &Path) -> Result<String> {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
    };
    feed(&std::fs::read(emb.join("doc_ids.txt"))?);
    feed(&std::fs::read(emb.join("doc_lens.npy"))?);
    let v = std::fs::read(emb.join("doc_embs.npy"))?;
    feed(&(v.len() as u64).to_le_bytes());
    feed(&v[..v.len().min(1 << 20)]);
    feed(&v[v.len().saturating_sub(1 << 20)..]);
    Ok(format!("{h:016x}"))
}

fn machine() -> (usize, String) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    (cores, cpu)
}

#[derive(Serialize)]
struct Row {
    engine: String,
    nbits: u8,
    settings: String,
    build_s: f64,
    build_peak_rss_mb: f64,
    index_bytes: u64,
    bytes_per_token: f64,
    load_s: f64,
    rss_after_load_mb: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    qps: f64,
    /// Every round's p50, in round order.
    p50_rounds_ms: Vec<f64>,
    /// Every round's QPS, in round order.
    qps_rounds: Vec<f64>,
    ndcg_10: Option<f64>,
    recall_100: Option<f64>,
    recall_10_vs_exact: f64,
    recall_100_vs_exact: f64,
}

/// A next-plaid row and the fastest tartan row (same nbits) whose recall@10 against exact is
/// at least as high.
#[derive(Serialize)]
struct Matched {
    nbits: u8,
    np_settings: String,
    np_p50_ms: f64,
    np_recall_10: f64,
    tartan_settings: String,
    tartan_p50_ms: f64,
    tartan_recall_10: f64,
    /// Median over rounds of tartan's p50 over next-plaid's in the same round.
    ratio: f64,
    ratio_min: f64,
    ratio_max: f64,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)))
}

/// Recalls this close are equal: both are means over the same queries of multiples of
/// 1/10, summed in different orders (0.907 came out as 0.9070000000000001 for one engine and
/// 0.9070000000000005 for the other, and tartan's row was not matched).
const RECALL_TIE: f64 = 1e-9;

fn match_recall(rows: &[Row]) -> Vec<Matched> {
    rows.iter()
        .filter(|r| r.engine == "next-plaid")
        .filter_map(|np| {
            let t = rows
                .iter()
                .filter(|t| {
                    t.engine == "tartan"
                        && t.nbits == np.nbits
                        && t.recall_10_vs_exact >= np.recall_10_vs_exact - RECALL_TIE
                })
                .min_by(|a, b| a.p50_ms.total_cmp(&b.p50_ms))?;
            let ratios: Vec<f64> =
                t.p50_rounds_ms.iter().zip(&np.p50_rounds_ms).map(|(t, n)| t / n).collect();
            let (ratio_min, ratio_max) = min_max(&ratios);
            Some(Matched {
                nbits: np.nbits,
                np_settings: np.settings.clone(),
                np_p50_ms: np.p50_ms,
                np_recall_10: np.recall_10_vs_exact,
                tartan_settings: t.settings.clone(),
                tartan_p50_ms: t.p50_ms,
                tartan_recall_10: t.recall_10_vs_exact,
                ratio: median(&ratios),
                ratio_min,
                ratio_max,
            })
        })
        .collect()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let a = &args[1..];
        let report = match a.first().map(String::as_str) {
            Some("build") => child_build(&a[1], Path::new(&a[2]), Path::new(&a[3]), a[4].parse()?)?,
            Some("search") => {
                let s: Settings = {
                    let v: serde_json::Value = serde_json::from_str(&a[5])?;
                    let name = SETTING_NAMES
                        .into_iter()
                        .find(|n| v["name"] == *n)
                        .context("unknown settings name")?;
                    Settings {
                        name,
                        ncells: v["ncells"].as_u64().context("ncells")? as usize,
                        full_scores: v["full_scores"].as_u64().context("full_scores")? as usize,
                        threshold: v["threshold"].as_f64().context("threshold")? as f32,
                    }
                };
                child_search(
                    &a[1],
                    Path::new(&a[2]),
                    Path::new(&a[3]),
                    a[4].parse()?,
                    s,
                    Path::new(&a[6]),
                )?
            }
            _ => bail!("bad child arguments {a:?}"),
        };
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let Some(emb) = args.first().map(PathBuf::from) else {
        bail!("usage: vs-next-plaid EMB_DIR [--nbits 2,4] [--k 100] [--out DIR] [--engines tartan,next-plaid] [--reuse ENGINES] [--repeats N]");
    };
    let opt =
        |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let nbits: Vec<u8> = opt("--nbits")
        .unwrap_or("2".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let k: usize = opt("--k").unwrap_or("100".into()).parse()?;
    let out = PathBuf::from(opt("--out").unwrap_or("bench-out".into()));
    let engines: Vec<String> = opt("--engines")
        .unwrap_or("tartan,next-plaid".into())
        .split(',')
        .map(String::from)
        .collect();
    let repeats: usize = opt("--repeats").unwrap_or("1".into()).parse()?;
    if repeats == 0 {
        bail!("--repeats 0: at least one round is needed");
    }
    let reuse: Vec<String> =
        opt("--reuse").map(|s| s.split(',').map(String::from).collect()).unwrap_or_default();
    if let Some(e) = reuse.iter().find(|e| !engines.contains(e)) {
        bail!("--reuse {e}: not one of the engines {engines:?}");
    }
    let data_fp = fingerprint(&emb)?;
    std::fs::create_dir_all(&out)?;

    let docs = Embeddings::open(&emb, Kind::Docs, LoadOptions::default())?;
    let n_tokens = docs.n_tokens();
    let qrels_path = emb.join("qrels.tsv");
    let qrels = qrels_path.exists().then(|| Qrels::load(&qrels_path)).transpose()?;
    let exact_path = out.join("exact.tsv");
    let exact = if exact_path.exists() {
        Run::load(&exact_path)?
    } else {
        eprintln!("computing exact MaxSim top-{k} (cached in {})", exact_path.display());
        let queries = Embeddings::open(&emb, Kind::Queries, LoadOptions::default())?;
        let qs: Vec<Vec<f32>> = (0..queries.n_docs()).map(|i| queries.doc(i)).collect();
        let refs: Vec<&[f32]> = qs.iter().map(Vec::as_slice).collect();
        let mut run = Run::new();
        for (i, hits) in tartan_maxsim::exact_search(&docs, &refs, k).into_iter().enumerate() {
            run.insert(
                queries.id(i),
                hits.into_iter().map(|h| (docs.id(h.doc as usize).to_string(), h.score)).collect(),
            );
        }
        run.write(&mut std::io::BufWriter::new(std::fs::File::create(&exact_path)?), "exact")?;
        run
    };
    drop(docs);

    // Builds (or reused ones) first, then the searches in rounds.
    let mut reused = Vec::new();
    let mut indexes = Vec::new();
    for &b in &nbits {
        for engine in &engines {
            let idx = out.join(format!("{engine}-{b}bit"));
            let recorded =
                reuse.contains(engine).then(|| recorded_build(&idx, &data_fp, b)).flatten();
            let built = match recorded {
                Some(report) => {
                    eprintln!("reusing {engine} at {b} bits (built in {:.1} s)", report.seconds);
                    reused.push(format!("{engine} {b}-bit"));
                    report
                }
                None => {
                    let _ = std::fs::remove_dir_all(&idx);
                    let _ = std::fs::remove_file(build_record_path(&idx));
                    eprintln!("building {engine} at {b} bits ...");
                    let report = run_child(&[
                        "build".into(),
                        engine.clone(),
                        emb.display().to_string(),
                        idx.display().to_string(),
                        b.to_string(),
                    ])?;
                    let rec = BuildRecord {
                        fingerprint: data_fp.clone(),
                        nbits: b,
                        report: report.clone(),
                    };
                    std::fs::write(build_record_path(&idx), serde_json::to_string(&rec)?)?;
                    report
                }
            };
            indexes.push((engine.clone(), b, idx, built));
        }
    }
    // One list of reports per (index, setting), in `indexes` × settings order.
    let all_settings = settings(k)?;
    let run_path = |engine: &str, b: u8, s: &Settings| {
        out.join(format!("{engine}-{b}bit-{}.tsv", s.name.replace(' ', "-")))
    };
    let mut reports: Vec<Vec<ChildReport>> = vec![Vec::new(); indexes.len() * all_settings.len()];
    for round in 0..repeats {
        if repeats > 1 {
            eprintln!("search round {} of {repeats}", round + 1);
        }
        for &b in &nbits {
            for (si, s) in all_settings.iter().enumerate() {
                for (ii, (engine, ib, idx, _)) in indexes.iter().enumerate() {
                    if *ib != b {
                        continue;
                    }
                    let r = run_child(&[
                        "search".into(),
                        engine.clone(),
                        idx.display().to_string(),
                        emb.display().to_string(),
                        k.to_string(),
                        serde_json::to_string(s)?,
                        run_path(engine, b, s).display().to_string(),
                    ])?;
                    reports[ii * all_settings.len() + si].push(r);
                }
            }
        }
    }
    let mut rows = Vec::new();
    for (ii, (engine, b, idx, built)) in indexes.iter().enumerate() {
        let bytes = dir_bytes(idx);
        for (si, s) in all_settings.iter().enumerate() {
            let rs = &reports[ii * all_settings.len() + si];
            let pick = |f: fn(&ChildReport) -> f64| median(&rs.iter().map(f).collect::<Vec<_>>());
            // Searches are deterministic: every round wrote the same run.
            let run = Run::load(&run_path(engine, *b, s))?;
            let m = qrels.as_ref().map(|q| Metrics::compute(&run, q));
            rows.push(Row {
                engine: engine.clone(),
                nbits: *b,
                settings: s.name.into(),
                build_s: built.seconds,
                build_peak_rss_mb: built.peak_rss_kb as f64 / 1024.0,
                index_bytes: bytes,
                bytes_per_token: bytes as f64 / n_tokens as f64,
                load_s: pick(|r| r.load_seconds),
                rss_after_load_mb: pick(|r| r.rss_after_load_kb as f64) / 1024.0,
                p50_ms: pick(|r| r.p50_ms),
                p95_ms: pick(|r| r.p95_ms),
                p99_ms: pick(|r| r.p99_ms),
                qps: pick(|r| r.qps),
                p50_rounds_ms: rs.iter().map(|r| r.p50_ms).collect(),
                qps_rounds: rs.iter().map(|r| r.qps).collect(),
                ndcg_10: m.map(|m| m.ndcg_10),
                recall_100: m.map(|m| m.recall_100),
                recall_10_vs_exact: overlap_at(&run, &exact, 10),
                recall_100_vs_exact: overlap_at(&run, &exact, 100.min(k)),
            });
        }
    }

    let (cores, cpu) = machine();
    // Stamped at build time (build.rs): the code that ran, not the directory's checkout.
    let commit = env!("TARTAN_BUILD_COMMIT");
    println!("vs-next-plaid on {} ({} tokens, fingerprint {data_fp}), k {k}; {cores} cores, {cpu}; tartan commit {commit}\n", emb.display(), n_tokens);
    if !reused.is_empty() {
        println!("builds reused from an earlier run (their recorded figures): {reused:?}\n");
    }
    if repeats > 1 {
        println!(
            "search figures: medians of {repeats} rounds; p50 spread: lowest and highest round\n"
        );
    }
    println!("| engine | nbits | search settings | build s | build peak RSS MB | bytes/token | load s | RSS after load MB | p50 ms | p50 spread | p95 ms | p99 ms | QPS | nDCG@10 | R@100 | recall@10 vs exact | recall@100 vs exact |");
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.1} | {:.0} | {:.1} | {:.3} | {:.0} | {:.2} | {:.2}–{:.2} | {:.2} | {:.2} | {:.1} | {} | {} | {:.3} | {:.3} |",
            r.engine, r.nbits, r.settings, r.build_s, r.build_peak_rss_mb, r.bytes_per_token, r.load_s, r.rss_after_load_mb,
            r.p50_ms, min_max(&r.p50_rounds_ms).0, min_max(&r.p50_rounds_ms).1, r.p95_ms, r.p99_ms, r.qps, f(r.ndcg_10), f(r.recall_100), r.recall_10_vs_exact, r.recall_100_vs_exact
        );
    }
    let matched = match_recall(&rows);
    if !matched.is_empty() {
        println!("\np50 at equal or better recall@10 vs exact (fastest tartan row per next-plaid row):\n");
        println!("| nbits | next-plaid settings | p50 ms | recall@10 | tartan settings | p50 ms | recall@10 | p50 ratio | ratio spread |");
        println!("|---:|---|---:|---:|---|---:|---:|---:|---|");
        for m in &matched {
            println!(
                "| {} | {} | {:.2} | {:.3} | {} | {:.2} | {:.3} | {:.2} | {:.2}–{:.2} |",
                m.nbits,
                m.np_settings,
                m.np_p50_ms,
                m.np_recall_10,
                m.tartan_settings,
                m.tartan_p50_ms,
                m.tartan_recall_10,
                m.ratio,
                m.ratio_min,
                m.ratio_max
            );
        }
    }
    let json = serde_json::json!({
        "commit": commit, "machine": {"cores": cores, "cpu": cpu},
        "data": {"dir": emb.display().to_string(), "tokens": n_tokens, "fingerprint": data_fp},
        "k": k, "repeats": repeats, "reused_builds": reused, "rows": rows, "p50_at_equal_recall": matched,
    });
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&json)?)?;
    println!("\nwrote {}", out.join("results.json").display());
    Ok(())
}
