//! `tartan.Index`, `tartan.Collection` and `tartan.Hits`: open, search, inspect; `open` and
//! `create_collection`.
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use tartan::settings::{shard_policy, QuerySettings, DEFAULT_DEADLINE_MS, DEFAULT_K};
use tartan::{Results, SearchOptions, SearchParams, Searcher, ShardSpec};

use crate::codebook::{codebook_arg, reduce_by_path, Codebook};
use crate::convert::{matrix, queries as queries_of, with_threads};
use crate::errors::{invalid, IntoPy};

/// The hits of one query: ids, scores (float32), shards, texts, coverage. Unpacks as
/// `ids, scores = hits`.
#[pyclass(module = "tartan._tartan", frozen)]
pub(crate) struct Hits {
    /// External document ids, best first.
    #[pyo3(get)]
    ids: Vec<String>,
    scores: Vec<f32>,
    /// Shard positions (0 for an index).
    #[pyo3(get)]
    shards: Vec<usize>,
    /// Stored texts, when asked for with `with_text=True` (None where not stored).
    #[pyo3(get)]
    texts: Vec<Option<String>>,
    coverage: tartan::Coverage,
    /// After `CrossEncoder.rerank`: logits (NaN past the depth) and ranks before it.
    rerank: Option<(Vec<f32>, Vec<usize>)>,
}

#[pymethods]
impl Hits {
    /// Scores (MaxSim), best first, as a float32 array.
    #[getter]
    fn scores<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        self.scores.clone().into_pyarray(py)
    }
    /// What the answer covers: shards, shards answered, documents, documents answered,
    /// failed shards (name, reason).
    #[getter]
    fn coverage<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.coverage;
        let d = PyDict::new(py);
        d.set_item("shards", c.shards)?;
        d.set_item("shards_answered", c.answered)?;
        d.set_item("docs", c.docs)?;
        d.set_item("docs_answered", c.docs_answered)?;
        d.set_item("failed", c.failed.clone())?;
        Ok(d)
    }
    /// After `CrossEncoder.rerank`: the cross-encoder's logits as a float32 array (NaN for
    /// hits past the depth); otherwise None.
    #[getter]
    fn rerank_scores<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f32>>> {
        self.rerank.as_ref().map(|(s, _)| s.clone().into_pyarray(py))
    }
    /// After `CrossEncoder.rerank`: each hit's 0-based rank in the first stage; else None.
    #[getter]
    fn first_ranks(&self) -> Option<Vec<usize>> {
        self.rerank.as_ref().map(|(_, r)| r.clone())
    }
    fn __len__(&self) -> usize {
        self.ids.len()
    }
    fn __iter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let pair = PyTuple::new(
            py,
            [slf.get().ids.clone().into_pyobject(py)?.into_any(), slf.get().scores(py).into_any()],
        )?;
        pair.try_iter().map(Bound::into_any)
    }
    fn __repr__(&self) -> String {
        let head: Vec<String> = self
            .ids
            .iter()
            .zip(&self.scores)
            .take(3)
            .map(|(i, s)| format!("{i:?}: {s:.4}"))
            .collect();
        format!(
            "Hits({} hits: {}{})",
            self.ids.len(),
            head.join(", "),
            if self.ids.len() > 3 { ", …" } else { "" }
        )
    }
}

impl Hits {
    fn from(r: Results) -> Self {
        let n = r.hits.len();
        let (mut ids, mut scores, mut shards, mut texts) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for h in r.hits {
            ids.push(h.id);
            scores.push(h.score);
            shards.push(h.shard);
            texts.push(h.text);
        }
        Self { ids, scores, shards, texts, coverage: r.coverage, rerank: None }
    }

    /// The hits as the facade's, for a rerank.
    #[cfg(feature = "text")]
    pub(crate) fn to_hits(&self) -> Vec<tartan::Hit> {
        (0..self.ids.len())
            .map(|i| tartan::Hit {
                id: self.ids[i].clone(),
                score: self.scores[i],
                shard: self.shards[i],
                doc: None,
                text: self.texts[i].clone(),
            })
            .collect()
    }

    #[cfg(feature = "text")]
    pub(crate) fn coverage_of(&self) -> &tartan::Coverage {
        &self.coverage
    }

