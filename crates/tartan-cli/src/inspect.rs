//! `tartan inspect` and `tartan verify`: an index, a collection or a codebook.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tartan::{Codebook, CollectionManifest, Found, Index, ShardLocation, DRIFT_WARNING};

use crate::commands::human_bytes;

pub fn inspect(path: &Path) -> Result<()> {
    match tartan::detect(path) {
        Found::Collection => inspect_collection(path),
        Found::Codebook => {
            let cb = Codebook::open(path).with_context(|| format!("opening {}", path.display()))?;
            inspect_codebook(&cb)
        }
        Found::Index | Found::Nothing => inspect_index(path),
    }
}

fn inspect_codebook(cb: &Codebook) -> Result<()> {
    outln!("codebook     {}", cb.path().map_or("-".into(), |p| p.display().to_string()));
    outln!("id           {}", cb.id());
    outln!("shape        K {}, dim {}, {} bits", cb.n_centroids(), cb.dim(), cb.nbits());
    if let Some(t) = cb.train_info() {
        outln!(
            "trained      seed {}, {} k-means passes on {} points from {} docs, codec on {} tokens",
            t.seed,
            t.kmeans_iters,
            t.kmeans_points,
            t.sample_docs,
            t.codec_tokens
        );
        outln!("residual     held-out mean squared residual {:.4}", t.mean_sq_residual);
    }
    Ok(())
}

fn inspect_collection(dir: &Path) -> Result<()> {
    let m = CollectionManifest::load(dir)?;
    outln!("collection   {}", dir.display());
    outln!("generation   {} ({} shards)", m.generation, m.shards.len());
    outln!("codebook     {} (K {}, dim {}, {} bits)", m.codebook_id, m.n_centroids, m.dim, m.nbits);
    let mut live = 0;
    for e in &m.shards {
        let now = match e.resolve(dir) {
            ShardLocation::Local(p) => match Index::open(&p) {
                Ok(i) => {
                    live += i.n_docs();
                    let s = i.stats();
                    format!(
                        "{} docs, generation {}, {} ({:.2} B/token)",
                        i.n_docs(),
                        i.generation(),
                        human_bytes(s.total_bytes),
                        s.bytes_per_token()
                    )
                }
                Err(e) => format!("cannot open: {e}"),
            },
            ShardLocation::Remote(url) => {
                format!("remote at {url}, {} docs when recorded", e.n_docs)
            }
        };
        outln!("  shard {:<12} {:<32} {now}", e.name, e.location);
    }
    outln!("documents    {} recorded, {live} live in local shards", m.n_docs());
    Ok(())
}

fn inspect_index(dir: &Path) -> Result<()> {
    let index = Index::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let s = index.stats();
    let m = index.manifest();
    outln!("index        {}", dir.display());
    outln!(
        "generation   {} ({} segment{})",
        s.generation,
        s.n_segments,
        if s.n_segments == 1 { "" } else { "s" }
    );
    outln!(
        "documents    {} live, {} deleted (stored until `tartan compact`)",
        s.n_docs,
        s.n_deleted
    );
    for &(id, docs, deleted, tokens, msr) in &s.segments {
        let msr = msr.map_or("-".to_string(), |m| format!("{m:.4}"));
        outln!(
            "  segment {id:>6}: {docs:>9} docs, {deleted:>7} deleted, {tokens:>11} tokens, mean sq residual {msr}"
        );
    }
    outln!(
        "tokens       {} stored ({:.1} per document)",
        s.n_tokens,
        s.n_tokens as f64 / (s.n_docs + s.n_deleted).max(1) as f64
    );
    outln!("dim          {}", s.dim);
    outln!(
        "centroids    {}{}",
        s.n_centroids,
        if m.build.centroids_from_user { " (set by user)" } else { "" }
    );
    outln!("nbits        {}", s.nbits);
    outln!("codebook     {}", index.codebook().id());
    outln!("size         {} ({:.2} bytes/token)", human_bytes(s.total_bytes), s.bytes_per_token());
    outln!("  codebook   {:>12}", human_bytes(s.codebook_bytes));
    for (name, bytes) in &s.components {
        outln!(
            "  {name:<10} {:>12}  {:.2} B/token",
            human_bytes(*bytes),
            *bytes as f64 / s.n_tokens.max(1) as f64
        );
    }
    let (min, med, mean, max, empty) = s.ivf_lists;
    outln!("ivf lists    min {min}, median {med}, mean {mean:.1}, max {max}, empty {empty}");
    outln!(
        "residual     mean squared token-centroid distance {:.4} at training",
        s.mean_sq_residual
    );
    let drift = s.codebook_drift();
    let advice = if drift > DRIFT_WARNING {
        "  <- the codebook no longer fits the data: run `tartan retrain`"
    } else {
        ""
    };
    outln!("drift        {drift:.2}x the codebook's residual over all segments{advice}");
    outln!(
        "build        seed {}, {} k-means passes on {} points from {} docs, codec on {} tokens{}",
        m.build.seed,
        m.build.kmeans_iters,
        m.build.kmeans_points,
        m.build.sample_docs,
        m.build.codec_tokens,
        m.build.build_seconds.map_or(String::new(), |s| format!(", {s:.1} s"))
    );
    Ok(())
}

pub fn verify(path: &Path) -> Result<()> {
    let t = Instant::now();
    match tartan::detect(path) {
        Found::Collection => return verify_collection(path, t),
        Found::Codebook => {
            let cb = Codebook::open(path).with_context(|| format!("opening {}", path.display()))?;
            cb.verify().with_context(|| format!("verifying {}", path.display()))?;
            outln!("ok: codebook {} verified ({})", path.display(), cb.id().short());
            return Ok(());
        }
        Found::Index | Found::Nothing => {}
    }
    let index = Index::open(path).with_context(|| format!("opening {}", path.display()))?;
    index.verify().with_context(|| format!("verifying {}", path.display()))?;
    outln!(
        "ok: {} verified ({} documents, {}) in {:.2} s",
        path.display(),
        index.n_docs(),
        human_bytes(index.stats().total_bytes),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Every local shard verified, encoded with the collection's codebook, and no id live in two
/// shards; remote shards are named but not reached.
fn verify_collection(dir: &Path, t: Instant) -> Result<()> {
    let m = CollectionManifest::load(dir)?;
    let mut owner: HashMap<String, String> = HashMap::new();
    let (mut local, mut remote, mut docs) = (0, 0, 0);
    for e in &m.shards {
        let ShardLocation::Local(p) = e.resolve(dir) else {
            remote += 1;
            continue;
        };
        let index =
            Index::open(&p).with_context(|| format!("shard {} ({})", e.name, p.display()))?;
        index.verify().with_context(|| format!("verifying shard {}", e.name))?;
        if index.codebook().id() != m.codebook() {
            bail!(
                "shard {} is encoded with codebook {}, the collection's is {}",
                e.name,
                index.codebook().id().short(),
                m.codebook().short()
            );
        }
        for id in index.ids()? {
            if let Some(other) = owner.insert(id.to_string(), e.name.clone()) {
                bail!("document id {id:?} is live in shards {other} and {}", e.name);
            }
        }
        local += 1;
        docs += index.n_docs();
    }
    outln!(
        "ok: collection {} verified ({local} local shards, {docs} documents{}) in {:.2} s",
        dir.display(),
        if remote > 0 { format!("; {remote} remote shards not checked") } else { String::new() },
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
