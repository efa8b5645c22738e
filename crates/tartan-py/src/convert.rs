//! numpy and Python values to tartan's, and back; per-call thread pools.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use half::f16;
use ndarray::{Array2, ArrayView2};
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyList, PySequence, PyString};
use tartan::{Embeddings, Extras, IngestOptions, LoadOptions, NoProgress, Part};

use crate::errors::{invalid, IntoPy};

/// A query's token matrix: borrowed from numpy when it is C-contiguous float32, else copied.
pub(crate) enum Matrix<'py> {
    Borrowed(PyReadonlyArray2<'py, f32>),
    Owned(Array2<f32>),
}

impl Matrix<'_> {
    pub(crate) fn view(&self) -> ArrayView2<'_, f32> {
        match self {
            Matrix::Borrowed(a) => a.as_array(),
            Matrix::Owned(a) => a.view(),
        }
    }
}

/// A 2-D float16 or float32 array (`what` names it in errors).
pub(crate) fn matrix<'py>(ob: &Bound<'py, PyAny>, what: &str) -> PyResult<Matrix<'py>> {
    if let Ok(a) = ob.extract::<PyReadonlyArray2<'py, f32>>() {
        return Ok(if a.is_c_contiguous() {
            Matrix::Borrowed(a)
        } else {
            Matrix::Owned(a.as_array().to_owned())
        });
    }
    if let Ok(a) = ob.extract::<PyReadonlyArray2<'py, f16>>() {
        return Ok(Matrix::Owned(a.as_array().mapv(f16::to_f32)));
    }
    if let Ok(a) = ob.extract::<PyReadonlyArray2<'py, f64>>() {
        return Ok(Matrix::Owned(a.as_array().mapv(|x| x as f32)));
    }
    let kind = describe(ob);
    Err(invalid(format!(
        "{what} must be a 2-D float16 or float32 numpy array [tokens, dim], got {kind}"
    )))
}

fn describe(ob: &Bound<'_, PyAny>) -> String {
    if let Ok(a) = ob.cast::<numpy::PyUntypedArray>() {
        return format!("an array of dtype {} and shape {:?}", a.dtype(), a.shape());
    }
    ob.get_type().name().map_or_else(|_| "an object".into(), |n| n.to_string())
}

/// A list (or other sequence) of 2-D arrays.
pub(crate) fn matrices<'py>(ob: &Bound<'py, PyAny>, what: &str) -> PyResult<Vec<Matrix<'py>>> {
    if ob.cast::<numpy::PyUntypedArray>().is_ok() {
        return Err(invalid(format!("{what} must be a list of 2-D arrays (one per query)")));
    }
    let seq = ob
        .cast::<PySequence>()
        .map_err(|_| invalid(format!("{what} must be a list of 2-D arrays")))?;
    (0..seq.len()?).map(|i| matrix(&seq.get_item(i)?, &format!("{what}[{i}]"))).collect()
}

/// Token counts: a 1-D integer array or a list. A negative count becomes 0, which the
/// validation downstream refuses as an empty document or query.
fn lengths_of(ob: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
    let nonneg = |l: i64| u64::try_from(l).unwrap_or(0);
    if let Ok(a) = ob.extract::<PyReadonlyArray1<'_, i64>>() {
        return Ok(a.as_array().iter().map(|&l| nonneg(l)).collect());
    }
    if let Ok(a) = ob.extract::<PyReadonlyArray1<'_, i32>>() {
        return Ok(a.as_array().iter().map(|&l| nonneg(i64::from(l))).collect());
    }
    let v: Vec<i64> =
        ob.extract().map_err(|_| invalid("lengths must be a 1-D integer array or list"))?;
    Ok(v.into_iter().map(nonneg).collect())
}

/// A batch of queries: a list of `[n_i, dim]` arrays, or one `[tokens, dim]` array cut by
/// lengths (rows of one array are views, no copy).
pub(crate) enum Queries<'py> {
    List(Vec<Matrix<'py>>),
    Packed(Matrix<'py>, Vec<(usize, usize)>),
}

impl Queries<'_> {
    pub(crate) fn views(&self) -> Vec<ArrayView2<'_, f32>> {
        match self {
            Queries::List(ms) => ms.iter().map(Matrix::view).collect(),
            Queries::Packed(m, spans) => {
                let v = m.view();
                spans
                    .iter()
                    .map(|&(a, b)| v.slice_axis_move(ndarray::Axis(0), ndarray::Slice::from(a..b)))
                    .collect()
            }
        }
    }
}

