//! Where one query's time goes: the query × centroids product (`prepare`), stages 1–3
//! (`candidates_batch`) and stage 4 (`score_batch`), each timed over every query of an
//! embeddings directory on the thread count given, one query at a time, several rounds.
//!
//! `stages INDEX EMB_DIR --k 100 --ncells 2 --ndocs 400 --threshold 0.45 --threads 1 --rounds 5`

#![allow(clippy::print_stdout)] // a measurement program reports

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Instant;
use tartan_embeddings::{Embeddings, Kind, LoadOptions};
use tartan_index::{select_finalists, Index, SearchParams, ShardSet};

/// The value after `--name`, parsed; `None` when the flag is absent, an error when its value
/// is missing or does not parse (a measurement must not run with settings it was not given).
fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<T>> {
    let Some(i) = args.iter().position(|a| a == name) else { return Ok(None) };
    let v = args.get(i + 1).with_context(|| format!("{name} needs a value"))?;
    v.parse().map(Some).map_err(|_| anyhow::anyhow!("{name}: cannot parse {v:?}"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let index = PathBuf::from(args.get(1).context("usage: stages INDEX EMB_DIR [options]")?);
    let emb = PathBuf::from(args.get(2).context("usage: stages INDEX EMB_DIR [options]")?);
    let k = arg(&args, "--k")?.unwrap_or(100usize);
    let threads = arg(&args, "--threads")?.unwrap_or(1usize);
    let rounds = arg(&args, "--rounds")?.unwrap_or(5usize);
    let mut params = SearchParams::new(k);
    if let Some(n) = arg(&args, "--ncells")? {
        params = params.ncells(n);
    }
    if let Some(n) = arg(&args, "--ndocs")? {
        params = params.ndocs(n);
    }
    if let Some(t) = arg(&args, "--threshold")? {
        params = params.centroid_score_threshold(t);
    }
    let r = params.resolve()?;
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global()?;
    let index = Index::open(&index)?;
    let queries = Embeddings::open(&emb, Kind::Queries, LoadOptions::default())?;
    let set = ShardSet::new(&[&index])?;
    // Warm-up, timed: the first search computes per-segment state (inverse norms) once.
    let q0 = queries.doc_matrix(0);
    let t = Instant::now();
    index.search(q0.view(), &params)?;
    let first = t.elapsed().as_secs_f64() * 1e3;
    let (mut prep, mut cand, mut exact, mut total) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        for qi in 0..queries.n_docs() {
            let m = queries.doc_matrix(qi);
            let q = m.view();
            let t0 = Instant::now();
            let p = index.scorer().prepare(q, qi)?;
            let t1 = Instant::now();
            let c = set.candidates_batch(std::slice::from_ref(&p), &params)?;
            let t2 = Instant::now();
            let fin: Vec<u32> =
                select_finalists(&[&c[0]], &r, set.n_docs()).into_iter().map(|(_, d)| d).collect();
            let hits = set.score_batch(std::slice::from_ref(&p), &[fin])?;
            let t3 = Instant::now();
            std::hint::black_box(hits);
            prep.push((t1 - t0).as_secs_f64() * 1e3);
            cand.push((t2 - t1).as_secs_f64() * 1e3);
            exact.push((t3 - t2).as_secs_f64() * 1e3);
            total.push((t3 - t0).as_secs_f64() * 1e3);
        }
    }
    println!(
        "threads {threads}, k {k}, ncells {}, ndocs {}, threshold {}: first search {first:.1} ms; median ms prepare {:.3}, stages 1-3 {:.3}, stage 4 {:.3}, total {:.3}",
        r.ncells,
        r.ndocs,
        r.centroid_score_threshold,
        median(&mut prep),
        median(&mut cand),
        median(&mut exact),
        median(&mut total)
    );
    Ok(())
}
