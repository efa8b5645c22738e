use std::fs::File;
use std::io;
use std::ops::Deref;
use std::path::Path;

/// A read-only view of a whole file, memory-mapped when it is non-empty.
///
/// tartan maps two kinds of files, and modifies or truncates neither once written: index files
/// (writers create new files and publish them by renaming a manifest, docs/format.md) and the
/// `.npy` files of an embeddings directory (tartan's writer writes temporary files and renames
/// them over the old ones). That is what makes the map sound to read for as long as it lives,
/// even while tartan writes the same index or directory.
pub struct ReadOnlyMap {
    map: Option<memmap2::Mmap>,
}

impl ReadOnlyMap {
    /// Maps `path` read-only. An empty file gives an empty slice (mapping zero bytes is an
    /// error on some systems).
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::map(&File::open(path)?)
    }

    /// Maps an open file read-only (the caller may keep the handle, e.g. to hold a lock).
    pub fn map(file: &File) -> io::Result<Self> {
        if file.metadata()?.len() == 0 {
            return Ok(Self { map: None });
        }
        // SAFETY: the map is read-only, and no tartan writer modifies or truncates a file once
        // written, index file or embeddings file alike (both write new files and rename them
        // into place; a test rewrites an embeddings directory under an open map). Another
        // program truncating the file under us could still fault; that is outside what any
        // mmap-based reader can rule out, and is documented in docs/format.md.
        let map = unsafe { memmap2::MmapOptions::new().map(file)? };
        Ok(Self { map: Some(map) })
    }
}

impl ReadOnlyMap {
    /// Lets go of the pages of `range` (bytes of the file) that this process has read: they
    /// leave its resident set, and a later read of them maps them again from the page cache or
    /// the file, with the same contents. The range is widened to 64 KiB boundaries, so the
    /// pages it shares with its neighbours go too (a reader still using them faults them back
    /// in): trimming instead left every boundary resident, and a reader releasing many small
    /// ranges (exact MaxSim's blocks of ~300 KB) kept a third of a 19 GB input mapped. A
    /// streaming reader calls this behind itself so that reading a file larger than memory
    /// does not grow the resident set (which counts mapped file pages) with the file.
    pub fn release(&self, range: std::ops::Range<usize>) {
        let Some(map) = &self.map else { return };
        let start = (range.start / RELEASE_ALIGN) * RELEASE_ALIGN;
        let end = range.end.div_ceil(RELEASE_ALIGN).saturating_mul(RELEASE_ALIGN).min(map.len());
        if start >= end {
            return;
        }
        #[cfg(unix)]
        {
            // SAFETY: the map is a shared, read-only file mapping (`MmapOptions::map`): there
            // are no private or modified pages whose contents MADV_DONTNEED could discard, so
            // a later access (through any slice still borrowed from this map) faults the same
            // bytes back in from the file. The start is aligned to 64 KiB (a multiple of the
            // page size) and the end is inside the map (the kernel rounds the length up to
            // whole pages, which the map covers).
            let advised = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
            };
            // Advice is an optimisation: a kernel that refuses it leaves the pages resident.
            drop(advised);
        }
    }
}

/// Released ranges are aligned to 64 KiB: a multiple of every page size Linux uses (4, 16 and
/// 64 KiB), so no system call is needed to ask for it.
const RELEASE_ALIGN: usize = 1 << 16;

impl Deref for ReadOnlyMap {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

impl std::fmt::Debug for ReadOnlyMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyMap").field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_pages_read_back_the_same() {
        let dir = std::env::temp_dir().join(format!("tartan-mmap-rel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("b.bin");
        let data: Vec<u8> = (0..5 * 65_536 + 123).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let m = ReadOnlyMap::open(&p).unwrap();
        let before: u64 = m.iter().map(|&b| b as u64).sum();
        for range in [0..m.len(), 1..65_535, 65_536..131_072, 100..200_000, 0..0, 9000..usize::MAX]
        {
            m.release(range);
            assert_eq!(&*m, &data[..]);
        }
        assert_eq!(m.iter().map(|&b| b as u64).sum::<u64>(), before);
        std::fs::write(dir.join("empty"), b"").unwrap();
        ReadOnlyMap::open(&dir.join("empty")).unwrap().release(0..10);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn maps_contents_and_empty_files() {
        let dir = std::env::temp_dir().join(format!("tartan-mmap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.bin");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(&*ReadOnlyMap::open(&p).unwrap(), b"hello");
        std::fs::write(&p, b"").unwrap();
        assert!(ReadOnlyMap::open(&p).unwrap().is_empty());
        assert!(ReadOnlyMap::open(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