    /// Reranked hits, in their new order.
    #[cfg(feature = "text")]
    pub(crate) fn reranked(r: Vec<tartan::rerank::Reranked>, coverage: tartan::Coverage) -> Self {
        let scores = r.iter().map(|h| h.rerank_score.unwrap_or(f32::NAN)).collect();
        let ranks = r.iter().map(|h| h.first_rank).collect();
        let hits = r.into_iter().map(|h| h.hit).collect();
        let mut out = Self::from(Results { hits, coverage });
        out.rerank = Some((scores, ranks));
        out
    }
}

/// Search settings of a call.
fn params(
    k: usize,
    ncells: Option<usize>,
    ndocs: Option<usize>,
    threshold: Option<f32>,
    filter: Option<&str>,
) -> PyResult<SearchParams> {
    let settings = QuerySettings {
        k: Some(k),
        ncells,
        ndocs,
        centroid_score_threshold: threshold,
        filter: filter.map(str::to_string),
    };
    settings.params(DEFAULT_K).py_err()
}

/// An index, opened read-only: search it. `Index.open(path)`; a collection opens as
/// [`Collection`], which searches the same way.
#[pyclass(module = "tartan._tartan", frozen, subclass)]
pub(crate) struct Index {
    searcher: Mutex<Arc<Searcher>>,
    path: String,
}

impl Index {
    fn new(searcher: Searcher, path: String) -> Self {
        Self { searcher: Mutex::new(Arc::new(searcher)), path }
    }
    fn get(&self) -> Arc<Searcher> {
        self.searcher.lock().expect("searcher lock").clone()
    }
}

