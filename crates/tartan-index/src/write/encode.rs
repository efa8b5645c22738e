//! Where a token becomes codes: each token of a document is assigned its nearest centroid
//! (coarse-to-fine over the codebook's centroids) and its residual is quantised to `nbits`
//! per dimension; both stream into a new segment file.

use std::borrow::Cow;
use std::path::Path;

use rayon::prelude::*;
use tartan_embeddings::Embeddings;
use tartan_kmeans::{Assignment, CentroidSearch};

use crate::budget::Budget;
use crate::codebook::Codebook;
use crate::error::Result;
use crate::segment::{write_segment, SegmentDocs, Written};
use crate::{Extras, Progress};

/// Encodes every document of `docs` with `codebook` into a new segment file at `path`.
pub(crate) fn encode_segment(
    path: &Path,
    docs: &Embeddings,
    extras: &Extras,
    codebook: &Codebook,
    assignment: Option<Assignment>,
    budget: Budget,
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
    // The batch size changes no byte: every token is encoded on its own.
    let batch = budget.encode_batch(dim, bpt);
    write_segment(path, &parts, codebook, budget, progress, |w, spill| {
        progress.stage("encoding", n_tokens as u64);
        let centroids = codebook.centroids();
        let assignment =
            assignment.unwrap_or_else(|| Assignment::auto(codebook.n_centroids, n_tokens));
        let search = CentroidSearch::new(centroids.to_vec(), dim, assignment, 0);
        let mut sum_sq = 0f64;
        let mut toks = vec![0f32; batch.min(n_tokens) * dim];
        let mut packed = vec![0u8; batch.min(n_tokens) * bpt];
        for start in (0..n_tokens).step_by(batch) {
            let n = batch.min(n_tokens - start);
            let toks = &mut toks[..n * dim];
            docs.read_tokens(start, toks);
            // Each token is read once here: its mapped pages need not stay resident.
            docs.release_tokens(start..start + n);
            let (batch_codes, dists) = search.nearest(toks);
            // Token by token, so that the sum does not depend on the batch size.
            for &d in &dists {
                sum_sq += d as f64;
            }
            let packed = &mut packed[..n * bpt];
            packed.par_chunks_mut(bpt).zip(toks.par_chunks(dim)).zip(&batch_codes).for_each_init(
                || vec![0f32; dim],
                |scratch, ((out, tok), &c)| {
                    codec.encode(tok, &centroids[c as usize * dim..][..dim], scratch, out);
                },
            );
            w.write(packed)?;
            spill.push(&batch_codes)?;
            progress.advance(n as u64);
        }
        Ok(sum_sq)
    })
}
