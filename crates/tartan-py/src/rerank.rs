//! `tartan.CrossEncoder` (the wheel's `text` feature): scores (query, passage) pairs and
//! reranks a search's hits.
use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use tartan::rerank::{RerankSpec, Reranker};

use crate::errors::IntoPy;
use crate::index::Hits;

/// A cross-encoder checkpoint (BertForSequenceClassification, one logit) that reads a query
/// and a passage together: `score` pairs, `rerank` a search's hits.
#[pyclass(module = "tartan._tartan", frozen)]
pub(crate) struct CrossEncoder {
    inner: Reranker,
}

#[pymethods]
impl CrossEncoder {
    /// Loads a model directory (or a hub id on a machine online). `depth`: hits `rerank`
    /// reads by default; `corpus`: a BEIR directory or corpus .jsonl for hits without texts.
    #[new]
    #[pyo3(signature = (model, *, max_length=None, batch_size=None, depth=tartan::settings::DEFAULT_RERANK_DEPTH, corpus=None))]
    fn new(
        py: Python<'_>,
        model: String,
        max_length: Option<usize>,
        batch_size: Option<usize>,
        depth: usize,
        corpus: Option<PathBuf>,
    ) -> PyResult<Self> {
        let spec = RerankSpec { model, max_length, batch_size, depth: Some(depth) };
        let inner = py
            .detach(|| {
                let r = spec.load()?;
                match corpus {
                    Some(c) => r.with_corpus(&c),
                    None => Ok(r),
                }
            })
            .py_err()?;
        Ok(Self { inner })
    }
    /// Pair length in tokens.
    #[getter]
    fn max_length(&self) -> usize {
        self.inner.model().max_length()
    }
    /// Hits `rerank` reads by default.
    #[getter]
    fn depth(&self) -> usize {
        self.inner.depth()
    }
    /// One logit per passage for `query`, as a float32 array.
    fn score<'py>(
        &self,
        py: Python<'py>,
        query: String,
        passages: Vec<String>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
        let out = py.detach(|| self.inner.model().score(&query, &refs)).py_err()?;
        Ok(out.into_pyarray(py))
    }
    /// Reorders `hits` (a search with `with_text=True`, or any search with `corpus=` given):
    /// the first `depth` by the logit for `(query, text)`, the rest after them in their order.
    /// The result's `rerank_scores` hold the logits (NaN past the depth), `first_ranks` each
    /// hit's 0-based rank before.
    #[pyo3(signature = (query, hits, depth=None))]
    fn rerank(
        &self,
        py: Python<'_>,
        query: String,
        hits: &Hits,
        depth: Option<usize>,
    ) -> PyResult<Hits> {
        let depth = depth.unwrap_or(self.inner.depth());
        let list = hits.to_hits();
        let coverage = hits.coverage_of().clone();
        let out = py.detach(|| self.inner.rerank_to(&query, list, depth)).py_err()?;
        Ok(Hits::reranked(out, coverage))
    }
}
