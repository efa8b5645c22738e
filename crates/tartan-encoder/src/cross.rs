//! Cross-encoders: a query and a passage read together by one BERT, scored by a
//! classification head (Hugging Face `BertForSequenceClassification` with one label, the
//! layout of `cross-encoder/ms-marco-MiniLM-L-6-v2`).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{Linear, Module, VarBuilder};
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams, TruncationStrategy};

use crate::encoder::{load_tensors, require};
use crate::EncoderError;

/// Pair length cap where neither the caller nor the model sets one: what sentence-transformers
/// uses for BERT cross-encoders.
const DEFAULT_MAX_LENGTH: usize = 512;

/// Cross-encoder settings. `max_length` (tokens of `[CLS] query [SEP] passage [SEP]`) defaults
/// to 512, capped by the model's positions; `batch_size` (pairs per forward pass) to 32.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrossEncoderParams {
    max_length: Option<usize>,
    batch_size: Option<usize>,
}

impl CrossEncoderParams {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Pair length in tokens, special tokens included; passages are cut to fit.
    pub fn max_length(mut self, n: usize) -> Self {
        self.max_length = Some(n);
        self
    }
    /// Pairs per forward pass.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n);
        self
    }
}

/// A pair as the model sees it: token ids and token types (0 for `[CLS] query [SEP]`, 1 for
/// `passage [SEP]`).
pub type PairIds = (Vec<u32>, Vec<u32>);

/// A loaded cross-encoder, computing in float32 on the CPU. [`CrossEncoder::score`] gives
/// one logit per pair; sigmoid(logit) is the relevance probability where one is wanted.
pub struct CrossEncoder {
    bert: BertModel,
    pooler: Linear,
    classifier: Linear,
    /// Cuts only the passage, as transformers' `truncation="only_second"`.
    only_second: Tokenizer,
    /// For a query too long to leave the passage any room: both are cut, longest first.
    longest_first: Tokenizer,
    tokenizer_path: PathBuf,
    max_length: usize,
    batch_size: usize,
    pad_id: u32,
    device: Device,
}

impl std::fmt::Debug for CrossEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossEncoder")
            .field("max_length", &self.max_length)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

fn tokenizer_with(
    tok: &Tokenizer,
    max_length: usize,
    strategy: TruncationStrategy,
    path: &Path,
) -> Result<Tokenizer, EncoderError> {
    let mut t = tok.clone();
    // Shipped tokenizer.json files often fix padding and truncation (all-MiniLM's: 128);
    // padding is done per batch here and truncation is ours.
    t.with_padding(None);
    t.with_truncation(Some(TruncationParams { max_length, strategy, ..Default::default() }))
        .map_err(|source| EncoderError::Tokenizer { path: path.into(), source })?;
    Ok(t)
}

