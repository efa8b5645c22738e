//! `tartan encode`: a BEIR directory to an embeddings directory.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use tartan_embeddings::{EmbeddingsWriter, Kind, Precision};
use tartan_encoder::{Encoder, EncoderParams, Mode};

use crate::{EncodeArgs, EncoderArgs};

/// Texts per encode call: large enough to sort by length well, small enough to stream.
const CHUNK: usize = 2048;

/// Loads the encoder named by `--model`: a local directory, else a hub model id.
pub fn load_encoder(a: &EncoderArgs) -> Result<Encoder> {
    let Some(model) = &a.model else { anyhow::bail!("--model is required") };
    let mut p = EncoderParams::new().batch_size(a.batch_size);
    if let Some(m) = a.mode {
        p = p.mode(match m {
            crate::ModeArg::Raw => Mode::Raw,
            crate::ModeArg::Colbert => Mode::ColBert,
        });
    }
    if let Some(n) = a.query_maxlen {
        p = p.query_maxlen(n);
    }
    if let Some(n) = a.doc_maxlen {
        p = p.doc_maxlen(n);
    }
    let path = Path::new(model);
    let enc = if path.exists() {
        Encoder::load(path, &p)
            .with_context(|| format!("loading the model in {}", path.display()))?
    } else {
        Encoder::from_hub(model, &p)
            .with_context(|| format!("{model} is not a directory; fetching it as a model id"))?
    };
    eprintln!(
        "model {}: {:?} mode, dim {}, query_maxlen {}, doc_maxlen {}",
        model,
        enc.mode(),
        enc.dim(),
        enc.query_maxlen(),
        enc.doc_maxlen()
    );
    Ok(enc)
}

pub fn bar(len: u64, what: &'static str) -> ProgressBar {
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {human_pos}/{human_len} {per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    b.set_message(what);
    b
}

/// Encodes `items` into the `kind` files of `out`; returns the tokens written.
pub fn encode_into(
    enc: &Encoder,
    items: &[tartan_eval::TextItem],
    out: &Path,
    kind: Kind,
    precision: Precision,
) -> Result<usize> {
    let mut w = EmbeddingsWriter::create(out, kind, enc.dim(), precision, false)?;
    let pb = bar(items.len() as u64, if kind == Kind::Docs { "documents" } else { "queries" });
    let mut tokens = 0;
    for chunk in items.chunks(CHUNK) {
        let texts: Vec<&str> = chunk.iter().map(|d| d.text.as_str()).collect();
        let vecs = match kind {
            Kind::Docs => enc.encode_docs(&texts, &mut |n| pb.inc(n as u64)),
            Kind::Queries => {
                let v = enc.encode_queries(&texts);
                pb.inc(texts.len() as u64);
                v
            }
        }
        .with_context(|| format!("encoding texts starting at {}", chunk[0].id))?;
        for (item, v) in chunk.iter().zip(&vecs) {
            w.push(&item.id, v)?;
            tokens += v.len() / enc.dim();
        }
    }
    pb.finish_and_clear();
    w.finish()?;
    Ok(tokens)
}

pub fn run(a: &EncodeArgs) -> Result<()> {
    let enc = load_encoder(&a.encoder)?;
    let mut corpus = tartan_eval::load_corpus(&a.beir).context("reading the corpus")?;
    if let Some(n) = a.max_docs {
        corpus.truncate(n);
    }
    let (queries, qrels) =
        tartan_eval::load_queries(&a.beir, &a.split).context("reading the queries")?;
    let precision = if a.f32 { Precision::F32 } else { Precision::F16 };
    let t = Instant::now();
    let doc_tokens = encode_into(&enc, &corpus, &a.out, Kind::Docs, precision)?;
    let secs = t.elapsed().as_secs_f64();
    outln!(
        "{} documents, {doc_tokens} tokens in {secs:.1} s: {:.0} tokens/s, {:.1} docs/s on {} threads",
        corpus.len(),
        doc_tokens as f64 / secs,
        corpus.len() as f64 / secs,
        rayon::current_num_threads()
    );
    let t = Instant::now();
    let q_tokens = encode_into(&enc, &queries, &a.out, Kind::Queries, precision)?;
    outln!(
        "{} queries ({} split), {q_tokens} tokens in {:.1} s",
        queries.len(),
        a.split,
        t.elapsed().as_secs_f64()
    );
    qrels.write(&a.out.join("qrels.tsv"))?;
    outln!("embeddings directory: {}", a.out.display());
    Ok(())
}
