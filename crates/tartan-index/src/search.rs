//! Queries: checked and scored against the centroids once ([`PreparedQuery`]); probing, used
//! by the stages in `plaid.rs`.

use ndarray::ArrayView2;
use rayon::prelude::*;
use tartan_kernels::{FixedB, SkinnyB};

use crate::approx::score_range;
use crate::codebook::{Codebook, CodebookId};
use crate::decode::LUT_NBITS;
use crate::error::{IndexError, Result};
use crate::params::{ResolvedSearch, SearchParams};
use crate::plaid::ShardSet;
use crate::Index;

/// One result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// External document id.
    pub id: String,
    /// MaxSim of the query and the decompressed document, within a relative 1e-4 (typically
    /// 1e-5): the products are taken in 16-bit fixed point ([`Codebook::prepare`]).
    pub score: f32,
    /// The document's position in this opened generation (for [`Index::text`]); not stable
    /// across generations, unlike `id`.
    pub doc: u64,
}

/// Centroids scored against the query per parallel task.
const CENTROID_BLOCK: usize = 2048;

/// A query made ready for one codebook: checked, laid out for the skinny products, and scored
/// against every centroid once. Any index or shard encoded with that codebook searches it
/// ([`Index::search_prepared`]) without repeating the query × centroids product, which is
/// most of a small shard's fixed cost per query.
#[derive(Debug, Clone)]
pub struct PreparedQuery {
    /// The query for `f32` kernels, made only for codebooks whose exact scoring reads a
    /// nibble table (1 bit, `LUT_NBITS`); everything else reads `qf`.
    pub(crate) qb: Option<SkinnyB>,
    /// The query in 16-bit fixed point: the centroid product and exact scoring.
    pub(crate) qf: FixedB,
    /// Centroid-major scores: row c holds centroid c against every query token, so exact
    /// scoring reads a token's centroid scores as one contiguous row (approximate scoring
    /// reads the same rows quantised to bytes, `approx.rs`).
    pub(crate) cs: Vec<f32>,
    /// The smallest and largest of `cs`: the grid of the byte table approximate scoring
    /// quantises them to.
    pub(crate) range: (f32, f32),
    codebook: CodebookId,
}

impl PreparedQuery {
    /// Query tokens.
    pub fn n_tokens(&self) -> usize {
        self.qf.n()
    }
    /// The codebook it was prepared for.
    pub fn codebook_id(&self) -> CodebookId {
        self.codebook
    }
}

/// Checks a query as [`Codebook::prepare`] does: `dim` columns, at least one token, finite
/// values. `qi` names the query in errors (its position in a batch). For front ends that
/// check queries they send elsewhere (remote shards) before preparing any.
pub fn check_query(query: ArrayView2<'_, f32>, dim: usize, qi: usize) -> Result<()> {
    if query.ncols() != dim {
        return Err(IndexError::QueryDim { query: qi, expected: dim, got: query.ncols() });
    }
    if query.nrows() == 0 {
        return Err(IndexError::EmptyQuery { query: qi });
    }
    if query.iter().any(|v| !v.is_finite()) {
        return Err(IndexError::QueryNonFinite { query: qi });
    }
    Ok(())
}

impl Codebook {
    /// Checks a query (`n_tokens × dim`: the codebook's dimension, at least one token, finite
    /// values) and scores it against every centroid. `qi` names the query in errors (its
    /// position in a batch).
    pub fn prepare(&self, query: ArrayView2<'_, f32>, qi: usize) -> Result<PreparedQuery> {
        let dim = self.dim();
        check_query(query, dim, qi)?;
        let q = query.as_standard_layout();
        let q = q.as_slice().expect("standard layout");
        let nq = q.len() / dim;
        let qb = LUT_NBITS.contains(&self.nbits()).then(|| SkinnyB::new(q, dim));
        // The product in 16-bit fixed point: twice the rate of the `f32` kernel (criterion
        // `query_x_8192_centroids`: 0.98 → 0.53 ms), within about 1e-5 of it for unit vectors
        // at dim 128 (`tartan_kernels::fixed_matmul`), far finer than the byte grid of stages
        // 2–3 and than the float16 rounding of the centroids themselves.
        let qf = FixedB::new(q, dim);
        let fixed = self.fixed_centroids();
        // Blocks of centroids go to different cores.
        let mut cs = self.score_buffer(self.n_centroids() * nq);
        let range = cs
            .par_chunks_mut(CENTROID_BLOCK * nq)
            .enumerate()
            .map(|(b, out)| {
                let start = b * CENTROID_BLOCK;
                tartan_kernels::fixed_matmul(fixed, start..start + out.len() / nq, &qf, out);
                score_range(out)
            })
            .reduce(|| (f32::INFINITY, f32::NEG_INFINITY), |a, b| (a.0.min(b.0), a.1.max(b.1)));
        Ok(PreparedQuery { qb, qf, cs, range, codebook: self.id() })
    }
}

impl Index {
    /// Searches one query (`n_tokens × dim`).
    pub fn search(
        &self,
        query: ArrayView2<'_, f32>,
        params: &SearchParams,
    ) -> Result<Vec<SearchHit>> {
        // Prepared inside the thread pool with the rest of the search: preparing on the
        // calling thread parked it and woke it once more per query.
        Ok(self.search_batch(std::slice::from_ref(&query), params)?.remove(0))
    }

