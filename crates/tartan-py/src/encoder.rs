//! `tartan.Encoder` (the wheel's `text` feature): text to token vectors with candle.
use numpy::IntoPyArray;
use pyo3::prelude::*;

use crate::errors::IntoPy;

/// A BERT or ColBERT checkpoint that encodes text (the wheel's `text` feature).
#[pyclass(module = "tartan._tartan", frozen)]
pub(crate) struct Encoder {
    inner: tartan::Encoder,
}

#[pymethods]
impl Encoder {
    /// Loads a model directory (or a hub id on a machine online).
    #[new]
    #[pyo3(signature = (model, *, doc_maxlen=None, query_maxlen=None, batch_size=None))]
    fn new(
        py: Python<'_>,
        model: String,
        doc_maxlen: Option<usize>,
        query_maxlen: Option<usize>,
        batch_size: Option<usize>,
    ) -> PyResult<Self> {
        let spec =
            tartan::text::ModelSpec { model, mode: None, doc_maxlen, query_maxlen, batch_size };
        let inner = py.detach(|| spec.load()).py_err()?;
        Ok(Self { inner })
    }
    /// Vector dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    /// Each query's `[tokens, dim]` float32 array.
    fn encode_queries<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
    ) -> PyResult<Vec<Bound<'py, numpy::PyArray2<f32>>>> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let out = py.detach(|| self.inner.encode_query_matrices(&refs)).py_err()?;
        Ok(out.into_iter().map(|a| a.into_pyarray(py)).collect())
    }
    /// Each document's `[tokens, dim]` float32 array.
    fn encode_docs<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
    ) -> PyResult<Vec<Bound<'py, numpy::PyArray2<f32>>>> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let out = py.detach(|| self.inner.encode_doc_matrices(&refs, &mut |_| {})).py_err()?;
        Ok(out.into_iter().map(|a| a.into_pyarray(py)).collect())
    }
}

impl Encoder {
    pub(crate) fn inner(&self) -> &tartan::Encoder {
        &self.inner
    }
}
