//! Writes the fixture of `tartan import next-plaid`'s test: a next-plaid index of the first
//! documents of an embeddings directory, the vectors next-plaid decodes for every token, and
//! next-plaid's answers to the first queries.
//!
//! ```sh
//! cargo run --release --manifest-path benches/vs-next-plaid/Cargo.toml --bin import-fixture -- \
//!     EMB_DIR OUT_DIR --nbits 2 --docs 80 --queries 8
//! ```
//!
//! `OUT_DIR/index/` is the next-plaid index (`metadata.db` left out: no metadata was
//! given), `OUT_DIR/decoded.npy` float32 `[tokens, dim]` and `OUT_DIR/decoded_lens.json` what
//! `MmapIndex::reconstruct` returns for documents 0, 1, …, and `OUT_DIR/search.json` the
//! queries with next-plaid's top 10 at its default settings.

#![allow(clippy::print_stdout)] // a tool reports

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ndarray::Array2;
use tartan_embeddings::{Embeddings, Kind, LoadOptions};

fn arg(args: &[String], name: &str, default: usize) -> Result<usize> {
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args.get(i + 1).context("a value")?.parse()?),
        None => Ok(default),
    }
}

/// A float32 `[rows, cols]` `.npy` (format 1.0).
fn write_f32_npy(path: &std::path::Path, rows: usize, cols: usize, data: &[f32]) -> Result<()> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    for v in data {
        bytes.extend(v.to_le_bytes());
    }
    Ok(std::fs::write(path, bytes)?)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        bail!("usage: import-fixture EMB_DIR OUT_DIR [--nbits 2] [--docs 80] [--queries 8]");
    }
    let (emb, out) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    let nbits = arg(&args, "--nbits", 2)?;
    let n_docs = arg(&args, "--docs", 80)?;
    let n_queries = arg(&args, "--queries", 8)?;
    let docs = Embeddings::open(&emb, Kind::Docs, LoadOptions::default())?;
    let queries = Embeddings::open(&emb, Kind::Queries, LoadOptions::default())?;
    let dim = docs.dim();
    let arrays: Vec<Array2<f32>> = (0..n_docs.min(docs.n_docs()))
        .map(|d| Array2::from_shape_vec((docs.doc_len(d), dim), docs.doc(d)).expect("rows"))
        .collect();
    let index_dir = out.join("index");
    std::fs::create_dir_all(&out)?;
    let config = next_plaid::IndexConfig { nbits, seed: Some(7), ..Default::default() };
    next_plaid::MmapIndex::create_with_kmeans(
        &arrays,
        index_dir.to_str().context("UTF-8")?,
        &config,
    )?;
    let index = next_plaid::MmapIndex::load(index_dir.to_str().context("UTF-8")?)?;
    let ids: Vec<i64> = (0..arrays.len() as i64).collect();
    let decoded = index.reconstruct(&ids)?;
    let lens: Vec<usize> = decoded.iter().map(|a| a.nrows()).collect();
    let flat: Vec<f32> = decoded.iter().flat_map(|a| a.iter().copied()).collect();
    write_f32_npy(&out.join("decoded.npy"), flat.len() / dim, dim, &flat)?;
    std::fs::write(out.join("decoded_lens.json"), serde_json::to_string(&lens)?)?;
    let p = next_plaid::SearchParameters { top_k: 10, ..Default::default() };
    let mut answers = Vec::new();
    for q in 0..n_queries.min(queries.n_docs()) {
        let v = queries.doc(q);
        let a = Array2::from_shape_vec((v.len() / dim, dim), v.clone())?;
        let r = index.search(&a, &p, None)?;
        answers.push(serde_json::json!({
            "query": v, "ids": r.passage_ids, "scores": r.scores,
        }));
    }
    let search = serde_json::json!({
        "dim": dim,
        "top_k": p.top_k,
        "n_ivf_probe": p.n_ivf_probe,
        "n_full_scores": p.n_full_scores,
        "centroid_score_threshold": p.centroid_score_threshold,
        "answers": answers,
    });
    std::fs::write(out.join("search.json"), serde_json::to_string(&search)?)?;
    let _ = std::fs::remove_file(index_dir.join("metadata.db"));
    println!(
        "{} documents, {} tokens, dim {dim}, nbits {nbits} in {}",
        arrays.len(),
        flat.len() / dim,
        out.display()
    );
    Ok(())
}