    /// Searches a query prepared with this index's codebook (or an equal one: a collection's
    /// shards share one) ([`IndexError::CodebookMismatch`] otherwise).
    pub fn search_prepared(
        &self,
        query: &PreparedQuery,
        params: &SearchParams,
    ) -> Result<Vec<SearchHit>> {
        Ok(self.search_prepared_batch(std::slice::from_ref(query), params)?.remove(0))
    }

    /// Searches prepared queries in parallel (rayon); the filter is evaluated once for all.
    pub fn search_prepared_batch(
        &self,
        queries: &[PreparedQuery],
        params: &SearchParams,
    ) -> Result<Vec<Vec<SearchHit>>> {
        let lists = ShardSet::new(&[self])?.search_batch(queries, params)?;
        Ok(lists.into_iter().map(|l| l.into_iter().map(|h| h.hit).collect()).collect())
    }

    /// Searches a batch of queries in parallel (rayon), each prepared only when it is
    /// searched ([`ShardSet::search_queries`]). Fails on a bad query, naming its position.
    pub fn search_batch(
        &self,
        queries: &[ArrayView2<'_, f32>],
        params: &SearchParams,
    ) -> Result<Vec<Vec<SearchHit>>> {
        let lists = ShardSet::new(&[self])?.search_queries(queries, params)?;
        Ok(lists.into_iter().map(|l| l.into_iter().map(|h| h.hit).collect()).collect())
    }
}

/// A filter matching at most this many documents scores all of them instead of probing:
/// approximate scoring of 8·ndocs documents costs about what probing does at the default
/// settings, and recall is then limited only by the approximate passes, not by the cells.
pub(crate) fn scan_limit(r: &ResolvedSearch) -> usize {
    8 * r.ndocs
}

/// The sorted, distinct union of each query token's `ncells` best centroids (ties to the
/// lower id).
pub(crate) fn probe(cs: &[f32], nq: usize, ncells: usize) -> Vec<u32> {
    let k = cs.len() / nq;
    let take = ncells.min(k);
    let mut cells =
        if take * 16 <= k { probe_scan(cs, nq, take) } else { probe_select(cs, nq, take) };
    cells.sort_unstable();
    cells.dedup();
    cells
}

/// Few cells: one pass over the centroid-major scores, each token keeping a short sorted
/// list of its best (insertions are rare after the first rows).
fn probe_scan(cs: &[f32], nq: usize, take: usize) -> Vec<u32> {
    let mut best = vec![(f32::NEG_INFINITY, u32::MAX); nq * take];
    // Each token's current worst kept score: a row that beats none of them (most rows, after
    // the first few) costs one comparison per token, without a branch, which vectorises.
    let mut floor = vec![f32::NEG_INFINITY; nq];
    for (c, row) in cs.chunks_exact(nq).enumerate() {
        let beats = row.iter().zip(&floor).fold(false, |any, (&s, &f)| any | (s > f));
        if !beats {
            continue;
        }
        for (j, &s) in row.iter().enumerate() {
            let b = &mut best[j * take..(j + 1) * take];
            if s > b[take - 1].0 {
                let mut i = take - 1;
                while i > 0 && b[i - 1].0 < s {
                    b[i] = b[i - 1];
                    i -= 1;
                }
                b[i] = (s, c as u32);
                floor[j] = b[take - 1].0;
            }
        }
    }
    best.into_iter().map(|(_, c)| c).collect()
}

/// Many cells: a selection per token.
fn probe_select(cs: &[f32], nq: usize, take: usize) -> Vec<u32> {
    let k = cs.len() / nq;
    let mut cells = Vec::with_capacity(nq * take);
    let mut col: Vec<(f32, u32)> = Vec::with_capacity(k);
    for j in 0..nq {
        col.clear();
        col.extend((0..k).map(|c| (cs[c * nq + j], c as u32)));
        let cmp = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if take < k {
            col.select_nth_unstable_by(take - 1, cmp);
        }
        cells.extend(col[..take].iter().map(|&(_, c)| c));
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_takes_each_tokens_best_cells() {
        // 4 centroids × 2 query tokens, centroid-major.
        let cs = [0.1, 0.9, 0.8, 0.2, 0.3, 0.7, 0.5, 0.1];
        assert_eq!(probe(&cs, 2, 1), vec![0, 1]);
        assert_eq!(probe(&cs, 2, 2), vec![0, 1, 2, 3]);
        assert_eq!(probe(&cs, 2, 10), vec![0, 1, 2, 3]);
    }

    #[test]
    fn scan_and_select_probes_agree() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for (k, nq, take) in [(200, 3, 1), (500, 7, 4), (64, 2, 3)] {
            // Quantised scores so that ties occur and the tie-break is exercised.
            let cs: Vec<f32> = (0..k * nq).map(|_| rng.gen_range(0..50) as f32 / 50.0).collect();
            let mut a = probe_scan(&cs, nq, take);
            let mut b = probe_select(&cs, nq, take);
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b, "k {k} nq {nq} take {take}");
        }
    }
}
