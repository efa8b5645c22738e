//! The codebook: centroids and the residual codec that every segment of an index, and every
//! shard of a collection, is encoded with. It has an identity (a content hash) so that two
//! indexes can tell whether their codes mean the same vectors.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use half::{f16, slice::HalfFloatSliceExt};
use sha2::{Digest, Sha256};
use tartan_codec::ResidualCodec;

use crate::error::{IndexError, Result};
use crate::format::container::{Container, ContainerWriter, FileKind};
use crate::format::CodebookId;

const INFO: &[u8; 8] = b"CBINFO  ";
/// f32 centroids (formats 1 and 2).
const CENTROIDS: &[u8; 8] = b"CENTROID";
/// f16 centroids (format 3 on).
const CENTROIDS_F16: &[u8; 8] = b"CENTF16 ";
const CUTOFFS: &[u8; 8] = b"CUTOFFS ";
const WEIGHTS: &[u8; 8] = b"WEIGHTS ";
/// The content hash (format 4 on).
const HASH: &[u8; 8] = b"CBHASH  ";
/// How the codebook was trained (format 4 on).
const TRAIN: &[u8; 8] = b"CBTRAIN ";

/// The file name of a codebook inside a codebook directory (`tartan train`'s output).
pub const CODEBOOK_FILE: &str = "codebook.tcb";

/// How a codebook was trained: what `inspect` shows and the drift baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainInfo {
    /// Seed of sampling and k-means.
    pub seed: u64,
    /// k-means passes.
    pub kmeans_iters: u64,
    /// Documents sampled.
    pub sample_docs: u64,
    /// Points k-means trained on (0 when the centroids were given).
    pub kmeans_points: u64,
    /// Held-out tokens the codec was trained on.
    pub codec_tokens: u64,
    /// Whether the number of centroids was set by the user (else from the formula).
    pub centroids_from_user: bool,
    /// Mean squared distance of the held-out tokens to their nearest centroid: the baseline
    /// that segments' residuals are compared with to measure drift.
    pub mean_sq_residual: f64,
}

/// Centroids and residual codec, in memory; shared (behind an `Arc`) by every index or shard
/// encoded with it.
///
/// Get one from [`Codebook::train`], [`Codebook::open`] (a codebook directory or file) or
/// [`Index::codebook`](crate::Index::codebook); write it with [`Codebook::save`].
pub struct Codebook {
    centroids: Vec<f32>,
    /// How the centroids are stored: float16 (what tartan trains) or float32 (imported).
    stored: Stored,
    /// Decoded tokens are L2-normalised (CBINFO's flag bit 0, since version 5).
    normalized: bool,
    pub(crate) codec: ResidualCodec,
    pub(crate) n_centroids: usize,
    id: CodebookId,
    train: Option<TrainInfo>,
    /// The file it was read from, with a shared lock held so that a writer never collects it
    /// under us (docs/format.md, "Collection").
    source: Option<(PathBuf, File)>,
}

impl fmt::Debug for Codebook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Codebook")
            .field("id", &self.id)
            .field("dim", &self.dim())
            .field("n_centroids", &self.n_centroids)
            .field("nbits", &self.nbits())
            .finish()
    }
}

impl PartialEq for Codebook {
    /// Codebooks are equal when their contents are: same id.
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

/// Rounds centroids to what a codebook stores (float16), so that residuals are taken against
/// exactly the centroids a reader sees. Errors on a value beyond float16's range.
pub(crate) fn round_to_stored(centroids: &mut [f32]) -> Result<()> {
    for v in centroids.iter_mut() {
        let r = f16::from_f32(*v);
        if !r.is_finite() {
            return Err(IndexError::Param {
                name: "centroids",
                reason: format!("{v} is not a finite value within float16's range"),
            });
        }
        *v = r.to_f32();
    }
    Ok(())
}

/// How the centroids are stored, for the identity hash.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stored {
    F16,
    F32,
}

