//! Writing a segment file: ids, offsets, texts and metadata around a stream of residuals,
//! then the codes packed and the inverted file built from them.

use std::borrow::Cow;
use std::path::Path;

use tartan_codec::{bits_for, pack_uints};
use tartan_ivf::IvfError;

use super::layout::*;
use super::spill::CodeSpill;
use crate::budget::Budget;
use crate::codebook::Codebook;
use crate::error::{IndexError, Result};
use crate::format::container::{ContainerWriter, FileKind};
use crate::format::manifest::SegmentMeta;
use crate::Progress;

/// What writing a segment measured.
pub(crate) struct Written {
    pub bytes: u64,
    pub crc32: u32,
    pub sum_sq_residual: f64,
}

impl Written {
    /// The manifest entry of this newly written segment (no deletions yet).
    pub(crate) fn meta(&self, id: u64, file: String, n_docs: u64, n_tokens: u64) -> SegmentMeta {
        SegmentMeta {
            id,
            file: crate::format::manifest::FileRef { file, bytes: self.bytes, crc32: self.crc32 },
            n_docs,
            n_tokens,
            n_deleted: 0,
            deletions: None,
            mean_sq_residual: Some(self.sum_sq_residual / n_tokens.max(1) as f64),
        }
    }
}

/// Everything of a segment's documents except their residuals and codes.
pub(crate) struct SegmentDocs<'a> {
    /// `n_docs + 1` token offsets.
    pub offsets: Cow<'a, [u64]>,
    pub ids: Vec<&'a str>,
    pub texts: Option<Vec<&'a str>>,
    /// Compact JSON objects, `""` for a document without metadata.
    pub metadata: Option<Vec<&'a str>>,
}

/// Writes a segment file. `residuals` streams every token's packed residual into the open
/// RESIDUAL section (document order) and every token's code into the spill file, and returns
/// the sum of the tokens' squared distances to their centroids. The codes are then read back
/// in chunks of `budget` to pack them and to build the inverted file.
pub(crate) fn write_segment(
    path: &Path,
    docs: &SegmentDocs<'_>,
    codebook: &Codebook,
    budget: Budget,
    progress: &dyn Progress,
    residuals: impl FnOnce(&mut ContainerWriter, &mut CodeSpill) -> Result<f64>,
) -> Result<Written> {
    let n_docs = docs.ids.len();
    let n_tokens = docs.offsets[n_docs] as usize;
    let k = codebook.n_centroids;
    let n_sections = 8 + 2 * (docs.texts.is_some() as usize + docs.metadata.is_some() as usize);
    let mut w = ContainerWriter::create(path, FileKind::Segment, n_sections)?;
    let code_bits = bits_for(k as u64);
    let info = [
        n_docs as u64,
        n_tokens as u64,
        codebook.codec.dim() as u64,
        codebook.codec.nbits() as u64,
        k as u64,
        0,
        code_bits as u64,
        0,
    ];
    w.section(INFO, &info)?;
    w.section(DOC_OFFSETS, &docs.offsets)?;
    write_strings(&mut w, ID_OFFSETS, ID_BYTES, &docs.ids)?;
    let mut spill = CodeSpill::create(path)?;
    w.begin(RESIDUALS, 1)?;
    let sum_sq = residuals(&mut w, &mut spill)?;
    w.end()?;
    assert_eq!(spill.len(), n_tokens, "one code per token");
    let mut reader = spill.reader()?;

    // Packed codes, a chunk at a time: chunks are whole bytes (multiples of 8 codes), so the
    // section is the same bytes as packing all codes at once.
    w.begin(CODE_PACK, 1)?;
    let (mut codes, mut packed) = (Vec::new(), Vec::new());
    let chunk = budget.code_chunk();
    for start in (0..n_tokens).step_by(chunk) {
        reader.read(chunk.min(n_tokens - start), &mut codes)?;
        packed.clear();
        pack_uints(&codes, code_bits, &mut packed);
        w.write(&packed)?;
    }
    w.end()?;
    drop((codes, packed));

    progress.stage("inverted file", k as u64);
    w.begin(IVF_LISTS, 1)?;
    let offsets = &docs.offsets;
    let list_offsets = {
        let w = &mut w;
        let reader = &mut reader;
        tartan_ivf::build_packed_in_passes::<PassError>(
            n_docs,
            k,
            budget.ivf_postings(),
            |d, buf| {
                if d == 0 {
                    reader.rewind()?;
                }
                Ok(reader.read((offsets[d + 1] - offsets[d]) as usize, buf)?)
            },
            |bytes, lists| {
                w.write(bytes)?;
                progress.advance(lists as u64);
                Ok(())
            },
        )
    }
    .map_err(|e| match e {
        PassError::Ivf(e) => {
            IndexError::Corrupt { path: path.to_path_buf(), reason: e.to_string() }
        }
        PassError::Index(e) => e,
    })?;
    w.end()?;
    w.section(IVF_LIST_OFFSETS, &list_offsets)?;
    if let Some(texts) = &docs.texts {
        write_strings(&mut w, TEXT_OFFSETS, TEXT_BYTES, texts)?;
    }
    if let Some(meta) = &docs.metadata {
        write_strings(&mut w, META_OFFSETS, META_BYTES, meta)?;
    }
    let (bytes, crc32) = w.finish()?;
    Ok(Written { bytes, crc32, sum_sq_residual: sum_sq })
}

/// What can stop the inverted file's passes: a bad code, or reading and writing.
enum PassError {
    Ivf(IvfError),
    Index(IndexError),
}

impl From<IvfError> for PassError {
    fn from(e: IvfError) -> Self {
        Self::Ivf(e)
    }
}

impl From<IndexError> for PassError {
    fn from(e: IndexError) -> Self {
        Self::Index(e)
    }
}
