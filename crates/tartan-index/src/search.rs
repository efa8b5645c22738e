//! PLAID search: probe, approximate scores from centroid ids (pruned, then full), exact
//! MaxSim on decompressed residuals.

use ndarray::ArrayView2;
use rayon::prelude::*;
use tartan_maxsim::{Hit, MaxSimScratch, TopK};

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

/// Per-query working memory, reused across the stages.
#[derive(Default)]
struct Scratch {
    acc: Vec<f32>,
    doc: Vec<f32>,
    maxsim: MaxSimScratch,
}

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
        // per-token max over a document's codes reads contiguous rows.
        let mut cs = vec![0f32; k * nq];
        tartan_kernels::matmul_nt(self.centroids(), q, dim, &mut cs);
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

        let mut sc = Scratch::default();
        sc.acc.resize(nq, 0.0);
        // Stage 2: approximate scores over the candidates, ignoring pruned centroids.
        let mut stage2 = TopK::new(r.ndocs);
        for (si, seg) in self.segments.iter().enumerate() {
            let base = self.doc_bases[si] as u32;
            for &d in &cands[si] {
                let score = approx_score(seg.codes(d as usize), &cs, nq, Some(&keep), &mut sc.acc)
                    .ok_or_else(|| self.corrupt_codes(si))?;
                stage2.push(Hit { doc: base + d, score });
            }
        }
        // Stage 3: the same without pruning, on the survivors.
        let mut stage3 = TopK::new((r.ndocs / 4).max(r.k));
        for h in stage2.into_sorted() {
            let (si, d) = self.locate(h.doc);
            let score = approx_score(self.segments[si].codes(d), &cs, nq, None, &mut sc.acc)
                .ok_or_else(|| self.corrupt_codes(si))?;
            stage3.push(Hit { doc: h.doc, score });
        }
        // Stage 4: decompress and score exactly.
        let mut top = TopK::new(r.k);
        for h in stage3.into_sorted() {
            let (si, d) = self.locate(h.doc);
            self.decompress_into(si, d, &mut sc.doc)?;
            let score = tartan_maxsim::maxsim(q, &sc.doc, dim, &mut sc.maxsim);
            top.push(Hit { doc: h.doc, score });
        }
        Ok(top.into_sorted())
    }

    /// Decompresses document `d` of segment `si` into `out` (`n_tokens × dim`).
    pub(crate) fn decompress_into(&self, si: usize, d: usize, out: &mut Vec<f32>) -> Result<()> {
        let dim = self.dim();
        let k = self.manifest.n_centroids;
        let centroids = self.centroids();
        let codec = &self.codebook.codec;
        let bpt = codec.bytes_per_token();
        let seg = &self.segments[si];
        let resid = seg.residuals(d);
        out.resize(resid.len() / bpt * dim, 0.0);
        let mut t = 0;
        let mut bad = false;
        for_codes(seg.codes(d), |c| {
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

/// The sorted, distinct union of each query token's `ncells` best centroids.
fn probe(cs: &[f32], nq: usize, ncells: usize) -> Vec<u32> {
    let k = cs.len() / nq;
    let take = ncells.min(k);
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
    cells.sort_unstable();
    cells.dedup();
    cells
}

#[inline]
fn for_codes(codes: Codes<'_>, mut f: impl FnMut(u32)) {
    match codes {
        Codes::U16(c) => c.iter().for_each(|&c| f(c as u32)),
        Codes::U32(c) => c.iter().for_each(|&c| f(c)),
    }
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
    for_codes(codes, |c| {
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