/// Queries for a batch search (`lengths` goes with one packed array).
pub(crate) fn queries<'py>(
    ob: &Bound<'py, PyAny>,
    lengths: Option<&Bound<'py, PyAny>>,
) -> PyResult<Queries<'py>> {
    if ob.cast::<numpy::PyUntypedArray>().is_err() {
        if lengths.is_some() {
            return Err(invalid("lengths go with one [tokens, dim] array, not a list of queries"));
        }
        return matrices(ob, "queries").map(Queries::List);
    }
    let m = matrix(ob, "queries")?;
    let lengths = lengths.ok_or_else(|| {
        invalid("queries is one [tokens, dim] array: give lengths (tokens per query), or pass a list of arrays")
    })?;
    let lens = lengths_of(lengths)?;
    let rows = m.view().nrows() as u64;
    let total = lens.iter().try_fold(0u64, |a, &l| a.checked_add(l));
    if total != Some(rows) {
        return Err(invalid(format!(
            "query lengths sum to {}, but queries has {rows} rows",
            total.map_or("more than 2^64".to_string(), |t| t.to_string())
        )));
    }
    let mut spans = Vec::with_capacity(lens.len());
    let mut at = 0usize;
    for l in lens {
        // Fits: the sum is the row count, a usize.
        let end = at + l as usize;
        spans.push((at, end));
        at = end;
    }
    Ok(Queries::Packed(m, spans))
}

/// Documents for a build or an add: one `[n_tokens, dim]` array with `lengths`, or a list of
/// per-document `[n_i, dim]` arrays. Ids default to "0", "1", … The vectors are copied once,
/// to float32 (the index build streams from them); they must be unit length unless
/// `normalize`.
fn documents(
    docs: &Bound<'_, PyAny>,
    lengths: Option<&Bound<'_, PyAny>>,
    ids: Option<Vec<String>>,
    normalize: bool,
) -> PyResult<Embeddings> {
    let (dim, lens, tokens) = if docs.cast::<numpy::PyUntypedArray>().is_ok() {
        let m = matrix(docs, "docs")?;
        let v = m.view();
        let lengths = lengths.ok_or_else(|| {
            invalid("docs is one [tokens, dim] array: give lengths (tokens per document)")
        })?;
        let lens = lengths_of(lengths)?;
        (v.ncols(), lens, v.iter().copied().collect::<Vec<f32>>())
    } else {
        if lengths.is_some() {
            return Err(invalid(
                "lengths go with one [tokens, dim] array, not a list of documents",
            ));
        }
        let ms = matrices(docs, "docs")?;
        let dim = ms.first().map_or(0, |m| m.view().ncols());
        let mut tokens = Vec::new();
        let mut lens = Vec::with_capacity(ms.len());
        for (i, m) in ms.iter().enumerate() {
            let v = m.view();
            if v.ncols() != dim {
                return Err(invalid(format!(
                    "docs[{i}] has dimension {}, docs[0] has {dim}",
                    v.ncols()
                )));
            }
            lens.push(v.nrows() as u64);
            tokens.extend(v.iter().copied());
        }
        (dim, lens, tokens)
    };
    if lens.is_empty() {
        return Err(invalid("no documents"));
    }
    let ids = ids.unwrap_or_else(|| (0..lens.len()).map(|i| i.to_string()).collect());
    Embeddings::from_parts(dim, &lens, ids, tokens, LoadOptions { normalize }).py_err()
}

/// The documents of a build, an add or a training, as the Python call gave them.
pub(crate) struct DocArgs<'a, 'py> {
    pub docs: &'a Bound<'py, PyAny>,
    pub lengths: Option<&'a Bound<'py, PyAny>>,
    pub ids: Option<Vec<String>>,
    pub texts: Option<Vec<String>>,
    pub metadata: Option<&'a Bound<'py, PyAny>>,
    pub normalize: bool,
    pub part: Option<(usize, usize)>,
}

/// A `str` or `os.PathLike` (an embeddings directory), not an array or a list of arrays.
fn as_path(ob: &Bound<'_, PyAny>) -> Option<std::path::PathBuf> {
    if ob.is_instance_of::<PyString>() || ob.hasattr("__fspath__").unwrap_or(false) {
        return ob.extract().ok();
    }
    None
}

