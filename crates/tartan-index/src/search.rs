//! PLAID search: probe, approximate scores from centroid ids (pruned, then full), exact
//! MaxSim on decompressed residuals.

use ndarray::ArrayView2;
use rayon::prelude::*;
use tartan_kernels::SkinnyB;
use tartan_maxsim::{Hit, TopK};

use crate::deletes::Bitmap;
use crate::error::{IndexError, Result};
use crate::params::{ResolvedSearch, SearchParams};
use crate::segment::Codes;
use crate::Index;

/// One result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// External document id.
    pub id: String,
    /// MaxSim of the query and the decompressed document.
    pub score: f32,
    /// The document's position in this opened generation (for [`Index::text`]); not stable
    /// across generations, unlike `id`.
    pub doc: u64,
}

/// Working memory of exact scoring, one per parallel task.
#[derive(Default)]
struct Scratch {
    codes: Vec<u32>,
    tile: Vec<f32>,
    prod: Vec<f32>,
    best: Vec<f32>,
}

/// Centroids scored against the query per parallel task.
const CENTROID_BLOCK: usize = 2048;
/// Candidates scored from codes per parallel task.
const SCORE_BLOCK: usize = 512;
/// Documents decompressed and scored exactly per parallel task.
const EXACT_BLOCK: usize = 16;
/// Tokens decompressed at a time in exact scoring: 16 × dim 384 floats is 24 KiB, so the
/// tile is still in L1 when the product with the query reads it.
const TILE: usize = 16;

impl Index {
    /// Searches one query (`n_tokens × dim`).
    pub fn search(
        &self,
        query: ArrayView2<'_, f32>,
        params: &SearchParams,
    ) -> Result<Vec<SearchHit>> {
        let r = params.resolve()?;
        let allowed = self.allowed(params)?;
        self.search_resolved(query, &r, allowed.as_ref(), 0)
    }

