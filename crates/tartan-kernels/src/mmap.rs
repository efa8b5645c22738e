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