/// CBINFO's fourth value: bit 0 set when decoded tokens are L2-normalised.
const FLAG_NORMALIZED: u64 = 1;

fn content_id(
    stored: Stored,
    centroids: &[f32],
    codec: &ResidualCodec,
    normalized: bool,
) -> CodebookId {
    let dim = codec.dim();
    let mut h = Sha256::new();
    h.update(b"tartan-codebook\0");
    for v in [dim as u64, (centroids.len() / dim) as u64, codec.nbits() as u64] {
        h.update(v.to_le_bytes());
    }
    match stored {
        Stored::F16 => {
            h.update(1u64.to_le_bytes());
            for &c in centroids {
                h.update(f16::from_f32(c).to_bits().to_le_bytes());
            }
        }
        Stored::F32 => {
            h.update(2u64.to_le_bytes());
            for &c in centroids {
                h.update(c.to_le_bytes());
            }
        }
    }
    for &v in codec.cutoffs().iter().chain(codec.weights()) {
        h.update(v.to_le_bytes());
    }
    // Only the flag's presence is hashed, so that every codebook without it keeps its id.
    if normalized {
        h.update(b"normalized");
    }
    CodebookId(h.finalize().into())
}

/// Centroids must be whole, non-empty rows.
fn check_rows(centroids: &[f32], dim: usize) -> Result<()> {
    if centroids.is_empty() || !centroids.len().is_multiple_of(dim) {
        return Err(IndexError::Param {
            name: "centroids",
            reason: format!("{} values are not whole {dim}-dimensional rows", centroids.len()),
        });
    }
    Ok(())
}

impl Codebook {
    /// A codebook from centroids (`K × dim`, row-major; rounded to float16 here) and a codec.
    pub(crate) fn from_parts(
        mut centroids: Vec<f32>,
        codec: ResidualCodec,
        train: Option<TrainInfo>,
        normalized: bool,
    ) -> Result<Self> {
        check_rows(&centroids, codec.dim())?;
        round_to_stored(&mut centroids)?;
        Ok(Self::assemble(centroids, Stored::F16, codec, train, normalized))
    }

    /// A codebook that decodes exactly as another engine's: centroids (`K × dim`) kept in
    /// float32, and with `normalized` every decoded token L2-normalised (next-plaid's and
    /// fast-plaid's decoding). For importing indexes without re-encoding them.
    pub fn imported(centroids: Vec<f32>, codec: ResidualCodec, normalized: bool) -> Result<Self> {
        check_rows(&centroids, codec.dim())?;
        if let Some(i) = centroids.iter().position(|v| !v.is_finite()) {
            return Err(IndexError::Param {
                name: "centroids",
                reason: format!("value {i} ({}) is not finite", centroids[i]),
            });
        }
        Ok(Self::assemble(centroids, Stored::F32, codec, None, normalized))
    }

    fn assemble(
        centroids: Vec<f32>,
        stored: Stored,
        codec: ResidualCodec,
        train: Option<TrainInfo>,
        normalized: bool,
    ) -> Self {
        let id = content_id(stored, &centroids, &codec, normalized);
        let n_centroids = centroids.len() / codec.dim();
        Self { centroids, stored, normalized, codec, n_centroids, id, train, source: None }
    }

    /// Whether decoded tokens are L2-normalised (codebooks made by [`Codebook::imported`]).
    pub fn normalizes_decoded(&self) -> bool {
        self.normalized
    }

    /// Opens a codebook: a codebook directory (holding [`CODEBOOK_FILE`]) or a codebook file.
    /// To use an index's codebook, open the index and take [`Index::codebook`](crate::Index::codebook).
    pub fn open(path: &Path) -> Result<Self> {
        let file = if path.is_dir() { path.join(CODEBOOK_FILE) } else { path.to_path_buf() };
        if !file.exists() {
            return Err(IndexError::NoCodebook { path: path.to_path_buf() });
        }
        Self::open_file(&file, None)
    }

