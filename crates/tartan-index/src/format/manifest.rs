//! `meta.json`: the manifest naming the published generation's files (docs/format.md).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{IndexError, Result};
use crate::format::container::FORMAT_VERSION;

/// The manifest's file name.
pub const META_FILE: &str = "meta.json";
/// Largest manifest this build will parse (a corrupt length cannot make it allocate more).
const META_MAX_BYTES: u64 = 64 << 20;

/// One file of the generation, with its length and whole-file CRC-32.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// File name, relative to the index directory.
    pub file: String,
    /// Length in bytes.
    pub bytes: u64,
    /// CRC-32 (IEEE) of the whole file.
    pub crc32: u32,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A segment of the generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// Segment id (unique within the index, never reused).
    pub id: u64,
    /// Its file.
    #[serde(flatten)]
    pub file: FileRef,
    /// Documents in the segment.
    pub n_docs: u64,
    /// Tokens in the segment.
    pub n_tokens: u64,
    /// Documents of the segment deleted in this generation (format version 2).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub n_deleted: u64,
    /// The deletion bitmap file, present exactly when `n_deleted > 0` (format version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletions: Option<FileRef>,
    /// Mean squared distance of the segment's tokens to their centroids when it was written:
    /// compared with the build's, it tells whether the codebook still fits new data
    /// (format version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_sq_residual: Option<f64>,
}

impl SegmentMeta {
    /// Documents of the segment that are not deleted.
    pub fn n_live(&self) -> u64 {
        self.n_docs - self.n_deleted
    }
}

/// How the codebook and segments were built (informational, recorded for reproducibility).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// Seed of sampling and k-means.
    pub seed: u64,
    /// k-means passes.
    pub kmeans_iters: usize,
    /// Documents sampled for training.
    pub sample_docs: u64,
    /// Points k-means trained on (after the per-centroid cap).
    pub kmeans_points: u64,
    /// Held-out tokens the codec was trained on.
    pub codec_tokens: u64,
    /// Whether the number of centroids was set by the user (else from the formula).
    pub centroids_from_user: bool,
    /// Mean squared distance of the indexed tokens to their centroid.
    pub mean_sq_residual: f64,
    /// Wall-clock build time in seconds (up to format 3; omitted since, so that a build is
    /// reproducible byte for byte).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_seconds: Option<f64>,
}

/// The manifest of a published generation.
///
/// On disk it is a JSON object of these fields, pretty-printed in declaration order, then
/// `checksum`: since format 4 the CRC-32 of the file's bytes before the checksum member, as
/// written (docs/format.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always "tartan-index".
    pub format: String,
    /// Format version of the manifest and the files it names.
    pub format_version: u32,
    /// Generation number, increasing with every publish.
    pub generation: u64,
    /// The tartan that wrote it.
    pub created_by: String,
    /// Vector dimension.
    pub dim: usize,
    /// Residual bits per dimension.
    pub nbits: u8,
    /// Number of centroids.
    pub n_centroids: usize,
    /// Documents stored over all segments, deleted ones included.
    pub n_docs: u64,
    /// Tokens over all segments.
    pub n_tokens: u64,
    /// Deleted documents over all segments (format version 2).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub n_deleted: u64,
    /// Next segment id to allocate.
    pub next_segment_id: u64,
    /// Centroids and codec.
    pub codebook: FileRef,
    /// The codebook's id, 64 hex digits (format version 4; computed at open before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codebook_id: Option<String>,
    /// Live segments, in document order.
    pub segments: Vec<SegmentMeta>,
    /// Build record.
    pub build: BuildInfo,
}

