//! Every default a front end shows, and the mapping from what a user gives to the library's
//! parameters, stated once.
//!
//! The command line, the server and the Python module parse options in their own way (clap
//! flags, JSON fields, keyword arguments) into [`BuildSettings`] and [`QuerySettings`], and
//! take their defaults from the constants here, so that a default changes in one place and
//! every front end shows the new one. `docs/params.md` describes each knob; a test checks that
//! the CLI's help, the Python stubs and that page agree with these values.

use std::time::Duration;

use crate::error::{Error, Result};
use tartan_index::{Assignment, Buckets, Filter, IndexParams, KMeansAlgorithm, SearchParams};

pub use tartan_index::{
    DEFAULT_BUCKETS, DEFAULT_K, DEFAULT_KMEANS_ITERS, DEFAULT_MEMORY, DEFAULT_NBITS, DEFAULT_SEED,
};

/// How many first-stage hits a rerank reads by default: enough to lift a relevant passage
/// from the second page, few enough for a CPU cross-encoder per query.
pub const DEFAULT_RERANK_DEPTH: usize = 50;

/// Hits per query of a batch run written as a TREC run (`tartan search --queries`,
/// `tartan exact`, `tartan sweep`): Recall@100 needs 100.
pub const DEFAULT_RUN_K: usize = 100;

/// How long each request to a remote shard may take, in milliseconds.
pub const DEFAULT_DEADLINE_MS: u64 = 10_000;

/// The default [`ShardPolicy::deadline`].
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(DEFAULT_DEADLINE_MS);

/// What to do about remote shards. Defaults: 10 s per shard, partial answers allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardPolicy {
    /// How long a remote shard may take to answer each request, connection included. A search
    /// asks a remote shard twice (candidates, then exact scores), so it waits at most twice
    /// this for a shard that answers slowly.
    pub deadline: Duration,
    /// Fail with [`Error::Incomplete`](crate::Error::Incomplete) instead of answering from the shards that answered.
    pub require_all: bool,
}

impl Default for ShardPolicy {
    fn default() -> Self {
        Self { deadline: DEFAULT_DEADLINE, require_all: false }
    }
}

/// Codebook and build settings as a user gives them, with [`Default`] the documented
/// defaults. A field left `None` lets the library decide (a formula, or a given codebook).
#[derive(Debug, Clone, PartialEq)]
pub struct BuildSettings {
    /// Residual bits per dimension (1, 2, 4 or 8).
    pub nbits: u8,
    /// Codebook size K (default: ColBERT's formula).
    pub n_centroids: Option<usize>,
    /// k-means passes.
    pub kmeans_iters: usize,
    /// Documents sampled for training (default: ColBERT's formula).
    pub sample_docs: Option<usize>,
    /// Seed of sampling and k-means.
    pub seed: u64,
    /// The build's memory budget in bytes (default [`DEFAULT_MEMORY`], 2 GiB).
    pub memory: Option<u64>,
    /// L2-normalise decoded tokens (default: on for a trained codebook; a given one decides).
    pub normalize_decoded: Option<bool>,
    /// How residual buckets are placed.
    pub buckets: Buckets,
    /// Which k-means trains the centroids.
    pub kmeans: KMeansAlgorithm,
    /// Compare every token with every centroid instead of the grouped search.
    pub exact_assign: bool,
    /// Groups of centroids searched per token by the grouped search (default 8).
    pub probes: Option<usize>,
    /// Replace an existing index in the target directory.
    pub overwrite: bool,
}

impl Default for BuildSettings {
    fn default() -> Self {
        Self {
            nbits: DEFAULT_NBITS,
            n_centroids: None,
            kmeans_iters: DEFAULT_KMEANS_ITERS,
            sample_docs: None,
            seed: DEFAULT_SEED,
            memory: None,
            normalize_decoded: None,
            buckets: DEFAULT_BUCKETS,
            kmeans: KMeansAlgorithm::Blocked,
            exact_assign: false,
            probes: None,
            overwrite: false,
        }
    }
}