    /// Opens a codebook file, checking its shape against `expect` (`dim, K, nbits`) when given.
    pub(crate) fn open_file(path: &Path, expect: Option<(usize, usize, u8)>) -> Result<Self> {
        let file = Container::open(path, FileKind::Codebook)?;
        let corrupt = |reason: String| IndexError::Corrupt { path: path.to_path_buf(), reason };
        let info: Vec<u64> = file.slice::<u64>(&file.typed::<u64>(INFO, Some(4))?).to_vec();
        if let Some((dim, k, nbits)) = expect {
            if info[..3] != [dim as u64, k as u64, nbits as u64] {
                return Err(corrupt(format!(
                    "codebook holds dim {}, {} centroids, {} bits; the manifest says {dim}, {k}, {nbits}",
                    info[0], info[1], info[2]
                )));
            }
        }
        let (dim, k, nbits) = (info[0] as usize, info[1] as usize, info[2]);
        if dim == 0 || k == 0 || !matches!(nbits, 1 | 2 | 4 | 8) || info[3] & !FLAG_NORMALIZED != 0
        {
            return Err(corrupt(format!("codebook header {info:?} is not a valid shape")));
        }
        let values = k.checked_mul(dim).ok_or_else(|| corrupt("K × dim overflows".into()))?;
        let (centroids, stored) = match file.elem_size(CENTROIDS_F16) {
            Some(_) => {
                let r = file.typed::<u16>(CENTROIDS_F16, Some(values))?;
                let halves: &[u16] = file.slice(&r);
                let halves: Vec<f16> = halves.iter().map(|&b| f16::from_bits(b)).collect();
                // Widened once at open: search reads centroids in its hottest loops.
                let mut wide = vec![0f32; values];
                halves.convert_to_f32_slice(&mut wide);
                (wide, Stored::F16)
            }
            None => {
                let r = file.typed::<f32>(CENTROIDS, Some(values))?;
                (file.slice::<f32>(&r).to_vec(), Stored::F32)
            }
        };
        if centroids.iter().any(|v| !v.is_finite()) {
            return Err(corrupt("a centroid holds a non-finite value".into()));
        }
        let normalized = info[3] & FLAG_NORMALIZED != 0;
        let n_buckets = 1usize << nbits;
        let cut = file.slice::<f32>(&file.typed::<f32>(CUTOFFS, Some(n_buckets - 1))?).to_vec();
        let wts = file.slice::<f32>(&file.typed::<f32>(WEIGHTS, Some(n_buckets))?).to_vec();
        let codec = ResidualCodec::from_parts(nbits as u8, dim, cut, wts)
            .map_err(|e| corrupt(format!("residual codec: {e}")))?;
        // Format 4 stores the id (checked by `verify`); older files get it computed.
        let id = match file.elem_size(HASH) {
            Some(_) => {
                let r = file.typed::<u8>(HASH, Some(32))?;
                CodebookId(file.map[r].try_into().expect("32 bytes"))
            }
            None => content_id(stored, &centroids, &codec, normalized),
        };
        let train = match file.elem_size(TRAIN) {
            Some(_) => {
                let t: Vec<u64> = file.slice::<u64>(&file.typed::<u64>(TRAIN, Some(8))?).to_vec();
                Some(TrainInfo {
                    seed: t[0],
                    kmeans_iters: t[1],
                    sample_docs: t[2],
                    kmeans_points: t[3],
                    codec_tokens: t[4],
                    centroids_from_user: t[5] != 0,
                    mean_sq_residual: f64::from_bits(t[6]),
                })
            }
            None => None,
        };
        let source = Some((path.to_path_buf(), file.into_file()));
        Ok(Self { centroids, stored, normalized, codec, n_centroids: k, id, train, source })
    }