impl Manifest {
    /// Reads and checks the manifest of the index in `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(META_FILE);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(IndexError::NoIndex { path: dir.to_path_buf() })
            }
            Err(source) => return Err(IndexError::Io { path, source }),
        };
        let len =
            file.metadata().map_err(|source| IndexError::Io { path: path.clone(), source })?.len();
        if len > META_MAX_BYTES {
            return Err(IndexError::Corrupt {
                path,
                reason: format!("manifest of {len} bytes is too large"),
            });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        std::io::Read::read_to_end(&mut std::io::BufReader::new(file), &mut bytes)
            .map_err(|source| IndexError::Io { path: path.clone(), source })?;
        let corrupt = |reason: String| IndexError::Corrupt { path: path.clone(), reason };
        let mut value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not valid JSON: {e}")))?;
        // Check the version before the shape: a newer manifest may have other fields.
        if value.get("format").and_then(|f| f.as_str()) != Some("tartan-index") {
            return Err(IndexError::NotTartan { path });
        }
        let version = value.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version > FORMAT_VERSION as u64 {
            return Err(IndexError::NewerFormat {
                path,
                found: version.min(u32::MAX as u64) as u32,
                supported: FORMAT_VERSION,
            });
        }
        let stored = value
            .as_object_mut()
            .and_then(|o| o.remove("checksum"))
            .and_then(|c| c.as_u64())
            .ok_or_else(|| corrupt("manifest has no checksum".into()))?;
        unknown_nested_field(&value)
            .map_or(Ok(()), |f| Err(corrupt(format!("unknown field {f}"))))?;
        let m: Manifest =
            serde_json::from_value(value).map_err(|e| corrupt(format!("bad manifest: {e}")))?;
        let computed = if version >= 4 {
            // Version 4 on: the bytes as written, up to the checksum member.
            let (body, tail) = split_checksum(&bytes)
                .ok_or_else(|| corrupt("the checksum is not the last member as written".into()))?;
            if tail != checksum_tail(stored) {
                return Err(corrupt("the checksum member is not as written".into()));
            }
            crc32fast::hash(body)
        } else {
            m.checksum()
        };
        if computed as u64 != stored {
            return Err(corrupt("manifest checksum mismatch".into()));
        }
        m.check().map_err(corrupt)?;
        Ok(m)
    }

    /// The bytes of the manifest as written (format 4 on): the fields pretty-printed in
    /// declaration order, then the checksum member, whose value is the CRC-32 of everything
    /// before it.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>> {
        let floats = [Some(self.build.mean_sq_residual), self.build.build_seconds]
            .into_iter()
            .flatten()
            .chain(self.segments.iter().filter_map(|s| s.mean_sq_residual));
        if let Some(x) = floats.into_iter().find(|x| !x.is_finite()) {
            // serde_json writes NaN as null, which no reader would parse back.
            return Err(IndexError::Param {
                name: "manifest",
                reason: format!("a mean squared residual is {x}"),
            });
        }
        let mut body = serde_json::to_vec_pretty(self).expect("manifest serialises");
        // Pretty output ends with "\n}": the checksum member goes before the brace.
        body.truncate(body.len() - 2);
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&checksum_tail(crc as u64));
        Ok(body)
    }

    /// Versions 1 to 3: CRC-32 of the compact JSON of the fields, in declaration order.
    fn checksum(&self) -> u32 {
        crc32fast::hash(&serde_json::to_vec(self).expect("manifest serialises"))
    }

    fn check(&self) -> Result<(), String> {
        if self.format_version == 0 {
            return Err("format version 0".into());
        }
        if self.dim == 0 || !matches!(self.nbits, 1 | 2 | 4 | 8) {
            return Err(format!("dim {} / nbits {} is not a valid shape", self.dim, self.nbits));
        }
        if self.n_centroids == 0 || self.n_centroids as u64 > u32::MAX as u64 {
            return Err(format!("{} centroids is out of range", self.n_centroids));
        }
        // Checked sums: counts from a hostile file must not wrap into agreement.
        let sum = |f: fn(&SegmentMeta) -> u64| {
            self.segments.iter().try_fold(0u64, |a, s| a.checked_add(f(s)))
        };
        let (docs, toks, deleted) = (sum(|s| s.n_docs), sum(|s| s.n_tokens), sum(|s| s.n_deleted));
        if docs != Some(self.n_docs)
            || toks != Some(self.n_tokens)
            || deleted != Some(self.n_deleted)
        {
            return Err("document, token or deletion counts disagree with the segments".into());
        }
        // Documents are numbered in 32 bits across the generation.
        if self.n_docs > u32::MAX as u64 {
            return Err(format!("{} documents is more than 2^32 - 1", self.n_docs));
        }
        let mut ids: Vec<u64> = self.segments.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err("a segment id appears twice".into());
        }
        if let Some(id) = &self.codebook_id {
            if crate::format::CodebookId::from_hex(id).is_none() {
                return Err(format!("codebook_id {id:?} is not 64 hex digits"));
            }
        }
        for s in &self.segments {
            if s.n_docs == 0 || s.n_tokens < s.n_docs {
                return Err(format!(
                    "segment {} has {} documents of {} tokens",
                    s.id, s.n_docs, s.n_tokens
                ));
            }
            if s.n_deleted > s.n_docs || (s.n_deleted > 0) != s.deletions.is_some() {
                return Err(format!("segment {} has inconsistent deletions", s.id));
            }
            if s.id >= self.next_segment_id {
                return Err(format!("segment id {} is not below next_segment_id", s.id));
            }
        }
        let mut names: Vec<&str> = self.files().collect();
        for name in &names {
            if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
                return Err(format!("file name {name:?} is not a plain file name"));
            }
        }
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err("a file is named twice".into());
        }
        Ok(())
    }

    /// Every file the generation uses: codebook, segments, deletion bitmaps.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.codebook.file.as_str()).chain(self.segments.iter().flat_map(|s| {
            std::iter::once(s.file.file.as_str()).chain(s.deletions.iter().map(|d| d.file.as_str()))
        }))
    }

    /// Documents not deleted.
    pub fn n_live(&self) -> u64 {
        self.n_docs - self.n_deleted
    }

    /// Publishes this manifest in `dir` atomically: write a temporary file, fsync it, rename
    /// it over `meta.json`, fsync the directory.
    pub(crate) fn publish(&self, dir: &Path) -> Result<()> {
        let tmp = self.write_staged(dir)?;
        Self::install(dir, &tmp)?;
        sync_dir(dir)
    }

    /// Renames a staged manifest over `meta.json`: the commit point. On failure the staged
    /// file is removed and nothing was published.
    pub(crate) fn install(dir: &Path, staged: &Path) -> Result<()> {
        std::fs::rename(staged, dir.join(META_FILE)).map_err(|source| {
            let _ = std::fs::remove_file(staged);
            IndexError::Io { path: staged.to_path_buf(), source }
        })
    }

    /// Writes this manifest to a temporary file in `dir` and fsyncs it; returns its path.
    pub(crate) fn write_staged(&self, dir: &Path) -> Result<std::path::PathBuf> {
        let tmp = dir.join(format!("{META_FILE}.{}.tmp", self.generation));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IndexError::Io { path, source }
        };
        let bytes = self.to_bytes()?;
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        Ok(tmp)
    }
}

