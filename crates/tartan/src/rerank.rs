//! A cross-encoder stage after the index: the first `depth` hits of a search are read again,
//! query and passage together, and reordered by the cross-encoder's logit. Needs the `text`
//! feature.

use std::collections::HashMap;
use std::path::Path;

use ndarray::ArrayView2;
use tartan_encoder::{CrossEncoder, CrossEncoderParams};
use tartan_index::SearchParams;

use crate::error::{Error, Result};
use crate::searcher::{Coverage, Hit, SearchOptions, Searcher};

pub use crate::settings::DEFAULT_RERANK_DEPTH;

/// Which cross-encoder reranks and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RerankSpec {
    /// A model directory, or a hub model id (fetched on a machine online).
    pub model: String,
    /// Pair length in tokens (default 512, capped by the model).
    pub max_length: Option<usize>,
    /// Pairs per forward pass (default 32).
    pub batch_size: Option<usize>,
    /// First-stage hits read again (default [`DEFAULT_RERANK_DEPTH`]).
    pub depth: Option<usize>,
}

impl RerankSpec {
    /// The model at `model` with the defaults.
    pub fn new(model: impl Into<String>) -> Self {
        Self { model: model.into(), ..Self::default() }
    }

    /// Loads the model: a local directory if `model` names one, else a hub model id.
    pub fn load(&self) -> Result<Reranker> {
        let depth = self.depth.unwrap_or(DEFAULT_RERANK_DEPTH);
        if depth == 0 {
            return Err(Error::Param { name: "rerank_depth", reason: "must be at least 1".into() });
        }
        let mut p = CrossEncoderParams::new();
        if let Some(n) = self.max_length {
            p = p.max_length(n);
        }
        if let Some(n) = self.batch_size {
            p = p.batch_size(n);
        }
        let path = Path::new(&self.model);
        let model = if path.exists() {
            CrossEncoder::load(path, &p)?
        } else {
            CrossEncoder::from_hub(&self.model, &p)?
        };
        Ok(Reranker { model, depth, passages: None })
    }
}

/// A hit after the rerank stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Reranked {
    /// The first-stage hit (its `score` is the MaxSim score), with its text where known.
    pub hit: Hit,
    /// 0-based rank in the first stage.
    pub first_rank: usize,
    /// The cross-encoder's logit; `None` for hits past the rerank depth.
    pub rerank_score: Option<f32>,
}

/// A loaded cross-encoder with its depth and, for indexes that store no texts, the corpus to
/// read passages from.
#[derive(Debug)]
pub struct Reranker {
    model: CrossEncoder,
    depth: usize,
    passages: Option<HashMap<String, String>>,
}

impl Reranker {
    /// First-stage hits read again.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The model.
    pub fn model(&self) -> &CrossEncoder {
        &self.model
    }

    /// Reads passages from a corpus (a BEIR directory, or a corpus `.jsonl[.zst]`), for hits
    /// whose index stores no text.
    pub fn with_corpus(mut self, corpus: &Path) -> Result<Self> {
        let items = tartan_eval::load_corpus(corpus)?;
        self.passages = Some(items.into_iter().map(|t| (t.id, t.text)).collect());
        Ok(self)
    }

    /// Reorders `hits` (best first, as a search returns them): the first `depth` by the
    /// cross-encoder's logit for `(query, passage)`, descending, ties by first-stage rank;
    /// hits past the depth follow in first-stage order. Hits without a stored text take it
    /// from the corpus where it has them; [`Error::MissingText`] if a hit to rerank has none.
    pub fn rerank(&self, query: &str, hits: Vec<Hit>) -> Result<Vec<Reranked>> {
        self.rerank_to(query, hits, self.depth)
    }

    /// [`Reranker::rerank`] to another depth than the loaded one (a request's own).
    pub fn rerank_to(&self, query: &str, hits: Vec<Hit>, depth: usize) -> Result<Vec<Reranked>> {
        let mut out: Vec<Reranked> = hits
            .into_iter()
            .enumerate()
            .map(|(first_rank, hit)| Reranked { hit, first_rank, rerank_score: None })
            .collect();
        let n = depth.min(out.len());
        for (i, r) in out.iter_mut().enumerate() {
            if r.hit.text.is_none() {
                let text = self.passages.as_ref().and_then(|p| p.get(&r.hit.id)).cloned();
                if text.is_none() && i < n {
                    return Err(Error::MissingText { id: r.hit.id.clone() });
                }
                r.hit.text = text;
            }
        }
        let passages: Vec<&str> = out[..n].iter().filter_map(|r| r.hit.text.as_deref()).collect();
        let scores = self.model.score(query, &passages)?;
        for (r, s) in out[..n].iter_mut().zip(scores) {
            r.rerank_score = Some(s);
        }
        out[..n].sort_by(|a, b| {
            let (x, y) = (a.rerank_score.unwrap_or(f32::MIN), b.rerank_score.unwrap_or(f32::MIN));
            y.total_cmp(&x).then(a.first_rank.cmp(&b.first_rank))
        });
        Ok(out)
    }

    /// Searches `query` (its token matrix) for `max(k, depth)` hits with their texts, reranks
    /// them with `text`, and keeps `k`.
    pub fn search(
        &self,
        searcher: &Searcher,
        query: ArrayView2<'_, f32>,
        text: &str,
        params: &SearchParams,
    ) -> Result<(Vec<Reranked>, Coverage)> {
        self.search_with(searcher, query, text, params, &SearchOptions::default(), self.depth)
    }

    /// [`Reranker::search`] with the searcher's options (shard policy) and a depth of its
    /// own.
    pub fn search_with(
        &self,
        searcher: &Searcher,
        query: ArrayView2<'_, f32>,
        text: &str,
        params: &SearchParams,
        opts: &SearchOptions,
        depth: usize,
    ) -> Result<(Vec<Reranked>, Coverage)> {
        if depth == 0 {
            return Err(Error::Param { name: "rerank_depth", reason: "must be at least 1".into() });
        }
        let k = params.k();
        let wide = params.clone().with_k(k.max(depth));
        let opts = SearchOptions { with_text: true, ..*opts };
        let res = searcher.search_with(query, &wide, &opts)?;
        let mut hits = self.rerank_to(text, res.hits, depth)?;
        hits.truncate(k);
        Ok((hits, res.coverage))
    }
}