impl BuildSettings {
    /// The library's parameters for these settings (checked when the build or training
    /// starts, as [`IndexParams`] always is).
    pub fn params(&self) -> IndexParams {
        let mut p = IndexParams::new()
            .nbits(self.nbits)
            .kmeans_iters(self.kmeans_iters)
            .kmeans_algorithm(self.kmeans)
            .seed(self.seed)
            .buckets(self.buckets)
            .overwrite(self.overwrite);
        if self.exact_assign {
            p = p.assignment(Assignment::Exact);
        }
        if let Some(n) = self.probes {
            p = p.probes(n);
        }
        // Only an explicit choice is passed on: otherwise a given codebook decides.
        if let Some(on) = self.normalize_decoded {
            p = p.normalize_decoded(on);
        }
        if let Some(k) = self.n_centroids {
            p = p.n_centroids(k);
        }
        if let Some(n) = self.sample_docs {
            p = p.sample_docs(n);
        }
        if let Some(bytes) = self.memory {
            p = p.memory(bytes);
        }
        p
    }
}

/// Search settings as a user gives them: every field optional; `k` defaults by front end
/// ([`DEFAULT_K`] for one query, [`DEFAULT_RUN_K`] for a run), the rest by `k`
/// ([`SearchParams`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuerySettings {
    /// Hits per query.
    pub k: Option<usize>,
    /// Centroids probed per query token.
    pub ncells: Option<usize>,
    /// Candidates kept after the pruned approximate pass.
    pub ndocs: Option<usize>,
    /// Centroid score threshold of the pruned pass.
    pub centroid_score_threshold: Option<f32>,
    /// A metadata filter in the language of docs/filters.md.
    pub filter: Option<String>,
}

impl QuerySettings {
    /// The search parameters, with `default_k` when no `k` was given; every value checked
    /// (errors name the setting), the filter parsed.
    pub fn params(&self, default_k: usize) -> Result<SearchParams> {
        let mut p = SearchParams::new(self.k.unwrap_or(default_k));
        if let Some(n) = self.ncells {
            p = p.ncells(n);
        }
        if let Some(n) = self.ndocs {
            p = p.ndocs(n);
        }
        if let Some(t) = self.centroid_score_threshold {
            p = p.centroid_score_threshold(t);
        }
        if let Some(f) = &self.filter {
            p = p.filter(Filter::parse(f)?);
        }
        p.resolve()?;
        Ok(p)
    }
}

/// The remote-shard policy for a deadline in milliseconds.
pub fn shard_policy(deadline_ms: u64, require_all: bool) -> Result<ShardPolicy> {
    if deadline_ms == 0 {
        return Err(Error::Param { name: "deadline_ms", reason: "must be at least 1".into() });
    }
    Ok(ShardPolicy { deadline: Duration::from_millis(deadline_ms), require_all })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_defaults_are_the_libraries() {
        assert_eq!(BuildSettings::default().params(), IndexParams::new());
        let p = BuildSettings { nbits: 4, n_centroids: Some(64), ..Default::default() }.params();
        assert_eq!(p, IndexParams::new().nbits(4).n_centroids(64));
    }

    #[test]
    fn query_settings_name_the_bad_one() {
        assert_eq!(QuerySettings::default().params(DEFAULT_K).unwrap(), SearchParams::default());
        let p = QuerySettings { k: Some(7), ..Default::default() }.params(DEFAULT_RUN_K).unwrap();
        assert_eq!(p.k(), 7);
        let bad = |s: QuerySettings| s.params(DEFAULT_K).unwrap_err().to_string();
        assert!(bad(QuerySettings { k: Some(0), ..Default::default() }).contains('k'));
        let e = bad(QuerySettings { ndocs: Some(3), ..Default::default() });
        assert!(e.contains("ndocs"), "{e}");
        let e = bad(QuerySettings { filter: Some("year >=".into()), ..Default::default() });
        assert!(e.contains("filter"), "{e}");
        assert!(shard_policy(0, false).is_err());
        assert_eq!(shard_policy(DEFAULT_DEADLINE_MS, false).unwrap(), ShardPolicy::default());
    }
}
