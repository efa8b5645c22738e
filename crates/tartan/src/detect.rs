//! What a path holds, decided in one place: every front end and the facade's own openers
//! ask [`detect`] rather than looking for marker files themselves.

use std::path::Path;

use tartan_index::{CollectionManifest, CODEBOOK_FILE, META_FILE};

/// What a path holds, as tartan reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// A collection: `collection.json` names its shards.
    Collection,
    /// An index: `meta.json` names its published generation.
    Index,
    /// A codebook alone: a directory from `tartan train` (`codebook.tcb` inside) or a codebook
    /// file (checked when opened).
    Codebook,
    /// Nothing tartan reads (or nothing at all).
    Nothing,
}

/// What `path` holds. Looks only at names (no file is opened), so a damaged index or
/// codebook is found here and reported by whatever opens it.
pub fn detect(path: &Path) -> Found {
    if CollectionManifest::exists(path) {
        Found::Collection
    } else if path.join(META_FILE).exists() {
        Found::Index
    } else if path.join(CODEBOOK_FILE).exists() || path.is_file() {
        Found::Codebook
    } else {
        Found::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_found_by_its_marker() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        assert_eq!(detect(&p.join("missing")), Found::Nothing);
        assert_eq!(detect(p), Found::Nothing);
        std::fs::write(p.join(CODEBOOK_FILE), b"").unwrap();
        assert_eq!(detect(p), Found::Codebook);
        assert_eq!(detect(&p.join(CODEBOOK_FILE)), Found::Codebook);
        std::fs::write(p.join(META_FILE), b"{}").unwrap();
        assert_eq!(detect(p), Found::Index);
        std::fs::write(p.join(tartan_index::COLLECTION_FILE), b"{}").unwrap();
        assert_eq!(detect(p), Found::Collection);
    }
}
