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
//!    from centroid ids alone (pruned, then in full), and reranks the best by MaxSim on
//!    decompressed vectors ([`tartan_maxsim`]; the products are taken in 16-bit fixed point,
//!    so scores are within a relative 1e-4 of `f32`'s, typically 1e-5).
//!
//! On disk an index is a directory holding `meta.json` (the manifest of the published
//! generation), one codebook file, immutable segment files and their deletion bitmaps; the
//! normative description is `docs/format.md`. Builds publish atomically; opening never writes.
//!
//! Changes go through the index's one [`IndexWriter`] (a lock file keeps out a second one):
//! it stages adds (new segments encoded with the existing codebook), deletes by external id
//! and upserts, and [`IndexWriter::commit`] publishes them as one new generation. Readers keep
//! the generation they opened. [`Filter`]s restrict search to documents whose metadata
//! ([`Extras`]) matches.
//!
//! The crate is in layers, each using only those below it: `format` (the container every file
//! shares, the manifest, a collection's shard list, the writer's lock; `docs/format.md`); the
//! [`Codebook`] as a pure model of what codes mean, and beside it the [`Scorer`] that keeps
//! what search derives from it (fixed-point tables, score buffers) for every index of that
//! codebook; segments with their deletion bitmaps and [`Extras`] (texts and metadata, the
//! payload stored beside the vectors); the opened [`Index`]; and above it `search` (queries,
//! probing, approximate and exact scoring, the segment pool that runs PLAID's stages) and
//! `write` (training, encoding, building, importing, [`IndexWriter`]).
//!
//! ```
//! use ndarray::ArrayView2;
//! use tartan_index::{Extras, Filter, Index, IndexParams, IndexWriter, NoProgress, SearchParams};
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
//! // Delete one document, add two more with metadata, publish both changes at once.
//! let mut writer = IndexWriter::open(&path)?;
//! writer.delete(&[hits[0].id.as_str()])?;
//! let more = tartan_synth::SynthParams::new(2).dim(32).seed(2).generate().docs; // ids d0, d1
//! let more = tartan_embeddings::Embeddings::from_parts(
//!     32, &[more.doc_len(0) as u64, more.doc_len(1) as u64],
//!     vec!["new-a".into(), "new-b".into()],
//!     [more.doc(0), more.doc(1)].concat(), Default::default())?;
//! let meta = [serde_json::json!({"lang": "en"}), serde_json::json!({"lang": "de"})];
//! writer.add(&more, &Extras::new().metadata(&meta), &NoProgress)?;
//! writer.commit()?;
//!
//! let reopened = Index::open(&path)?;
//! reopened.verify()?;
//! assert_eq!(reopened.n_docs(), 301);
//! let german = SearchParams::new(5).filter(Filter::parse(r#"lang = "de""#)?);
//! let hits = reopened.search(ArrayView2::from_shape((q.len() / 32, 32), &q)?, &german)?;
//! assert_eq!(hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["new-b"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

// Layers, bottom up: the format on disk; the codebook (a pure model) and its search tables;
// segments and the payload stored beside them; the opened index; search and write above it.
mod budget;
mod codebook;
mod error;
mod filter;
mod format;
mod index;
mod params;
mod payload;
mod scorer;
mod search;
mod segment;
mod write;

pub use budget::{DEFAULT_MEMORY, MIN_MEMORY};
pub use codebook::{Codebook, TrainInfo, CODEBOOK_FILE};
pub use error::{IndexError, Result};
pub use filter::{Filter, MAX_FILTER_DEPTH, MAX_FILTER_LEN};
pub use format::collection::{
    relative_path, CollectionManifest, ShardEntry, ShardLocation, COLLECTION_FILE,
    COLLECTION_VERSION,
};
pub use format::container::FORMAT_VERSION;
pub use format::lock::{WriterLock, LOCK_FILE};
pub use format::manifest::{BuildInfo, FileRef, Manifest, SegmentMeta, META_FILE};
pub use format::CodebookId;
pub use index::{Index, IndexStats};
pub use params::{
    default_n_centroids, default_sample_docs, IndexParams, ResolvedSearch, SearchParams,
    DEFAULT_BUCKETS, DEFAULT_K, DEFAULT_KMEANS_ITERS, DEFAULT_NBITS, DEFAULT_SEED,
};
pub use payload::Extras;
pub use scorer::Scorer;
pub use search::{
    check_query, select_finalists, Candidate, PreparedQuery, SearchHit, ShardHit, ShardSet,
};
pub use tartan_codec::Buckets;
pub use tartan_kmeans::Algorithm as KMeansAlgorithm;
pub use tartan_kmeans::Assignment;
pub use write::import::{EncodedDocs, TokenSink, TokenStream};
pub use write::writer::{CommitStats, IndexWriter};

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
