//! `tartan.Writer`: add, upsert, delete, commit, compact under the writer lock.
use std::path::PathBuf;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tartan::{NoProgress, Writer as RsWriter};

use crate::convert::{with_threads, DocArgs};
use crate::errors::{invalid, IntoPy};

/// The writer of an index or a collection: add, upsert, delete, then commit. Holds the
/// writer lock until closed (a `with` block commits on success and closes).
#[pyclass(module = "tartan._tartan")]
pub(crate) struct Writer {
    inner: Option<RsWriter>,
}

impl Writer {
    fn w(&mut self) -> PyResult<&mut RsWriter> {
        self.inner.as_mut().ok_or_else(|| invalid("the writer is closed"))
    }
}

fn committed(py: Python<'_>, c: tartan::Committed, n_docs: u64) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("generation", c.generation)?;
    d.set_item("added", c.added)?;
    d.set_item("deleted", c.deleted)?;
    d.set_item("n_docs", n_docs)?;
    Ok(d)
}

#[pymethods]
impl Writer {
    /// Takes the writer lock of the index or collection at `path`.
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let w = py.detach(|| RsWriter::open(&path)).py_err()?;
        Ok(Self { inner: Some(w) })
    }

    /// Stages documents (as for `build`); with `upsert`, documents replace live ones with the
    /// same ids instead of being refused.
    #[pyo3(signature = (docs, lengths=None, ids=None, *, texts=None, metadata=None, upsert=false, normalize=false, threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        py: Python<'_>,
        docs: &Bound<'_, PyAny>,
        lengths: Option<&Bound<'_, PyAny>>,
        ids: Option<Vec<String>>,
        texts: Option<Vec<String>>,
        metadata: Option<&Bound<'_, PyAny>>,
        upsert: bool,
        normalize: bool,
        threads: Option<usize>,
    ) -> PyResult<usize> {
        let args = DocArgs { docs, lengths, ids, texts, metadata, normalize, part: None };
        let (emb, extras) = args.load(py)?;
        let w = self.w()?;
        py.detach(|| {
            with_threads(threads, || {
                if upsert {
                    w.upsert(&emb, &extras, &NoProgress)
                } else {
                    w.add(&emb, &extras, &NoProgress).map(|()| 0)
                }
            })
        })?
        .py_err()
    }

    /// Stages deletions by id, all or nothing (`ignore_missing` skips ids not live).
    #[pyo3(signature = (ids, ignore_missing=false))]
    fn delete(
        &mut self,
        py: Python<'_>,
        ids: Vec<String>,
        ignore_missing: bool,
    ) -> PyResult<usize> {
        let w = self.w()?;
        let mut ids = ids;
        if ignore_missing {
            ids.retain(|id| w.contains(id));
            ids.sort();
            ids.dedup();
        }
        if ids.is_empty() {
            return Ok(0);
        }
        py.detach(|| w.delete(&ids)).py_err()
    }

    /// Publishes the staged changes as a new generation.
    fn commit<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let w = self.w()?;
        let c = py.detach(|| w.commit()).py_err()?;
        committed(py, c, w.n_docs())
    }

    /// Commits, then merges segments and drops deleted documents.
    fn compact<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let w = self.w()?;
        let c = py.detach(|| w.compact(&NoProgress)).py_err()?;
        committed(py, c, w.n_docs())
    }

    /// Whether `id` is live (staged changes included).
    fn __contains__(&mut self, id: &str) -> PyResult<bool> {
        Ok(self.w()?.contains(id))
    }

    /// Live documents, staged changes included.
    #[getter]
    fn n_docs(&mut self) -> PyResult<u64> {
        Ok(self.w()?.n_docs())
    }

    /// Releases the lock; staged changes not committed are discarded.
    fn close(&mut self) {
        self.inner = None;
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (kind, _value, _traceback))]
    fn __exit__(
        &mut self,
        py: Python<'_>,
        kind: Option<&Bound<'_, PyAny>>,
        _value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if kind.is_none() && self.inner.is_some() {
            self.commit(py)?;
        }
        self.close();
        Ok(false)
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err("a Writer holds a lock and cannot be pickled; pickle the path"))
    }
}
