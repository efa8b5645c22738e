//! tartan's errors as Python exceptions: `TartanError` and its kinds.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use tartan::{EmbError, Error, IndexError};

create_exception!(_tartan, TartanError, PyException, "Every error tartan raises.");
create_exception!(
    _tartan,
    InvalidInputError,
    TartanError,
    "Bad input: wrong dimension or dtype, NaN, empty documents or queries, duplicate or unknown ids, bad parameters or filters."
);
create_exception!(
    _tartan,
    CorruptIndexError,
    TartanError,
    "An index, codebook or collection file is damaged, truncated, foreign or of a newer format."
);
create_exception!(
    _tartan,
    LockedError,
    TartanError,
    "Another writer holds the index (or collection)."
);
create_exception!(
    _tartan,
    NotFoundError,
    TartanError,
    "No index, collection, codebook or embeddings directory at the path."
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("TartanError", py.get_type::<TartanError>())?;
    m.add("InvalidInputError", py.get_type::<InvalidInputError>())?;
    m.add("CorruptIndexError", py.get_type::<CorruptIndexError>())?;
    m.add("LockedError", py.get_type::<LockedError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    Ok(())
}

/// The Python exception for an error, with the whole chain of causes in its message.
pub(crate) fn to_py(e: Error) -> PyErr {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        let part = s.to_string();
        if !msg.contains(&part) {
            msg = format!("{msg}: {part}");
        }
        src = s.source();
    }
    match &e {
        Error::Index(ie) => match ie {
            IndexError::Locked { .. } => LockedError::new_err(msg),
            IndexError::Corrupt { .. }
            | IndexError::NotTartan { .. }
            | IndexError::NewerFormat { .. }
            | IndexError::CodebookMismatch { .. } => CorruptIndexError::new_err(msg),
            IndexError::NoIndex { .. }
            | IndexError::NoCollection { .. }
            | IndexError::NoCodebook { .. } => NotFoundError::new_err(msg),
            IndexError::Io { .. } | IndexError::Published { .. } => TartanError::new_err(msg),
            _ => InvalidInputError::new_err(msg),
        },
        Error::NotFound { .. } => NotFoundError::new_err(msg),
        Error::Embeddings(EmbError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            NotFoundError::new_err(msg)
        }
        Error::Embeddings(_)
        | Error::Metadata { .. }
        | Error::Param { .. }
        | Error::RemoteShard { .. }
        | Error::NoText(_)
        | Error::MissingText { .. } => InvalidInputError::new_err(msg),
        _ => TartanError::new_err(msg),
    }
}

/// Maps a facade result into a Python one.
pub(crate) trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T, E: Into<Error>> IntoPy<T> for Result<T, E> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(|e| to_py(e.into()))
    }
}

/// An invalid-input error naming what is wrong.
pub(crate) fn invalid(msg: impl Into<String>) -> PyErr {
    InvalidInputError::new_err(msg.into())
}
