//! The embeddings directory: how users hand tartan precomputed token vectors.
//!
//! | file | content |
//! |---|---|
//! | `doc_embs.npy` | float16 or float32 `[total_doc_tokens, dim]`, documents' tokens in order |
//! | `doc_lens.npy` | int32 or int64 `[n_docs]`, tokens per document |
//! | `doc_ids.txt` | one unique external id per line |
//! | `query_embs.npy`, `query_lens.npy`, `query_ids.txt` | the same for queries (optional) |
//!
//! [`Embeddings::open`] memory-maps the vectors (no copy when the file is aligned, as numpy
//! writes it) and validates everything up front, naming the file, row and id of the first
//! problem: lengths that do not sum to the rows, differing dimensions, NaN/Inf, empty
//! documents, duplicate ids, vectors that are not unit length (unless
//! [`LoadOptions::normalize`] asks to normalise them as they are read).
//!
//! ```
//! use tartan_embeddings::{Embeddings, Kind, LoadOptions, Precision};
//!
//! let dir = tempfile::tempdir()?;
//! let e = Embeddings::from_parts(2, &[1, 2], vec!["a".into(), "b".into()],
//!     vec![1.0, 0.0, 0.0, 1.0, -1.0, 0.0], LoadOptions::default())?;
//! e.write(dir.path(), Kind::Docs, Precision::F16)?;
//! let back = Embeddings::open(dir.path(), Kind::Docs, LoadOptions::default())?;
//! assert_eq!(back.n_docs(), 2);
//! assert_eq!(back.id(1), "b");
//! assert_eq!(back.doc(1), vec![0.0, 1.0, -1.0, 0.0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod npy;
mod validate;
mod writer;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use half::f16;
use half::slice::HalfFloatSliceExt;
use tartan_kernels::ReadOnlyMap;

pub use error::EmbError;
pub use npy::{parse_header as parse_npy_header, DType, NpyHeader};
pub use writer::EmbeddingsWriter;

/// Which half of an embeddings directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `doc_*` files.
    Docs,
    /// `query_*` files.
    Queries,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Docs => "doc",
            Kind::Queries => "query",
        }
    }
    /// Path of the vectors file (`doc_embs.npy` / `query_embs.npy`) in `dir`.
    pub fn embs_path(self, dir: &Path) -> PathBuf {
        dir.join(format!("{}_embs.npy", self.prefix()))
    }
    /// Path of the lengths file.
    pub fn lens_path(self, dir: &Path) -> PathBuf {
        dir.join(format!("{}_lens.npy", self.prefix()))
    }
    /// Path of the ids file.
    pub fn ids_path(self, dir: &Path) -> PathBuf {
        dir.join(format!("{}_ids.txt", self.prefix()))
    }
}

/// Options for loading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// L2-normalise every vector as it is read instead of rejecting non-unit vectors.
    /// Default: false (tartan's scores assume unit vectors, so a silent fix would hide a bug
    /// upstream).
    pub normalize: bool,
}

/// Precision to write vectors in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// float16: half the size; ample for unit vectors.
    F16,
    /// float32.
    F32,
}

enum Tokens {
    F32Map(ReadOnlyMap, usize),
    F16Map(ReadOnlyMap, usize),
    Owned(Vec<f32>),
}

/// Documents' (or queries') token vectors with their lengths and ids.
pub struct Embeddings {
    dim: usize,
    offsets: Vec<u64>,
    ids: Vec<String>,
    tokens: Tokens,
    precision: Precision,
    normalize: bool,
    source: PathBuf,
}

impl std::fmt::Debug for Embeddings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embeddings")
            .field("source", &self.source)
            .field("dim", &self.dim)
            .field("n_docs", &self.n_docs())
            .field("n_tokens", &self.n_tokens())
            .finish()
    }
}

/// Tolerance on `|‖x‖ − 1|` for a vector to count as unit length (float16 storage of a unit
/// vector is off by ~1e-3).
pub const UNIT_TOLERANCE: f32 = 1e-2;

impl Embeddings {
    /// Whether `dir` holds the files of `kind`.
    pub fn exists(dir: &Path, kind: Kind) -> bool {
        kind.embs_path(dir).exists()
    }

    /// Opens and validates the `kind` files of an embeddings directory.
    pub fn open(dir: &Path, kind: Kind, opts: LoadOptions) -> Result<Self, EmbError> {
        Self::open_docs(dir, kind, opts, None)
    }

    /// The number of documents (or queries) of an embeddings directory, from its lengths file.
    pub fn count(dir: &Path, kind: Kind) -> Result<usize, EmbError> {
        Ok(read_lens(&kind.lens_path(dir))?.len())
    }

