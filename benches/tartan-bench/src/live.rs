//! `live-bench`: what live updates cost and whether quality holds, on a seeded synthetic
//! corpus. Prints a Markdown table and writes JSON.
//!
//! ```sh
//! cargo run --release -p tartan-bench --bin live-bench -- [N_DOCS] [OUT.json]
//! ```
//!
//! Steps, all on the same documents: a fresh build of everything (the reference); a build of
//! 90% plus an add of the last 10% (add throughput against the build's); deleting 10%; 20
//! churn cycles (add 1%, delete 1% each); compaction. After each, search latency (one query at
//! a time) and recall@10 against exact MaxSim over the live documents.

#![allow(clippy::print_stdout)] // a bench reports

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use ndarray::ArrayView2;
use rand::seq::IteratorRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tartan_embeddings::Embeddings;
use tartan_index::{Extras, Index, IndexParams, IndexWriter, NoProgress, SearchParams};

/// Documents at `pos` of `all` under their own ids.
fn subset(all: &Embeddings, pos: &[usize]) -> Result<Embeddings> {
    Ok(all.select(pos)?)
}

struct Quality {
    p50_ms: f64,
    p95_ms: f64,
    recall10: f64,
}

/// Latency one query at a time, and recall@10 against exact MaxSim over `live`.
fn quality(index: &Index, all: &Embeddings, live: &[usize], qs: &[Vec<f32>]) -> Result<Quality> {
    let docs = subset(all, live)?;
    let refs: Vec<&[f32]> = qs.iter().map(Vec::as_slice).collect();
    let exact = tartan_maxsim::exact_search(&docs, &refs, 10);
    let dim = all.dim();
    let mut times = Vec::with_capacity(qs.len());
    let mut recall = 0.0;
    for (q, want) in qs.iter().zip(&exact) {
        let t = Instant::now();
        let hits = index
            .search(ArrayView2::from_shape((q.len() / dim, dim), q)?, &SearchParams::new(10))?;
        times.push(t.elapsed());
        let want: Vec<&str> = want.iter().map(|h| docs.id(h.doc as usize)).collect();
        recall += hits.iter().filter(|h| want.contains(&h.id.as_str())).count() as f64
            / want.len() as f64;
    }
    let l = tartan::Latency::of(&times);
    Ok(Quality { p50_ms: l.p50_ms, p95_ms: l.p95_ms, recall10: recall / qs.len() as f64 })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(10_000), |a| a.parse())?;
    let out = args.get(2).map_or("live-bench.json", String::as_str);
    let c = tartan_synth::SynthParams::new(n)
        .dim(128)
        .mean_doc_len(80.0)
        .n_queries(100)
        .seed(7)
        .generate();
    let qs: Vec<Vec<f32>> = (0..c.queries.n_docs()).map(|i| c.queries.doc(i)).collect();
    let params = IndexParams::new().nbits(2).seed(1);
    let tmp = tempfile::tempdir()?;
    let mut rows: Vec<(String, f64, Option<Quality>)> = Vec::new();
    let all: Vec<usize> = (0..n).collect();

    let t = Instant::now();
    let fresh = Index::build(&c.docs, &tmp.path().join("fresh"), &params, &NoProgress)?;
    let fresh_s = t.elapsed().as_secs_f64();
    rows.push((
        format!("fresh build, {n} docs"),
        n as f64 / fresh_s,
        Some(quality(&fresh, &c.docs, &all, &qs)?),
    ));

    let split = n * 9 / 10;
    let p = tmp.path().join("live");
    Index::build(&subset(&c.docs, &all[..split])?, &p, &params, &NoProgress)?;
    let mut w = IndexWriter::open(&p)?;
    let tail = subset(&c.docs, &all[split..])?;
    let t = Instant::now();
    w.add(&tail, &Extras::new(), &NoProgress)?;
    w.commit()?;
    let add_s = t.elapsed().as_secs_f64();
    let mut live: BTreeMap<String, usize> =
        all.iter().map(|&d| (c.docs.id(d).to_string(), d)).collect();
    let pos = |live: &BTreeMap<String, usize>| live.values().copied().collect::<Vec<_>>();
    rows.push((
        format!("build 90% + add {} docs", n - split),
        (n - split) as f64 / add_s,
        Some(quality(w.index(), &c.docs, &pos(&live), &qs)?),
    ));

    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let del: Vec<String> = live.keys().cloned().choose_multiple(&mut rng, n / 10);
    let t = Instant::now();
    w.delete(&del)?;
    w.commit()?;
    let del_s = t.elapsed().as_secs_f64();
    for id in &del {
        live.remove(id);
    }
    rows.push((
        format!("delete {} docs", del.len()),
        del.len() as f64 / del_s,
        Some(quality(w.index(), &c.docs, &pos(&live), &qs)?),
    ));

    // Churn: re-add deleted documents and delete others, 1% each per cycle.
    let mut pool = del.clone();
    let t = Instant::now();
    for _ in 0..20 {
        let back: Vec<String> = pool.drain(..n / 100).collect();
        let back_pos: Vec<usize> =
            back.iter().map(|id| id[1..].parse().expect("synthetic id")).collect();
        w.add(&subset(&c.docs, &back_pos)?, &Extras::new(), &NoProgress)?;
        let gone: Vec<String> = live.keys().cloned().choose_multiple(&mut rng, n / 100);
        w.delete(&gone)?;
        w.commit()?;
        for (id, d) in back.iter().zip(&back_pos) {
            live.insert(id.clone(), *d);
        }
        for id in gone {
            live.remove(&id);
            pool.push(id);
        }
    }
    let churn_s = t.elapsed().as_secs_f64();
    let segs = w.index().manifest().segments.len();
    rows.push((
        format!("after 20 churn cycles ({segs} segments)"),
        20.0 / churn_s,
        Some(quality(w.index(), &c.docs, &pos(&live), &qs)?),
    ));

    let t = Instant::now();
    w.compact(&NoProgress)?;
    let compact_s = t.elapsed().as_secs_f64();
    rows.push((
        "compact".into(),
        live.len() as f64 / compact_s,
        Some(quality(w.index(), &c.docs, &pos(&live), &qs)?),
    ));
    let rebuilt = Index::build(
        &subset(&c.docs, &pos(&live))?,
        &tmp.path().join("rebuilt"),
        &params,
        &NoProgress,
    )?;
    rows.push((
        "fresh build of the final live set".into(),
        0.0,
        Some(quality(&rebuilt, &c.docs, &pos(&live), &qs)?),
    ));

    println!(
        "live-bench: {n} synthetic docs, dim 128, nbits 2, {} queries, k 10, {} threads",
        qs.len(),
        rayon_threads()
    );
    println!("fresh build {fresh_s:.1} s; add {add_s:.2} s; delete {del_s:.3} s; 20 churn cycles {churn_s:.2} s; compact {compact_s:.2} s\n");
    println!(
        "| step | throughput | p50 ms | p95 ms | recall@10 vs exact |\n|---|---:|---:|---:|---:|"
    );
    let mut json = Vec::new();
    for (name, rate, q) in &rows {
        let q = q.as_ref().expect("measured");
        let unit = if name.contains("churn") { "cycles" } else { "docs" };
        let rate_s = if *rate > 0.0 { format!("{rate:.0} {unit}/s") } else { "-".into() };
        println!("| {name} | {rate_s} | {:.2} | {:.2} | {:.3} |", q.p50_ms, q.p95_ms, q.recall10);
        json.push(serde_json::json!({"step": name, "per_second": rate, "p50_ms": q.p50_ms, "p95_ms": q.p95_ms, "recall10": q.recall10}));
    }
    let doc = serde_json::json!({
        "bench": "live", "n_docs": n, "fresh_build_s": fresh_s, "add_s": add_s, "delete_s": del_s,
        "churn_s": churn_s, "compact_s": compact_s, "rows": json,
    });
    std::fs::write(Path::new(out), serde_json::to_string_pretty(&doc)?)?;
    println!("\nwrote {out}");
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
