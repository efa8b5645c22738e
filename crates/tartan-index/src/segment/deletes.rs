//! Deletion bitmaps: which documents of a segment are deleted in a generation.
//!
//! A segment file is never rewritten, so deletes live beside it in a small file of their own,
//! named by the manifest; a new generation that deletes more writes a new file.

use std::path::Path;

use crate::error::{IndexError, Result};
use crate::format::container::{Container, ContainerWriter, FileKind};
use crate::format::manifest::SegmentMeta;

const INFO: &[u8; 8] = b"DELINFO ";
const BITS: &[u8; 8] = b"DELBITS ";

/// A fixed-size set of document numbers `0..len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bitmap {
    words: Vec<u64>,
    len: usize,
}

impl Bitmap {
    pub(crate) fn new(len: usize) -> Self {
        Self { words: vec![0; len.div_ceil(64)], len }
    }
    pub(crate) fn full(len: usize) -> Self {
        let mut b = Self { words: vec![u64::MAX; len.div_ceil(64)], len };
        b.clear_tail();
        b
    }
    fn clear_tail(&mut self) {
        if !self.len.is_multiple_of(64) {
            if let Some(w) = self.words.last_mut() {
                *w &= (1u64 << (self.len % 64)) - 1;
            }
        }
    }
    #[inline]
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.words[i / 64] >> (i % 64) & 1 == 1
    }
    /// Adds `i`; returns whether it was absent.
    pub(crate) fn insert(&mut self, i: usize) -> bool {
        let was = self.contains(i);
        self.words[i / 64] |= 1 << (i % 64);
        !was
    }
    pub(crate) fn remove(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
    }
    pub(crate) fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
    /// Removes every member of `other` (same length).
    pub(crate) fn subtract(&mut self, other: &Bitmap) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !b;
        }
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let b = w.trailing_zeros() as usize;
                    w &= w - 1;
                    wi * 64 + b
                })
            })
        })
    }
}

/// Writes the deletion bitmap of segment `seg_id`; returns `(bytes, crc32)`.
pub(crate) fn write(path: &Path, seg_id: u64, deleted: &Bitmap) -> Result<(u64, u32)> {
    let mut w = ContainerWriter::create(path, FileKind::Deletions, 2)?;
    w.section(INFO, &[deleted.len as u64, deleted.count() as u64, seg_id, 0])?;
    w.section(BITS, &deleted.words)?;
    w.finish()
}

/// Opens and checks the deletion bitmap the manifest names for a segment.
pub(crate) fn open(dir: &Path, meta: &SegmentMeta) -> Result<Option<(Container, Bitmap)>> {
    let Some(fref) = &meta.deletions else { return Ok(None) };
    let path = dir.join(&fref.file);
    let file = Container::open(&path, FileKind::Deletions)?;
    let corrupt = |reason: String| IndexError::Corrupt { path: path.clone(), reason };
    if file.map.len() as u64 != fref.bytes {
        return Err(corrupt(format!(
            "file has {} bytes, the manifest says {}",
            file.map.len(),
            fref.bytes
        )));
    }
    let n = meta.n_docs as usize;
    let info: Vec<u64> = file.slice::<u64>(&file.typed::<u64>(INFO, Some(4))?).to_vec();
    if info[..3] != [n as u64, meta.n_deleted, meta.id] {
        return Err(corrupt(format!(
            "header {:?} disagrees with the manifest's segment {} ({n} documents, {} deleted)",
            &info[..3],
            meta.id,
            meta.n_deleted
        )));
    }
    let words = file.slice::<u64>(&file.typed::<u64>(BITS, Some(n.div_ceil(64)))?).to_vec();
    let bitmap = Bitmap { words, len: n };
    let mut trimmed = bitmap.clone();
    trimmed.clear_tail();
    if trimmed != bitmap || bitmap.count() as u64 != meta.n_deleted {
        return Err(corrupt("bitmap does not hold the recorded number of deletions".into()));
    }
    Ok(Some((file, bitmap)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bitmap_matches_a_set(len in 1usize..300, picks in prop::collection::vec(any::<prop::sample::Index>(), 0..100)) {
            let mut b = Bitmap::new(len);
            let mut set = std::collections::BTreeSet::new();
            for p in &picks {
                let i = p.index(len);
                prop_assert_eq!(b.insert(i), set.insert(i));
            }
            prop_assert_eq!(b.count(), set.len());
            prop_assert_eq!(b.iter().collect::<Vec<_>>(), set.iter().copied().collect::<Vec<_>>());
            let mut full = Bitmap::full(len);
            prop_assert_eq!(full.count(), len);
            full.subtract(&b);
            prop_assert_eq!(full.count(), len - set.len());
            prop_assert!(set.iter().all(|&i| !full.contains(i)));
        }

        #[test]
        fn write_read_roundtrip(len in 1usize..500, seed in any::<u64>()) {
            let mut b = Bitmap::new(len);
            let mut x = seed;
            for i in 0..len {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if x >> 61 == 0 { b.insert(i); }
            }
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("d.tdel");
            let (bytes, crc32) = write(&p, 7, &b).unwrap();
            let meta = SegmentMeta {
                id: 7,
                file: crate::FileRef { file: "s".into(), bytes: 0, crc32: 0 },
                n_docs: len as u64,
                n_tokens: len as u64,
                n_deleted: b.count() as u64,
                deletions: Some(crate::FileRef { file: "d.tdel".into(), bytes, crc32 }),
                mean_sq_residual: None,
            };
            let (_, back) = open(dir.path(), &meta).unwrap().unwrap();
            prop_assert_eq!(back, b);
        }
    }
}
