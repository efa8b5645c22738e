//! The codebook file: centroids and the residual codec, shared by every segment.

use std::ops::Range;
use std::path::Path;

use half::{f16, slice::HalfFloatSliceExt};
use tartan_codec::ResidualCodec;

use crate::container::{Container, ContainerWriter, FileKind};
use crate::error::{IndexError, Result};

const INFO: &[u8; 8] = b"CBINFO  ";
/// f32 centroids (formats 1 and 2).
const CENTROIDS: &[u8; 8] = b"CENTROID";
/// f16 centroids (format 3).
const CENTROIDS_F16: &[u8; 8] = b"CENTF16 ";
const CUTOFFS: &[u8; 8] = b"CUTOFFS ";
const WEIGHTS: &[u8; 8] = b"WEIGHTS ";

/// Rounds centroids to what the codebook stores (float16), so that residuals are taken
/// against exactly the centroids a reader sees. Errors on a value beyond float16's range.
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

/// Writes a codebook file with `centroids` (already [`round_to_stored`]) as float16; returns
/// `(bytes, crc32)`.
pub(crate) fn write(path: &Path, centroids: &[f32], codec: &ResidualCodec) -> Result<(u64, u32)> {
    let dim = codec.dim();
    let mut halves = vec![f16::ZERO; centroids.len()];
    halves.convert_from_f32_slice(centroids);
    debug_assert!(halves.iter().zip(centroids).all(|(h, c)| h.to_f32() == *c), "unrounded");
    let halves: Vec<u16> = halves.iter().map(|h| h.to_bits()).collect();
    let mut w = ContainerWriter::create(path, FileKind::Codebook, 4)?;
    w.section(INFO, &[dim as u64, (centroids.len() / dim) as u64, codec.nbits() as u64, 0])?;
    w.section(CENTROIDS_F16, &halves)?;
    w.section(CUTOFFS, codec.cutoffs())?;
    w.section(WEIGHTS, codec.weights())?;
    w.finish()
}

/// An open codebook.
#[derive(Debug)]
pub(crate) struct Codebook {
    pub(crate) file: Container,
    centroids: Centroids,
    pub(crate) codec: ResidualCodec,
    pub(crate) n_centroids: usize,
}

impl Codebook {
    pub(crate) fn open(path: &Path, dim: usize, n_centroids: usize, nbits: u8) -> Result<Self> {
        let file = Container::open(path, FileKind::Codebook)?;
        let corrupt = |reason: String| IndexError::Corrupt { path: path.to_path_buf(), reason };
        let info: Vec<u64> = file.slice::<u64>(&file.typed::<u64>(INFO, Some(4))?).to_vec();
        if info[..3] != [dim as u64, n_centroids as u64, nbits as u64] {
            return Err(corrupt(format!(
                "codebook holds dim {}, {} centroids, {} bits; the manifest says {dim}, {n_centroids}, {nbits}",
                info[0], info[1], info[2]
            )));
        }
        let centroids = match file.elem_size(CENTROIDS_F16) {
            // Widened once at open: search reads centroids in its hottest loops.
            Some(_) => {
                let r = file.typed::<u16>(CENTROIDS_F16, Some(n_centroids * dim))?;
                let halves: Vec<f16> =
                    file.slice::<u16>(&r).iter().map(|&b| f16::from_bits(b)).collect();
                let mut wide = vec![0f32; halves.len()];
                halves.convert_to_f32_slice(&mut wide);
                Centroids::Owned(wide)
            }
            None => Centroids::Mapped(file.typed::<f32>(CENTROIDS, Some(n_centroids * dim))?),
        };
        let n_buckets = 1usize << nbits;
        let cut = file.slice::<f32>(&file.typed::<f32>(CUTOFFS, Some(n_buckets - 1))?).to_vec();
        let wts = file.slice::<f32>(&file.typed::<f32>(WEIGHTS, Some(n_buckets))?).to_vec();
        let codec = ResidualCodec::from_parts(nbits, dim, cut, wts)
            .map_err(|e| corrupt(format!("residual codec: {e}")))?;
        let me = Self { file, centroids, codec, n_centroids };
        if me.centroids().iter().any(|v| !v.is_finite()) {
            return Err(corrupt("a centroid holds a non-finite value".into()));
        }
        Ok(me)
    }

    /// Centroids, `n_centroids × dim`.
    pub(crate) fn centroids(&self) -> &[f32] {
        match &self.centroids {
            Centroids::Mapped(r) => self.file.slice(r),
            Centroids::Owned(v) => v,
        }
    }
}

/// Centroids as the file stores them: f32 mapped in place, or f16 widened at open.
#[derive(Debug)]
enum Centroids {
    Mapped(Range<usize>),
    Owned(Vec<f32>),
}
