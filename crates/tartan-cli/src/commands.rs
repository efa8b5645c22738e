//! `tartan index`, `train`, `search`, `exact`, `eval`: thin shells over the `tartan` facade.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tartan::eval::{overlap_at, Metrics, Qrels, Run};
use tartan::{Codebook, Embeddings, Index, IngestOptions, Kind, LoadOptions};

use crate::progress::Bars;
use crate::{EvalArgs, ExactArgs, IndexArgs, TrainArgs};

/// Where encoded text is staged: beside the target, on its disk.
fn scratch_near(target: &Path) -> std::path::PathBuf {
    target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
}

/// Reads the documents to index or add: an embeddings directory, or text with `--model`,
/// with `--metadata` beside them.
pub fn load_docs(
    input: &Path,
    encoder: &crate::EncoderArgs,
    normalize: bool,
    metadata: Option<&Path>,
    near: &Path,
    part: Option<tartan::Part>,
) -> Result<tartan::Documents> {
    let opts = IngestOptions {
        normalize,
        metadata: metadata.map(Path::to_path_buf),
        encoder: encoder.load()?.map(Arc::new),
        scratch_dir: Some(scratch_near(near)),
        part,
    };
    let bars = Bars::default();
    let t = Instant::now();
    let docs = tartan::load_documents(input, &opts, &bars);
    bars.finish();
    let docs = docs.with_context(|| format!("reading the documents in {}", input.display()))?;
    if opts.encoder.is_some() {
        eprintln!(
            "encoded {} documents, {} tokens in {:.1} s",
            docs.docs.n_docs(),
            docs.docs.n_tokens(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(docs)
}

pub fn index(a: &IndexArgs) -> Result<()> {
    let loaded =
        load_docs(&a.embeddings, &a.encoder, a.normalize, a.metadata.as_deref(), &a.index, a.part)?;
    let docs = &loaded.docs;
    let mut p = a.codebook_settings.settings(a.overwrite).params();
    if let Some(from) = &a.centroids_from {
        let other = Index::open(from).with_context(|| format!("opening {}", from.display()))?;
        if other.dim() != docs.dim() {
            bail!("{} has dimension {}, the documents {}", from.display(), other.dim(), docs.dim());
        }
        p = p.centroids(other.centroids().to_vec());
    }
    if let Some(cb) = &a.codebook {
        let cb = tartan::open_codebook(cb)
            .with_context(|| format!("opening the codebook {}", cb.display()))?;
        p = p.codebook(cb);
    }
    let bars = Bars::default();
    let t = Instant::now();
    let built = Index::build_with(docs, &loaded.extras, &a.index, &p, &bars);
    bars.finish();
    let index = built.with_context(|| format!("building the index in {}", a.index.display()))?;
    let s = index.stats();
    outln!(
        "indexed {} documents ({} tokens) in {:.1} s: K {}, {} bits, {:.2} bytes/token, {} on disk, codebook {}",
        s.n_docs,
        s.n_tokens,
        t.elapsed().as_secs_f64(),
        s.n_centroids,
        s.nbits,
        s.bytes_per_token(),
        human_bytes(s.total_bytes),
        index.codebook().id().short()
    );
    Ok(())
}

pub fn train(a: &TrainArgs) -> Result<()> {
    let docs = Embeddings::open(&a.embeddings, Kind::Docs, LoadOptions { normalize: a.normalize })
        .with_context(|| format!("reading the documents in {}", a.embeddings.display()))?;
    let p = a.settings.settings(false).params();
    let bars = Bars::default();
    let t = Instant::now();
    let cb = Codebook::train(&docs, &p, &bars);
    bars.finish();
    let cb = cb.context("training the codebook")?;
    cb.save(&a.codebook, a.overwrite)
        .with_context(|| format!("writing the codebook to {}", a.codebook.display()))?;
    let info = cb.train_info().expect("a trained codebook has its record");
    outln!(
        "trained codebook {} in {:.1} s: K {}, {} bits, dim {}, on {} points from {} documents; held-out mean squared residual {:.4}; in {}",
        cb.id(),
        t.elapsed().as_secs_f64(),
        cb.n_centroids(),
        cb.nbits(),
        cb.dim(),
        info.kmeans_points,
        info.sample_docs,
        info.mean_sq_residual,
        a.codebook.display()
    );
    Ok(())
}

pub fn exact(a: &ExactArgs) -> Result<()> {
    let opts = LoadOptions { normalize: a.normalize };
    let docs =
        Embeddings::open(&a.embeddings, Kind::Docs, opts).context("reading the documents")?;
    let queries = tartan::load_queries(&a.embeddings, a.normalize)?;
    if queries.dim() != docs.dim() {
        bail!("queries have dimension {}, documents {}", queries.dim(), docs.dim());
    }
    if a.k == 0 {
        bail!("--k must be at least 1");
    }
    let toks: Vec<Vec<f32>> = (0..queries.n_docs()).map(|i| queries.doc(i)).collect();
    let refs: Vec<&[f32]> = toks.iter().map(Vec::as_slice).collect();
    let t = Instant::now();
    let hits = tartan::exact_search(&docs, &refs, a.k);
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

pub(crate) fn print_metrics(run: &Run, qrels: &Qrels) {
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

pub(crate) fn write_run(run: &Run, path: &Path, tag: &str) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::new(f);
    run.write(&mut w, tag)?;
    w.flush()?;
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
