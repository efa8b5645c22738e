//! `tartan add`, `delete`, `compact`, `retrain`: changes published as new generations.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use tartan::{Committed, IndexWriter, Writer};

use crate::commands::{human_bytes, load_docs};
use crate::progress::Bars;
use crate::EncoderArgs;

/// `tartan add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// Index directory.
    pub index: PathBuf,
    /// Embeddings directory; with --model, a corpus .jsonl[.zst] file or BEIR directory.
    pub input: PathBuf,
    /// Replace documents whose ids are already in the index (delete + add in one generation)
    /// instead of refusing them.
    #[arg(long)]
    pub upsert: bool,
    /// Metadata: JSON lines, one object per document with an "id" field.
    #[arg(long)]
    pub metadata: Option<PathBuf>,
    /// L2-normalise vectors on load instead of rejecting non-unit ones.
    #[arg(long)]
    pub normalize: bool,
    /// Encode text with this model (the index's own, for meaningful scores).
    #[command(flatten)]
    pub encoder: EncoderArgs,
}

/// `tartan delete`.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Index directory.
    pub index: PathBuf,
    /// Ids to delete.
    pub ids: Vec<String>,
    /// A file of ids to delete, one per line.
    #[arg(long)]
    pub ids_file: Option<PathBuf>,
    /// Skip ids that are not in the index instead of failing.
    #[arg(long)]
    pub ignore_missing: bool,
}

/// `tartan retrain`.
#[derive(Args, Debug)]
pub struct RetrainArgs {
    /// Index directory.
    pub index: PathBuf,
    /// Residual bits per dimension (default: the index's).
    #[arg(long)]
    pub nbits: Option<u8>,
    /// Number of centroids (default: from the number of tokens, as for a build).
    #[arg(long)]
    pub centroids: Option<usize>,
    /// k-means passes.
    #[arg(long, default_value_t = tartan::settings::DEFAULT_KMEANS_ITERS)]
    pub kmeans_iters: usize,
    /// Seed of sampling and k-means.
    #[arg(long, default_value_t = tartan::settings::DEFAULT_SEED)]
    pub seed: u64,
}

fn open_writer(dir: &Path) -> Result<Writer> {
    Writer::open(dir).with_context(|| format!("opening {} for writing", dir.display()))
}

fn report(what: &str, s: &Committed, live: u64, secs: f64) {
    outln!(
        "{what}: generation {}, +{} / -{} documents in {secs:.2} s; {live} live",
        s.generation,
        s.added,
        s.deleted,
    );
}

pub fn add(a: &AddArgs) -> Result<()> {
    let t = Instant::now();
    let mut w = open_writer(&a.index)?;
    let loaded =
        load_docs(&a.input, &a.encoder, a.normalize, a.metadata.as_deref(), &a.index, None)?;
    let bars = Bars::default();
    let staged = if a.upsert {
        w.upsert(&loaded.docs, &loaded.extras, &bars).map(|_| ())
    } else {
        w.add(&loaded.docs, &loaded.extras, &bars)
    };
    bars.finish();
    staged.context("adding the documents")?;
    let s = w.commit().context("publishing")?;
    let secs = t.elapsed().as_secs_f64();
    report("added", &s, w.n_docs(), secs);
    let drift = match &w {
        Writer::Index(w) => {
            format!("; codebook drift now {:.2}", w.index().stats().codebook_drift())
        }
        Writer::Collection(_) => String::new(),
    };
    outln!(
        "  {:.0} documents/s ({} tokens){drift}",
        loaded.docs.n_docs() as f64 / secs,
        loaded.docs.n_tokens(),
    );
    Ok(())
}

pub fn delete(a: &DeleteArgs) -> Result<()> {
    let t = Instant::now();
    let mut ids = a.ids.clone();
    if let Some(f) = &a.ids_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        ids.extend(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from));
    }
    if ids.is_empty() {
        bail!("no ids given: name them or pass --ids-file");
    }
    let mut w = open_writer(&a.index)?;
    if a.ignore_missing {
        ids.sort();
        ids.dedup();
        ids.retain(|id| w.contains(id));
    }
    w.delete(&ids).context("deleting")?;
    let s = w.commit().context("publishing")?;
    report("deleted", &s, w.n_docs(), t.elapsed().as_secs_f64());
    Ok(())
}

pub fn compact(dir: &Path) -> Result<()> {
    let t = Instant::now();
    let mut w = open_writer(dir)?;
    let before = index_stats(&w);
    let bars = Bars::default();
    let s = w.compact(&bars);
    bars.finish();
    let s = s.context("compacting")?;
    report("compacted", &s, w.n_docs(), t.elapsed().as_secs_f64());
    if let (Some(before), Some(after)) = (before, index_stats(&w)) {
        outln!(
            "  {} segments -> {}, {} -> {}",
            before.n_segments,
            after.n_segments,
            human_bytes(before.total_bytes),
            human_bytes(after.total_bytes)
        );
    }
    Ok(())
}

fn index_stats(w: &Writer) -> Option<tartan::IndexStats> {
    match w {
        Writer::Index(w) => Some(w.index().stats()),
        Writer::Collection(_) => None,
    }
}

pub fn retrain(a: &RetrainArgs) -> Result<()> {
    let t = Instant::now();
    if tartan::detect(&a.index) == tartan::Found::Collection {
        bail!(
            "{} is a collection: retraining one shard would give it another codebook; train a new codebook (`tartan train`) and rebuild the shards with it",
            a.index.display()
        );
    }
    let mut w = IndexWriter::open(&a.index)
        .with_context(|| format!("opening {} for writing", a.index.display()))?;
    let drift = w.index().stats().codebook_drift();
    let p = tartan::settings::BuildSettings {
        nbits: a.nbits.unwrap_or(w.index().manifest().nbits),
        n_centroids: a.centroids,
        kmeans_iters: a.kmeans_iters,
        seed: a.seed,
        ..Default::default()
    }
    .params();
    let bars = Bars::default();
    let s = w.retrain(&p, &bars);
    bars.finish();
    let s = s.context("retraining")?;
    let done = Committed { generation: s.generation, added: s.added, deleted: s.deleted };
    report("retrained", &done, w.n_docs(), t.elapsed().as_secs_f64());
    let st = w.index().stats();
    outln!(
        "  drift {drift:.2} before; now K {}, {} bits, {:.2} bytes/token, mean sq residual {:.4}",
        st.n_centroids,
        st.nbits,
        st.bytes_per_token(),
        st.mean_sq_residual
    );
    Ok(())
}
