//! PLAID's stages over a pool of segments: those of one index, or of several indexes encoded
//! with one codebook (a collection's shards), numbered one after the other as if they were one
//! index. Searching shards as one pool returns exactly what one index of the same documents
//! in the same order returns.
//!
//! 1. candidates: the documents of the probed cells (or every document a selective filter
//!    allows);
//! 2. approximate scores from centroid ids, pruned centroids ignored: the best `ndocs` stay;
//! 3. the same without pruning: the best `max(ndocs / 4, k)` stay;
//! 4. exact MaxSim on decompressed residuals: the best `k`.
//!
//! Stages 1–3 give [`Candidate`]s, stage 4 scores chosen documents: the two rounds a
//! searcher runs against remote shards, with [`select_finalists`] choosing between them as
//! stages 2 and 3 would have chosen over all shards at once.

use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::ArrayView2;
use rayon::prelude::*;
use tartan_maxsim::{top_sorted, Hit};

use super::approx::{ApproxScratch, ByteScores};
use super::exact::Scratch;
use super::probe::{probe, scan_limit};
use super::query::PreparedQuery;
use crate::error::{IndexError, Result};
use crate::format::CodebookId;
use crate::params::{ResolvedSearch, SearchParams};
use crate::segment::deletes::Bitmap;
use crate::Index;

/// Candidates scored from codes per parallel task.
const SCORE_BLOCK: usize = 512;
/// Survivors rescored without pruning per parallel task (stage 3): ndocs is a few hundred, so
/// blocks of `SCORE_BLOCK` would leave every core but one idle.
const SURVIVOR_BLOCK: usize = 64;
/// Documents decompressed and scored exactly per parallel task: a light search scores k =
/// 100, and in blocks of 16 (7 tasks) one core could be left with 64 of them.
const EXACT_BLOCK: usize = 4;
/// How many candidates ahead stages 2 and 3 prefetch codes: a document's codes are a few
/// cache lines at a random place, and reading one takes about as long as a miss.
const PREFETCH_AHEAD: usize = 2;

/// One result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// External document id.
    pub id: String,
    /// MaxSim of the query and the decompressed document, within a relative 1e-4 (typically
    /// 1e-5): the products are taken in 16-bit fixed point ([`Scorer::prepare`]).
    pub score: f32,
    /// The document's position in this opened generation (for [`Index::text`]); not stable
    /// across generations, unlike `id`.
    pub doc: u64,
}

/// A document that survived the approximate passes, with both its scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Its number in the pool (see [`ShardSet`]).
    pub doc: u32,
    /// Approximate score with pruned centroids ignored (stage 2).
    pub pruned: f32,
    /// Approximate score from every code (stage 3).
    pub full: f32,
}

/// A hit of a [`ShardSet`]: the shard it came from and the hit as that shard's index gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardHit {
    /// Position of the shard in the set.
    pub shard: usize,
    /// The hit; `doc` is the document's position in that shard's index.
    pub hit: SearchHit,
}

/// Indexes encoded with one codebook, searched as one pool: document numbers run through the
/// first index's segments, then the second's, and so on. At most 2^32 − 1 documents.
#[derive(Debug)]
pub struct ShardSet<'a> {
    indexes: Vec<&'a Index>,
    /// (shard, segment) of each part of the pool.
    parts: Vec<(usize, usize)>,
    /// First pool document number of each part, and the total at the end.
    bases: Vec<u64>,
    codebook: CodebookId,
}

/// Documents search may return, per part: live ones matching the filter.
struct Allowed {
    sets: Vec<Bitmap>,
    count: usize,
    filtered: bool,
}

