//! Streaming writer of an embeddings directory: documents are appended one at a time and
//! never held together in memory.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use half::f16;

use crate::npy::{self, DType};
use crate::{EmbError, Kind, Precision};

/// Appends documents (or queries) to the `kind` files of an embeddings directory.
///
/// Each vector is checked as it arrives (finite, unit length unless `normalize`); ids must be
/// unique and documents non-empty. [`EmbeddingsWriter::finish`] writes the lengths and ids and
/// patches the row count into the vectors file; a writer dropped without `finish` leaves a
/// file whose header says 0 rows and whose length disagrees, which readers refuse.
pub struct EmbeddingsWriter {
    dir: PathBuf,
    kind: Kind,
    dim: usize,
    precision: Precision,
    normalize: bool,
    out: BufWriter<File>,
    lens: Vec<u64>,
    ids: Vec<String>,
    seen: std::collections::HashSet<String>,
    rows: usize,
}

impl EmbeddingsWriter {
    /// Starts the `kind` files in `dir` (created if missing), replacing existing ones.
    pub fn create(
        dir: &Path,
        kind: Kind,
        dim: usize,
        precision: Precision,
        normalize: bool,
    ) -> Result<Self, EmbError> {
        if dim == 0 {
            return Err(EmbError::Shape { path: dir.into(), len: 0, dim });
        }
        std::fs::create_dir_all(dir).map_err(|source| EmbError::Io { path: dir.into(), source })?;
        let path = kind.embs_path(dir);
        let io = |source| EmbError::Io { path: path.clone(), source };
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&path).map_err(io)?);
        out.write_all(&npy::stream_header(dtype(precision), 0, dim)).map_err(io)?;
        Ok(Self {
            dir: dir.into(),
            kind,
            dim,
            precision,
            normalize,
            out,
            lens: Vec::new(),
            ids: Vec::new(),
            seen: Default::default(),
            rows: 0,
        })
    }

    /// Appends one document: `tokens` holds `n × dim` values, `n ≥ 1`.
    pub fn push(&mut self, id: &str, tokens: &[f32]) -> Result<(), EmbError> {
        let path = self.kind.embs_path(&self.dir);
        let index = self.ids.len();
        if tokens.is_empty() || !tokens.len().is_multiple_of(self.dim) {
            return Err(EmbError::EmptyDoc { path, index, id: id.into() });
        }
        if id.trim().is_empty() || id.contains(['\n', '\r']) {
            return Err(EmbError::Ids {
                path: self.kind.ids_path(&self.dir),
                line: index + 1,
                reason: format!("unusable id {id:?}"),
            });
        }
        if !self.seen.insert(id.to_string()) {
            let first = self.ids.iter().position(|x| x == id).unwrap_or(0);
            return Err(EmbError::DuplicateId {
                path: self.kind.ids_path(&self.dir),
                id: id.into(),
                first_line: first + 1,
                line: index + 1,
            });
        }
        let mut buf = Vec::with_capacity(tokens.len() * 4);
        for (t, v) in tokens.chunks_exact(self.dim).enumerate() {
            let token = self.rows + t;
            if v.iter().any(|x| !x.is_finite()) {
                return Err(EmbError::NonFinite { path, token, doc: index, id: id.into() });
            }
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            let scale = if self.normalize {
                if norm == 0.0 {
                    return Err(EmbError::ZeroVector { path, token, doc: index, id: id.into() });
                }
                1.0 / norm
            } else {
                if (norm - 1.0).abs() > crate::UNIT_TOLERANCE {
                    return Err(EmbError::NotUnit { path, token, doc: index, id: id.into(), norm });
                }
                1.0
            };
            for &x in v {
                match self.precision {
                    Precision::F32 => buf.extend((x * scale).to_le_bytes()),
                    Precision::F16 => buf.extend(f16::from_f32(x * scale).to_le_bytes()),
                }
            }
        }
        self.out.write_all(&buf).map_err(|source| EmbError::Io { path, source })?;
        let n = tokens.len() / self.dim;
        self.rows += n;
        self.lens.push(n as u64);
        self.ids.push(id.to_string());
        Ok(())
    }

    /// Documents written so far.
    pub fn n_docs(&self) -> usize {
        self.ids.len()
    }

    /// Writes lengths and ids, patches the header and syncs.
    pub fn finish(mut self) -> Result<(), EmbError> {
        let path = self.kind.embs_path(&self.dir);
        let io = |source| EmbError::Io { path: path.clone(), source };
        self.out.seek(SeekFrom::Start(0)).map_err(io)?;
        self.out
            .write_all(&npy::stream_header(dtype(self.precision), self.rows, self.dim))
            .map_err(io)?;
        self.out.into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)?;
        let lens: Vec<u8> = self.lens.iter().flat_map(|&l| (l as i64).to_le_bytes()).collect();
        npy::write(&self.kind.lens_path(&self.dir), DType::I64, &[self.lens.len()], &lens)?;
        let mut ids = self.ids.join("\n");
        ids.push('\n');
        let p = self.kind.ids_path(&self.dir);
        std::fs::write(&p, ids).map_err(|source| EmbError::Io { path: p, source })
    }
}

fn dtype(p: Precision) -> DType {
    match p {
        Precision::F16 => DType::F16,
        Precision::F32 => DType::F32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Embeddings, LoadOptions};

    #[test]
    fn streamed_files_read_back() {
        let d = tempfile::tempdir().unwrap();
        let mut w =
            EmbeddingsWriter::create(d.path(), Kind::Docs, 2, Precision::F16, true).unwrap();
        w.push("a", &[3.0, 4.0]).unwrap();
        w.push("b", &[1.0, 0.0, 0.0, -2.0]).unwrap();
        assert!(matches!(
            w.push("a", &[1.0, 0.0]),
            Err(EmbError::DuplicateId { first_line: 1, line: 3, .. })
        ));
        assert!(matches!(w.push("c", &[]), Err(EmbError::EmptyDoc { .. })));
        assert!(matches!(w.push("c", &[f32::NAN, 0.0]), Err(EmbError::NonFinite { .. })));
        w.finish().unwrap();
        let e = Embeddings::open(d.path(), Kind::Docs, LoadOptions::default()).unwrap();
        assert_eq!((e.n_docs(), e.n_tokens()), (2, 3));
        assert_eq!(e.ids(), ["a", "b"]);
        assert_eq!(e.doc(1), vec![1.0, 0.0, 0.0, -1.0]);
        let mut w =
            EmbeddingsWriter::create(d.path(), Kind::Queries, 2, Precision::F32, false).unwrap();
        assert!(matches!(w.push("q", &[3.0, 4.0]), Err(EmbError::NotUnit { .. })));
        drop(w);
        // Unfinished: the header says 0 rows but the lengths file is absent / sizes disagree.
        assert!(Embeddings::open(d.path(), Kind::Queries, LoadOptions::default()).is_err());
    }
}