    /// Opens documents `docs` (positions in the directory) of the `kind` files: a window on the
    /// map, validating and touching only those documents' vectors, so that one part of a large
    /// file costs the memory of that part. The whole directory's shape (lengths against
    /// vectors, ids against lengths) is still checked. `None` opens every document.
    ///
    /// # Errors
    /// As [`Embeddings::open`], and [`EmbError::Range`] if `docs` is empty or past the end.
    pub fn open_docs(
        dir: &Path,
        kind: Kind,
        opts: LoadOptions,
        docs: Option<Range<usize>>,
    ) -> Result<Self, EmbError> {
        let embs_path = kind.embs_path(dir);
        let map = ReadOnlyMap::open(&embs_path)
            .map_err(|source| EmbError::Io { path: embs_path.clone(), source })?;
        let h = npy::parse_header(&embs_path, &map)?;
        let [rows, dim] = h.shape[..] else {
            return Err(EmbError::Npy {
                path: embs_path,
                reason: format!("expected a 2-D array [tokens, dim], got shape {:?}", h.shape),
            });
        };
        let size = match h.dtype {
            DType::F32 => 4,
            DType::F16 => 2,
            DType::I32 | DType::I64 | DType::U8 => {
                return Err(EmbError::Npy {
                    path: embs_path,
                    reason: "token vectors must be float16 or float32".into(),
                })
            }
        };
        let lens = read_lens(&kind.lens_path(dir))?;
        let ids = read_ids(&kind.ids_path(dir))?;
        let Some(docs) = docs else {
            let tokens = window(map, h.data_offset, 0..rows * dim, h.dtype);
            let precision = if size == 2 { Precision::F16 } else { Precision::F32 };
            return Self::assemble(dim, rows, &lens, ids, (tokens, precision), opts, embs_path);
        };
        if ids.len() != lens.len() {
            return Err(EmbError::IdCount { path: embs_path, ids: ids.len(), lens: lens.len() });
        }
        if docs.is_empty() || docs.end > lens.len() {
            let n_docs = lens.len();
            return Err(EmbError::Range {
                path: embs_path,
                start: docs.start,
                end: docs.end,
                n_docs,
            });
        }
        // The whole file's lengths must match its vectors, as for a full open.
        let sum = lens.iter().try_fold(0u64, |a, &l| a.checked_add(l));
        if sum != Some(rows as u64) {
            return Err(EmbError::LensSum { path: embs_path, sum: sum.unwrap_or(u64::MAX), rows });
        }
        // Both fit: they are at most the checked total, a row count of the map.
        let first = lens[..docs.start].iter().sum::<u64>() as usize;
        let part_rows = lens[docs.clone()].iter().sum::<u64>() as usize;
        let tokens = window(map, h.data_offset, first * dim..(first + part_rows) * dim, h.dtype);
        let precision = if size == 2 { Precision::F16 } else { Precision::F32 };
        let ids = ids[docs.clone()].to_vec();
        Self::assemble(dim, part_rows, &lens[docs], ids, (tokens, precision), opts, embs_path)
    }

    /// Builds in-memory embeddings (`tokens` is `sum(lens) × dim`), validated like a load.
    pub fn from_parts(
        dim: usize,
        lens: &[u64],
        ids: Vec<String>,
        tokens: Vec<f32>,
        opts: LoadOptions,
    ) -> Result<Self, EmbError> {
        check_unique(&ids, Path::new("<memory>"))?;
        let shape_err = || EmbError::Shape { path: "<memory>".into(), len: tokens.len(), dim };
        let rows = tokens.len().checked_div(dim).ok_or_else(shape_err)?;
        if !tokens.len().is_multiple_of(dim) {
            return Err(shape_err());
        }
        let tokens = (Tokens::Owned(tokens), Precision::F32);
        Self::assemble(dim, rows, lens, ids, tokens, opts, "<memory>".into())
    }

    fn assemble(
        dim: usize,
        rows: usize,
        lens: &[u64],
        ids: Vec<String>,
        (tokens, precision): (Tokens, Precision),
        opts: LoadOptions,
        source: PathBuf,
    ) -> Result<Self, EmbError> {
        if dim == 0 {
            return Err(EmbError::Shape { path: source, len: 0, dim });
        }
        if ids.len() != lens.len() {
            return Err(EmbError::IdCount { path: source, ids: ids.len(), lens: lens.len() });
        }
        let mut offsets = Vec::with_capacity(lens.len() + 1);
        offsets.push(0u64);
        for (i, &l) in lens.iter().enumerate() {
            if l == 0 {
                return Err(EmbError::EmptyDoc { path: source, index: i, id: ids[i].clone() });
            }
            // Checked: lengths whose sum wraps would pass the comparison below.
            let end = offsets[i].checked_add(l).ok_or(EmbError::LensSum {
                path: source.clone(),
                sum: u64::MAX,
                rows,
            })?;
            offsets.push(end);
        }
        if offsets[lens.len()] != rows as u64 {
            return Err(EmbError::LensSum { path: source, sum: offsets[lens.len()], rows });
        }
        let e = Self { dim, offsets, ids, tokens, precision, normalize: opts.normalize, source };
        validate::check_vectors(&e)?;
        Ok(e)
    }

