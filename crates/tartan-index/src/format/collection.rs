//! `collection.json`: many indexes (shards) encoded with one codebook, searched as one
//! (docs/format.md, "Collections").

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{IndexError, Result};
use crate::format::manifest::sync_dir;
use crate::format::CodebookId;

/// The collection manifest's file name.
pub const COLLECTION_FILE: &str = "collection.json";
/// The collection format version this build writes and the newest it reads.
pub const COLLECTION_VERSION: u32 = 1;
/// Largest collection manifest this build parses.
const MAX_BYTES: u64 = 16 << 20;

/// One shard of a collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardEntry {
    /// Unique name within the collection.
    pub name: String,
    /// A path relative to the collection directory, or an `http://` URL of a `tartan serve`.
    pub location: String,
    /// Live documents when the collection last recorded the shard.
    pub n_docs: u64,
    /// The shard's generation when the collection last recorded it (0: unknown, remote).
    pub generation: u64,
}

/// Where a shard lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardLocation {
    /// An index directory (resolved against the collection directory).
    Local(PathBuf),
    /// A `tartan serve` base URL.
    Remote(String),
}

impl ShardEntry {
    /// Where the shard lives, with a relative path resolved against `collection_dir`.
    pub fn resolve(&self, collection_dir: &Path) -> ShardLocation {
        if is_url(&self.location) {
            ShardLocation::Remote(self.location.trim_end_matches('/').to_string())
        } else {
            ShardLocation::Local(collection_dir.join(&self.location))
        }
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The manifest of a collection: the codebook its shards share and the shards, in order.
///
/// On disk a JSON object of these fields in this order, then `checksum`: the CRC-32 of the
/// compact serialisation of the other fields in this order (what Python's
/// `json.dumps(obj, separators=(",", ":"), ensure_ascii=False)` gives for the object without
/// `checksum`, keys as in the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionManifest {
    /// Always "tartan-collection".
    pub format: String,
    /// [`COLLECTION_VERSION`].
    pub format_version: u32,
    /// Increases with every publish.
    pub generation: u64,
    /// The codebook every shard is encoded with (64 hex digits).
    pub codebook_id: String,
    /// Vector dimension.
    pub dim: usize,
    /// Residual bits per dimension.
    pub nbits: u8,
    /// Centroids K.
    pub n_centroids: usize,
    /// The shards, in order (the merge breaks score ties by this order).
    pub shards: Vec<ShardEntry>,
}

#[derive(Serialize)]
struct OnDisk<'a> {
    #[serde(flatten)]
    manifest: &'a CollectionManifest,
    checksum: u32,
}

impl CollectionManifest {
    /// A new, empty manifest (generation 0, published as 1).
    pub fn new(codebook_id: CodebookId, dim: usize, nbits: u8, n_centroids: usize) -> Self {
        Self {
            format: "tartan-collection".into(),
            format_version: COLLECTION_VERSION,
            generation: 0,
            codebook_id: codebook_id.to_hex(),
            dim,
            nbits,
            n_centroids,
            shards: Vec::new(),
        }
    }

    /// Whether `dir` holds a collection.
    pub fn exists(dir: &Path) -> bool {
        dir.join(COLLECTION_FILE).is_file()
    }