    /// Writes the codebook file at `path` (which must not exist); returns `(bytes, crc32)`.
    pub(crate) fn write_file(&self, path: &Path) -> Result<(u64, u32)> {
        let dim = self.dim();
        let mut w = ContainerWriter::create(path, FileKind::Codebook, 6)?;
        let flags = if self.normalized { FLAG_NORMALIZED } else { 0 };
        w.section(INFO, &[dim as u64, self.n_centroids as u64, self.nbits() as u64, flags])?;
        match self.stored {
            Stored::F16 => {
                let halves: Vec<u16> =
                    self.centroids.iter().map(|&c| f16::from_f32(c).to_bits()).collect();
                w.section(CENTROIDS_F16, &halves)?;
            }
            Stored::F32 => w.section(CENTROIDS, &self.centroids)?,
        }
        w.section(CUTOFFS, self.codec.cutoffs())?;
        w.section(WEIGHTS, self.codec.weights())?;
        w.section(HASH, &self.id.0)?;
        let t = self.train.unwrap_or(TrainInfo {
            seed: 0,
            kmeans_iters: 0,
            sample_docs: 0,
            kmeans_points: 0,
            codec_tokens: 0,
            centroids_from_user: false,
            mean_sq_residual: 0.0,
        });
        let train = [
            t.seed,
            t.kmeans_iters,
            t.sample_docs,
            t.kmeans_points,
            t.codec_tokens,
            t.centroids_from_user as u64,
            t.mean_sq_residual.to_bits(),
            0,
        ];
        w.section(TRAIN, &train)?;
        w.finish()
    }

