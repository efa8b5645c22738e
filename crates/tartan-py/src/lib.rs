//! The `tartan` Python module: a thin shell over the `tartan` facade. numpy arrays in,
//! numpy arrays out; the GIL is released during every long call; a thread count per call keeps
//! a Ray or Spark task within its cores. Errors are Python exceptions under `TartanError`.
//!
//! The Python package (`python/tartan/__init__.py`) re-exports this module and holds the type
//! stubs; see the README's Python section.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod build;
mod codebook;
mod convert;
#[cfg(feature = "text")]
mod encoder;
mod errors;
mod index;
#[cfg(feature = "text")]
mod rerank;
mod sweep;
mod writer;

use pyo3::prelude::*;

/// The extension module, `tartan._tartan`.
#[pymodule]
fn _tartan(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<codebook::Codebook>()?;
    m.add_class::<index::Index>()?;
    m.add_class::<index::Collection>()?;
    m.add_class::<index::Hits>()?;
    m.add_class::<writer::Writer>()?;
    #[cfg(feature = "text")]
    m.add_class::<encoder::Encoder>()?;
    #[cfg(feature = "text")]
    m.add_class::<rerank::CrossEncoder>()?;
    m.add_function(wrap_pyfunction!(build::build, m)?)?;
    m.add_function(wrap_pyfunction!(codebook::train_codebook, m)?)?;
    m.add_function(wrap_pyfunction!(index::open, m)?)?;
    m.add_function(wrap_pyfunction!(index::create_collection, m)?)?;
    m.add_function(wrap_pyfunction!(sweep::sweep, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("text_support", cfg!(feature = "text"))?;
    Ok(())
}