/// The first field of a nested object that the format does not define (serde's
/// `deny_unknown_fields` cannot see through the flattened file reference of a segment).
fn unknown_nested_field(v: &serde_json::Value) -> Option<String> {
    const FILE: &[&str] = &["file", "bytes", "crc32"];
    const SEGMENT: &[&str] = &[
        "id",
        "file",
        "bytes",
        "crc32",
        "n_docs",
        "n_tokens",
        "n_deleted",
        "deletions",
        "mean_sq_residual",
    ];
    const BUILD: &[&str] = &[
        "seed",
        "kmeans_iters",
        "sample_docs",
        "kmeans_points",
        "codec_tokens",
        "centroids_from_user",
        "mean_sq_residual",
        "build_seconds",
    ];
    let extra = |o: Option<&serde_json::Value>, allowed: &[&str], at: &str| {
        o.and_then(|o| o.as_object())
            .and_then(|o| o.keys().find(|k| !allowed.contains(&k.as_str())))
            .map(|k| format!("{at}.{k}"))
    };
    let segments = v.get("segments").and_then(|s| s.as_array()).map_or(&[][..], |s| s);
    extra(v.get("codebook"), FILE, "codebook")
        .or_else(|| extra(v.get("build"), BUILD, "build"))
        .or_else(|| {
            segments.iter().enumerate().find_map(|(i, s)| {
                extra(Some(s), SEGMENT, &format!("segments[{i}]")).or_else(|| {
                    extra(s.get("deletions"), FILE, &format!("segments[{i}].deletions"))
                })
            })
        })
}

/// What follows the body of a manifest as written: the checksum member and the closing brace.
fn checksum_tail(crc: u64) -> Vec<u8> {
    format!(",\n  \"checksum\": {crc}\n}}\n").into_bytes()
}

/// Splits a manifest as written into the body the checksum covers and the tail from the last
/// `,\n  "checksum": ` on.
fn split_checksum(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let key = b",\n  \"checksum\": ";
    let at = bytes.windows(key.len()).rposition(|w| w == key)?;
    Some(bytes.split_at(at))
}

/// fsyncs a directory so that renames and creations in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| IndexError::Io { path: dir.to_path_buf(), source })
}
