//! tartan's library facade: what the command line, the server and the Python module share,
//! so that none of them holds logic another would have to copy.
//!
//! * **Ingest** ([`load_documents`], [`read_metadata`], [`load_queries`]): an embeddings
//!   directory, or with the `text` feature a corpus encoded by a model ([`text`]), with
//!   JSON-lines metadata beside it.
//! * **Codebooks and builds**: [`Codebook::train`] once on a sample, then
//!   [`Index::build`] with [`IndexParams::codebook`] for every shard, on any machine: the same
//!   documents and codebook give the same files.
//! * **Collections** ([`create_collection`], [`add_shard`], [`remove_shard`]): shards of one
//!   codebook, local directories or `tartan serve` URLs, named in a `collection.json`.
//! * **Search** ([`Searcher`]): an index or a collection alike. The query is scored against
//!   the codebook once, every shard searches, the top-k lists merge; remote shards answer
//!   within a deadline or are reported missing in the [`Coverage`].
//! * **Changes** ([`Writer`]): add, upsert, delete, compact on an index or a collection
//!   (every id routed to its shard).
//! * **Wire format** ([`wire`]): the JSON of `tartan serve`, shared by server and client.
//! * **Rerank** ([`rerank`], with the `text` feature): a cross-encoder reads the first hits
//!   again, query and passage together, and reorders them.
//! * **Explain** ([`explain`]): a document's score token by token, and what quantisation
//!   cost it.
//! * **Import** ([`import`]): a next-plaid index as a tartan index, without re-encoding.
//! * **Settings** ([`settings`]): every default a front end shows, and the mapping from
//!   user-given options to [`IndexParams`] and [`SearchParams`], stated once.
//! * **Measurement** ([`Latency`], [`sweep`]): percentiles computed one way everywhere, and
//!   the storage/quality/latency trade-off of a corpus, reference points beside it.
//!
//! ```
//! use std::sync::Arc;
//! use tartan::{Codebook, Index, IndexParams, NoProgress, SearchParams, Searcher, ShardSpec};
//!
//! let corpus = tartan_synth::SynthParams::new(400).dim(32).n_queries(2).seed(5).generate();
//! let dir = tempfile::tempdir()?;
//! // One codebook, trained on a sample; two shards built apart with it.
//! let codebook = Arc::new(Codebook::train(&corpus.docs, &IndexParams::new().nbits(2), &NoProgress)?);
//! let halves = [(0..200).collect::<Vec<_>>(), (200..400).collect()];
//! let mut shards = Vec::new();
//! for (i, half) in halves.iter().enumerate() {
//!     let path = dir.path().join(format!("shard{i}"));
//!     let p = IndexParams::new().codebook(codebook.clone());
//!     Index::build(&corpus.docs.select(half)?, &path, &p, &NoProgress)?;
//!     shards.push(ShardSpec::parse(path.to_str().unwrap()));
//! }
//! let coll = dir.path().join("coll");
//! tartan::create_collection(&coll, None, &shards)?;
//!
//! // Searched as one.
//! let searcher = Searcher::open(&coll)?;
//! let q = corpus.queries.doc(0);
//! let results = searcher.search(ndarray::ArrayView2::from_shape((q.len() / 32, 32), &q)?, &SearchParams::new(5))?;
//! assert_eq!((results.hits.len(), results.coverage.shards, results.coverage.answered), (5, 2, 2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod collection;
mod detect;
mod error;
mod exact_rank;
pub mod explain;
pub mod import;
mod ingest;
mod measure;
pub mod named;
mod protocol;
mod remote;
#[cfg(feature = "text")]
pub mod rerank;
mod searcher;
pub mod settings;
mod size;
pub mod sweep;
#[cfg(feature = "text")]
pub mod text;
pub mod wire;
mod writer;

pub use collection::{
    add_shard, create_collection, open_codebook, remove_shard, CollectionCommit, CollectionWriter,
    ShardSpec, COLLECTION_LOCK,
};
pub use detect::{detect, Found};
pub use error::{Error, Result};
pub use exact_rank::maxsim_rank;
pub use ingest::{load_documents, load_queries, read_metadata, Documents, IngestOptions, Part};
pub use measure::{timed_searches, Latency};
pub use protocol::ShardCandidates;
pub use remote::RemoteShard;
pub use searcher::{Coverage, Hit, Results, SearchOptions, Searcher, Shard};
pub use settings::ShardPolicy;
pub use size::parse_bytes;
pub use wire::Health;
pub use writer::{Committed, Writer};

pub use tartan_embeddings::{EmbError, Embeddings, Kind, LoadOptions, Precision};
#[cfg(feature = "text")]
pub use tartan_encoder::{Encoder, EncoderParams, Mode};
/// Qrels, TREC runs, nDCG/recall/MRR and BEIR directories ([`tartan_eval`]).
pub use tartan_eval as eval;
pub use tartan_index::{
    select_finalists, Assignment, Buckets, Candidate, Codebook, CodebookId, CollectionManifest,
    Extras, Filter, Index, IndexError, IndexParams, IndexStats, IndexWriter, KMeansAlgorithm,
    NoProgress, PreparedQuery, Progress, Scorer, SearchParams, ShardEntry, ShardLocation, ShardSet,
    DEFAULT_MEMORY, META_FILE,
};
/// Exact MaxSim over every document: the oracle PLAID's results are measured against.
pub use tartan_maxsim::exact_search;
/// Seeded synthetic corpora ([`tartan_synth`]): clustered, or drawn from a real corpus's
/// profile.
pub use tartan_synth as synth;

/// Codebook drift above which an index should be retrained: tokens 25% farther (in squared
/// distance) from their centroids than the codebook's training tokens lose noticeably more to
/// quantisation. See [`IndexStats::codebook_drift`].
pub const DRIFT_WARNING: f64 = 1.25;