    /// Writes this codebook as a codebook directory `dir` (created; [`CODEBOOK_FILE`] inside),
    /// atomically: a crash leaves no file or the whole one. Refuses to replace an existing
    /// codebook unless `overwrite`.
    pub fn save(&self, dir: &Path, overwrite: bool) -> Result<()> {
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| IndexError::Io { path: p, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let dest = dir.join(CODEBOOK_FILE);
        if dest.exists() && !overwrite {
            return Err(IndexError::Exists { path: dest });
        }
        let tmp = dir.join(format!(".{CODEBOOK_FILE}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let written = self.write_file(&tmp).and_then(|_| {
            std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
            crate::format::manifest::sync_dir(dir)
        });
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// Recomputes the file's checksums and the content hash. `Ok` for a codebook that was
    /// never written.
    pub fn verify(&self) -> Result<()> {
        let Some((path, _)) = &self.source else { return Ok(()) };
        let file = Container::open(path, FileKind::Codebook)?;
        file.verify()?;
        self.verify_id(path)
    }

    /// Checks the stored id against the content.
    pub(crate) fn verify_id(&self, path: &Path) -> Result<()> {
        if content_id(self.stored, &self.centroids, &self.codec, self.normalized) != self.id {
            return Err(IndexError::Corrupt {
                path: path.to_path_buf(),
                reason: "the codebook's content does not match its id (CBHASH)".into(),
            });
        }
        Ok(())
    }

    /// The file it was read from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.source.as_ref().map(|(p, _)| p.as_path())
    }
    /// Content hash.
    pub fn id(&self) -> CodebookId {
        self.id
    }
    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.codec.dim()
    }
    /// Number of centroids K.
    pub fn n_centroids(&self) -> usize {
        self.n_centroids
    }
    /// Residual bits per dimension.
    pub fn nbits(&self) -> u8 {
        self.codec.nbits()
    }
    /// Centroids, `n_centroids × dim`, row-major.
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    /// The residual codec.
    pub fn codec(&self) -> &ResidualCodec {
        &self.codec
    }
    /// How it was trained (absent in codebooks written before format 4).
    pub fn train_info(&self) -> Option<&TrainInfo> {
        self.train.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tartan_codec::CodecParams;

    fn codebook() -> Codebook {
        let resid: Vec<f32> = (0..64).map(|i| (i as f32 - 32.0) / 100.0).collect();
        let codec = ResidualCodec::train(CodecParams::new(2), &resid, 4).unwrap();
        let cents = vec![0.5, 0.5, 0.5, 0.5, 1.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.3, 0.4];
        Codebook::from_parts(cents, codec, None, false).unwrap()
    }

    #[test]
    fn save_open_roundtrip_keeps_id_and_content() {
        let cb = codebook();
        let dir = tempfile::tempdir().unwrap();
        cb.save(dir.path(), false).unwrap();
        let back = Codebook::open(dir.path()).unwrap();
        assert_eq!(back.id(), cb.id());
        assert_eq!(back.centroids(), cb.centroids());
        assert_eq!(back.codec().cutoffs(), cb.codec().cutoffs());
        back.verify().unwrap();
        assert!(matches!(cb.save(dir.path(), false), Err(IndexError::Exists { .. })));
        // The id does not depend on the file: a second write gives the same bytes.
        let other = tempfile::tempdir().unwrap();
        back.save(other.path(), false).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(CODEBOOK_FILE)).unwrap(),
            std::fs::read(other.path().join(CODEBOOK_FILE)).unwrap()
        );
    }

    #[test]
    fn id_changes_with_any_content() {
        let cb = codebook();
        let mut c2 = cb.centroids().to_vec();
        c2[5] = 0.25;
        let moved = Codebook::from_parts(c2, cb.codec().clone(), None, false).unwrap();
        assert_ne!(moved.id(), cb.id());
        let hex = cb.id().to_hex();
        assert_eq!(CodebookId::from_hex(&hex), Some(cb.id()));
        assert_eq!(CodebookId::from_hex("zz"), None);
    }

    #[test]
    fn verify_catches_a_forged_id() {
        let cb = codebook();
        let dir = tempfile::tempdir().unwrap();
        let mut forged = codebook();
        forged.id = CodebookId([7; 32]);
        forged.save(dir.path(), false).unwrap();
        // The container checksums are right (the writer computed them); the id is not.
        let back = Codebook::open(dir.path()).unwrap();
        assert_ne!(back.id(), cb.id());
        let err = back.verify().unwrap_err().to_string();
        assert!(err.contains("does not match its id"), "{err}");
    }

    #[test]
    fn imported_codebooks_keep_float32_centroids_and_the_flag() {
        let cb = codebook();
        // Values float16 cannot hold exactly.
        let cents: Vec<f32> = (0..12).map(|i| 0.1 + i as f32 / 3.0).collect();
        let plain = Codebook::imported(cents.clone(), cb.codec().clone(), false).unwrap();
        let norm = Codebook::imported(cents.clone(), cb.codec().clone(), true).unwrap();
        assert_ne!(plain.id(), norm.id(), "the flag is part of the identity");
        for c in [&plain, &norm] {
            let dir = tempfile::tempdir().unwrap();
            c.save(dir.path(), false).unwrap();
            let back = Codebook::open(dir.path()).unwrap();
            assert_eq!((back.id(), back.centroids()), (c.id(), &cents[..]));
            assert_eq!(back.normalizes_decoded(), c.normalizes_decoded());
            back.verify().unwrap();
        }
        let err = Codebook::imported(vec![f32::NAN; 4], cb.codec().clone(), true).unwrap_err();
        assert!(err.to_string().contains("not finite"), "{err}");
        // Unknown flag bits are refused: a reader must not decode what it does not know.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cb.tcb");
        let mut w = ContainerWriter::create(&path, FileKind::Codebook, 4).unwrap();
        w.section(INFO, &[4u64, 3, 2, 2]).unwrap();
        w.section(CENTROIDS, &cents).unwrap();
        w.section(CUTOFFS, cb.codec().cutoffs()).unwrap();
        w.section(WEIGHTS, cb.codec().weights()).unwrap();
        w.finish().unwrap();
        let err = Codebook::open(&path).unwrap_err().to_string();
        assert!(err.contains("not a valid shape"), "{err}");
    }
}
