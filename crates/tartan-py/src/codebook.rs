//! `tartan.Codebook`: centroids and residual codec shared by indexes; `train_codebook`, and
//! the codebook settings it shares with `build`.
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tartan::settings::{
    BuildSettings, DEFAULT_BUCKETS, DEFAULT_KMEANS_ITERS, DEFAULT_NBITS, DEFAULT_SEED,
};
use tartan::{Codebook as RsCodebook, IndexParams, NoProgress};

use crate::convert::{with_threads, DocArgs};
use crate::errors::IntoPy;

/// Pickles as `cls.open(path)`: live objects hold maps and locks, paths travel.
pub(crate) fn reduce_by_path<'py>(
    slf: &Bound<'py, PyAny>,
    path: Option<String>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
    let path = path.ok_or_else(|| {
        pyo3::exceptions::PyTypeError::new_err("only a codebook saved to a path can be pickled")
    })?;
    let open = slf.get_type().getattr("open")?;
    Ok((open, PyTuple::new(slf.py(), [path])?))
}

/// A codebook: centroids and residual codec, shared by indexes built with it.
#[pyclass(module = "tartan._tartan", frozen)]
pub(crate) struct Codebook {
    pub(crate) inner: Arc<RsCodebook>,
    pub(crate) path: Option<String>,
}

#[pymethods]
impl Codebook {
    /// Opens a codebook: a codebook directory or file, an index, or a collection.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = py.detach(|| tartan::open_codebook(&path)).py_err()?;
        Ok(Self { inner, path: Some(path.to_string_lossy().into_owned()) })
    }

    /// Writes the codebook as a codebook directory.
    #[pyo3(signature = (path, overwrite=false))]
    fn save(&self, py: Python<'_>, path: PathBuf, overwrite: bool) -> PyResult<()> {
        py.detach(|| self.inner.save(&path, overwrite)).py_err()
    }

    /// Content hash (64 hex digits).
    #[getter]
    fn id(&self) -> String {
        self.inner.id().to_hex()
    }
    /// Vector dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    /// Residual bits per dimension.
    #[getter]
    fn nbits(&self) -> u8 {
        self.inner.nbits()
    }
    /// Number of centroids.
    #[getter]
    fn n_centroids(&self) -> usize {
        self.inner.n_centroids()
    }
    /// Where it was opened from or saved to.
    #[getter]
    fn path(&self) -> Option<String> {
        self.path.clone()
    }
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let path = slf.get().path.clone();
        reduce_by_path(slf.as_any(), path)
    }
    fn __repr__(&self) -> String {
        format!(
            "Codebook(id={}, K={}, dim={}, nbits={})",
            self.inner.id().short(),
            self.inner.n_centroids(),
            self.inner.dim(),
            self.inner.nbits()
        )
    }
}

/// A codebook given as a `Codebook` or a path.
pub(crate) fn codebook_arg(
    py: Python<'_>,
    ob: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<Arc<RsCodebook>>> {
    let Some(ob) = ob else { return Ok(None) };
    if let Ok(cb) = ob.cast::<Codebook>() {
        return Ok(Some(cb.get().inner.clone()));
    }
    let path: PathBuf =
        ob.extract().map_err(|_| PyTypeError::new_err("codebook must be a Codebook or a path"))?;
    Ok(Some(py.detach(|| tartan::open_codebook(&path)).py_err()?))
}

/// A memory budget: bytes, or a size such as `"4GiB"`.
#[derive(FromPyObject)]
pub(crate) enum Memory {
    Bytes(u64),
    Text(String),
}

/// Codebook settings of a build or a training, as the Python functions take them.
pub(crate) struct CodebookArgs {
    pub(crate) nbits: u8,
    pub(crate) n_centroids: Option<usize>,
    pub(crate) kmeans_iters: usize,
    pub(crate) sample_docs: Option<usize>,
    pub(crate) seed: u64,
    pub(crate) memory: Option<Memory>,
    pub(crate) normalize_decoded: Option<bool>,
    pub(crate) buckets: String,
}

impl CodebookArgs {
    pub(crate) fn params(self) -> PyResult<IndexParams> {
        let buckets = self
            .buckets
            .parse::<tartan::Buckets>()
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("buckets: {e}")))?;
        let memory = match self.memory {
            Some(Memory::Bytes(b)) => Some(b),
            Some(Memory::Text(t)) => Some(tartan::parse_bytes(&t).py_err()?),
            None => None,
        };
        let settings = BuildSettings {
            nbits: self.nbits,
            n_centroids: self.n_centroids,
            kmeans_iters: self.kmeans_iters,
            sample_docs: self.sample_docs,
            seed: self.seed,
            memory,
            normalize_decoded: self.normalize_decoded,
            buckets,
            ..BuildSettings::default()
        };
        Ok(settings.params())
    }
}

/// Trains a codebook on `docs` (a sample of the corpus), saved to `path` when given.
#[pyfunction]
#[pyo3(signature = (docs, lengths=None, ids=None, *, path=None, nbits=DEFAULT_NBITS, n_centroids=None, kmeans_iters=DEFAULT_KMEANS_ITERS, sample_docs=None, seed=DEFAULT_SEED, memory=None, normalize=false, normalize_decoded=None, buckets=DEFAULT_BUCKETS.to_string(), part=None, overwrite=false, threads=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_codebook(
    py: Python<'_>,
    docs: &Bound<'_, PyAny>,
    lengths: Option<&Bound<'_, PyAny>>,
    ids: Option<Vec<String>>,
    path: Option<PathBuf>,
    nbits: u8,
    n_centroids: Option<usize>,
    kmeans_iters: usize,
    sample_docs: Option<usize>,
    seed: u64,
    memory: Option<Memory>,
    normalize: bool,
    normalize_decoded: Option<bool>,
    buckets: String,
    part: Option<(usize, usize)>,
    overwrite: bool,
    threads: Option<usize>,
) -> PyResult<Codebook> {
    let args = DocArgs { docs, lengths, ids, texts: None, metadata: None, normalize, part };
    let (emb, _) = args.load(py)?;
    let cb = CodebookArgs {
        nbits,
        n_centroids,
        kmeans_iters,
        sample_docs,
        seed,
        memory,
        normalize_decoded,
        buckets,
    };
    let p = cb.params()?;
    let cb = py
        .detach(|| with_threads(threads, || RsCodebook::train(&emb, &p, &NoProgress)))?
        .py_err()?;
    if let Some(dir) = &path {
        py.detach(|| cb.save(dir, overwrite)).py_err()?;
    }
    Ok(Codebook { inner: Arc::new(cb), path: path.map(|p| p.to_string_lossy().into_owned()) })
}