    /// Reads and checks the collection manifest in `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(COLLECTION_FILE);
        let corrupt = |reason: String| IndexError::Corrupt { path: path.clone(), reason };
        let bytes = match std::fs::metadata(&path) {
            Ok(m) if m.len() > MAX_BYTES => {
                return Err(corrupt(format!("{} bytes is too large", m.len())))
            }
            Ok(_) => std::fs::read(&path)
                .map_err(|source| IndexError::Io { path: path.clone(), source })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(IndexError::NoCollection { path: dir.to_path_buf() })
            }
            Err(source) => return Err(IndexError::Io { path, source }),
        };
        let mut value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not valid JSON: {e}")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some("tartan-collection") {
            return Err(IndexError::NotTartan { path });
        }
        let version = value.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version > COLLECTION_VERSION as u64 {
            return Err(IndexError::NewerFormat {
                path,
                found: version.min(u32::MAX as u64) as u32,
                supported: COLLECTION_VERSION,
            });
        }
        let stored = value
            .as_object_mut()
            .and_then(|o| o.remove("checksum"))
            .and_then(|c| c.as_u64())
            .ok_or_else(|| corrupt("no checksum".into()))?;
        let m: Self =
            serde_json::from_value(value).map_err(|e| corrupt(format!("bad collection: {e}")))?;
        if m.checksum() as u64 != stored {
            return Err(corrupt("checksum mismatch".into()));
        }
        m.check().map_err(corrupt)?;
        Ok(m)
    }

    fn checksum(&self) -> u32 {
        crc32fast::hash(&serde_json::to_vec(self).expect("collection serialises"))
    }

    /// Checks the fields: format, codebook id, a valid shape, unique shard names and
    /// locations, locations that are relative paths inside no `..` or URLs.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.format != "tartan-collection" || self.format_version == 0 {
            return Err("not a tartan collection of a known version".into());
        }
        if CodebookId::from_hex(&self.codebook_id).is_none() {
            return Err(format!("codebook_id {:?} is not 64 hex digits", self.codebook_id));
        }
        if self.dim == 0 || self.n_centroids == 0 || !matches!(self.nbits, 1 | 2 | 4 | 8) {
            return Err("dim, nbits or n_centroids is not valid".into());
        }
        let mut names = std::collections::HashSet::new();
        let mut locations = std::collections::HashSet::new();
        for s in &self.shards {
            if s.name.is_empty() || s.name.len() > 128 || s.name.chars().any(char::is_control) {
                return Err(format!(
                    "shard name {:?} is empty, too long or has control characters",
                    s.name
                ));
            }
            if !names.insert(s.name.as_str()) {
                return Err(format!("shard name {:?} appears twice", s.name));
            }
            if !locations.insert(s.location.as_str()) {
                return Err(format!("shard location {:?} appears twice", s.location));
            }
            check_location(&s.location)?;
        }
        Ok(())
    }

    /// The shard named `name`.
    pub fn shard(&self, name: &str) -> Option<&ShardEntry> {
        self.shards.iter().find(|s| s.name == name)
    }

    /// Total live documents as recorded.
    pub fn n_docs(&self) -> u64 {
        self.shards.iter().map(|s| s.n_docs).sum()
    }

    /// The codebook id.
    pub fn codebook(&self) -> CodebookId {
        CodebookId::from_hex(&self.codebook_id).expect("checked")
    }

    /// Publishes this manifest in `dir` (created if missing) as the next generation: write a
    /// temporary file, fsync, rename over `collection.json`, fsync the directory. Readers see
    /// the old manifest or the new one.
    pub fn publish(&mut self, dir: &Path) -> Result<()> {
        self.check().map_err(|reason| IndexError::Param { name: "collection", reason })?;
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| IndexError::Io { path: p, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        self.generation += 1;
        let tmp = dir.join(format!("{COLLECTION_FILE}.{}.tmp", self.generation));
        let body = OnDisk { manifest: self, checksum: self.checksum() };
        let mut json = serde_json::to_vec_pretty(&body).expect("collection serialises");
        json.push(b'\n');
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(&json).and_then(|()| f.sync_all()))
            .map_err(io(&tmp))
            .and_then(|()| std::fs::rename(&tmp, dir.join(COLLECTION_FILE)).map_err(io(&tmp)));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            self.generation -= 1;
            return Err(e);
        }
        sync_dir(dir)
    }
}