impl CrossEncoder {
    /// Loads a model directory: `config.json`, `tokenizer.json` and `model.safetensors` with
    /// the encoder (`bert.*`), the pooler (`bert.pooler.dense`) and a one-logit `classifier`.
    pub fn load(dir: &Path, params: &CrossEncoderParams) -> Result<Self, EncoderError> {
        let device = Device::Cpu;
        let config_path = require(dir.join("config.json"))?;
        let tokenizer_path = require(dir.join("tokenizer.json"))?;
        let weights_path = require(dir.join("model.safetensors"))?;
        let config: Config = serde_json::from_slice(
            &std::fs::read(&config_path)
                .map_err(|source| EncoderError::Io { path: config_path.clone(), source })?,
        )
        .map_err(|source| EncoderError::Config { path: config_path.clone(), source })?;
        let tensors = load_tensors(&weights_path, &device)?;
        let hidden = config.hidden_size;
        for (name, expected) in [
            ("classifier.weight", vec![1, hidden]),
            ("bert.pooler.dense.weight", vec![hidden, hidden]),
        ] {
            let shape = tensors.get(name).map(|t| t.dims().to_vec());
            if shape.as_ref() != Some(&expected) {
                return Err(EncoderError::HeadShape {
                    path: weights_path,
                    name: name.into(),
                    shape: shape.unwrap_or_default(),
                    expected: format!("{expected:?} (a one-logit BertForSequenceClassification)"),
                });
            }
        }
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let weights = |source| EncoderError::Weights { path: weights_path.clone(), source };
        let bert = BertModel::load(vb.clone(), &config).map_err(weights)?;
        let pooler =
            candle_nn::linear(hidden, hidden, vb.pp("bert.pooler.dense")).map_err(weights)?;
        let classifier = candle_nn::linear(hidden, 1, vb.pp("classifier")).map_err(weights)?;

        let max_length =
            params.max_length.unwrap_or(DEFAULT_MAX_LENGTH.min(config.max_position_embeddings));
        if max_length < 4 || max_length > config.max_position_embeddings {
            return Err(EncoderError::Param {
                name: "max_length",
                reason: format!(
                    "{max_length} must be between 4 (three special tokens and one more) and the \
                     model's {} positions",
                    config.max_position_embeddings
                ),
            });
        }
        let batch_size = params.batch_size.unwrap_or(32);
        if batch_size == 0 {
            return Err(EncoderError::Param {
                name: "batch_size",
                reason: "must be at least 1".into(),
            });
        }
        let tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|source| EncoderError::Tokenizer { path: tokenizer_path.clone(), source })?;
        let only_second = tokenizer_with(
            &tokenizer,
            max_length,
            TruncationStrategy::OnlySecond,
            &tokenizer_path,
        )?;
        let longest_first = tokenizer_with(
            &tokenizer,
            max_length,
            TruncationStrategy::LongestFirst,
            &tokenizer_path,
        )?;
        Ok(Self {
            bert,
            pooler,
            classifier,
            only_second,
            longest_first,
            tokenizer_path,
            max_length,
            batch_size,
            pad_id: config.pad_token_id as u32,
            device,
        })
    }

    /// Pair length in tokens.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// `[CLS] query [SEP] passage [SEP]` as ids and token types, the passage cut to fit
    /// `max_length`. A query so long that no passage token would fit is cut as well (longest
    /// first) rather than refused.
    pub fn pair_ids(&self, query: &str, passage: &str) -> Result<PairIds, EncoderError> {
        let tok_err =
            |source| EncoderError::Tokenizer { path: self.tokenizer_path.clone(), source };
        let enc = match self.only_second.encode((query, passage), true) {
            Ok(e) => e,
            // Only the query's length can make cutting the passage alone impossible.
            Err(_) => self.longest_first.encode((query, passage), true).map_err(tok_err)?,
        };
        Ok((enc.get_ids().to_vec(), enc.get_type_ids().to_vec()))
    }

    /// One logit per passage for `query`, in the order given.
    pub fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>, EncoderError> {
        let pairs: Vec<(&str, &str)> = passages.iter().map(|p| (query, *p)).collect();
        self.score_pairs(&pairs)
    }

    /// One logit per `(query, passage)` pair, in the order given.
    pub fn score_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<f32>, EncoderError> {
        let seqs = pairs.iter().map(|(q, p)| self.pair_ids(q, p)).collect::<Result<Vec<_>, _>>()?;
        // Sorted by length so that a batch pads little; results go back in input order.
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].0.len()));
        let mut out = vec![0.0f32; seqs.len()];
        for chunk in order.chunks(self.batch_size) {
            let logits = self.forward(chunk.iter().map(|&i| &seqs[i]))?;
            for (&i, l) in chunk.iter().zip(logits) {
                out[i] = l;
            }
        }
        Ok(out)
    }

    fn forward<'a>(
        &self,
        batch: impl Iterator<Item = &'a PairIds>,
    ) -> Result<Vec<f32>, EncoderError> {
        let batch: Vec<_> = batch.collect();
        let max_len = batch.iter().map(|s| s.0.len()).max().unwrap_or(0);
        let (mut ids, mut types, mut mask) = (Vec::new(), Vec::new(), Vec::new());
        for (i, t) in &batch {
            let pad = max_len - i.len();
            ids.extend(i.iter().copied().chain(std::iter::repeat_n(self.pad_id, pad)));
            types.extend(t.iter().copied().chain(std::iter::repeat_n(0, pad)));
            mask.extend(std::iter::repeat_n(1u32, i.len()).chain(std::iter::repeat_n(0, pad)));
        }
        let f = EncoderError::Forward;
        let shape = (batch.len(), max_len);
        let ids = Tensor::from_vec(ids, shape, &self.device).map_err(f)?;
        let types = Tensor::from_vec(types, shape, &self.device).map_err(f)?;
        let mask = Tensor::from_vec(mask, shape, &self.device).map_err(f)?;
        let hidden = self.bert.forward(&ids, &types, Some(&mask)).map_err(f)?;
        let cls = hidden.i((.., 0, ..)).map_err(f)?;
        let pooled = self.pooler.forward(&cls).and_then(|t| t.tanh()).map_err(f)?;
        let logits = self.classifier.forward(&pooled).map_err(f)?;
        logits.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(f)
    }
}

#[cfg(feature = "hub")]
impl CrossEncoder {
    /// Downloads a cross-encoder by model id (e.g. `cross-encoder/ms-marco-MiniLM-L-6-v2`)
    /// into the hub cache and loads it. Needs network access.
    pub fn from_hub(model_id: &str, params: &CrossEncoderParams) -> Result<Self, EncoderError> {
        let dir = crate::encoder::hub_fetch(model_id, &[])?;
        Self::load(&dir, params)
    }
}
