//! `tartan import`: another engine's index as a tartan index, without re-encoding.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::progress::Bars;

/// `tartan import`.
#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// A next-plaid (1.8.x) or fast-plaid index directory: centroids, bucket weights, codes and
    /// residuals are taken as they are, and every token decodes to the vector next-plaid
    /// decodes (docs/import.md). The source is only read.
    NextPlaid(NextPlaidArgs),
}

/// `tartan import next-plaid`.
#[derive(Args, Debug)]
pub struct NextPlaidArgs {
    /// The next-plaid index directory (metadata.json, centroids.npy, <i>.codes.npy, …).
    pub source: PathBuf,
    /// The tartan index directory to write.
    pub index: PathBuf,
    /// Replace an existing tartan index (as a new generation).
    #[arg(long)]
    pub overwrite: bool,
    /// Memory budget for the code chunks and the inverted file, e.g. 2GiB.
    #[arg(long, default_value = "2GiB", value_parser = crate::parse_size)]
    pub memory: u64,
}

pub fn run(c: &ImportCommand) -> Result<()> {
    let ImportCommand::NextPlaid(a) = c;
    let t = Instant::now();
    let bars = Bars::default();
    let r = tartan::import::import_next_plaid(&a.source, &a.index, a.overwrite, a.memory, &bars);
    bars.finish();
    let r =
        r.with_context(|| format!("importing {} into {}", a.source.display(), a.index.display()))?;
    outln!(
        "imported {} documents ({} tokens, {} chunks) into {} in {:.1} s: K {}, {} bits, dim {}; tokens decode as next-plaid decodes them (float32 centroids, normalised)",
        r.n_docs,
        r.n_tokens,
        r.n_chunks,
        a.index.display(),
        t.elapsed().as_secs_f64(),
        r.n_centroids,
        r.nbits,
        r.dim
    );
    for n in &r.notes {
        outln!("note: {n}");
    }
    Ok(())
}
