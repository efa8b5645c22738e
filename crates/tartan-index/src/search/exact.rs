//! Where codes become a vector: a token's centroid plus its decoded residual. Search's last
//! stage scores documents this way a tile at a time; `decompress` writes them out whole.

use rayon::prelude::*;
use tartan_kernels::NibbleTable;

use super::query::PreparedQuery;
use crate::error::{IndexError, Result};
use crate::Index;

/// Working memory of exact scoring, one per parallel task.
#[derive(Default)]
pub(crate) struct Scratch {
    codes: Vec<u32>,
    tile: Vec<i16>,
    best: Vec<f32>,
}

/// Tokens decompressed at a time in exact scoring: 16 × dim 384 `i16` values is 12 KiB, so
/// the tile is still in L1 when the product with the query reads it.
const TILE: usize = 16;

/// Documents per parallel task when computing a segment's inverse norms.
const NORM_BLOCK: usize = 256;

impl Index {
    /// MaxSim of the query and document `d` of segment `si`, decoded a tile of tokens at a
    /// time and multiplied with the query while the tile is in cache (writing the whole
    /// document out first cost more than the arithmetic). Only residuals are decoded: a
    /// token's score is its centroid's score from `q.cs` plus the query times its residual,
    /// which spares reading a 1.5 KB centroid row per token from a table far beyond cache.
    /// The residual products are taken in 16-bit fixed point (`tartan_kernels::fixed_max`),
    /// like the centroid scores.
    pub(crate) fn exact_score(
        &self,
        si: usize,
        d: usize,
        q: &PreparedQuery,
        lut: Option<&NibbleTable>,
        sc: &mut Scratch,
    ) -> Result<f32> {
        let (cs, nq) = (&q.cs[..], q.n_tokens());
        let codec = &self.codebook().codec;
        let bpt = codec.bytes_per_token();
        let seg = &self.segments[si];
        let resid = seg.residuals(d);
        let Scratch { codes, tile, best } = sc;
        seg.codes(d).read_into(codes);
        if codes.iter().any(|&c| c as usize >= self.manifest.n_centroids) {
            return Err(self.corrupt_codes(si));
        }
        // The document's rows of centroid scores, scattered over a table beyond L2, are
        // fetched together first, so their misses overlap.
        for &c in codes.iter() {
            tartan_kernels::prefetch(&cs[c as usize * nq..][..nq]);
        }
        best.clear();
        best.resize(nq, f32::NEG_INFINITY);
        // A normalising codebook scales each token's products by its inverse norm, computed
        // once per segment (the norm needs the centroid, which this loop avoids reading).
        let inv = if self.codebook().normalizes_decoded() {
            let start = seg.doc_offsets()[d] as usize;
            Some(&self.inv_norms(si)?[start..start + codes.len()])
        } else {
            None
        };
        if let Some(lut) = lut {
            // Residuals left packed: the table sums each token's products with the query.
            let shifts = tartan_kernels::Shifts { table: cs, ids: codes };
            tartan_kernels::lut_max(lut, resid, shifts, inv, best);
            return Ok(best.iter().sum());
        }
        let fixed = self.scorer.fixed_residuals();
        for (ti, chunk) in codes.chunks(TILE).enumerate() {
            let n = chunk.len();
            let t = ti * TILE;
            let rows = fixed.decode(&resid[t * bpt..(t + n) * bpt], tile);
            // A token's score is its centroid's (its row of `cs`) plus the query times its
            // residual, times its inverse norm; folded into the maxima in registers.
            let shifts = tartan_kernels::Shifts { table: cs, ids: chunk };
            let scale = inv.map(|inv| &inv[t..t + n]);
            tartan_kernels::fixed_max(rows, &q.qf, shifts, scale, best);
        }
        Ok(best.iter().sum())
    }

    /// The table exact scoring sums residual products from instead of decoding them, where
    /// that is faster (see [`LUT_NBITS`](super::query::LUT_NBITS): the query carries its `f32` layout only then).
    /// Built once per query and shared by every document scored for it.
    pub(crate) fn nibble_table(&self, q: &PreparedQuery) -> Option<NibbleTable> {
        let codec = &self.codebook().codec;
        q.qb.as_ref().map(|qb| NibbleTable::new(qb, codec.nbits(), codec.weights()))
    }

