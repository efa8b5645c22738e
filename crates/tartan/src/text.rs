//! Text in: which model, loaded from a directory or a hub id; corpora and queries encoded into
//! embeddings directories or query matrices. Needs the `text` feature.

use std::path::Path;

use ndarray::Array2;
use tartan_embeddings::{EmbeddingsWriter, Kind, Precision};
use tartan_encoder::{Encoder, EncoderParams, Mode};
use tartan_eval::TextItem;
use tartan_index::Progress;

use crate::error::{Error, Result};

/// Texts per encode call: large enough to sort by length well, small enough to stream.
const CHUNK: usize = 2048;

/// Which model encodes text and how. Every `None` comes from the checkpoint's own files, else
/// ColBERT's defaults (see [`EncoderParams`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelSpec {
    /// A model directory (config.json, tokenizer.json, model.safetensors), or a hub model id
    /// (fetched on a machine online).
    pub model: String,
    /// Force raw or ColBERT mode (default: ColBERT if the checkpoint has a projection).
    pub mode: Option<Mode>,
    /// Document length in tokens.
    pub doc_maxlen: Option<usize>,
    /// Query length in tokens.
    pub query_maxlen: Option<usize>,
    /// Texts per forward pass (default 32).
    pub batch_size: Option<usize>,
}

impl ModelSpec {
    /// The model at `model` (a directory or a hub id) with every setting from the checkpoint.
    pub fn new(model: impl Into<String>) -> Self {
        Self { model: model.into(), ..Self::default() }
    }

    /// Loads the model: a local directory if `model` names one, else a hub model id.
    pub fn load(&self) -> Result<Encoder> {
        let mut p = EncoderParams::new();
        if let Some(m) = self.mode {
            p = p.mode(m);
        }
        if let Some(n) = self.query_maxlen {
            p = p.query_maxlen(n);
        }
        if let Some(n) = self.doc_maxlen {
            p = p.doc_maxlen(n);
        }
        if let Some(n) = self.batch_size {
            p = p.batch_size(n);
        }
        let path = Path::new(&self.model);
        if path.exists() {
            return Ok(Encoder::load(path, &p)?);
        }
        Ok(Encoder::from_hub(&self.model, &p)?)
    }
}

/// Encodes `items` into the `kind` files of the embeddings directory `out` (streamed, a chunk
/// at a time); returns the tokens written.
pub fn encode_items(
    enc: &Encoder,
    items: &[TextItem],
    out: &Path,
    kind: Kind,
    precision: Precision,
    progress: &dyn Progress,
) -> Result<usize> {
    let mut w = EmbeddingsWriter::create(out, kind, enc.dim(), precision, false)?;
    let stage = if kind == Kind::Docs { "encoding documents" } else { "encoding queries" };
    progress.stage(stage, items.len() as u64);
    let mut tokens = 0;
    for chunk in items.chunks(CHUNK) {
        let texts: Vec<&str> = chunk.iter().map(|d| d.text.as_str()).collect();
        let vecs = match kind {
            Kind::Docs => enc.encode_docs(&texts, &mut |n| progress.advance(n as u64))?,
            Kind::Queries => {
                let v = enc.encode_queries(&texts)?;
                progress.advance(texts.len() as u64);
                v
            }
        };
        for (item, v) in chunk.iter().zip(&vecs) {
            w.push(&item.id, v)?;
            tokens += v.len() / enc.dim();
        }
    }
    w.finish()?;
    Ok(tokens)
}

/// What [`encode_beir`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedBeir {
    /// Documents encoded.
    pub docs: usize,
    /// Their tokens.
    pub doc_tokens: usize,
    /// Queries of the split encoded.
    pub queries: usize,
    /// Their tokens.
    pub query_tokens: usize,
}

/// Encodes a BEIR directory (corpus, the queries judged in `split`, its qrels) into the
/// embeddings directory `out`: documents, queries and `qrels.tsv`. `max_docs` keeps only the
/// first documents (quick trials).
pub fn encode_beir(
    enc: &Encoder,
    beir: &Path,
    out: &Path,
    split: &str,
    max_docs: Option<usize>,
    precision: Precision,
    progress: &dyn Progress,
) -> Result<EncodedBeir> {
    let mut corpus = tartan_eval::load_corpus(beir)?;
    if let Some(n) = max_docs {
        corpus.truncate(n);
    }
    let (queries, qrels) = tartan_eval::load_queries(beir, split)?;
    let doc_tokens = encode_items(enc, &corpus, out, Kind::Docs, precision, progress)?;
    let query_tokens = encode_items(enc, &queries, out, Kind::Queries, precision, progress)?;
    qrels.write(&out.join("qrels.tsv"))?;
    Ok(EncodedBeir { docs: corpus.len(), doc_tokens, queries: queries.len(), query_tokens })
}

/// Refuses a model whose vectors do not have the index's dimension `dim`.
pub fn check_model_dim(enc: &Encoder, dim: usize) -> Result<()> {
    if enc.dim() != dim {
        return Err(Error::Param {
            name: "model",
            reason: format!(
                "the model gives {}-dimensional vectors, the index holds {dim}",
                enc.dim()
            ),
        });
    }
    Ok(())
}

/// Encodes one query text into its token matrix (`n_tokens × dim`).
pub fn encode_query(enc: &Encoder, text: &str) -> Result<Array2<f32>> {
    Ok(enc.encode_query_matrices(&[text])?.remove(0))
}

/// Encodes one document text into its token matrix (`n_tokens × dim`).
pub fn encode_doc(enc: &Encoder, text: &str) -> Result<Array2<f32>> {
    Ok(enc.encode_doc_matrices(&[text], &mut |_| {})?.remove(0))
}

/// Explains document `id`'s score for a text query, naming every token. When the index
/// stores the document's text, it is encoded again for the exact side (the original vectors,
/// as the index was built from them if built with this model and settings).
pub fn explain_text(
    searcher: &crate::Searcher,
    enc: &Encoder,
    text: &str,
    id: &str,
) -> Result<crate::explain::Explanation> {
    check_model_dim(enc, searcher.dim())?;
    let q = encode_query(enc, text)?;
    let (shard, pos) = crate::explain::locate(searcher, id)?;
    let mut e = crate::explain::Explanation::at(searcher, q.view(), id, (shard, pos))?;
    let q_tokens = enc.token_texts(&[text], true)?.remove(0);
    let index = searcher.shards()[shard].index().expect("a local shard");
    let stored = index.text(pos).transpose()?;
    let Some(doc_text) = stored else {
        e.notes.push(
            "the index stores no text for this document: no exact side, document tokens by \
             position"
                .into(),
        );
        return Ok(e.with_query_texts(&q_tokens));
    };
    let d_tokens = enc.token_texts(&[doc_text], false)?.remove(0);
    let doc = encode_doc(enc, doc_text)?;
    e = e.with_query_texts(&q_tokens).with_doc_texts(&d_tokens);
    if doc.nrows() == e.doc_tokens {
        e = e.with_exact(q.view(), doc.view())?;
    }
    Ok(e)
}
