//! The shard's half of the two-round protocol of a search split over servers; the
//! coordinator's half is [`Searcher::search_batch`] with [`RemoteShard`](crate::RemoteShard)
//! as the client. A server only routes `/search/candidates` and `/search/score` here, so both
//! halves change together, in this crate.
//!
//! Round 1 ([`Searcher::shard_candidates`]) runs stages 1 to 3 over the searcher's local
//! shards as one pool and returns every query's surviving candidates with both approximate
//! scores. The coordinator chooses the finalists over every shard's lists, as one index would
//! choose them. Round 2 ([`Searcher::shard_scores`]) scores the chosen documents exactly.

use ndarray::ArrayView2;
use tartan_index::{Index, PreparedQuery, SearchParams, ShardSet};

use crate::error::{Error, Result};
use crate::searcher::Searcher;
use crate::wire::HitJson;

/// Round 1's answer: the pool's stored documents and, per query, `(doc, pruned, full)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardCandidates {
    /// Documents stored in the pool (deleted ones included): bounds the selection as a single
    /// index's does.
    pub n_stored: u64,
    /// Per query, `(doc, pruned score, full score)`, best pruned score first.
    pub lists: Vec<Vec<(u32, f32, f32)>>,
}

impl Searcher {
    /// The local shards as one pool; a searcher with a remote shard cannot answer as a shard
    /// of another (its documents are not all here).
    fn local_pool(&self) -> Result<ShardSet<'_>> {
        let local =
            self.all_local("a collection with remote shards cannot be a shard of another")?;
        Ok(ShardSet::new(&local)?)
    }

    /// Every shard's index, in shard order; the first remote shard is refused with `reason`.
    fn all_local(&self, reason: &'static str) -> Result<Vec<&Index>> {
        self.shards()
            .iter()
            .map(|sh| {
                sh.index()
                    .ok_or_else(|| Error::RemoteShard { shard: sh.name().to_string(), reason })
            })
            .collect()
    }

    /// Every live id of the local shards, in shard order (what collection management asks a
    /// server that is a shard).
    pub fn local_ids(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for index in self.all_local("ask its server")? {
            out.extend(index.ids()?.into_iter().map(str::to_string));
        }
        Ok(out)
    }

    fn prepare_all(&self, queries: &[ArrayView2<'_, f32>]) -> Result<Vec<PreparedQuery>> {
        let sc = self.scorer().expect("a searcher whose shards are all local has a codebook");
        let prepared = queries.iter().enumerate().map(|(i, q)| sc.prepare(q.view(), i));
        Ok(prepared.collect::<tartan_index::Result<_>>()?)
    }

    /// Round 1 as a shard answers it: stages 1 to 3 of every query over the local shards.
    pub fn shard_candidates(
        &self,
        queries: &[ArrayView2<'_, f32>],
        params: &SearchParams,
    ) -> Result<ShardCandidates> {
        let pool = self.local_pool()?;
        let lists = pool.candidates_batch(&self.prepare_all(queries)?, params)?;
        Ok(ShardCandidates {
            n_stored: pool.n_docs(),
            lists: lists
                .into_iter()
                .map(|l| l.into_iter().map(|c| (c.doc, c.pruned, c.full)).collect())
                .collect(),
        })
    }

    /// Round 2 as a shard answers it: the exact scores of documents `docs[i]` (numbers from
    /// round 1 of this same opened generation) for query `i`, best first, with their stored
    /// texts when asked.
    pub fn shard_scores(
        &self,
        queries: &[ArrayView2<'_, f32>],
        docs: &[Vec<u32>],
        with_text: bool,
    ) -> Result<Vec<Vec<HitJson>>> {
        let pool = self.local_pool()?;
        let lists = pool.score_batch(&self.prepare_all(queries)?, docs)?;
        lists
            .into_iter()
            .map(|hits| {
                hits.into_iter()
                    .map(|h| {
                        let text =
                            if with_text { self.stored_text(h.shard, h.hit.doc)? } else { None };
                        Ok(HitJson {
                            rerank_score: None,
                            id: h.hit.id,
                            score: h.hit.score,
                            doc: None,
                            shard: None,
                            text,
                        })
                    })
                    .collect()
            })
            .collect()
    }
}
