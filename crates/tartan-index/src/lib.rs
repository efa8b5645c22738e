//! tartan's index: build a PLAID index of late-interaction embeddings, open it, verify it,
//! search it.
//!
//! The pipeline, one crate per stage:
//!
//! 1. a sample of documents trains `K` centroids ([`tartan_kmeans`]);
//! 2. every token is stored as its nearest centroid's id plus its residual quantised to
//!    `nbits` per dimension ([`tartan_codec`]);
//! 3. an inverted file maps each centroid to the documents using it ([`tartan_ivf`]);
//! 4. [`Index::search`] probes the query tokens' nearest centroids, scores the candidates
//!    from centroid ids alone (pruned, then in full), and reranks the best by exact MaxSim on
//!    decompressed vectors ([`tartan_maxsim`]).
//!
//! On disk an index is a directory holding `meta.json` (the manifest of the published
//! generation), one codebook file and one or more immutable segment files; the normative
//! description is `docs/format.md`. Builds publish atomically; opening never writes.
//!
//! ```
//! use ndarray::ArrayView2;
//! use tartan_index::{Index, IndexParams, NoProgress, SearchParams};
//!
//! let corpus = tartan_synth::SynthParams::new(300).dim(32).n_queries(3).seed(1).generate();
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("idx");
//! let index = Index::build(&corpus.docs, &path, &IndexParams::new().nbits(4), &NoProgress)?;
//! assert_eq!(index.n_docs(), 300);
//!
//! let q = corpus.queries.doc(0);
//! let hits = index.search(ArrayView2::from_shape((q.len() / 32, 32), &q)?, &SearchParams::new(5))?;
//! assert_eq!(hits.len(), 5);
//! assert!(hits[0].score >= hits[4].score);
//!
//! let reopened = Index::open(&path)?;
//! reopened.verify()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod build;
mod codebook;
mod container;
mod deletes;
mod error;
mod extras;
mod filter;
mod index;
mod lock;
mod manifest;
mod params;
mod search;
mod segment;
mod writer;

pub use container::FORMAT_VERSION;
pub use error::{IndexError, Result};
pub use extras::Extras;
pub use filter::Filter;
pub use index::{Index, IndexStats};
pub use lock::LOCK_FILE;
pub use manifest::{BuildInfo, FileRef, Manifest, SegmentMeta, META_FILE};
pub use params::{
    default_n_centroids, default_sample_docs, IndexParams, ResolvedSearch, SearchParams,
};
pub use search::SearchHit;
pub use tartan_kmeans::Algorithm as KMeansAlgorithm;
pub use writer::{CommitStats, IndexWriter};

/// Receives progress of long work. The library prints nothing; the CLI draws bars.
pub trait Progress: Sync {
    /// A new stage starts; `total` units of work, or 0 when unknown.
    fn stage(&self, _name: &'static str, _total: u64) {}
    /// `n` more units of the current stage are done.
    fn advance(&self, _n: u64) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}
