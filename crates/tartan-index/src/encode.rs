//! Where a token becomes codes: each token of a document is assigned its nearest centroid
//! (coarse-to-fine over the codebook's centroids) and its residual is quantised to `nbits`
//! per dimension; both stream into a new segment file.

use std::borrow::Cow;
use std::path::Path;

use rayon::prelude::*;
use tartan_embeddings::Embeddings;
use tartan_kmeans::{Assignment, CentroidSearch};

use crate::codebook::Codebook;
use crate::error::Result;
use crate::segment::{write_segment, SegmentDocs, Written};
use crate::{Extras, Progress};

/// Tokens encoded per parallel batch while writing.
const ENCODE_BATCH: usize = 1 << 16;

/// Encodes every document of `docs` with `codebook` into a new segment file at `path`.
pub(crate) fn encode_segment(
    path: &Path,
    docs: &Embeddings,
    extras: &Extras,
    codebook: &Codebook,
    assignment: Option<Assignment>,
    progress: &dyn Progress,
) -> Result<Written> {
    let codec = &codebook.codec;
    let dim = codec.dim();
    let n_tokens = docs.n_tokens();
    let bpt = codec.bytes_per_token();
    let parts = SegmentDocs {
        offsets: Cow::Borrowed(docs.offsets()),
        ids: docs.ids().iter().map(String::as_str).collect(),
        texts: extras.texts.as_ref().map(|t| t.iter().map(String::as_str).collect()),
        metadata: extras.metadata.as_ref().map(|m| m.iter().map(String::as_str).collect()),
    };
    write_segment(path, &parts, codebook, progress, |w| {
        progress.stage("encoding", n_tokens as u64);
        let centroids = codebook.centroids();
        let assignment =
            assignment.unwrap_or_else(|| Assignment::auto(codebook.n_centroids, n_tokens));
        let search = CentroidSearch::new(centroids.to_vec(), dim, assignment, 0);
        let mut codes: Vec<u32> = Vec::with_capacity(n_tokens);
        let mut sum_sq = 0f64;
        let mut toks = vec![0f32; ENCODE_BATCH * dim];
        let mut packed = vec![0u8; ENCODE_BATCH * bpt];
        for start in (0..n_tokens).step_by(ENCODE_BATCH) {
            let n = ENCODE_BATCH.min(n_tokens - start);
            let toks = &mut toks[..n * dim];
            docs.read_tokens(start, toks);
            // Each token is read once here: its mapped pages need not stay resident.
            docs.release_tokens(start..start + n);
            let (batch_codes, dists) = search.nearest(toks);
            sum_sq += dists.iter().map(|&d| d as f64).sum::<f64>();
            let packed = &mut packed[..n * bpt];
            packed.par_chunks_mut(bpt).zip(toks.par_chunks(dim)).zip(&batch_codes).for_each_init(
                || vec![0f32; dim],
                |scratch, ((out, tok), &c)| {
                    codec.encode(tok, &centroids[c as usize * dim..][..dim], scratch, out);
                },
            );
            w.write(packed)?;
            codes.extend(batch_codes);
            progress.advance(n as u64);
        }
        Ok((codes, sum_sq))
    })
}
