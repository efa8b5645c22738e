//! Writing an index from documents another engine already encoded: codes and packed
//! residuals are taken as they are, with no k-means and no encoding.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use crate::budget::Budget;
use crate::codebook::Codebook;
use crate::error::{IndexError, Result};
use crate::format::manifest::{sync_dir, BuildInfo, FileRef};
use crate::segment::{write_segment, CodeSpill, SegmentDocs};
use crate::write::build::{build_atomically, one_segment};
use crate::{Extras, Index, Progress};

/// Takes a batch of tokens: centroid ids and their packed residuals
/// (`codebook.codec().bytes_per_token()` bytes per token, tartan's packing).
pub type TokenSink<'a> = dyn FnMut(&[u32], &[u8]) -> Result<()> + 'a;

/// Streams every token of the documents in order into its sink, a batch at a time.
pub type TokenStream<'a> = dyn FnMut(&mut TokenSink<'_>) -> Result<()> + 'a;

/// What [`Index::build_encoded`] needs besides the tokens.
pub struct EncodedDocs<'a> {
    /// External ids, unique, in document order.
    pub ids: &'a [String],
    /// Tokens per document (each at least 1), in document order.
    pub lens: &'a [u64],
    /// Texts and metadata to store beside them.
    pub extras: &'a Extras,
}

impl Index {
    /// Writes an index in `dir` of documents already encoded with `codebook` and opens it:
    /// `tokens` streams each token's centroid id and packed residual in document order. The
    /// index decodes every token exactly as the codebook decodes those codes. Atomic as
    /// [`Index::build`]; an existing index is only replaced with `overwrite`. Memory: the
    /// ids and lengths, plus `memory` bytes for the code chunks and the inverted file.
    ///
    /// # Errors
    /// [`IndexError::Param`] naming what is wrong: no documents, an empty document, a
    /// duplicate or empty id, a code out of range, residual bytes that do not match the
    /// tokens, or fewer or more tokens than the lengths add up to.
    pub fn build_encoded(
        dir: &Path,
        codebook: Arc<Codebook>,
        docs: EncodedDocs<'_>,
        tokens: &mut TokenStream<'_>,
        overwrite: bool,
        memory: u64,
        progress: &dyn Progress,
    ) -> Result<Index> {
        let bad = |name, reason: String| IndexError::Param { name, reason };
        if docs.ids.is_empty() {
            return Err(IndexError::NoDocuments);
        }
        if docs.ids.len() != docs.lens.len() {
            return Err(bad(
                "lens",
                format!("{} lengths for {} ids", docs.lens.len(), docs.ids.len()),
            ));
        }
        let mut seen = HashSet::with_capacity(docs.ids.len());
        for (i, id) in docs.ids.iter().enumerate() {
            if id.is_empty() || !seen.insert(id.as_str()) {
                return Err(bad("ids", format!("id {id:?} of document {i} is empty or repeated")));
            }
        }
        if let Some(i) = docs.lens.iter().position(|&n| n == 0) {
            return Err(bad("lens", format!("document {i} ({:?}) has no tokens", docs.ids[i])));
        }
        docs.extras.check_ids(docs.ids)?;
        let mut offsets = Vec::with_capacity(docs.lens.len() + 1);
        offsets.push(0u64);
        for &n in docs.lens {
            let last = *offsets.last().expect("one offset");
            offsets.push(last + n);
        }
        build_atomically(dir, overwrite, |work, (generation, seg_id)| {
            let cb_name = format!("codebook.{generation:06}.tcb");
            let (cb_bytes, cb_crc) = codebook.write_file(&work.join(&cb_name))?;
            let seg_name = format!("segment.{seg_id:06}.tseg");
            let n_tokens = offsets[docs.ids.len()];
            let parts = SegmentDocs {
                offsets: std::borrow::Cow::Borrowed(&offsets),
                ids: docs.ids.iter().map(String::as_str).collect(),
                texts: docs.extras.texts.as_ref().map(|t| t.iter().map(String::as_str).collect()),
                metadata: docs
                    .extras
                    .metadata
                    .as_ref()
                    .map(|m| m.iter().map(String::as_str).collect()),
            };
            let path = work.join(&seg_name);
            let budget = Budget::new(memory);
            let written = write_segment(&path, &parts, &codebook, budget, progress, |w, spill| {
                copy_tokens(&codebook, n_tokens, tokens, w, spill, progress)
            })?;
            sync_dir(work)?;
            let msr = written.sum_sq_residual / n_tokens as f64;
            let build = BuildInfo {
                seed: 0,
                kmeans_iters: 0,
                sample_docs: 0,
                kmeans_points: 0,
                codec_tokens: 0,
                centroids_from_user: true,
                mean_sq_residual: msr,
                build_seconds: None,
            };
            let file = FileRef { file: cb_name, bytes: cb_bytes, crc32: cb_crc };
            let segment = written.meta(seg_id, seg_name, docs.ids.len() as u64, n_tokens);
            one_segment(&codebook, file, generation, segment, build).publish(work)
        })
    }
}

/// Checks and copies the streamed tokens into the segment; returns the sum of the decoded
/// residuals' squared norms (the drift baseline: the original residuals are not known).
fn copy_tokens(
    codebook: &Codebook,
    n_tokens: u64,
    tokens: &mut TokenStream<'_>,
    w: &mut crate::format::container::ContainerWriter,
    spill: &mut CodeSpill,
    progress: &dyn Progress,
) -> Result<f64> {
    let codec = codebook.codec();
    let (k, bpt, dim) = (codebook.n_centroids() as u32, codec.bytes_per_token(), codec.dim());
    let bad = |reason: String| IndexError::Param { name: "tokens", reason };
    let mut seen = 0u64;
    let mut sum_sq = 0.0f64;
    let mut resid = vec![0f32; dim];
    progress.stage("copying tokens", n_tokens);
    tokens(&mut |codes, residuals| {
        if residuals.len() != codes.len() * bpt {
            return Err(bad(format!(
                "{} residual bytes for {} tokens of {bpt} bytes",
                residuals.len(),
                codes.len()
            )));
        }
        if let Some(c) = codes.iter().find(|&&c| c >= k) {
            return Err(bad(format!("centroid id {c} at token {seen}, the codebook has {k}")));
        }
        seen += codes.len() as u64;
        if seen > n_tokens {
            return Err(bad(format!("more tokens than the lengths add up to ({n_tokens})")));
        }
        for r in residuals.chunks_exact(bpt) {
            codec.decode_residual(r, &mut resid);
            sum_sq += resid.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
        }
        w.write(residuals)?;
        spill.push(codes)?;
        progress.advance(codes.len() as u64);
        Ok(())
    })?;
    if seen != n_tokens {
        return Err(bad(format!("{seen} tokens, the lengths add up to {n_tokens}")));
    }
    Ok(sum_sq)
}
