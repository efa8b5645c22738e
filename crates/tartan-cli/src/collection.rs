//! `tartan collection create | add-shard | remove-shard`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use tartan::{CollectionManifest, ShardSpec};

/// `tartan collection ...`.
#[derive(Subcommand, Debug)]
pub enum CollectionCmd {
    /// Create a collection of shards (index directories or `tartan serve` URLs) that share one
    /// codebook.
    Create {
        /// Collection directory to create.
        collection: PathBuf,
        /// Require this codebook (a codebook directory or file, or an index); default: the
        /// first shard's.
        #[arg(long)]
        codebook: Option<PathBuf>,
        /// Shards: `[NAME=]PATH` or `[NAME=]http://HOST:PORT` (name default: the directory's
        /// name or host:port).
        #[arg(required = true)]
        shards: Vec<String>,
    },
    /// Add a shard (same checks as create: codebook, no id in two shards).
    AddShard {
        /// Collection directory.
        collection: PathBuf,
        /// `[NAME=]PATH` or `[NAME=]URL`.
        shard: String,
    },
    /// Remove a shard by name (its files are left alone).
    RemoveShard {
        /// Collection directory.
        collection: PathBuf,
        /// The shard's name.
        name: String,
    },
}

fn report(what: &str, m: &CollectionManifest) {
    outln!(
        "{what}: generation {}, {} shards, {} documents, codebook {}",
        m.generation,
        m.shards.len(),
        m.n_docs(),
        &m.codebook_id[..12]
    );
    for s in &m.shards {
        outln!("  {:<12} {:<40} {} docs", s.name, s.location, s.n_docs);
    }
}

pub fn run(cmd: &CollectionCmd) -> Result<()> {
    match cmd {
        CollectionCmd::Create { collection, codebook, shards } => {
            let cb = match codebook {
                Some(p) => Some(
                    tartan::open_codebook(p)
                        .with_context(|| format!("opening the codebook {}", p.display()))?
                        .id(),
                ),
                None => None,
            };
            let specs: Vec<ShardSpec> = shards.iter().map(|s| ShardSpec::parse(s)).collect();
            let m = tartan::create_collection(collection, cb, &specs)
                .with_context(|| format!("creating the collection {}", collection.display()))?;
            report("created", &m);
        }
        CollectionCmd::AddShard { collection, shard } => {
            let m = tartan::add_shard(collection, &ShardSpec::parse(shard))
                .with_context(|| format!("adding {shard} to {}", collection.display()))?;
            report("added", &m);
        }
        CollectionCmd::RemoveShard { collection, name } => {
            let m = tartan::remove_shard(collection, name)
                .with_context(|| format!("removing {name} from {}", collection.display()))?;
            report("removed", &m);
        }
    }
    Ok(())
}
