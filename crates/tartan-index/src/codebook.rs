//! The codebook file: centroids and the residual codec, shared by every segment.

use std::ops::Range;
use std::path::Path;

use tartan_codec::ResidualCodec;

use crate::container::{Container, ContainerWriter, FileKind};
use crate::error::{IndexError, Result};

const INFO: &[u8; 8] = b"CBINFO  ";
const CENTROIDS: &[u8; 8] = b"CENTROID";
const CUTOFFS: &[u8; 8] = b"CUTOFFS ";
const WEIGHTS: &[u8; 8] = b"WEIGHTS ";

/// Writes a codebook file; returns `(bytes, crc32)`.
pub(crate) fn write(path: &Path, centroids: &[f32], codec: &ResidualCodec) -> Result<(u64, u32)> {
    let dim = codec.dim();
    let mut w = ContainerWriter::create(path, FileKind::Codebook, 4)?;
    w.section(INFO, &[dim as u64, (centroids.len() / dim) as u64, codec.nbits() as u64, 0])?;
    w.section(CENTROIDS, centroids)?;
    w.section(CUTOFFS, codec.cutoffs())?;
    w.section(WEIGHTS, codec.weights())?;
    w.finish()
}

/// An open codebook.
#[derive(Debug)]
pub(crate) struct Codebook {
    pub(crate) file: Container,
    centroids: Range<usize>,
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
        let centroids = file.typed::<f32>(CENTROIDS, Some(n_centroids * dim))?;
        let n_buckets = 1usize << nbits;
        let cut = file.slice::<f32>(&file.typed::<f32>(CUTOFFS, Some(n_buckets - 1))?).to_vec();
        let wts = file.slice::<f32>(&file.typed::<f32>(WEIGHTS, Some(n_buckets))?).to_vec();
        let codec = ResidualCodec::from_parts(nbits, dim, cut, wts)
            .map_err(|e| corrupt(format!("residual codec: {e}")))?;
        if file.slice::<f32>(&centroids).iter().any(|v| !v.is_finite()) {
            return Err(corrupt("a centroid holds a non-finite value".into()));
        }
        Ok(Self { file, centroids, codec, n_centroids })
    }

    /// Centroids, `n_centroids × dim`.
    pub(crate) fn centroids(&self) -> &[f32] {
        self.file.slice(&self.centroids)
    }
}
