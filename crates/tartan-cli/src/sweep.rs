//! `tartan sweep`: the storage/quality/latency trade-off on one embeddings directory
//! ([`tartan::sweep`] does the work; this parses the lists and prints the rows).

use anyhow::{bail, Context, Result};
use tartan::sweep::{Row, SweepEvent, SweepParams};

use crate::SweepArgs;

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
    let mut p = SweepParams {
        nbits: parse_list("nbits", &a.nbits)?,
        ncells: parse_list("ncells", &a.ncells)?,
        ndocs: parse_list("ndocs", &a.ndocs)?,
        k: a.k,
        max_queries: a.max_queries,
        seed: a.seed,
        normalize: a.normalize,
        keep_indexes: a.keep_indexes,
        ..SweepParams::new()
    };
    if let Some(s) = &a.centroids {
        p.centroids = parse_list::<usize>("centroids", s)?.into_iter().map(Some).collect();
    }
    if let Some(rr) = a.rerank.load()? {
        let texts = a.query_texts.clone().context("--rerank needs --query-texts")?;
        p.rerank = Some((rr, texts));
    }
    let depth = p.rerank.as_ref().map_or(0, |(rr, _)| rr.depth());
    let mut on = |e: SweepEvent<'_>| {
        match e {
        SweepEvent::Started { n_docs, n_tokens, dim, n_queries } => outln!(
            "sweep over {}: {n_docs} documents, {n_tokens} tokens, dim {dim}, {n_queries} queries, k {}",
            a.embeddings.display(),
            a.k
        ),
        SweepEvent::Exact(t) => outln!("exact MaxSim: {:.1} s", t.as_secs_f64()),
        SweepEvent::StoredAsF16 => {
            outln!("float16 MaxSim: the stored vectors are float16, so it is the exact row")
        }
        SweepEvent::Row(r) => print_row(r, depth),
    }
    };
    let sweep = tartan::sweep::sweep(&a.embeddings, &a.out, &p, &mut on).map_err(|e| match e {
        // The library names its parameters; here they are flags.
        tartan::Error::Param { name, reason } => {
            anyhow::anyhow!("--{}: {reason}", name.replace('_', "-"))
        }
        e => anyhow::Error::new(e).context(format!("sweeping {}", a.embeddings.display())),
    })?;
    let written = sweep.write(&a.out)?;
    outln!("wrote {} to {}", written.join(", "), a.out.display());
    Ok(())
}

fn print_row(r: &Row, depth: usize) {
    let opt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
    if let Some(ms) = r.rerank_ms_per_doc {
        outln!("cross-encoder over exact's top {depth}: {ms:.3} ms per (query, document) pair");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_reject_garbage() {
        assert_eq!(parse_list::<u8>("nbits", "1, 2,4").unwrap(), [1, 2, 4]);
        assert!(parse_list::<u8>("nbits", "1,x").is_err());
        assert!(parse_list::<u8>("nbits", ",").is_err());
    }
}