    /// Writes the `kind` files into `dir` (created if missing).
    pub fn write(&self, dir: &Path, kind: Kind, precision: Precision) -> Result<(), EmbError> {
        // The vectors were validated (or normalised) on load, so the writer's checks pass and
        // it writes them unchanged, one document at a time.
        let mut w = EmbeddingsWriter::create(dir, kind, self.dim, precision, false)?;
        for d in 0..self.n_docs() {
            w.push(self.id(d), &self.doc(d))?;
        }
        w.finish()
    }

    /// The documents at `positions` (in that order), in memory, with their ids; the values
    /// are those [`Embeddings::doc`] gives (normalised if this load asked for it).
    ///
    /// # Errors
    /// [`EmbError::DuplicateId`] if a position repeats.
    ///
    /// # Panics
    /// If a position is out of range.
    pub fn select(&self, positions: &[usize]) -> Result<Self, EmbError> {
        let ids: Vec<String> = positions.iter().map(|&d| self.ids[d].clone()).collect();
        let lens: Vec<u64> = positions.iter().map(|&d| self.doc_len(d) as u64).collect();
        let tokens: Vec<f32> = positions.iter().flat_map(|&d| self.doc(d)).collect();
        let mut e = Self::from_parts(self.dim, &lens, ids, tokens, LoadOptions::default())?;
        e.precision = self.precision;
        Ok(e)
    }
    /// The precision the vectors are stored in (float32 for in-memory embeddings unless
    /// selected from float16 ones).
    pub fn precision(&self) -> Precision {
        self.precision
    }
    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Number of documents (or queries).
    pub fn n_docs(&self) -> usize {
        self.ids.len()
    }
    /// Total tokens.
    pub fn n_tokens(&self) -> usize {
        self.offsets[self.ids.len()] as usize
    }
    /// `n_docs + 1` token offsets.
    pub fn offsets(&self) -> &[u64] {
        &self.offsets
    }
    /// External ids, in order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }
    /// External id of document `d`.
    pub fn id(&self, d: usize) -> &str {
        &self.ids[d]
    }
    /// Tokens of document `d`.
    pub fn doc_len(&self, d: usize) -> usize {
        (self.offsets[d + 1] - self.offsets[d]) as usize
    }
    /// Where the vectors came from (a path, or `<memory>`).
    pub fn source(&self) -> &Path {
        &self.source
    }
    /// Document `d`'s tokens as f32 (`len × dim`), normalised if the load asked for it.
    pub fn doc(&self, d: usize) -> Vec<f32> {
        let mut v = vec![0f32; self.doc_len(d) * self.dim];
        self.read_tokens(self.offsets[d] as usize, &mut v);
        v
    }
    /// Document `d`'s tokens as an `n_tokens × dim` matrix: the one shape token vectors take
    /// across tartan's front ends (queries decoded from JSON, encoder output, these).
    pub fn doc_matrix(&self, d: usize) -> ndarray::Array2<f32> {
        ndarray::Array2::from_shape_vec((self.doc_len(d), self.dim), self.doc(d))
            .expect("doc_len · dim values")
    }
    /// A map from external id to document index.
    pub fn id_map(&self) -> HashMap<&str, usize> {
        self.ids.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect()
    }

    /// Tokens `start..start + out.len() / dim` as f32, normalised if the load asked for it.
    ///
    /// # Panics
    /// If the range is out of bounds.
    pub fn read_tokens(&self, start: usize, out: &mut [f32]) {
        self.read_raw(start, out);
        if self.normalize {
            for v in out.chunks_exact_mut(self.dim) {
                let n = tartan_kernels::dot(v, v).sqrt();
                v.iter_mut().for_each(|x| *x /= n);
            }
        }
    }

