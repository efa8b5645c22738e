use std::collections::HashSet;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

use crate::checkpoint::{self, Mode, Projection};
use crate::EncoderError;

/// ColBERT's defaults where neither the caller nor the checkpoint sets a value.
const COLBERT_QUERY_MAXLEN: usize = 32;
const COLBERT_DOC_MAXLEN: usize = 180;
/// Raw mode's default document length (sentence-transformers' usual cap).
const RAW_DOC_MAXLEN: usize = 256;
/// ColBERT's punctuation skiplist: Python's `string.punctuation`.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// Encoder settings. Every `None` is resolved from the checkpoint's own config files
/// (`artifact.metadata`, `config_sentence_transformers.json`, `sentence_bert_config.json`),
/// else from ColBERT's defaults: query_maxlen 32, doc_maxlen 180 (raw mode: 256), markers
/// `[unused0]` / `[unused1]`. `batch_size` defaults to 32.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncoderParams {
    mode: Option<Mode>,
    query_maxlen: Option<usize>,
    doc_maxlen: Option<usize>,
    batch_size: Option<usize>,
}

impl EncoderParams {
    /// Everything from the checkpoint or the defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Forces a mode instead of detecting it (ColBERT if the directory has a projection).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }
    /// Query length in tokens (ColBERT pads to it; raw mode truncates at it).
    pub fn query_maxlen(mut self, n: usize) -> Self {
        self.query_maxlen = Some(n);
        self
    }
    /// Document length in tokens, special tokens included.
    pub fn doc_maxlen(mut self, n: usize) -> Self {
        self.doc_maxlen = Some(n);
        self
    }
    /// Texts per forward pass.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n);
        self
    }
}

/// A text's token ids and attention mask, as the model sees them.
pub type IdsAndMask = (Vec<u32>, Vec<u32>);

struct ColBert {
    projection: Tensor,
    query_marker: u32,
    doc_marker: u32,
    mask_id: u32,
    skiplist: HashSet<u32>,
    attend_to_mask_tokens: bool,
}

/// A loaded checkpoint: tokenizer, BERT and (in ColBERT mode) the projection. Computes in
/// float32 on the CPU.
pub struct Encoder {
    bert: BertModel,
    query_tok: Tokenizer,
    doc_tok: Tokenizer,
    tokenizer_path: PathBuf,
    colbert: Option<ColBert>,
    query_maxlen: usize,
    doc_maxlen: usize,
    batch_size: usize,
    dim: usize,
    pad_id: u32,
    device: Device,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("mode", &self.mode())
            .field("dim", &self.dim)
            .field("query_maxlen", &self.query_maxlen)
            .field("doc_maxlen", &self.doc_maxlen)
            .finish()
    }
}

pub(crate) fn require(path: PathBuf) -> Result<PathBuf, EncoderError> {
    if path.exists() {
        Ok(path)
    } else {
        Err(EncoderError::MissingFile { path })
    }
}

pub(crate) fn load_tensors(
    path: &Path,
    device: &Device,
) -> Result<std::collections::HashMap<String, Tensor>, EncoderError> {
    let bytes =
        std::fs::read(path).map_err(|source| EncoderError::Io { path: path.into(), source })?;
    candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|source| EncoderError::Weights { path: path.into(), source })
}

fn with_truncation(
    tok: &Tokenizer,
    max_length: usize,
    path: &Path,
) -> Result<Tokenizer, EncoderError> {
    let mut t = tok.clone();
    t.with_padding(None);
    t.with_truncation(Some(TruncationParams { max_length, ..Default::default() }))
        .map_err(|source| EncoderError::Tokenizer { path: path.into(), source })?;
    Ok(t)
}

fn token_id(tok: &Tokenizer, token: &str, path: &Path) -> Result<u32, EncoderError> {
    tok.token_to_id(token)
        .or_else(|| tok.token_to_id(token.trim()))
        .ok_or_else(|| EncoderError::MissingToken { path: path.into(), token: token.to_string() })
}