#[pymethods]
impl Index {
    /// Opens the index at `path` (read-only; never writes to it).
    #[staticmethod]
    pub(crate) fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        if tartan::detect(&path) == tartan::Found::Collection {
            return Err(invalid(format!(
                "{} is a collection: use Collection.open",
                path.display()
            )));
        }
        let s = py.detach(|| Searcher::open(&path)).py_err()?;
        Ok(Self::new(s, path.to_string_lossy().into_owned()))
    }

    /// Searches one query (a `[tokens, dim]` float16/float32 array).
    #[pyo3(signature = (query, k=DEFAULT_K, *, ncells=None, ndocs=None, threshold=None, filter=None, with_text=false, threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        py: Python<'_>,
        query: &Bound<'_, PyAny>,
        k: usize,
        ncells: Option<usize>,
        ndocs: Option<usize>,
        threshold: Option<f32>,
        filter: Option<&str>,
        with_text: bool,
        threads: Option<usize>,
    ) -> PyResult<Hits> {
        let p = params(k, ncells, ndocs, threshold, filter)?;
        let q = matrix(query, "query")?;
        let view = q.view();
        let s = self.get();
        let opts = SearchOptions { with_text, ..SearchOptions::default() };
        let r = py.detach(|| with_threads(threads, || s.search_with(view, &p, &opts)))?.py_err()?;
        Ok(Hits::from(r))
    }

    /// A document's score for a query, token by token, as a dict (docs/rerank.md "Explain"):
    /// for each query token the winning document token, similarity and share; the score from
    /// the compressed vectors, and with `original` (the document's `[tokens, dim]` vectors)
    /// the exact side. `query` is a `[tokens, dim]` array, or text with `encoder=` (tokens
    /// named, the stored text encoded again for the exact side).
    #[pyo3(signature = (query, id, *, original=None, encoder=None))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        query: &Bound<'py, PyAny>,
        id: &str,
        original: Option<&Bound<'py, PyAny>>,
        encoder: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let s = self.get();
        let e = if let Ok(text) = query.extract::<String>() {
            if original.is_some() {
                return Err(invalid(
                    "a text query's exact side comes from the stored text: leave original out",
                ));
            }
            let enc = encoder.ok_or_else(|| invalid("a text query needs encoder="))?;
            crate::convert::explain_text(py, enc, &s, &text, id)?
        } else {
            let q = matrix(query, "query")?;
            let d = original.map(|o| matrix(o, "original")).transpose()?;
            let (qv, dv) = (q.view(), d.as_ref().map(|d| d.view()));
            py.detach(|| {
                let e = tartan::explain::Explanation::of(&s, qv, id)?;
                match dv {
                    Some(dv) => e.with_exact(qv, dv),
                    None => Ok(e),
                }
            })
            .py_err()?
        };
        let json = serde_json::to_string(&e).map_err(|err| invalid(err.to_string()))?;
        py.import("json")?.call_method1("loads", (json,))
    }

    /// Searches many queries, in parallel: a list of `[n_i, dim]` arrays, or one
    /// `[tokens, dim]` array with `lengths`. One `Hits` per query; with `arrays=True`, a pair
    /// `(ids, scores)`: ids as a list of lists, scores as a float32 `[queries, k]` array padded
    /// with `-inf` where a query has fewer than k hits.
    #[pyo3(signature = (queries, lengths=None, k=DEFAULT_K, *, ncells=None, ndocs=None, threshold=None, filter=None, with_text=false, threads=None, arrays=false))]
    #[allow(clippy::too_many_arguments)]
    fn search_batch<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        lengths: Option<&Bound<'py, PyAny>>,
        k: usize,
        ncells: Option<usize>,
        ndocs: Option<usize>,
        threshold: Option<f32>,
        filter: Option<&str>,
        with_text: bool,
        threads: Option<usize>,
        arrays: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let p = params(k, ncells, ndocs, threshold, filter)?;
        let qs = queries_of(queries, lengths)?;
        let views = qs.views();
        let s = self.get();
        let opts = SearchOptions { with_text, ..SearchOptions::default() };
        let r =
            py.detach(|| with_threads(threads, || s.search_batch(&views, &p, &opts)))?.py_err()?;
        if !arrays {
            let hits: Vec<Hits> = r.into_iter().map(Hits::from).collect();
            return Ok(hits.into_pyobject(py)?.into_any());
        }
        let mut scores = ndarray::Array2::from_elem((r.len(), k), f32::NEG_INFINITY);
        let mut ids = Vec::with_capacity(r.len());
        for (row, res) in r.into_iter().enumerate() {
            let mut row_ids = Vec::with_capacity(res.hits.len());
            for (j, h) in res.hits.into_iter().enumerate() {
                scores[[row, j]] = h.score;
                row_ids.push(h.id);
            }
            ids.push(row_ids);
        }
        let pair = (ids, scores.into_pyarray(py));
        Ok(pair.into_pyobject(py)?.into_any())
    }

    /// Opens the latest published generation (this object keeps the one it opened until then).
    fn reload(&self, py: Python<'_>) -> PyResult<()> {
        let s = self.get();
        let fresh = py.detach(|| s.reopen()).py_err()?;
        *self.searcher.lock().expect("searcher lock") = Arc::new(fresh);
        Ok(())
    }

    /// Recomputes every checksum and checks every value (every shard of a collection).
    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        let s = self.get();
        py.detach(|| {
            for sh in s.shards() {
                if let Some(i) = sh.index() {
                    i.verify()?;
                }
            }
            Ok::<(), tartan::IndexError>(())
        })
        .py_err()
    }

    /// Live documents.
    #[getter]
    fn n_docs(&self) -> u64 {
        self.get().n_docs()
    }
    /// Vector dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.get().dim()
    }
    /// The generation opened.
    #[getter]
    fn generation(&self) -> u64 {
        self.get().generation()
    }
    /// The path opened.
    #[getter]
    fn path(&self) -> String {
        self.path.clone()
    }
    /// The codebook (of the local shards).
    #[getter]
    fn codebook(&self) -> Option<Codebook> {
        self.get().codebook().map(|cb| Codebook { inner: cb.clone(), path: None })
    }
    /// Ids of the live documents, in document order (local shards).
    fn ids(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let s = self.get();
        py.detach(|| {
            let mut out = Vec::new();
            for sh in s.shards() {
                if let Some(i) = sh.index() {
                    out.extend(i.ids()?.into_iter().map(str::to_string));
                }
            }
            Ok::<_, tartan::IndexError>(out)
        })
        .py_err()
    }
    /// Sizes and counts of each local shard, as dicts.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let s = self.get();
        let mut out = Vec::new();
        for sh in s.shards() {
            let d = PyDict::new(py);
            d.set_item("name", sh.name())?;
            d.set_item("n_docs", sh.n_docs())?;
            if let Some(i) = sh.index() {
                let st = i.stats();
                d.set_item("generation", st.generation)?;
                d.set_item("n_tokens", st.n_tokens)?;
                d.set_item("n_deleted", st.n_deleted)?;
                d.set_item("n_segments", st.n_segments)?;
                d.set_item("n_centroids", st.n_centroids)?;
                d.set_item("nbits", st.nbits)?;
                d.set_item("total_bytes", st.total_bytes)?;
                d.set_item("bytes_per_token", st.bytes_per_token())?;
                d.set_item("codebook_drift", st.codebook_drift())?;
            } else {
                d.set_item("url", sh.url())?;
            }
            out.push(d);
        }
        Ok(out)
    }
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let path = slf.get().path.clone();
        reduce_by_path(slf.as_any(), Some(path))
    }
    fn __repr__(&self) -> String {
        let s = self.get();
        format!(
            "{}({:?}, n_docs={}, dim={})",
            if s.collection().is_some() { "Collection" } else { "Index" },
            self.path,
            s.n_docs(),
            s.dim()
        )
    }
}

