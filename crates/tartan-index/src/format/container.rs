//! The binary container every index file uses (see docs/format.md, "Container").
//!
//! ```text
//! 0      magic           8 bytes  "\x89TARTAN\n"
//! 8      format_version  u32
//! 12     kind            u32      1 codebook, 2 segment, 3 deletions
//! 16     n_sections      u32
//! 20     header_crc      u32      CRC-32 of bytes 0..64 (this field zeroed) and the section table
//! 24     file_len        u64
//! 32     body_crc        u32      CRC-32 of everything after the section table
//! 36     reserved        28 bytes zero
//! 64     section table   n_sections × { tag [u8; 8], offset u64, len u64, elem_size u32, 0u32 }
//! ...    sections, each starting 64-byte aligned, zero padding between
//! ```

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use tartan_kernels::ReadOnlyMap;

use crate::error::{IndexError, Result};

pub(crate) const MAGIC: [u8; 8] = *b"\x89TARTAN\n";
/// The format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 5;
const HEADER_LEN: usize = 64;
const ENTRY_LEN: usize = 32;
const ALIGN: u64 = 64;

/// What a container file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Centroids and the residual codec.
    Codebook = 1,
    /// Documents: offsets, ids, codes, residuals and the inverted file.
    Segment = 2,
    /// A segment's deletion bitmap.
    Deletions = 3,
}

/// Streams sections into a new file, then writes the header and table in place.
pub(crate) struct ContainerWriter {
    path: PathBuf,
    out: BufWriter<File>,
    kind: FileKind,
    table: Vec<([u8; 8], u64, u64, u32)>,
    n_sections: usize,
    pos: u64,
    body_crc: crc32fast::Hasher,
    open: Option<([u8; 8], u64, u32)>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io { path: path.to_path_buf(), source }
}

impl ContainerWriter {
    pub(crate) fn create(path: &Path, kind: FileKind, n_sections: usize) -> Result<Self> {
        let file = File::create_new(path).map_err(io_err(path))?;
        let mut w = Self {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, file),
            kind,
            table: Vec::with_capacity(n_sections),
            n_sections,
            pos: 0,
            body_crc: crc32fast::Hasher::new(),
            open: None,
        };
        let head = vec![0u8; HEADER_LEN + ENTRY_LEN * n_sections];
        w.out.write_all(&head).map_err(io_err(path))?;
        w.pos = head.len() as u64;
        Ok(w)
    }

    fn body_write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(io_err(&self.path))?;
        self.body_crc.update(bytes);
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Starts a section; its bytes follow through [`ContainerWriter::write`].
    pub(crate) fn begin(&mut self, tag: &[u8; 8], elem_size: u32) -> Result<()> {
        assert!(self.open.is_none(), "section not ended");
        let pad = self.pos.next_multiple_of(ALIGN) - self.pos;
        self.body_write(&vec![0u8; pad as usize])?;
        self.open = Some((*tag, self.pos, elem_size));
        Ok(())
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        debug_assert!(self.open.is_some());
        self.body_write(bytes)
    }

    pub(crate) fn end(&mut self) -> Result<()> {
        let (tag, start, elem) = self.open.take().expect("section open");
        self.table.push((tag, start, self.pos - start, elem));
        Ok(())
    }

    /// A whole section from a slice of plain values.
    pub(crate) fn section<T: bytemuck::NoUninit>(
        &mut self,
        tag: &[u8; 8],
        data: &[T],
    ) -> Result<()> {
        self.begin(tag, size_of::<T>() as u32)?;
        self.write(bytemuck::cast_slice(data))?;
        self.end()
    }

    /// Writes header and table, syncs, and returns `(file_len, whole-file CRC-32)`.
    pub(crate) fn finish(mut self) -> Result<(u64, u32)> {
        assert_eq!(self.table.len(), self.n_sections, "declared and written sections differ");
        let body_crc = self.body_crc.clone().finalize();
        let head = encode_head(self.kind, &self.table, self.pos, body_crc);
        let err = io_err(&self.path);
        self.out.seek(SeekFrom::Start(0)).map_err(&err)?;
        self.out.write_all(&head).map_err(&err)?;
        let file = self.out.into_inner().map_err(|e| err(e.into_error()))?;
        file.sync_all().map_err(&err)?;
        let mut whole = crc32fast::Hasher::new();
        whole.update(&head);
        whole.combine(&self.body_crc);
        Ok((self.pos, whole.finalize()))
    }
}

