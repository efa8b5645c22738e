//! Search, in layers over the index: a query is prepared once per codebook ([`query`]:
//! checked and scored against every centroid), cells are probed ([`probe`]), candidates are
//! scored from their codes ([`approx`]) and the best decompressed and scored exactly
//! ([`exact`]); [`pool`] runs PLAID's four stages over a pool of segments (one index's, or a
//! collection's shards). This module is the index's entry points.

use ndarray::ArrayView2;

use crate::error::Result;
use crate::params::SearchParams;
use crate::Index;

mod approx;
mod exact;
mod pool;
mod probe;
mod query;

pub use pool::{select_finalists, Candidate, SearchHit, ShardHit, ShardSet};
pub use query::{check_query, PreparedQuery};

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