/// A location is an `http(s)://` URL, or a relative path of normal components and `..` (a
/// shard may live beside the collection directory), never absolute.
fn check_location(loc: &str) -> std::result::Result<(), String> {
    if is_url(loc) {
        let rest = loc.split_once("://").map_or("", |(_, r)| r);
        if rest.is_empty() || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("shard URL {loc:?} is not valid"));
        }
        return Ok(());
    }
    let p = Path::new(loc);
    let ok = !loc.is_empty()
        && p.components().all(|c| matches!(c, Component::Normal(_) | Component::ParentDir));
    if !ok {
        return Err(format!("shard location {loc:?} is neither a relative path nor an http URL"));
    }
    Ok(())
}

/// The path of `target` relative to `base` (both existing directories), for recording a
/// local shard's location.
pub fn relative_path(base: &Path, target: &Path) -> Result<String> {
    let canon = |p: &Path| {
        p.canonicalize().map_err(|source| IndexError::Io { path: p.to_path_buf(), source })
    };
    let (base, target) = (canon(base)?, canon(target)?);
    let b: Vec<_> = base.components().collect();
    let t: Vec<_> = target.components().collect();
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    let s = out.to_str().ok_or_else(|| IndexError::Param {
        name: "shard",
        reason: format!("{} is not a UTF-8 path", target.display()),
    })?;
    Ok(if s.is_empty() { ".".into() } else { s.replace('\\', "/") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> CollectionManifest {
        let mut m = CollectionManifest::new(CodebookId([0xab; 32]), 64, 2, 256);
        m.shards.push(ShardEntry {
            name: "s0".into(),
            location: "shards/s0".into(),
            n_docs: 10,
            generation: 3,
        });
        m.shards.push(ShardEntry {
            name: "s1 \"remote\"".into(),
            location: "http://127.0.0.1:7701".into(),
            n_docs: 5,
            generation: 0,
        });
        m
    }

    #[test]
    fn publish_load_roundtrip_and_generations() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = manifest();
        m.publish(dir.path()).unwrap();
        m.publish(dir.path()).unwrap();
        let back = CollectionManifest::load(dir.path()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.generation, 2);
        assert_eq!(back.n_docs(), 15);
        assert_eq!(
            back.shards[0].resolve(Path::new("/c")),
            ShardLocation::Local(PathBuf::from("/c/shards/s0"))
        );
        assert_eq!(
            back.shards[1].resolve(Path::new("/c")),
            ShardLocation::Remote("http://127.0.0.1:7701".into())
        );
        assert!(!std::fs::read_dir(dir.path())
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().ends_with(".tmp") }));
    }

    #[test]
    fn edits_and_bad_fields_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = manifest();
        m.publish(dir.path()).unwrap();
        let path = dir.path().join(COLLECTION_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"n_docs\": 10", "\"n_docs\": 11")).unwrap();
        let err = CollectionManifest::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        std::fs::write(&path, text.replace("\"format_version\": 1", "\"format_version\": 9"))
            .unwrap();
        assert!(matches!(
            CollectionManifest::load(dir.path()),
            Err(IndexError::NewerFormat { found: 9, .. })
        ));
        std::fs::write(&path, "{\"format\": \"something\"}").unwrap();
        assert!(matches!(CollectionManifest::load(dir.path()), Err(IndexError::NotTartan { .. })));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            CollectionManifest::load(empty.path()),
            Err(IndexError::NoCollection { .. })
        ));
        for (loc, ok) in [
            ("a/b", true),
            ("../x", true),
            ("/abs", false),
            ("", false),
            ("./x", false),
            ("http://", false),
            ("https://h:1/p", true),
        ] {
            assert_eq!(check_location(loc).is_ok(), ok, "{loc}");
        }
        let mut twice = manifest();
        twice.shards[1].name = "s0".into();
        assert!(twice.check().unwrap_err().contains("twice"));
        assert!(twice.publish(dir.path()).is_err());
    }

    #[test]
    fn relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("coll");
        let s = dir.path().join("shards/a");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::create_dir_all(&s).unwrap();
        assert_eq!(relative_path(&c, &s).unwrap(), "../shards/a");
        std::fs::create_dir_all(c.join("in")).unwrap();
        assert_eq!(relative_path(&c, &c.join("in")).unwrap(), "in");
    }
}
