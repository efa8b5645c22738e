//! `tartan.build`: an index from numpy arrays or an embeddings directory, opened.

use std::path::PathBuf;

use pyo3::prelude::*;
use tartan::settings::{DEFAULT_BUCKETS, DEFAULT_KMEANS_ITERS, DEFAULT_NBITS, DEFAULT_SEED};
use tartan::{Index as RsIndex, NoProgress};

use crate::codebook::{codebook_arg, CodebookArgs, Memory};
use crate::convert::{with_threads, DocArgs};
use crate::errors::IntoPy;
use crate::index::Index;

/// Builds an index of `docs` in `path` and opens it. `docs`: one `[tokens, dim]` array with
/// `lengths`, a list of `[n_i, dim]` arrays, or the path of an embeddings directory (with
/// `part=(i, n)`, only its part i of n, as `tartan index --part i/n`). With `codebook` (a
/// Codebook or a path) no codebook is trained and the codebook settings do not apply.
/// `memory` (bytes, or a size such as `"4GiB"`) is the build's memory budget;
/// `normalize_decoded` (default: on for a trained codebook) L2-normalises decoded tokens; `buckets`
/// (`"lloyd-max"` or ColBERT's `"quantiles"`) places the residual buckets.
#[pyfunction]
#[pyo3(signature = (path, docs, lengths=None, ids=None, *, nbits=DEFAULT_NBITS, n_centroids=None, kmeans_iters=DEFAULT_KMEANS_ITERS, sample_docs=None, seed=DEFAULT_SEED, memory=None, codebook=None, texts=None, metadata=None, normalize=false, normalize_decoded=None, buckets=DEFAULT_BUCKETS.to_string(), part=None, overwrite=false, threads=None))]
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