impl Encoder {
    /// Loads a Hugging Face model directory: `config.json`, `tokenizer.json`,
    /// `model.safetensors` (float16 or float32), and for ColBERT checkpoints the projection
    /// (`linear.weight` in the model, or `1_Dense/model.safetensors`).
    pub fn load(dir: &Path, params: &EncoderParams) -> Result<Self, EncoderError> {
        let device = Device::Cpu;
        let config_path = require(dir.join("config.json"))?;
        let tokenizer_path = require(dir.join("tokenizer.json"))?;
        let weights_path = require(dir.join("model.safetensors"))?;
        let config: Config = serde_json::from_slice(
            &std::fs::read(&config_path)
                .map_err(|source| EncoderError::Io { path: config_path.clone(), source })?,
        )
        .map_err(|source| EncoderError::Config { path: config_path.clone(), source })?;
        let mut tensors = load_tensors(&weights_path, &device)?;
        let linear = tensors.remove("linear.weight");
        let found = checkpoint::inspect(dir, linear.is_some())?;
        let mode = params.mode.unwrap_or(if found.colbert { Mode::ColBert } else { Mode::Raw });

        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let bert = BertModel::load(vb, &config)
            .map_err(|source| EncoderError::Weights { path: weights_path.clone(), source })?;
        let tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|source| EncoderError::Tokenizer { path: tokenizer_path.clone(), source })?;
        let pad_id = config.pad_token_id as u32;

        let (query_maxlen, doc_maxlen) = match mode {
            Mode::ColBert => (
                params.query_maxlen.or(found.query_maxlen).unwrap_or(COLBERT_QUERY_MAXLEN),
                params.doc_maxlen.or(found.doc_maxlen).unwrap_or(COLBERT_DOC_MAXLEN),
            ),
            Mode::Raw => (
                params.query_maxlen.unwrap_or(COLBERT_QUERY_MAXLEN),
                params.doc_maxlen.or(found.doc_maxlen).unwrap_or(RAW_DOC_MAXLEN),
            ),
        };
        let min_len = if mode == Mode::ColBert { 3 } else { 2 };
        for (name, v) in [("query_maxlen", query_maxlen), ("doc_maxlen", doc_maxlen)] {
            if v < min_len || v > config.max_position_embeddings {
                return Err(EncoderError::Param {
                    name,
                    reason: format!(
                        "{v} must be between {min_len} and the model's {} positions",
                        config.max_position_embeddings
                    ),
                });
            }
        }
        let marker_room = usize::from(mode == Mode::ColBert);
        let query_tok = with_truncation(&tokenizer, query_maxlen - marker_room, &tokenizer_path)?;
        let doc_tok = with_truncation(&tokenizer, doc_maxlen - marker_room, &tokenizer_path)?;

        let (colbert, dim) = match mode {
            Mode::Raw => (None, config.hidden_size),
            Mode::ColBert => {
                let (w, wpath, name) = match (&found.projection, linear) {
                    (Some(Projection::Dense(p)), _) => {
                        let mut t = load_tensors(p, &device)?;
                        let key = t.keys().find(|k| k.ends_with("linear.weight")).cloned();
                        let w = key.and_then(|k| t.remove(&k)).ok_or_else(|| {
                            EncoderError::MissingFile { path: p.join("linear.weight") }
                        })?;
                        (w, p.clone(), "linear.weight".to_string())
                    }
                    (_, Some(w)) => (w, weights_path.clone(), "linear.weight".to_string()),
                    (_, None) => {
                        return Err(EncoderError::Param {
                            name: "mode",
                            reason: format!(
                                "ColBERT mode needs a projection (linear.weight or 1_Dense/) in {}",
                                dir.display()
                            ),
                        })
                    }
                };
                let shape = w.dims().to_vec();
                if shape.len() != 2 || shape[1] != config.hidden_size || shape[0] == 0 {
                    return Err(EncoderError::ProjectionShape {
                        path: wpath,
                        name,
                        shape,
                        hidden: config.hidden_size,
                    });
                }
                let projection = w
                    .to_dtype(DType::F32)
                    .and_then(|w| w.t()?.contiguous())
                    .map_err(|source| EncoderError::Weights { path: wpath, source })?;
                let q = found.query_marker.as_deref().unwrap_or("[unused0]");
                let d = found.doc_marker.as_deref().unwrap_or("[unused1]");
                let skiplist = if found.mask_punctuation.unwrap_or(true) {
                    PUNCTUATION
                        .chars()
                        .filter_map(|c| {
                            let s = c.to_string();
                            let enc = tokenizer.encode(s.as_str(), false).ok()?;
                            enc.get_ids().first().copied()
                        })
                        .collect()
                } else {
                    HashSet::new()
                };
                let cb = ColBert {
                    projection,
                    query_marker: token_id(&tokenizer, q, &tokenizer_path)?,
                    doc_marker: token_id(&tokenizer, d, &tokenizer_path)?,
                    mask_id: token_id(&tokenizer, "[MASK]", &tokenizer_path)?,
                    skiplist,
                    attend_to_mask_tokens: found.attend_to_mask_tokens.unwrap_or(false),
                };
                (Some(cb), shape[0])
            }
        };
        let batch_size = params.batch_size.unwrap_or(32);
        if batch_size == 0 {
            return Err(EncoderError::Param {
                name: "batch_size",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            bert,
            query_tok,
            doc_tok,
            tokenizer_path,
            colbert,
            query_maxlen,
            doc_maxlen,
            batch_size,
            dim,
            pad_id,
            device,
        })
    }

