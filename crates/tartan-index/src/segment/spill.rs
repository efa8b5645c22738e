//! Centroid ids spilled to a temporary file while a segment's residuals are written, and read
//! back in order for the packed codes and the inverted file: a build holds one chunk of codes
//! at a time, not all of them (four bytes per token, 25 GB at 100M documents).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{IndexError, Result};

/// Bytes buffered on each side of the spill file.
const BUF: usize = 1 << 20;

/// A temporary file of u32 codes (native byte order: only this process reads it), removed
/// when dropped. Its name, `<segment file>.codes.tmp`, is one that writers collect as garbage
/// if a crash leaves it.
pub(crate) struct CodeSpill {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    len: usize,
}

impl CodeSpill {
    pub(crate) fn path_for(segment: &Path) -> PathBuf {
        let mut name = segment.file_name().unwrap_or_default().to_os_string();
        name.push(".codes.tmp");
        segment.with_file_name(name)
    }

    pub(crate) fn create(segment: &Path) -> Result<Self> {
        let path = Self::path_for(segment);
        // Only a crashed writer's leftover can have this name.
        let _ = std::fs::remove_file(&path);
        let file = File::create_new(&path).map_err(io(&path))?;
        Ok(Self { out: Some(BufWriter::with_capacity(BUF, file)), path, len: 0 })
    }

    /// Appends codes.
    pub(crate) fn push(&mut self, codes: &[u32]) -> Result<()> {
        let out = self.out.as_mut().expect("spill written before it is read");
        out.write_all(bytemuck::cast_slice(codes)).map_err(io(&self.path))?;
        self.len += codes.len();
        Ok(())
    }

    /// Codes pushed so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Ends writing; the codes are then read through [`CodeSpill::read`] from the start.
    pub(crate) fn reader(&mut self) -> Result<SpillReader<'_>> {
        if let Some(out) = self.out.take() {
            out.into_inner().map_err(|e| io(&self.path)(e.into_error()))?;
        }
        let file = File::open(&self.path).map_err(io(&self.path))?;
        Ok(SpillReader { path: &self.path, input: BufReader::with_capacity(BUF, file) })
    }
}

impl Drop for CodeSpill {
    fn drop(&mut self) {
        self.out = None;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sequential reads of a spill file.
pub(crate) struct SpillReader<'a> {
    path: &'a Path,
    input: BufReader<File>,
}

impl SpillReader<'_> {
    /// Reads the next `n` codes into `out` (replacing its contents).
    pub(crate) fn read(&mut self, n: usize, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        out.resize(n, 0);
        self.input.read_exact(bytemuck::cast_slice_mut(out)).map_err(io(self.path))
    }

    /// Back to the first code.
    pub(crate) fn rewind(&mut self) -> Result<()> {
        self.input.seek(SeekFrom::Start(0)).map(drop).map_err(io(self.path))
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io { path: path.to_path_buf(), source }
}