impl<'a> ShardSet<'a> {
    /// A pool of `indexes`, which must share one codebook.
    pub fn new(indexes: &[&'a Index]) -> Result<Self> {
        let first = indexes.first().ok_or(IndexError::Param {
            name: "shards",
            reason: "a shard set needs at least one index".into(),
        })?;
        let codebook = first.codebook().id();
        let mut parts = Vec::new();
        let mut bases = vec![0u64];
        for (shard, index) in indexes.iter().enumerate() {
            if index.codebook().id() != codebook {
                return Err(IndexError::CodebookMismatch {
                    path: index.dir.clone(),
                    found: index.codebook().id().short(),
                    expected: codebook.short(),
                });
            }
            for (si, seg) in index.segments.iter().enumerate() {
                parts.push((shard, si));
                bases.push(bases.last().expect("non-empty") + seg.n_docs as u64);
            }
        }
        if *bases.last().expect("non-empty") > u32::MAX as u64 {
            return Err(IndexError::Param {
                name: "shards",
                reason: "more than 2^32 - 1 documents in one process: serve some shards remotely"
                    .into(),
            });
        }
        Ok(Self { indexes: indexes.to_vec(), parts, bases, codebook })
    }

    /// Documents stored in the pool (deleted ones included).
    pub fn n_docs(&self) -> u64 {
        *self.bases.last().expect("non-empty")
    }

    /// The shard (position in the set) holding pool document `doc`.
    pub fn shard_of(&self, doc: u32) -> usize {
        self.parts[self.locate(doc).0].0
    }

    /// Part and local document of a pool document number.
    fn locate(&self, doc: u32) -> (usize, usize) {
        let p = self.bases.partition_point(|&b| b <= doc as u64) - 1;
        (p, (doc as u64 - self.bases[p]) as usize)
    }

    fn check(&self, queries: &[PreparedQuery]) -> Result<()> {
        match queries.iter().find(|q| q.codebook_id() != self.codebook) {
            Some(q) => Err(IndexError::CodebookMismatch {
                path: self.indexes[0].dir.clone(),
                found: self.codebook.short(),
                expected: q.codebook_id().short(),
            }),
            None => Ok(()),
        }
    }

    fn allowed(&self, params: &SearchParams) -> Result<Option<Allowed>> {
        let filter = params.filter.as_ref();
        if filter.is_none() && self.indexes.iter().all(|i| i.manifest.n_deleted == 0) {
            return Ok(None);
        }
        let sets = self
            .parts
            .iter()
            .map(|&(sh, si)| self.indexes[sh].segments[si].allowed(filter))
            .collect::<Result<Vec<_>>>()?;
        let count = sets.iter().map(Bitmap::count).sum();
        Ok(Some(Allowed { sets, count, filtered: filter.is_some() }))
    }

    /// Searches prepared queries (in parallel): stages 1 to 4 over the whole pool.
    pub fn search_batch(
        &self,
        queries: &[PreparedQuery],
        params: &SearchParams,
    ) -> Result<Vec<Vec<ShardHit>>> {
        let r = params.resolve()?;
        self.check(queries)?;
        let allowed = self.allowed(params)?;
        in_pool(|| queries.par_iter().map(|q| self.search_one(q, &r, allowed.as_ref())).collect())
    }

    /// Checks, prepares (with the pool's codebook) and searches each query, in parallel. A
    /// query's centroid scores (`n_centroids × n_tokens` floats, a MiB at 8,192 centroids)
    /// live only while it is searched: preparing a whole batch first held them all at once
    /// (130 MiB for 100 queries) and read each back after it had left the cache. Fails on a
    /// bad query, naming its position.
    pub fn search_queries(
        &self,
        queries: &[ArrayView2<'_, f32>],
        params: &SearchParams,
    ) -> Result<Vec<Vec<ShardHit>>> {
        let r = params.resolve()?;
        let allowed = self.allowed(params)?;
        let scorer = self.indexes[0].scorer();
        in_pool(|| {
            queries
                .par_iter()
                .enumerate()
                .map(|(i, q)| {
                    let q = scorer.prepare(q.view(), i)?;
                    let hits = self.search_one(&q, &r, allowed.as_ref());
                    scorer.recycle_scores(q.cs);
                    hits
                })
                .collect()
        })
    }

    /// Stages 1 to 4 for one query.
    fn search_one(
        &self,
        q: &PreparedQuery,
        r: &ResolvedSearch,
        allowed: Option<&Allowed>,
    ) -> Result<Vec<ShardHit>> {
        let finalists: Vec<u32> = match self.approximate(q, r, allowed, finalist_cap(r))? {
            Approx::All(docs) => docs,
            Approx::Scored(cands) => {
                select_finalists(&[&cands], r, self.n_docs()).into_iter().map(|(_, d)| d).collect()
            }
        };
        let mut hits = self.exact(q, &finalists)?;
        hits.truncate(r.k);
        self.to_hits(hits)
    }

    /// Round 1 of a search split over machines: stages 1 to 3 for each prepared query, the
    /// surviving candidates with both approximate scores, best pruned score first.
    pub fn candidates_batch(
        &self,
        queries: &[PreparedQuery],
        params: &SearchParams,
    ) -> Result<Vec<Vec<Candidate>>> {
        let r = params.resolve()?;
        self.check(queries)?;
        let allowed = self.allowed(params)?;
        // Candidates are always scored here (other pools' may compete for the same places):
        // unscored only when there are none.
        in_pool(|| {
            queries
                .par_iter()
                .map(|q| match self.approximate(q, &r, allowed.as_ref(), 0)? {
                    Approx::All(_) => Ok(Vec::new()),
                    Approx::Scored(cands) => Ok(cands),
                })
                .collect()
        })
    }

    /// Round 2: exact MaxSim of the pool documents `docs[i]` for query `i`, best first.
    pub fn score_batch(
        &self,
        queries: &[PreparedQuery],
        docs: &[Vec<u32>],
    ) -> Result<Vec<Vec<ShardHit>>> {
        self.check(queries)?;
        if docs.len() != queries.len() {
            return Err(IndexError::Param {
                name: "docs",
                reason: format!("{} document lists for {} queries", docs.len(), queries.len()),
            });
        }
        if let Some(&d) = docs.iter().flatten().find(|&&d| d as u64 >= self.n_docs()) {
            return Err(IndexError::Param {
                name: "docs",
                reason: format!("document {d} is beyond the {} stored", self.n_docs()),
            });
        }
        in_pool(|| {
            queries.par_iter().zip(docs).map(|(q, ds)| self.to_hits(self.exact(q, ds)?)).collect()
        })
    }

    fn to_hits(&self, hits: Vec<Hit>) -> Result<Vec<ShardHit>> {
        hits.into_iter()
            .map(|h| {
                let (p, d) = self.locate(h.doc);
                let (shard, si) = self.parts[p];
                let index = self.indexes[shard];
                Ok(ShardHit {
                    shard,
                    hit: SearchHit {
                        id: index.segments[si].id(d)?.to_string(),
                        score: h.score,
                        doc: index.doc_bases[si] + d as u64,
                    },
                })
            })
            .collect()
    }

    /// Stages 1 to 3 for one query: candidates, the best `ndocs` by pruned score, each with
    /// its full approximate score. When stage 1 finds no more than `all_up_to` candidates,
    /// all of them, unscored.
    fn approximate(
        &self,
        q: &PreparedQuery,
        r: &ResolvedSearch,
        allowed: Option<&Allowed>,
        all_up_to: usize,
    ) -> Result<Approx> {
        let (cs, nq) = (&q.cs[..], q.n_tokens());
        let k = cs.len() / nq;
        // No collector is sized beyond the documents there are, whatever the settings say.
        let ndocs = r.ndocs.min(self.n_docs() as usize);

        // Stage 1: candidates per part. A selective filter scores every matching document;
        // a broad one widens probing until `ndocs` matching candidates turn up. With deletions
        // (and no filter), probing widens until at least k live candidates do, so that
        // deleted documents never cost hits.
        let scan = allowed.is_some_and(|a| a.filtered && a.count <= scan_limit(r));
        let wanted = match allowed {
            Some(a) if a.filtered => ndocs,
            Some(a) => r.k.min(a.count),
            None => 0,
        };
        let unneeded = AtomicBool::new(false);
        let stage1 = || {
            let mut cands: Vec<Vec<u32>> = vec![Vec::new(); self.parts.len()];
            let mut ncells = r.ncells;
            loop {
                let cells = if scan { Vec::new() } else { probe(cs, nq, ncells) };
                let mut n = 0;
                for (p, &(sh, si)) in self.parts.iter().enumerate() {
                    let seg = &self.indexes[sh].segments[si];
                    let c = &mut cands[p];
                    match allowed {
                        Some(a) if scan => {
                            c.clear();
                            c.extend(a.sets[p].iter().map(|d| d as u32));
                        }
                        Some(a) => {
                            seg.ivf().candidates(&cells, c);
                            c.retain(|&d| a.sets[p].contains(d as usize));
                        }
                        None => seg.ivf().candidates(&cells, c),
                    }
                    n += c.len();
                }
                let widen = !scan && n < wanted;
                if !widen || ncells >= k {
                    break;
                }
                ncells = (ncells * 2).min(k);
            }
            if cands.iter().map(Vec::len).sum::<usize>() <= all_up_to {
                unneeded.store(true, Ordering::Relaxed);
            }
            cands
        };
        // Stage 1 (probing and the inverted lists, one thread) runs beside the quantisation
        // of the byte table stage 2 reads (every core): one phase of the query instead of a
        // sequential stretch, during which the other cores went idle (and to sleep), then
        // a parallel one. When stage 1 finds so few candidates that every one goes on to
        // stage 4 whatever its approximate scores, it stops the table (a light search on the
        // synthetic 10k set finds 36–154 candidates for 100 places) and stages 2 and 3 are
        // skipped: the same documents are scored exactly, the same hits come out.
        let (cands, table) = rayon::join(stage1, || {
            ByteScores::unless(&unneeded, cs, nq, q.range, r.centroid_score_threshold)
        });
        let (Some(table), false) = (table, unneeded.load(Ordering::Relaxed)) else {
            let docs = cands.iter().enumerate().flat_map(|(p, c)| {
                let base = self.bases[p] as u32;
                c.iter().map(move |&d| base + d)
            });
            return Ok(Approx::All(docs.collect()));
        };

        // Stage 2: approximate scores over the candidates, ignoring pruned centroids; blocks
        // of candidates in parallel, then the best `ndocs` of all by selection.
        let blocks: Vec<Vec<Hit>> = cands
            .iter()
            .enumerate()
            .flat_map(|(p, c)| c.chunks(SCORE_BLOCK).map(move |b| (p, b)))
            .collect::<Vec<_>>()
            .into_par_iter()
            .map_init(ApproxScratch::default, |sc, (p, block)| {
                let (sh, si) = self.parts[p];
                let seg = &self.indexes[sh].segments[si];
                let base = self.bases[p] as u32;
                block
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| {
                        // Candidates are scattered over the segment: fetch the codes of the
                        // one PREFETCH_AHEAD places on while this one's are read.
                        if let Some(&next) = block.get(i + PREFETCH_AHEAD) {
                            seg.codes(next as usize).prefetch();
                        }
                        table
                            .score(seg.codes(d as usize), true, sc)
                            .map(|score| Hit { doc: base + d, score })
                            .ok_or_else(|| self.indexes[sh].corrupt_codes(si))
                    })
                    .collect()
            })
            .collect::<Result<_>>()?;

        // Stage 3's scores: the same without pruning, on the survivors.
        let survivors = top_sorted(blocks.concat(), ndocs);
        let full: Vec<Vec<Candidate>> = survivors
            .par_chunks(SURVIVOR_BLOCK)
            .map_init(ApproxScratch::default, |sc, block| {
                block
                    .iter()
                    .enumerate()
                    .map(|(i, h)| {
                        if let Some(next) = block.get(i + PREFETCH_AHEAD) {
                            let (p, d) = self.locate(next.doc);
                            let (sh, si) = self.parts[p];
                            self.indexes[sh].segments[si].codes(d).prefetch();
                        }
                        let (p, d) = self.locate(h.doc);
                        let (sh, si) = self.parts[p];
                        let codes = self.indexes[sh].segments[si].codes(d);
                        table
                            .score(codes, false, sc)
                            .map(|full| Candidate { doc: h.doc, pruned: h.score, full })
                            .ok_or_else(|| self.indexes[sh].corrupt_codes(si))
                    })
                    .collect()
            })
            .collect::<Result<_>>()?;
        Ok(Approx::Scored(full.into_iter().flatten().collect()))
    }

    /// Stage 4: decompresses and scores `docs` exactly; best first.
    fn exact(&self, q: &PreparedQuery, docs: &[u32]) -> Result<Vec<Hit>> {
        // One codebook for the pool, so one table for every part.
        let lut = match self.indexes.first() {
            Some(index) if !docs.is_empty() => index.nibble_table(q),
            _ => None,
        };
        let exact: Vec<Vec<Hit>> = docs
            .par_chunks(EXACT_BLOCK)
            .map_init(Scratch::default, |sc, block| {
                block
                    .iter()
                    .enumerate()
                    .map(|(i, &doc)| {
                        if let Some(&next) = block.get(i + 1) {
                            let (p, d) = self.locate(next);
                            let (sh, si) = self.parts[p];
                            self.indexes[sh].prefetch_doc(si, d);
                        }
                        let (p, d) = self.locate(doc);
                        let (sh, si) = self.parts[p];
                        let score = self.indexes[sh].exact_score(si, d, q, lut.as_ref(), sc)?;
                        Ok(Hit { doc, score })
                    })
                    .collect()
            })
            .collect::<Result<_>>()?;
        let mut hits: Vec<Hit> = exact.into_iter().flatten().collect();
        hits.sort_by(Hit::rank_cmp);
        Ok(hits)
    }
}

/// What stages 1 to 3 hand on to stage 4.
enum Approx {
    /// Every candidate (pool numbers), unscored: no more than stage 4 takes.
    All(Vec<u32>),
    /// The best `ndocs` by pruned score, with both approximate scores.
    Scored(Vec<Candidate>),
}

/// The most candidates [`select_finalists`] passes on to exact scoring: `ndocs / 4`, at
/// least `k` (and `ndocs ≥ k`).
fn finalist_cap(r: &ResolvedSearch) -> usize {
    (r.ndocs / 4).max(r.k)
}

/// Runs `f` on a worker of the current rayon pool (directly when already on one).
///
/// A parallel iterator does not move to the pool by itself: it runs on the calling thread
/// until it splits, and one query does not split. A single search called from outside the
/// pool therefore ran on the caller, and each of its parallel phases was sent to the pool
/// and waited for: the caller slept and was woken five times per query. Run inside the pool,
/// the phases start on a worker and the other workers, still awake from the phase before,
/// take their share at once.
fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

/// Stages 2 and 3's choice over candidate lists of several pools searched apart (in pool
/// order: list `i` before list `i + 1`, as if numbered one after the other): the best `ndocs`
/// by pruned score, then of those the best `max(ndocs / 4, k)` by full score, ties to the
/// earlier list and the lower document. `n_docs` is the documents stored over all pools.
/// Returns `(list, doc)` of the documents to score exactly.
pub fn select_finalists(
    lists: &[&[Candidate]],
    r: &ResolvedSearch,
    n_docs: u64,
) -> Vec<(usize, u32)> {
    let n_docs = n_docs.min(usize::MAX as u64) as usize;
    let mut all: Vec<(usize, Candidate)> =
        lists.iter().enumerate().flat_map(|(l, c)| c.iter().map(move |&c| (l, c))).collect();
    let order = |a: f32, b: f32, x: &(usize, Candidate), y: &(usize, Candidate)| {
        b.total_cmp(&a).then(x.0.cmp(&y.0)).then(x.1.doc.cmp(&y.1.doc))
    };
    all.sort_by(|x, y| order(x.1.pruned, y.1.pruned, x, y));
    all.truncate(r.ndocs.min(n_docs));
    all.sort_by(|x, y| order(x.1.full, y.1.full, x, y));
    all.truncate(finalist_cap(r).min(n_docs));
    all.into_iter().map(|(l, c)| (l, c.doc)).collect()
}