    /// Searches a batch of queries in parallel (rayon). Fails on the first bad query.
    pub fn search_batch(
        &self,
        queries: &[ArrayView2<'_, f32>],
        params: &SearchParams,
    ) -> Result<Vec<Vec<SearchHit>>> {
        let r = params.resolve()?;
        let allowed = self.allowed(params)?;
        queries
            .par_iter()
            .enumerate()
            .map(|(i, q)| self.search_resolved(q.view(), &r, allowed.as_ref(), i))
            .collect()
    }

    /// The documents search may return, per segment: live ones matching the filter. `None`
    /// when that is every document (no deletions, no filter).
    fn allowed(&self, params: &SearchParams) -> Result<Option<Allowed>> {
        let filter = params.filter.as_ref();
        if filter.is_none() && self.manifest.n_deleted == 0 {
            return Ok(None);
        }
        let sets = self.segments.iter().map(|s| s.allowed(filter)).collect::<Result<Vec<_>>>()?;
        let count = sets.iter().map(Bitmap::count).sum();
        Ok(Some(Allowed { sets, count, filtered: filter.is_some() }))
    }

    fn search_resolved(
        &self,
        query: ArrayView2<'_, f32>,
        r: &ResolvedSearch,
        allowed: Option<&Allowed>,
        qi: usize,
    ) -> Result<Vec<SearchHit>> {
        let dim = self.dim();
        if query.ncols() != dim {
            return Err(IndexError::QueryDim { query: qi, expected: dim, got: query.ncols() });
        }
        if query.nrows() == 0 {
            return Err(IndexError::EmptyQuery { query: qi });
        }
        if query.iter().any(|v| !v.is_finite()) {
            return Err(IndexError::QueryNonFinite { query: qi });
        }
        let q = query.as_standard_layout();
        let q = q.as_slice().expect("standard layout");
        let hits = self.plaid(q, r, allowed)?;
        hits.into_iter()
            .map(|h| {
                let (s, d) = self.locate(h.doc);
                Ok(SearchHit {
                    id: self.segments[s].id(d)?.to_string(),
                    score: h.score,
                    doc: h.doc as u64,
                })
            })
            .collect()
    }

    fn plaid(&self, q: &[f32], r: &ResolvedSearch, allowed: Option<&Allowed>) -> Result<Vec<Hit>> {
        let dim = self.dim();
        let nq = q.len() / dim;
        let k = self.manifest.n_centroids;
        // Centroid-major scores: row c holds centroid c against every query token, so the
        // per-token max over a document's codes reads contiguous rows. Blocks of centroids
        // go to different cores.
        let qb = SkinnyB::new(q, dim);
        let mut cs = vec![0f32; k * nq];
        cs.par_chunks_mut(CENTROID_BLOCK * nq)
            .zip(self.centroids().par_chunks(CENTROID_BLOCK * dim))
            .for_each(|(out, cent)| tartan_kernels::skinny_matmul(cent, &qb, out));
        let keep: Vec<bool> = cs
            .chunks_exact(nq)
            .map(|row| {
                row.iter().copied().fold(f32::NEG_INFINITY, f32::max) >= r.centroid_score_threshold
            })
            .collect();

        // Stage 1: candidates per segment. A selective filter scores every matching document;
        // a broad one widens probing until enough matching candidates turn up.
        let scan = allowed.is_some_and(|a| a.filtered && a.count <= scan_limit(r));
        let mut cands: Vec<Vec<u32>> = vec![Vec::new(); self.segments.len()];
        let mut ncells = r.ncells;
        loop {
            let cells = if scan { Vec::new() } else { probe(&cs, nq, ncells) };
            let mut n = 0;
            for (si, seg) in self.segments.iter().enumerate() {
                let c = &mut cands[si];
                match allowed {
                    Some(a) if scan => {
                        c.clear();
                        c.extend(a.sets[si].iter().map(|d| d as u32));
                    }
                    Some(a) => {
                        seg.ivf().candidates(&cells, c);
                        c.retain(|&d| a.sets[si].contains(d as usize));
                    }
                    None => seg.ivf().candidates(&cells, c),
                }
                n += c.len();
            }
            let widen = allowed.is_some_and(|a| a.filtered) && !scan && n < r.ndocs;
            if !widen || ncells >= k {
                break;
            }
            ncells = (ncells * 2).min(k);
        }

        // Stage 2: approximate scores over the candidates, ignoring pruned centroids; blocks
        // of candidates in parallel, each keeping its own best, merged after.
        let blocks: Vec<Vec<Hit>> = self
            .segments
            .iter()
            .enumerate()
            .flat_map(|(si, _)| cands[si].chunks(SCORE_BLOCK).map(move |b| (si, b)))
            .collect::<Vec<_>>()
            .into_par_iter()
            .map_init(
                || vec![0f32; nq],
                |acc, (si, block)| {
                    let (seg, base) = (&self.segments[si], self.doc_bases[si] as u32);
                    let mut top = TopK::new(r.ndocs);
                    for &d in block {
                        let score = approx_score(seg.codes(d as usize), &cs, nq, Some(&keep), acc)
                            .ok_or_else(|| self.corrupt_codes(si))?;
                        top.push(Hit { doc: base + d, score });
                    }
                    Ok(top.into_sorted())
                },
            )
            .collect::<Result<_>>()?;
        let mut stage2 = TopK::new(r.ndocs);
        blocks.into_iter().flatten().for_each(|h| stage2.push(h));

        // Stage 3: the same without pruning, on the survivors.
        let survivors = stage2.into_sorted();
        let rescored: Vec<Vec<Hit>> = survivors
            .par_chunks(SCORE_BLOCK)
            .map_init(
                || vec![0f32; nq],
                |acc, block| {
                    block
                        .iter()
                        .map(|h| {
                            let (si, d) = self.locate(h.doc);
                            approx_score(self.segments[si].codes(d), &cs, nq, None, acc)
                                .map(|score| Hit { doc: h.doc, score })
                                .ok_or_else(|| self.corrupt_codes(si))
                        })
                        .collect()
                },
            )
            .collect::<Result<_>>()?;
        let mut stage3 = TopK::new((r.ndocs / 4).max(r.k));
        rescored.into_iter().flatten().for_each(|h| stage3.push(h));

        // Stage 4: decompress and score exactly.
        let finalists = stage3.into_sorted();
        let exact: Vec<Vec<Hit>> = finalists
            .par_chunks(EXACT_BLOCK)
            .map_init(Scratch::default, |sc, block| {
                block
                    .iter()
                    .map(|h| {
                        let (si, d) = self.locate(h.doc);
                        Ok(Hit { doc: h.doc, score: self.exact_score(si, d, &qb, &cs, sc)? })
                    })
                    .collect()
            })
            .collect::<Result<_>>()?;
        let mut top = TopK::new(r.k);
        exact.into_iter().flatten().for_each(|h| top.push(h));
        Ok(top.into_sorted())
    }

    /// MaxSim of the query (`qb`) and document `d` of segment `si`, decompressed a tile of
    /// tokens at a time and multiplied with the query while the tile is in cache (writing the
    /// whole document out first cost more than the arithmetic). Only residuals are decoded:
    /// a token's score is its centroid's score from `cs` plus the query times its residual,
    /// which spares reading a 1.5 KB centroid row per token from a table far beyond cache.
    fn exact_score(
        &self,
        si: usize,
        d: usize,
        qb: &SkinnyB,
        cs: &[f32],
        sc: &mut Scratch,
    ) -> Result<f32> {
        let dim = self.dim();
        let nq = qb.n();
        let codec = &self.codebook.codec;
        let bpt = codec.bytes_per_token();
        let seg = &self.segments[si];
        let resid = seg.residuals(d);
        let Scratch { codes, tile, prod, best } = sc;
        codes.clear();
        seg.codes(d).for_each(|c| codes.push(c));
        if codes.iter().any(|&c| c as usize >= self.manifest.n_centroids) {
            return Err(self.corrupt_codes(si));
        }
        best.clear();
        best.resize(nq, f32::NEG_INFINITY);
        tile.resize(TILE * dim, 0.0);
        prod.resize(TILE * nq, 0.0);
        for (ti, chunk) in codes.chunks(TILE).enumerate() {
            for j in 0..chunk.len() {
                let t = ti * TILE + j;
                codec.decode_residual(
                    &resid[t * bpt..(t + 1) * bpt],
                    &mut tile[j * dim..(j + 1) * dim],
                );
            }
            let n = chunk.len();
            tartan_kernels::skinny_matmul(&tile[..n * dim], qb, &mut prod[..n * nq]);
            for (row, &c) in prod[..n * nq].chunks_exact_mut(nq).zip(chunk) {
                for (p, s) in row.iter_mut().zip(&cs[c as usize * nq..][..nq]) {
                    *p += s;
                }
                tartan_kernels::max_assign(best, row);
            }
        }
        Ok(best.iter().sum())
    }

    /// Decompresses document `d` of segment `si` into `out` (`n_tokens × dim`).
    pub(crate) fn decompress_into(&self, si: usize, d: usize, out: &mut Vec<f32>) -> Result<()> {
        out.clear();
        self.append_decompressed(si, d, out)
    }

    /// Appends document `d` of segment `si`, decompressed (`n_tokens × dim`), to `out`.
    fn append_decompressed(&self, si: usize, d: usize, out: &mut Vec<f32>) -> Result<()> {
        let dim = self.dim();
        let k = self.manifest.n_centroids;
        let centroids = self.centroids();
        let codec = &self.codebook.codec;
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

    fn corrupt_codes(&self, si: usize) -> IndexError {
        IndexError::Corrupt {
            path: self.segments[si].file.path.clone(),
            reason: "a token's centroid id is out of range".into(),
        }
    }
}

/// Live documents matching the search's filter, per segment.
struct Allowed {
    sets: Vec<Bitmap>,
    count: usize,
    filtered: bool,
}

/// A filter matching at most this many documents scores all of them instead of probing:
/// approximate scoring of 8·ndocs documents costs about what probing does at the default
/// settings, and recall is then limited only by the approximate passes, not by the cells.
fn scan_limit(r: &ResolvedSearch) -> usize {
    8 * r.ndocs
}

/// The sorted, distinct union of each query token's `ncells` best centroids (ties to the
/// lower id).
fn probe(cs: &[f32], nq: usize, ncells: usize) -> Vec<u32> {
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
    for (c, row) in cs.chunks_exact(nq).enumerate() {
        for (j, &s) in row.iter().enumerate() {
            let b = &mut best[j * take..(j + 1) * take];
            if s > b[take - 1].0 {
                let mut i = take - 1;
                while i > 0 && b[i - 1].0 < s {
                    b[i] = b[i - 1];
                    i -= 1;
                }
                b[i] = (s, c as u32);
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

/// Σ over query tokens of the best centroid score among the document's codes. With `keep`,
/// pruned centroids are skipped and a token with no kept centroid contributes 0 (PLAID's
/// first pass); without, every code counts. `None` if a code is out of range (corruption).
fn approx_score(
    codes: Codes<'_>,
    cs: &[f32],
    nq: usize,
    keep: Option<&[bool]>,
    acc: &mut [f32],
) -> Option<f32> {
    acc.fill(if keep.is_some() { 0.0 } else { f32::NEG_INFINITY });
    let mut ok = true;
    codes.for_each(|c| {
        let c = c as usize;
        match cs.get(c * nq..(c + 1) * nq) {
            Some(row) => {
                if keep.is_none_or(|k| k[c]) {
                    tartan_kernels::max_assign(acc, row);
                }
            }
            None => ok = false,
        }
    });
    ok.then(|| acc.iter().sum())
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

    #[test]
    fn approx_score_prunes_and_flags_bad_codes() {
        let cs = [0.9, 0.1, 0.2, 0.6, 0.4, 0.4];
        let mut acc = vec![0.0; 2];
        let codes = [0u16, 1];
        assert_eq!(approx_score(Codes::U16(&codes), &cs, 2, None, &mut acc), Some(0.9 + 0.6));
        let keep = [true, false, true];
        assert_eq!(
            approx_score(Codes::U16(&codes), &cs, 2, Some(&keep), &mut acc),
            Some(0.9 + 0.1)
        );
        assert_eq!(approx_score(Codes::U16(&[7]), &cs, 2, None, &mut acc), None);
    }
}