    /// The mode in use.
    pub fn mode(&self) -> Mode {
        if self.colbert.is_some() {
            Mode::ColBert
        } else {
            Mode::Raw
        }
    }
    /// Output dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Query length in tokens.
    pub fn query_maxlen(&self) -> usize {
        self.query_maxlen
    }
    /// Document length in tokens.
    pub fn doc_maxlen(&self) -> usize {
        self.doc_maxlen
    }

    /// Token ids the model sees for each text, with attention masks: markers inserted,
    /// queries padded with `[MASK]` in ColBERT mode.
    pub fn token_ids(
        &self,
        texts: &[&str],
        is_query: bool,
    ) -> Result<Vec<IdsAndMask>, EncoderError> {
        let tok = if is_query { &self.query_tok } else { &self.doc_tok };
        let encs = tok.encode_batch(texts.to_vec(), true).map_err(|source| {
            EncoderError::Tokenizer { path: self.tokenizer_path.clone(), source }
        })?;
        Ok(encs
            .iter()
            .map(|e| {
                let mut ids = e.get_ids().to_vec();
                let mut mask = vec![1u32; ids.len()];
                if let Some(cb) = &self.colbert {
                    ids.insert(
                        1.min(ids.len()),
                        if is_query { cb.query_marker } else { cb.doc_marker },
                    );
                    mask.push(1);
                    if is_query {
                        let pad = self.query_maxlen.saturating_sub(ids.len());
                        ids.extend(std::iter::repeat_n(cb.mask_id, pad));
                        mask.extend(std::iter::repeat_n(u32::from(cb.attend_to_mask_tokens), pad));
                    }
                }
                (ids, mask)
            })
            .collect())
    }

    /// Whether the token `id` (attention `mask`) gets a vector: all do, except in ColBERT
    /// documents padding and punctuation.
    fn keeps(&self, id: u32, mask: u32, is_query: bool) -> bool {
        match (&self.colbert, is_query) {
            (Some(cb), false) => mask == 1 && !cb.skiplist.contains(&id),
            _ => true,
        }
    }

    /// The token behind each vector the encoder gives for each text (markers, `[MASK]`
    /// padding and all; punctuation dropped from ColBERT documents), as the tokenizer spells
    /// it: row `i` of a text's vectors is token `i` here.
    pub fn token_texts(
        &self,
        texts: &[&str],
        is_query: bool,
    ) -> Result<Vec<Vec<String>>, EncoderError> {
        let tok = if is_query { &self.query_tok } else { &self.doc_tok };
        Ok(self
            .token_ids(texts, is_query)?
            .into_iter()
            .map(|(ids, mask)| {
                ids.iter()
                    .zip(&mask)
                    .filter(|(&id, &m)| self.keeps(id, m, is_query))
                    .map(|(&id, _)| tok.id_to_token(id).unwrap_or_else(|| format!("[{id}]")))
                    .collect()
            })
            .collect())
    }