impl DocArgs<'_, '_> {
    /// Reads the documents: arrays (see [`documents`]), or an embeddings directory read as
    /// the CLI reads it (`part` of it; metadata as a JSON-lines path), with the GIL released.
    pub(crate) fn load(self, py: Python<'_>) -> PyResult<(Embeddings, Extras)> {
        let part = self.part.map(|(i, n)| Part::new(i, n)).transpose().py_err()?;
        let Some(dir) = as_path(self.docs) else {
            if part.is_some() {
                return Err(invalid(
                    "part= takes documents from an embeddings directory: pass its path as docs",
                ));
            }
            let emb = documents(self.docs, self.lengths, self.ids, self.normalize)?;
            return Ok((emb, extras(py, self.texts, self.metadata)?));
        };
        if self.lengths.is_some() || self.ids.is_some() || self.texts.is_some() {
            return Err(invalid(format!(
                "docs is an embeddings directory ({}): its lengths and ids are read from it; lengths=, ids= and texts= go with arrays",
                dir.display()
            )));
        }
        let metadata = match self.metadata {
            None => None,
            Some(m) => Some(as_path(m).ok_or_else(|| {
                invalid("with an embeddings directory, metadata is the path of a JSON-lines file (one object with an \"id\" per document)")
            })?),
        };
        let opts =
            IngestOptions { normalize: self.normalize, metadata, part, ..IngestOptions::default() };
        let loaded = py.detach(|| tartan::load_documents(&dir, &opts, &NoProgress)).py_err()?;
        let tartan::Documents { docs, extras, .. } = loaded;
        Ok((docs, extras))
    }
}

/// Texts and metadata given with arrays.
fn extras(
    py: Python<'_>,
    texts: Option<Vec<String>>,
    meta: Option<&Bound<'_, PyAny>>,
) -> PyResult<Extras> {
    let mut e = Extras::new();
    if let Some(t) = texts {
        e = e.texts(t);
    }
    if let Some(m) = meta {
        e = e.metadata(&metadata(py, m)?);
    }
    Ok(e)
}

/// Metadata: a list of dicts (or None), one per document, as JSON values.
fn metadata(py: Python<'_>, ob: &Bound<'_, PyAny>) -> PyResult<Vec<serde_json::Value>> {
    let list = ob.cast::<PyList>().map_err(|_| invalid("metadata must be a list of dicts"))?;
    let dumps = py.import("json")?.getattr("dumps")?;
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            if item.is_none() {
                return Ok(serde_json::Value::Null);
            }
            let text: String = dumps
                .call1((item,))
                .and_then(|s| s.extract())
                .map_err(|e| invalid(format!("metadata[{i}] is not JSON-serialisable: {e}")))?;
            serde_json::from_str(&text).map_err(|e| invalid(format!("metadata[{i}]: {e}")))
        })
        .collect()
}

/// Runs `f` on a pool of `threads` threads (the global pool when `None`). Pools are kept per
/// size, so repeated calls do not start threads each time.
pub(crate) fn with_threads<T: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    let Some(n) = threads else { return Ok(f()) };
    if n == 0 {
        return Err(invalid("threads must be at least 1"));
    }
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let pool = {
        let mut pools = POOLS.get_or_init(Default::default).lock().expect("pool lock");
        match pools.get(&n) {
            Some(p) => p.clone(),
            None => {
                let p = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| invalid(format!("cannot start {n} threads: {e}")))?;
                pools.entry(n).or_insert(Arc::new(p)).clone()
            }
        }
    };
    Ok(pool.install(f))
}

/// A text query's explanation with the `tartan.Encoder` `enc`.
#[cfg(feature = "text")]
pub(crate) fn explain_text(
    py: Python<'_>,
    enc: &Bound<'_, PyAny>,
    searcher: &tartan::Searcher,
    text: &str,
    id: &str,
) -> PyResult<tartan::explain::Explanation> {
    let enc = enc
        .cast::<crate::encoder::Encoder>()
        .map_err(|_| invalid("encoder= must be a tartan.Encoder"))?;
    let inner = enc.get().inner();
    py.detach(|| tartan::text::explain_text(searcher, inner, text, id)).py_err()
}

/// Without text support there is no encoder.
#[cfg(not(feature = "text"))]
pub(crate) fn explain_text(
    _: Python<'_>,
    _: &Bound<'_, PyAny>,
    _: &tartan::Searcher,
    _: &str,
    _: &str,
) -> PyResult<tartan::explain::Explanation> {
    Err(invalid("this wheel was built without text support"))
}