fn encode_head(
    kind: FileKind,
    table: &[([u8; 8], u64, u64, u32)],
    file_len: u64,
    body_crc: u32,
) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN + ENTRY_LEN * table.len());
    h.extend(MAGIC);
    h.extend(FORMAT_VERSION.to_le_bytes());
    h.extend((kind as u32).to_le_bytes());
    h.extend((table.len() as u32).to_le_bytes());
    h.extend(0u32.to_le_bytes()); // header_crc, filled below
    h.extend(file_len.to_le_bytes());
    h.extend(body_crc.to_le_bytes());
    h.resize(HEADER_LEN, 0);
    for (tag, off, len, elem) in table {
        h.extend(tag);
        h.extend(off.to_le_bytes());
        h.extend(len.to_le_bytes());
        h.extend(elem.to_le_bytes());
        h.extend(0u32.to_le_bytes());
    }
    let crc = crc32fast::hash(&h);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// A memory-mapped container whose header was checked.
#[derive(Debug)]
pub(crate) struct Container {
    pub(crate) path: PathBuf,
    pub(crate) map: ReadOnlyMap,
    /// Held open with a shared lock while the map lives: a writer only deletes files that it
    /// can lock exclusively, so no file is removed under a reader (docs/format.md).
    _file: File,
    pub(crate) sections: Vec<([u8; 8], Range<usize>, u32)>,
    head_len: usize,
    body_crc: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Container {
    /// Maps `path` and checks magic, version, kind, length, header CRC and section bounds:
    /// O(header), no pass over the data.
    pub(crate) fn open(path: &Path, kind: FileKind) -> Result<Self> {
        let file = File::open(path).map_err(io_err(path))?;
        // Readers never wait on a writer: an exclusive lock on the file means a writer is
        // collecting it (it locks, then removes), so the file is as good as gone and the
        // caller opens the newer generation (`Index::open` retries on NotFound). Other lock
        // failures are ignored: a file system without flock still reads correctly (POSIX
        // unlink keeps mappings valid); the lock only tells writers that the file is in use.
        if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock_shared() {
            let gone = std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "a writer is removing this file (it holds its lock)",
            );
            return Err(IndexError::Io { path: path.to_path_buf(), source: gone });
        }
        let map = ReadOnlyMap::map(&file).map_err(io_err(path))?;
        let corrupt = |reason: String| IndexError::Corrupt { path: path.to_path_buf(), reason };
        if map.len() < HEADER_LEN || map[..8] != MAGIC {
            return Err(IndexError::NotTartan { path: path.to_path_buf() });
        }
        let version = u32_at(&map, 8);
        if version > FORMAT_VERSION {
            return Err(IndexError::NewerFormat {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if version == 0 {
            return Err(corrupt("format version 0".into()));
        }
        let n = u32_at(&map, 16) as usize;
        let head_len = HEADER_LEN + ENTRY_LEN * n;
        if n > 64 || map.len() < head_len {
            return Err(corrupt(format!("section count {n} does not fit the file")));
        }
        let mut head = map[..head_len].to_vec();
        head[20..24].fill(0);
        if crc32fast::hash(&head) != u32_at(&map, 20) {
            return Err(corrupt("header checksum mismatch".into()));
        }
        let file_len = u64_at(&map, 24);
        if file_len != map.len() as u64 {
            return Err(corrupt(format!(
                "header records {file_len} bytes but the file has {} (truncated or appended to)",
                map.len()
            )));
        }
        if map[36..HEADER_LEN].iter().any(|&b| b != 0)
            || (0..n).any(|i| u32_at(&map, HEADER_LEN + ENTRY_LEN * i + 28) != 0)
        {
            return Err(corrupt("a reserved header or section-table field is not zero".into()));
        }
        let found_kind = u32_at(&map, 12);
        if found_kind != kind as u32 {
            return Err(corrupt(format!("file kind {found_kind}, expected {}", kind as u32)));
        }
        let mut sections = Vec::with_capacity(n);
        for i in 0..n {
            let e = HEADER_LEN + ENTRY_LEN * i;
            let tag: [u8; 8] = map[e..e + 8].try_into().expect("8 bytes");
            let (off, len, elem) =
                (u64_at(&map, e + 8), u64_at(&map, e + 16), u32_at(&map, e + 24));
            let end = off.checked_add(len).filter(|&end| end <= file_len);
            if off % ALIGN != 0
                || off < head_len as u64
                || end.is_none()
                || elem == 0
                || len % elem as u64 != 0
            {
                return Err(corrupt(format!(
                    "section {} has bad bounds",
                    String::from_utf8_lossy(&tag)
                )));
            }
            sections.push((tag, off as usize..(off + len) as usize, elem));
        }
        // Sections may not overlap, and a tag names one section.
        let mut spans: Vec<(usize, usize, [u8; 8])> =
            sections.iter().map(|(t, r, _)| (r.start, r.end, *t)).collect();
        spans.sort_unstable();
        for w in spans.windows(2) {
            if w[1].0 < w[0].1 {
                return Err(corrupt(format!(
                    "sections {} and {} overlap",
                    String::from_utf8_lossy(&w[0].2).trim(),
                    String::from_utf8_lossy(&w[1].2).trim()
                )));
            }
        }
        let mut tags: Vec<[u8; 8]> = sections.iter().map(|s| s.0).collect();
        tags.sort_unstable();
        if let Some(w) = tags.windows(2).find(|w| w[0] == w[1]) {
            return Err(corrupt(format!(
                "section {} appears twice",
                String::from_utf8_lossy(&w[0]).trim()
            )));
        }
        let body_crc = u32_at(&map, 32);
        Ok(Self { path: path.to_path_buf(), map, _file: file, sections, head_len, body_crc })
    }

    /// Drops the mapping and keeps the open file (and its shared lock), for readers that
    /// copy what they need at open.
    pub(crate) fn into_file(self) -> File {
        self._file
    }

    /// Recomputes the body checksum.
    pub(crate) fn verify(&self) -> Result<()> {
        if crc32fast::hash(&self.map[self.head_len..]) != self.body_crc {
            return Err(IndexError::Corrupt {
                path: self.path.clone(),
                reason: "data checksum mismatch".into(),
            });
        }
        Ok(())
    }

    /// CRC-32 of the whole file, as recorded in the manifest.
    pub(crate) fn whole_crc(&self) -> u32 {
        crc32fast::hash(&self.map)
    }

    /// Byte range of a section, checking its element size.
    pub(crate) fn range(&self, tag: &[u8; 8], elem_size: u32) -> Result<Range<usize>> {
        let name = String::from_utf8_lossy(tag).trim().to_string();
        let (_, r, e) =
            self.sections.iter().find(|(t, ..)| t == tag).ok_or_else(|| IndexError::Corrupt {
                path: self.path.clone(),
                reason: format!("section {name} is missing"),
            })?;
        if *e != elem_size {
            return Err(IndexError::Corrupt {
                path: self.path.clone(),
                reason: format!("section {name} has {e}-byte elements, expected {elem_size}"),
            });
        }
        Ok(r.clone())
    }

    /// Element size of a section, if present.
    pub(crate) fn elem_size(&self, tag: &[u8; 8]) -> Option<u32> {
        self.sections.iter().find(|(t, ..)| t == tag).map(|s| s.2)
    }

    /// A section as a typed slice.
    pub(crate) fn slice<T: bytemuck::AnyBitPattern>(&self, r: &Range<usize>) -> &[T] {
        // Sections are 64-byte aligned in a page-aligned map and lengths are multiples of the
        // element size (checked at open), so the cast cannot fail.
        bytemuck::cast_slice(&self.map[r.clone()])
    }

    /// A section that must hold exactly `n` elements of `T`.
    pub(crate) fn typed<T: bytemuck::AnyBitPattern>(
        &self,
        tag: &[u8; 8],
        n: Option<usize>,
    ) -> Result<Range<usize>> {
        let r = self.range(tag, size_of::<T>() as u32)?;
        if let Some(n) = n {
            let got = r.len() / size_of::<T>();
            if got != n {
                return Err(IndexError::Corrupt {
                    path: self.path.clone(),
                    reason: format!(
                        "section {} holds {got} values, expected {n}",
                        String::from_utf8_lossy(tag).trim()
                    ),
                });
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rewrites section `i`'s table entry of the file at `p` (offset, len) and fixes the
    /// header CRC, as a hostile or buggy writer would.
    fn patch_entry(p: &Path, i: usize, off: u64, len: u64) {
        let mut b = std::fs::read(p).unwrap();
        let e = HEADER_LEN + ENTRY_LEN * i;
        b[e + 8..e + 16].copy_from_slice(&off.to_le_bytes());
        b[e + 16..e + 24].copy_from_slice(&len.to_le_bytes());
        let n = u32_at(&b, 16) as usize;
        let mut head = b[..HEADER_LEN + ENTRY_LEN * n].to_vec();
        head[20..24].fill(0);
        let crc = crc32fast::hash(&head);
        b[20..24].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(p, b).unwrap();
    }

    #[test]
    fn overlapping_or_repeated_sections_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.tseg");
        let mut w = ContainerWriter::create(&p, FileKind::Segment, 2).unwrap();
        w.section(b"AAAAAAAA", &[1u64; 16]).unwrap();
        w.section(b"BBBBBBBB", &[2u64; 16]).unwrap();
        w.finish().unwrap();
        let c = Container::open(&p, FileKind::Segment).unwrap();
        let (a, b) = (c.range(b"AAAAAAAA", 8).unwrap(), c.range(b"BBBBBBBB", 8).unwrap());
        drop(c);
        // B made to start inside A (both still in the file, aligned, whole elements).
        patch_entry(&p, 1, a.start as u64 + 64, b.len() as u64);
        let err = Container::open(&p, FileKind::Segment).unwrap_err().to_string();
        assert!(err.contains("overlap"), "{err}");
        // The same tag twice.
        patch_entry(&p, 1, b.start as u64, b.len() as u64);
        let mut bytes = std::fs::read(&p).unwrap();
        let e = HEADER_LEN + ENTRY_LEN;
        bytes[e..e + 8].copy_from_slice(b"AAAAAAAA");
        std::fs::write(&p, bytes).unwrap();
        patch_entry(&p, 1, b.start as u64, b.len() as u64);
        let err = Container::open(&p, FileKind::Segment).unwrap_err().to_string();
        assert!(err.contains("appears twice"), "{err}");
    }
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn write_read_roundtrip(a in prop::collection::vec(any::<u32>(), 0..300), b in prop::collection::vec(any::<u8>(), 0..300)) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("x.tseg");
            let mut w = ContainerWriter::create(&p, FileKind::Segment, 2).unwrap();
            w.section(b"AAAAAAAA", &a).unwrap();
            w.begin(b"BBBBBBBB", 1).unwrap();
            w.write(&b[..b.len() / 2]).unwrap();
            w.write(&b[b.len() / 2..]).unwrap();
            w.end().unwrap();
            let (len, crc) = w.finish().unwrap();
            let c = Container::open(&p, FileKind::Segment).unwrap();
            c.verify().unwrap();
            prop_assert_eq!(len as usize, c.map.len());
            prop_assert_eq!(crc, c.whole_crc());
            let ra = c.typed::<u32>(b"AAAAAAAA", Some(a.len())).unwrap();
            prop_assert_eq!(c.slice::<u32>(&ra), &a[..]);
            let rb = c.range(b"BBBBBBBB", 1).unwrap();
            prop_assert_eq!(&c.map[rb], &b[..]);
            prop_assert!(Container::open(&p, FileKind::Codebook).is_err());
        }
    }
}