/// A collection of shards (paths or `tartan serve` URLs) of one codebook, searched as one:
/// everything an [`Index`] does, and shard management.
#[pyclass(module = "tartan._tartan", frozen, extends = Index)]
pub(crate) struct Collection {}

#[pymethods]
impl Collection {
    /// Opens the collection at `path`.
    #[staticmethod]
    #[pyo3(signature = (path, deadline_ms=DEFAULT_DEADLINE_MS, require_all=false))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        deadline_ms: u64,
        require_all: bool,
    ) -> PyResult<Py<Collection>> {
        let policy = shard_policy(deadline_ms, require_all).py_err()?;
        let s = py.detach(|| Searcher::open_with(&path, policy)).py_err()?;
        if s.collection().is_none() {
            return Err(invalid(format!("{} is an index: use Index.open", path.display())));
        }
        let init = PyClassInitializer::from(Index::new(s, path.to_string_lossy().into_owned()))
            .add_subclass(Collection {});
        Py::new(py, init)
    }

    /// Adds a shard: `[NAME=]PATH` or `[NAME=]http://host:port`.
    fn add_shard(slf: &Bound<'_, Self>, shard: &str) -> PyResult<()> {
        let base = slf.as_super().get();
        let path = PathBuf::from(&base.path);
        let py = slf.py();
        py.detach(|| tartan::add_shard(&path, &ShardSpec::parse(shard))).py_err()?;
        base.reload(py)
    }

    /// Removes a shard by name (its files are left alone).
    fn remove_shard(slf: &Bound<'_, Self>, name: &str) -> PyResult<()> {
        let base = slf.as_super().get();
        let path = PathBuf::from(&base.path);
        let py = slf.py();
        py.detach(|| tartan::remove_shard(&path, name)).py_err()?;
        base.reload(py)
    }

    /// The shards: name, location, documents and generation as recorded.
    #[getter]
    fn shards<'py>(slf: &Bound<'py, Self>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let s = slf.as_super().get().get();
        let m = s.collection().expect("a collection");
        m.shards
            .iter()
            .map(|e| {
                let d = PyDict::new(slf.py());
                d.set_item("name", &e.name)?;
                d.set_item("location", &e.location)?;
                d.set_item("n_docs", e.n_docs)?;
                d.set_item("generation", e.generation)?;
                Ok(d)
            })
            .collect()
    }
}

/// Opens an index or a collection.
#[pyfunction]
pub(crate) fn open(py: Python<'_>, path: PathBuf) -> PyResult<Py<PyAny>> {
    if tartan::detect(&path) == tartan::Found::Collection {
        return Ok(Collection::open(py, path, DEFAULT_DEADLINE_MS, false)?.into_any());
    }
    Ok(Py::new(py, Index::open(py, path)?)?.into_any())
}

/// Creates a collection of `shards` (paths or URLs, `[NAME=]` prefixed or not) sharing one
/// codebook (`codebook`'s, when given: a Codebook or a path).
#[pyfunction]
#[pyo3(signature = (path, shards, codebook=None))]
pub(crate) fn create_collection(
    py: Python<'_>,
    path: PathBuf,
    shards: Vec<String>,
    codebook: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<Collection>> {
    let cb = codebook_arg(py, codebook)?.map(|c| c.id());
    let specs: Vec<ShardSpec> = shards.iter().map(|s| ShardSpec::parse(s)).collect();
    py.detach(|| tartan::create_collection(&path, cb, &specs)).py_err()?;
    Collection::open(py, path, DEFAULT_DEADLINE_MS, false)
}