    /// Encodes queries: one `n_tokens × dim` row-major vector per text.
    pub fn encode_queries(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncoderError> {
        self.encode(texts, true, &mut |_| {})
    }

    /// [`Encoder::encode_queries`] as `n_tokens × dim` matrices, the shape search takes.
    pub fn encode_query_matrices(
        &self,
        texts: &[&str],
    ) -> Result<Vec<ndarray::Array2<f32>>, EncoderError> {
        Ok(self.matrices(self.encode_queries(texts)?))
    }

    /// [`Encoder::encode_docs`] as `n_tokens × dim` matrices.
    pub fn encode_doc_matrices(
        &self,
        texts: &[&str],
        on_batch: &mut dyn FnMut(usize),
    ) -> Result<Vec<ndarray::Array2<f32>>, EncoderError> {
        Ok(self.matrices(self.encode_docs(texts, on_batch)?))
    }

    fn matrices(&self, flat: Vec<Vec<f32>>) -> Vec<ndarray::Array2<f32>> {
        let dim = self.dim();
        flat.into_iter()
            .map(|v| ndarray::Array2::from_shape_vec((v.len() / dim, dim), v).expect("whole rows"))
            .collect()
    }

    /// Encodes documents: one `n_tokens × dim` row-major vector per text. `on_batch` is
    /// called with the number of texts after every forward pass (for progress bars).
    pub fn encode_docs(
        &self,
        texts: &[&str],
        on_batch: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>, EncoderError> {
        self.encode(texts, false, on_batch)
    }

    fn encode(
        &self,
        texts: &[&str],
        is_query: bool,
        on_batch: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>, EncoderError> {
        let seqs = self.token_ids(texts, is_query)?;
        // Sort by length so each batch pads little; results go back in input order.
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].0.len()));
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); seqs.len()];
        for chunk in order.chunks(self.batch_size) {
            let vecs = self.forward(chunk.iter().map(|&i| &seqs[i]))?;
            for (&i, v) in chunk.iter().zip(vecs) {
                let (ids, mask) = &seqs[i];
                let mut flat = Vec::with_capacity(ids.len() * self.dim);
                for (p, row) in v.chunks_exact(self.dim).enumerate().take(ids.len()) {
                    if self.keeps(ids[p], mask[p], is_query) {
                        let n = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                        flat.extend(row.iter().map(|x| x / n));
                    }
                }
                if flat.is_empty() {
                    return Err(EncoderError::EmptyText { index: i });
                }
                out[i] = flat;
            }
            on_batch(chunk.len());
        }
        Ok(out)
    }

    /// One padded forward pass; per sequence, `max_len × dim` values (padding included).
    fn forward<'a>(
        &self,
        batch: impl Iterator<Item = &'a IdsAndMask>,
    ) -> Result<Vec<Vec<f32>>, EncoderError> {
        let batch: Vec<_> = batch.collect();
        let max_len = batch.iter().map(|s| s.0.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(batch.len() * max_len);
        let mut mask = Vec::with_capacity(batch.len() * max_len);
        for (i, m) in &batch {
            ids.extend(
                i.iter().copied().chain(std::iter::repeat_n(self.pad_id, max_len - i.len())),
            );
            mask.extend(m.iter().copied().chain(std::iter::repeat_n(0, max_len - m.len())));
        }
        let f = |e| EncoderError::Forward(e);
        let shape = (batch.len(), max_len);
        let ids = Tensor::from_vec(ids, shape, &self.device).map_err(f)?;
        let mask = Tensor::from_vec(mask, shape, &self.device).map_err(f)?;
        let types = ids.zeros_like().map_err(f)?;
        let mut hidden = self.bert.forward(&ids, &types, Some(&mask)).map_err(f)?;
        if let Some(cb) = &self.colbert {
            hidden = hidden.broadcast_matmul(&cb.projection).map_err(f)?;
        }
        let v: Vec<Vec<Vec<f32>>> = hidden.to_vec3().map_err(f)?;
        Ok(v.into_iter().map(|rows| rows.concat()).collect())
    }
}

#[cfg(feature = "hub")]
impl Encoder {
    /// Downloads a checkpoint by model id (e.g. `colbert-ir/colbertv2.0`) into the hub cache
    /// and loads it. Needs network access.
    pub fn from_hub(model_id: &str, params: &EncoderParams) -> Result<Self, EncoderError> {
        // Optional files: their absence only means the checkpoint does not use them.
        let optional = [
            "artifact.metadata",
            "config_sentence_transformers.json",
            "sentence_bert_config.json",
            "1_Dense/config.json",
            "1_Dense/model.safetensors",
        ];
        Self::load(&hub_fetch(model_id, &optional)?, params)
    }
}

/// Fetches a model's config, tokenizer and weights (and whichever `optional` files it has)
/// into the hub cache; returns the directory holding them.
#[cfg(feature = "hub")]
pub(crate) fn hub_fetch(model_id: &str, optional: &[&str]) -> Result<PathBuf, EncoderError> {
    let api =
        hf_hub::api::sync::ApiBuilder::new().with_progress(false).build().map_err(|source| {
            EncoderError::Hub { model: model_id.into(), file: String::new(), source }
        })?;
    let repo = api.model(model_id.to_string());
    let mut dir = PathBuf::new();
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        let p = repo.get(file).map_err(|source| EncoderError::Hub {
            model: model_id.into(),
            file: file.into(),
            source,
        })?;
        dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    for file in optional {
        let _ = repo.get(file);
    }
    Ok(dir)
}
