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
/// unique and documents non-empty. Everything is written under temporary names;
/// [`EmbeddingsWriter::finish`] patches the row count, syncs, and renames the files over the
/// old ones. An existing file is never truncated or rewritten in place, so a reader that has
/// it memory-mapped (this process, or another) keeps reading the old contents; a writer
/// dropped without `finish` removes its temporary file and leaves the old files as they were.
pub struct EmbeddingsWriter {
    dir: PathBuf,
    /// The vectors' temporary file, renamed into place by `finish`.
    tmp: PathBuf,
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
    /// Starts the `kind` files in `dir` (created if missing); existing ones are replaced when
    /// the writer finishes.
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
        let tmp = tmp_name(&kind.embs_path(dir));
        let io = |source| EmbError::Io { path: tmp.clone(), source };
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(io)?);
        out.write_all(&npy::stream_header(dtype(precision), 0, dim)).map_err(io)?;
        Ok(Self {
            dir: dir.into(),
            tmp,
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

    /// Writes lengths and ids, patches the header, syncs, and renames the three files into
    /// place (lengths and ids first, vectors last).
    pub fn finish(mut self) -> Result<(), EmbError> {
        let tmp = self.tmp.clone();
        let io = |source| EmbError::Io { path: tmp.clone(), source };
        self.out.seek(SeekFrom::Start(0)).map_err(io)?;
        self.out
            .write_all(&npy::stream_header(dtype(self.precision), self.rows, self.dim))
            .map_err(io)?;
        self.out.flush().map_err(io)?;
        self.out.get_ref().sync_all().map_err(io)?;
        let lens: Vec<u8> = self.lens.iter().flat_map(|&l| (l as i64).to_le_bytes()).collect();
        let lens_path = self.kind.lens_path(&self.dir);
        let lens_tmp = tmp_name(&lens_path);
        npy::write(&lens_tmp, DType::I64, &[self.lens.len()], &lens)?;
        let mut ids = self.ids.join("\n");
        ids.push('\n');
        let ids_path = self.kind.ids_path(&self.dir);
        let ids_tmp = tmp_name(&ids_path);
        File::create(&ids_tmp)
            .and_then(|mut f| f.write_all(ids.as_bytes()).and_then(|()| f.sync_all()))
            .map_err(|source| EmbError::Io { path: ids_tmp.clone(), source })?;
        for (from, to) in
            [(lens_tmp, lens_path), (ids_tmp, ids_path), (tmp, self.kind.embs_path(&self.dir))]
        {
            std::fs::rename(&from, &to).map_err(|source| EmbError::Io { path: to, source })?;
        }
        Ok(())
    }
}

impl Drop for EmbeddingsWriter {
    /// An unfinished writer removes its temporary file (after `finish` it is gone already).
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// A hidden temporary name beside `path`, unique to this process.
fn tmp_name(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(Default::default, |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
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
        // Unfinished: nothing of it is left, and no query files appeared.
        assert!(Embeddings::open(d.path(), Kind::Queries, LoadOptions::default()).is_err());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 3, "only the doc files");
    }

    #[test]
    fn rewriting_a_directory_leaves_open_maps_intact() {
        // A mapped file truncated under a reader is SIGBUS from safe code; the writer renames
        // new files over old ones instead, so an open reader keeps its contents.
        let d = tempfile::tempdir().unwrap();
        let write = |vals: &[f32]| {
            let mut w =
                EmbeddingsWriter::create(d.path(), Kind::Docs, 2, Precision::F32, true).unwrap();
            for (i, v) in vals.chunks(2).enumerate() {
                w.push(&format!("x{i}"), v).unwrap();
            }
            w.finish().unwrap();
        };
        write(&[1.0, 0.0, 0.0, 1.0, -1.0, 0.0]);
        let old = Embeddings::open(d.path(), Kind::Docs, LoadOptions::default()).unwrap();
        write(&[0.0, -1.0]);
        assert_eq!((old.n_docs(), old.doc(2)), (3, vec![-1.0, 0.0]));
        let new = Embeddings::open(d.path(), Kind::Docs, LoadOptions::default()).unwrap();
        assert_eq!((new.n_docs(), new.doc(0)), (1, vec![0.0, -1.0]));
        // Writing a directory over itself, from its own open embeddings.
        new.write(d.path(), Kind::Docs, Precision::F16).unwrap();
        assert_eq!(new.doc(0), vec![0.0, -1.0]);
    }
}
