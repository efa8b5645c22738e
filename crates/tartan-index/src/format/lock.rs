//! The writer lock and the collection of files no generation uses any more.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{IndexError, Result};
use crate::format::manifest::{Manifest, META_FILE};

/// The lock file's name. It is not part of any generation and is never removed.
pub const LOCK_FILE: &str = "tartan.lock";

/// Exclusive right to change an index (or a collection), held until dropped. An OS file lock
/// (`flock`), so a writer killed by any signal releases it.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

impl WriterLock {
    /// Takes the lock of the index in `dir`, failing at once if another writer holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<Self> {
        Self::acquire_file(&dir.join(LOCK_FILE))
    }

    /// Takes the lock file at `path` (created if missing), failing at once with
    /// [`IndexError::Locked`] if another writer holds it.
    pub fn acquire_file(path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
        let io = |source| IndexError::Io { path: path.clone(), source };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() { "unknown" } else { holder }.to_string();
                return Err(IndexError::Locked { path, holder });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // Informational: who holds it, for the error a second writer sees.
        file.set_len(0).and_then(|()| write!(file, "{}", std::process::id())).map_err(io)?;
        Ok(Self { _file: file })
    }
}

/// Whether `name` is a file a writer creates (and so may collect): generation files and
/// temporary manifests. Anything else in the directory is left alone.
fn is_ours(name: &str) -> bool {
    let generation_file = |prefix: &str, ext: &str| {
        name.strip_prefix(prefix).and_then(|r| r.strip_suffix(ext)).is_some_and(|mid| {
            !mid.is_empty()
                && mid.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    generation_file("codebook.", ".tcb")
        || generation_file("segment.", ".tseg")
        || generation_file("deletes.", ".tdel")
        || generation_file("segment.", ".tseg.codes.tmp")
        || (name.starts_with("meta.json.") && name.ends_with(".tmp"))
}

/// What a collection did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Collected {
    /// Files removed.
    pub removed: Vec<String>,
    /// Unused files kept because a reader still has them open.
    pub in_use: Vec<String>,
}

/// Removes the files of `dir` that `current` does not name and no reader holds open.
///
/// Must run under the writer lock: then every unnamed file is either an old generation's (kept
/// while a reader's shared lock is on it) or an unpublished leftover of a crashed writer.
pub(crate) fn collect_garbage(dir: &Path, current: &Manifest) -> Result<Collected> {
    let live: Vec<&str> = current.files().collect();
    let mut out = Collected::default();
    let entries = std::fs::read_dir(dir)
        .map_err(|source| IndexError::Io { path: dir.to_path_buf(), source })?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_ours(n) && !live.contains(&n.as_str()) && n != META_FILE)
        .collect();
    names.sort();
    for name in names {
        let path: PathBuf = dir.join(&name);
        let Ok(f) = File::open(&path) else { continue };
        match f.try_lock() {
            Ok(()) => {
                if std::fs::remove_file(&path).is_ok() {
                    out.removed.push(name);
                }
            }
            Err(_) => out.in_use.push(name),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_writer_files() {
        for n in [
            "codebook.000001.tcb",
            "segment.000012.tseg",
            "deletes.000003.000007.tdel",
            "meta.json.5.tmp",
            "segment.000004.tseg.codes.tmp",
        ] {
            assert!(is_ours(n), "{n}");
        }
        for n in [
            "meta.json",
            "tartan.lock",
            "notes.txt",
            "segment..tseg",
            "segment.1a.tseg",
            "codebook.tcb",
        ] {
            assert!(!is_ours(n), "{n}");
        }
    }

    #[test]
    fn second_writer_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let first = WriterLock::acquire(dir.path()).unwrap();
        match WriterLock::acquire(dir.path()) {
            Err(IndexError::Locked { holder, .. }) => {
                assert_eq!(holder, std::process::id().to_string())
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        WriterLock::acquire(dir.path()).unwrap();
    }
}
