//! `tartan.Codebook`: centroids and residual codec shared by indexes; `train_codebook`,
//! `build`, and the settings they share.
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tartan::{Codebook as RsCodebook, Index as RsIndex, IndexParams, NoProgress};

use crate::convert::{with_threads, DocArgs};
use crate::errors::IntoPy;
use crate::index::Index;

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
struct CodebookArgs {
    nbits: u8,
    n_centroids: Option<usize>,
    kmeans_iters: usize,
    sample_docs: Option<usize>,
    seed: u64,
    memory: Option<Memory>,
    normalize_decoded: Option<bool>,
    buckets: String,
}

impl CodebookArgs {
    fn params(self) -> PyResult<IndexParams> {
        let buckets = self
            .buckets
            .parse::<tartan::Buckets>()
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("buckets: {e}")))?;
        let mut p = IndexParams::new()
            .nbits(self.nbits)
            .kmeans_iters(self.kmeans_iters)
            .seed(self.seed)
            .buckets(buckets);
        // Only an explicit choice is passed on: otherwise a given codebook decides.
        if let Some(on) = self.normalize_decoded {
            p = p.normalize_decoded(on);
        }
        if let Some(k) = self.n_centroids {
            p = p.n_centroids(k);
        }
        if let Some(n) = self.sample_docs {
            p = p.sample_docs(n);
        }
        match self.memory {
            Some(Memory::Bytes(b)) => p = p.memory(b),
            Some(Memory::Text(t)) => p = p.memory(tartan::parse_bytes(&t).py_err()?),
            None => {}
        }
        Ok(p)
    }
}

/// Builds an index of `docs` in `path` and opens it. `docs`: one `[tokens, dim]` array with
/// `lengths`, a list of `[n_i, dim]` arrays, or the path of an embeddings directory (with
/// `part=(i, n)`, only its part i of n, as `tartan index --part i/n`). With `codebook` (a
/// Codebook or a path) no codebook is trained and the codebook settings do not apply.
/// `memory` (bytes, or a size such as `"4GiB"`) is the build's memory budget;
/// `normalize_decoded` (default: on for a trained codebook) L2-normalises decoded tokens; `buckets`
/// (`"lloyd-max"` or ColBERT's `"quantiles"`) places the residual buckets.
#[pyfunction]
#[pyo3(signature = (path, docs, lengths=None, ids=None, *, nbits=2, n_centroids=None, kmeans_iters=4, sample_docs=None, seed=0, memory=None, codebook=None, texts=None, metadata=None, normalize=false, normalize_decoded=None, buckets="lloyd-max".to_string(), part=None, overwrite=false, threads=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn build(
    py: Python<'_>,
    path: PathBuf,
    docs: &Bound<'_, PyAny>,
    lengths: Option<&Bound<'_, PyAny>>,
    ids: Option<Vec<String>>,
    nbits: u8,
    n_centroids: Option<usize>,
    kmeans_iters: usize,
    sample_docs: Option<usize>,
    seed: u64,
    memory: Option<Memory>,
    codebook: Option<&Bound<'_, PyAny>>,
    texts: Option<Vec<String>>,
    metadata: Option<&Bound<'_, PyAny>>,
    normalize: bool,
    normalize_decoded: Option<bool>,
    buckets: String,
    part: Option<(usize, usize)>,
    overwrite: bool,
    threads: Option<usize>,
) -> PyResult<Index> {
    let (emb, extras) =
        DocArgs { docs, lengths, ids, texts, metadata, normalize, part }.load(py)?;
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
    let mut p = cb.params()?.overwrite(overwrite);
    if let Some(cb) = codebook_arg(py, codebook)? {
        p = p.codebook(cb);
    }
    py.detach(|| {
        with_threads(threads, || RsIndex::build_with(&emb, &extras, &path, &p, &NoProgress))
    })?
    .py_err()?;
    Index::open(py, path)
}

/// Trains a codebook on `docs` (a sample of the corpus), saved to `path` when given.
#[pyfunction]
#[pyo3(signature = (docs, lengths=None, ids=None, *, path=None, nbits=2, n_centroids=None, kmeans_iters=4, sample_docs=None, seed=0, memory=None, normalize=false, normalize_decoded=None, buckets="lloyd-max".to_string(), part=None, overwrite=false, threads=None))]
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