    /// Hints the CPU to fetch document `d` of segment `si`'s codes and residuals (a few KiB
    /// at a random place): stage 4 calls it for the next document while it scores this one.
    pub(crate) fn prefetch_doc(&self, si: usize, d: usize) {
        let seg = &self.segments[si];
        seg.codes(d).prefetch();
        tartan_kernels::prefetch(seg.residuals(d));
    }

    /// Each token's inverse decoded norm in segment `si` (tokens in segment order), computed
    /// on first use: `1 / max(‖c + r‖, 1e-12)`, the factor [`normalize`] divides by.
    fn inv_norms(&self, si: usize) -> Result<&[f32]> {
        let seg = &self.segments[si];
        if let Some(v) = seg.inv_norms.get() {
            return Ok(v);
        }
        let dim = self.dim();
        // Blocks of documents on every core: this pass decodes the whole segment, and the
        // first query that needs it waits for it.
        let blocks = (0..seg.n_docs.div_ceil(NORM_BLOCK))
            .into_par_iter()
            .map(|b| {
                let (mut part, mut buf) = (Vec::new(), Vec::new());
                for d in b * NORM_BLOCK..((b + 1) * NORM_BLOCK).min(seg.n_docs) {
                    self.decompress_raw(si, d, &mut buf)?;
                    part.extend(buf.chunks_exact(dim).map(|row| 1.0 / norm(row)));
                }
                Ok(part)
            })
            .collect::<Result<Vec<Vec<f32>>>>()?;
        let out = blocks.concat();
        // Two threads may both compute it; they compute the same values.
        Ok(seg.inv_norms.get_or_init(|| out))
    }

    /// Decompresses document `d` of segment `si` into `out` (`n_tokens × dim`).
    pub(crate) fn decompress_into(&self, si: usize, d: usize, out: &mut Vec<f32>) -> Result<()> {
        self.decompress_raw(si, d, out)?;
        if self.codebook().normalizes_decoded() {
            out.chunks_exact_mut(self.dim()).for_each(normalize);
        }
        Ok(())
    }

    /// `c + r` of every token of document `d` of segment `si`, before any normalisation.
    fn decompress_raw(&self, si: usize, d: usize, out: &mut Vec<f32>) -> Result<()> {
        out.clear();
        self.append_decompressed(si, d, out)
    }

    /// Appends document `d` of segment `si`, decompressed (`n_tokens × dim`), to `out`.
    fn append_decompressed(&self, si: usize, d: usize, out: &mut Vec<f32>) -> Result<()> {
        let dim = self.dim();
        let k = self.manifest.n_centroids;
        let centroids = self.centroids();
        let codec = &self.codebook().codec;
        let bpt = codec.bytes_per_token();
        let seg = &self.segments[si];
        let resid = seg.residuals(d);
        let start = out.len();
        out.resize(start + resid.len() / bpt * dim, 0.0);
        let out = &mut out[start..];
        let mut t = 0;
        let mut bad = false;
        seg.codes(d).for_each(|c| {
            let c = c as usize;
            if c >= k {
                bad = true;
                return;
            }
            codec.decode(
                &resid[t * bpt..(t + 1) * bpt],
                &centroids[c * dim..(c + 1) * dim],
                &mut out[t * dim..(t + 1) * dim],
            );
            t += 1;
        });
        if bad {
            return Err(self.corrupt_codes(si));
        }
        Ok(())
    }

    pub(crate) fn corrupt_codes(&self, si: usize) -> IndexError {
        IndexError::Corrupt {
            path: self.segments[si].file.path.clone(),
            reason: "a token's centroid id is out of range".into(),
        }
    }
}

/// L2-normalises a decoded token, as next-plaid does (a zero vector stays zero: the norm is
/// floored at 1e-12, next-plaid's floor).
fn normalize(row: &mut [f32]) {
    let n = norm(row);
    row.iter_mut().for_each(|v| *v /= n);
}

/// A decoded token's L2 norm, floored at 1e-12: what [`normalize`] divides by and what the
/// inverse norms of exact scoring invert. The vector kernel's sum: a scalar sum in order made
/// the first search of an index (every token's norm) several times slower.
fn norm(row: &[f32]) -> f32 {
    tartan_kernels::dot(row, row).sqrt().max(1e-12)
}
