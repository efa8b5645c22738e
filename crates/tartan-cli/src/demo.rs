//! `tartan demo`: the storage/quality trade-off on a synthetic corpus, no files needed.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::{Context, Result};
use ndarray::{Array2, ArrayView2};
use tartan::{Index, IndexParams, Latency, NoProgress, SearchParams};

use tartan::synth::SynthParams;
use tartan::timed_searches;

use crate::DemoArgs;

pub fn run(a: &DemoArgs) -> Result<()> {
    if a.docs == 0 || a.dim == 0 || a.queries == 0 {
        anyhow::bail!("--docs, --dim and --queries must be at least 1");
    }
    let t = Instant::now();
    let corpus = SynthParams::new(a.docs).dim(a.dim).n_queries(a.queries).seed(a.seed).generate();
    let (docs, queries) = (&corpus.docs, &corpus.queries);
    outln!(
        "synthetic corpus: {} documents, {} tokens, dim {}, {} queries (generated in {:.1} s)",
        docs.n_docs(),
        docs.n_tokens(),
        docs.dim(),
        queries.n_docs(),
        t.elapsed().as_secs_f64()
    );
    let k = 10;
    let toks: Vec<Array2<f32>> = (0..queries.n_docs()).map(|i| queries.doc_matrix(i)).collect();
    let refs: Vec<&[f32]> = toks.iter().map(|q| q.as_slice().expect("standard layout")).collect();
    let t = Instant::now();
    let exact = tartan::exact_search(docs, &refs, k);
    let exact_ms = t.elapsed().as_secs_f64() * 1e3 / queries.n_docs() as f64;
    let exact_ids: Vec<HashSet<&str>> =
        exact.iter().map(|hits| hits.iter().map(|h| docs.id(h.doc as usize)).collect()).collect();
    let views: Vec<ArrayView2<'_, f32>> = toks.iter().map(Array2::view).collect();

    let tmp = tempfile::tempdir()?;
    outln!();
    outln!("| index | bytes/token | build s | p50 ms | p95 ms | recall@10 vs exact |");
    outln!("|---|---:|---:|---:|---:|---:|");
    outln!(
        "| exact MaxSim, float32 | {} | - | {exact_ms:.2} (batched) | - | 1.000 |",
        docs.dim() * 4
    );
    for nbits in [1u8, 2, 4] {
        let t = Instant::now();
        let index = Index::build(
            docs,
            &tmp.path().join(format!("nbits{nbits}")),
            &IndexParams::new().nbits(nbits).seed(a.seed),
            &NoProgress,
        )?;
        let build_s = t.elapsed().as_secs_f64();
        let params = SearchParams::new(k);
        let (hits, times) = timed_searches(&views, |q| index.search(q, &params))?;
        let recall: f64 = hits
            .iter()
            .zip(&exact_ids)
            .map(|(h, want)| {
                h.iter().filter(|x| want.contains(x.id.as_str())).count() as f64 / k as f64
            })
            .sum::<f64>()
            / hits.len() as f64;
        let s = index.stats();
        let l = Latency::of(&times);
        outln!(
            "| PLAID {nbits}-bit (K {}) | {:.2} | {build_s:.2} | {:.2} | {:.2} | {recall:.3} |",
            s.n_centroids,
            s.bytes_per_token(),
            l.p50_ms,
            l.p95_ms
        );
    }
    outln!();
    outln!("bytes/token counts every file of the index (codes, residuals, inverted file, offsets, ids, codebook).");
    Ok(())
}

pub fn synth(a: &crate::SynthArgs) -> Result<()> {
    if a.docs == 0 || a.dim == 0 || a.queries == 0 {
        anyhow::bail!("--docs, --dim and --queries must be at least 1");
    }
    if !(a.mean_doc_len.is_finite() && a.mean_doc_len >= 1.0) {
        anyhow::bail!("--mean-doc-len must be a number of at least 1");
    }
    let t = std::time::Instant::now();
    let precision = if a.f32 { tartan::Precision::F32 } else { tartan::Precision::F16 };
    let stats = match &a.like {
        None => tartan::synth::SynthParams::new(a.docs)
            .dim(a.dim)
            .n_queries(a.queries)
            .mean_doc_len(a.mean_doc_len)
            .seed(a.seed)
            .write(&a.out, precision)?,
        Some(real) => {
            let opts = tartan::LoadOptions::default();
            let open = |kind| tartan::Embeddings::open(real, kind, opts);
            let (docs, queries) = (open(tartan::Kind::Docs)?, open(tartan::Kind::Queries)?);
            let mut params = tartan::synth::ProfileParams::new().dim(a.dim).seed(a.seed);
            if let Some(k) = a.clusters {
                params = params.n_clusters(k);
            }
            let profile = params
                .fit(&docs, &queries)
                .with_context(|| format!("fitting a profile to {}", real.display()))?;
            outln!(
                "profile of {}: {} → {} dims keeping {:.1}% of the second moment, {} clusters \
                 (mean residual norm {:.3}), {} document and {} query templates ({:.1} s)",
                real.display(),
                profile.source_dim(),
                profile.dim(),
                100.0 * profile.kept_energy(),
                profile.n_clusters(),
                profile.mean_spread(),
                profile.n_doc_templates(),
                profile.n_query_templates(),
                t.elapsed().as_secs_f64()
            );
            if a.project {
                return write_projected(&profile, (&docs, &queries), real, &a.out, precision);
            }
            let mut params = tartan::synth::RealisticParams::new(a.docs)
                .n_queries(a.queries)
                .mean_doc_len(Some(a.mean_doc_len))
                .seed(a.seed);
            if let Some(x) = a.query_overlap {
                params = params.query_overlap(x);
            }
            if let Some(x) = a.query_noise {
                params = params.query_noise(x);
            }
            if let Some(x) = a.residual_mix {
                params = params.residual_mix(x);
            }
            if let Some(x) = a.jitter {
                params = params.jitter(x);
            }
            params.write(&profile, &a.out, precision)?
        }
    };
    outln!(
        "wrote {} documents ({} tokens) and {} queries to {} in {:.1} s",
        stats.n_docs,
        stats.n_tokens,
        stats.n_queries,
        a.out.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `tartan synth --like REAL --project`: the real corpus through the profile's projection,
/// with the real qrels.
fn write_projected(
    profile: &tartan::synth::Profile,
    (docs, queries): (&tartan::Embeddings, &tartan::Embeddings),
    real: &std::path::Path,
    out: &std::path::Path,
    precision: tartan::Precision,
) -> Result<()> {
    let stats = profile.write_projected(docs, queries, out, precision)?;
    let qrels = real.join("qrels.tsv");
    if qrels.exists() {
        std::fs::copy(&qrels, out.join("qrels.tsv"))
            .with_context(|| format!("copying {}", qrels.display()))?;
    }
    outln!(
        "wrote {} documents ({} tokens) and {} queries projected to dimension {} in {}",
        stats.n_docs,
        stats.n_tokens,
        stats.n_queries,
        profile.dim(),
        out.display()
    );
    Ok(())
}
