//! `tartan.sweep`: the storage/quality/latency trade-off of `tartan sweep`, from Python.

use std::path::PathBuf;

use pyo3::prelude::*;
use tartan::sweep::{SweepEvent, SweepParams};

use crate::convert::with_threads;
use crate::errors::IntoPy;

/// Builds an index per (K, nbits) of the embeddings directory `embeddings` in `out`, searches
/// each at every (ncells, ndocs), beside exact MaxSim, float16 and a mean-pooled bi-encoder;
/// writes sweep.csv, sweep.json and the SVG plots into `out` (unless `write=False`) and
/// returns what sweep.json holds, as a dict. Lists left `None` take `tartan sweep`'s defaults.
#[pyfunction]
#[pyo3(signature = (embeddings, out, *, nbits=None, centroids=None, ncells=None, ndocs=None, k=None, max_queries=None, seed=None, normalize=false, keep_indexes=false, write=true, threads=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn sweep(
    py: Python<'_>,
    embeddings: PathBuf,
    out: PathBuf,
    nbits: Option<Vec<u8>>,
    centroids: Option<Vec<usize>>,
    ncells: Option<Vec<usize>>,
    ndocs: Option<Vec<usize>>,
    k: Option<usize>,
    max_queries: Option<usize>,
    seed: Option<u64>,
    normalize: bool,
    keep_indexes: bool,
    write: bool,
    threads: Option<usize>,
) -> PyResult<Py<PyAny>> {
    let d = SweepParams::new();
    let p = SweepParams {
        nbits: nbits.unwrap_or(d.nbits),
        centroids: centroids.map_or(d.centroids, |c| c.into_iter().map(Some).collect()),
        ncells: ncells.unwrap_or(d.ncells),
        ndocs: ndocs.unwrap_or(d.ndocs),
        k: k.unwrap_or(d.k),
        max_queries,
        seed: seed.unwrap_or(d.seed),
        normalize,
        keep_indexes,
        ..d
    };
    let json = py
        .detach(|| {
            with_threads(threads, || -> tartan::Result<String> {
                let s = tartan::sweep::sweep(&embeddings, &out, &p, &mut |_: SweepEvent<'_>| {})?;
                if write {
                    s.write(&out)?;
                }
                Ok(serde_json::to_string(&s).expect("rows serialise"))
            })
        })?
        .py_err()?;
    let loads = py.import("json")?.getattr("loads")?;
    Ok(loads.call1((json,))?.unbind())
}