    /// Lets go of the memory-mapped pages holding tokens `tokens`: they leave the process's
    /// resident set and are read again from the file if needed (same values). A no-op for
    /// vectors in memory. Readers that stream through a large file call it behind themselves,
    /// so that peak RSS (which counts mapped file pages) does not grow with the file.
    pub fn release_tokens(&self, tokens: Range<usize>) {
        let (map, off, size) = match &self.tokens {
            Tokens::Owned(_) => return,
            Tokens::F32Map(m, off) => (m, *off, 4),
            Tokens::F16Map(m, off) => (m, *off, 2),
        };
        let row = self.dim * size;
        map.release(off + tokens.start * row..off + tokens.end.min(self.n_tokens()) * row);
    }

    /// Raw values of tokens `start..`, without normalisation.
    fn read_raw(&self, start: usize, out: &mut [f32]) {
        let a = start * self.dim;
        match &self.tokens {
            Tokens::Owned(v) => out.copy_from_slice(&v[a..a + out.len()]),
            Tokens::F32Map(m, off) => {
                let bytes = &m[off + a * 4..off + (a + out.len()) * 4];
                let src: &[f32] = bytemuck::cast_slice(bytes);
                out.copy_from_slice(src);
            }
            Tokens::F16Map(m, off) => {
                let bytes = &m[off + a * 2..off + (a + out.len()) * 2];
                let src: &[f16] = bytemuck::cast_slice(bytes);
                // The slice conversion detects F16C once and converts 8 values per
                // instruction; `f16::to_f32` per value is ~10× slower.
                src.convert_to_f32_slice(out);
            }
        }
    }
}

impl tartan_maxsim::Corpus for Embeddings {
    fn dim(&self) -> usize {
        self.dim
    }
    fn doc_offsets(&self) -> &[u64] {
        &self.offsets
    }
    fn read_tokens(&self, start: usize, out: &mut [f32]) {
        Embeddings::read_tokens(self, start, out)
    }
    fn release(&self, tokens: Range<usize>) {
        self.release_tokens(tokens)
    }
}

/// Values `values` of a float16/float32 array whose data starts at byte `off` of `map`: a view
/// into the map when the data is aligned for its type (the usual case), else a converted copy
/// of just those values.
fn window(map: ReadOnlyMap, off: usize, values: Range<usize>, dtype: DType) -> Tokens {
    match dtype {
        DType::F32 if off.is_multiple_of(4) => Tokens::F32Map(map, off + values.start * 4),
        DType::F16 if off.is_multiple_of(2) => Tokens::F16Map(map, off + values.start * 2),
        DType::F32 => Tokens::Owned(
            map[off + values.start * 4..off + values.end * 4]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4")))
                .collect(),
        ),
        _ => Tokens::Owned(
            map[off + values.start * 2..off + values.end * 2]
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        ),
    }
}

fn read_lens(path: &Path) -> Result<Vec<u64>, EmbError> {
    let map =
        ReadOnlyMap::open(path).map_err(|source| EmbError::Io { path: path.into(), source })?;
    let h = npy::parse_header(path, &map)?;
    if h.shape.len() != 1 {
        return Err(EmbError::Npy {
            path: path.into(),
            reason: format!("expected a 1-D array, got {:?}", h.shape),
        });
    }
    let data = &map[h.data_offset..];
    let vals: Vec<i64> = match h.dtype {
        DType::I32 => data
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().expect("4")) as i64)
            .collect(),
        DType::I64 => {
            data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8"))).collect()
        }
        _ => {
            return Err(EmbError::Npy {
                path: path.into(),
                reason: "lengths must be int32 or int64".into(),
            })
        }
    };
    vals.iter()
        .enumerate()
        .map(|(i, &v)| {
            u64::try_from(v).map_err(|_| EmbError::NegativeLen {
                path: path.into(),
                index: i,
                value: v,
            })
        })
        .collect()
}

fn read_ids(path: &Path) -> Result<Vec<String>, EmbError> {
    let text = std::fs::read(path).map_err(|source| EmbError::Io { path: path.into(), source })?;
    let text = String::from_utf8(text).map_err(|e| EmbError::Ids {
        path: path.into(),
        line: 0,
        reason: format!("not UTF-8 (byte {})", e.utf8_error().valid_up_to()),
    })?;
    let ids: Vec<String> =
        text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l).to_string()).collect();
    for (i, id) in ids.iter().enumerate() {
        if id.trim().is_empty() {
            return Err(EmbError::Ids {
                path: path.into(),
                line: i + 1,
                reason: "empty id".into(),
            });
        }
    }
    check_unique(&ids, path)?;
    Ok(ids)
}

fn check_unique(ids: &[String], path: &Path) -> Result<(), EmbError> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        if let Some(first) = seen.insert(id, i) {
            return Err(EmbError::DuplicateId {
                path: path.into(),
                id: id.clone(),
                first_line: first + 1,
                line: i + 1,
            });
        }
    }
    Ok(())
}
