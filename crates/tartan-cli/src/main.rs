//! `tartan`: build, search, evaluate and inspect PLAID indexes of late-interaction embeddings.
//!
//! The only crate that prints or reads the environment; everything else is in the libraries.

#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI's job

/// `println!` that ends the process quietly when stdout is closed (`tartan search | head`)
/// instead of panicking on the broken pipe.
macro_rules! outln {
    () => {
        $crate::write_stdout(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*))
    };
}

mod collection;
mod commands;
mod demo;
mod encode;
mod explain;
mod import;
mod inspect;
mod keys;
mod live;
mod progress;
mod search;
mod serve;
mod sweep;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tartan::settings;
use tartan::sweep::SweepParams;

/// PLAID-style compressed late-interaction (ColBERT) retrieval.
#[derive(Parser, Debug)]
#[command(name = "tartan", version, about)]
struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build an index from an embeddings directory (doc_embs.npy, doc_lens.npy, doc_ids.txt).
    Index(IndexArgs),
    /// Train a codebook (centroids and residual codec) on a sample, to build shards with
    /// (`tartan index --codebook`).
    Train(TrainArgs),
    /// Put shards of one codebook together as a collection, searched as one.
    #[command(subcommand)]
    Collection(collection::CollectionCmd),
    /// Search an index or a collection with the queries of an embeddings directory; write a
    /// TREC run.
    Search(SearchArgs),
    /// Brute-force exact MaxSim over every document (the oracle); write a TREC run.
    Exact(ExactArgs),
    /// Score a run: nDCG@10, Recall@100, MRR@10 against qrels; overlap with an oracle run.
    Eval(EvalArgs),
    /// Show an index's counts, sizes and inverted-list statistics (or a collection's shards,
    /// or a codebook).
    Inspect {
        /// Index, collection or codebook directory.
        index: PathBuf,
    },
    /// Recompute every checksum of an index and check its contents (every shard of a
    /// collection, and that no id is in two shards; or a codebook).
    Verify {
        /// Index, collection or codebook directory.
        index: PathBuf,
    },
    /// Add documents (embeddings directory, or text with --model) to an index, encoded with
    /// its codebook; publishes a new generation.
    Add(live::AddArgs),
    /// Delete documents by id (in a collection, each in its shard); publishes a new generation.
    Delete(live::DeleteArgs),
    /// Rewrite all segments into one without deleted documents (every shard of a collection).
    Compact {
        /// Index or collection directory.
        index: PathBuf,
    },
    /// Train a new codebook on the live documents and re-encode them.
    Retrain(live::RetrainArgs),
    /// Storage/quality/latency trade-off: build at every nbits (and K), search at every
    /// ncells × ndocs, beside exact MaxSim, float16 and a bi-encoder; CSV, JSON, SVG plots.
    Sweep(SweepArgs),
    /// Build and search a synthetic corpus at 1, 2 and 4 bits; print the trade-off table.
    Demo(DemoArgs),
    /// Write a seeded synthetic corpus (documents, queries, qrels) as an embeddings directory,
    /// streamed: any size fits in memory.
    Synth(SynthArgs),
    /// Encode a BEIR directory (corpus, split queries, qrels) into an embeddings directory.
    Encode(EncodeArgs),
    /// Serve an index or a collection over HTTP (JSON; docs/openapi.json).
    Serve(serve::ServeArgs),
    /// Explain a document's score for a query, token by token: each query token's winning
    /// document token, its similarity and share, and the exact score beside the compressed one.
    Explain(explain::ExplainArgs),
    /// Import another engine's index without re-encoding the corpus.
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// API keys for `tartan serve --api-keys`.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
}

/// `tartan index`.
#[derive(Args, Debug)]
pub struct IndexArgs {
    /// Embeddings directory; with --model, a BEIR directory or a corpus .jsonl[.zst] file
    /// (`{"_id", "title", "text"}` per line) to encode.
    pub embeddings: PathBuf,
    /// Index directory to create.
    pub index: PathBuf,
    /// Codebook settings (unused with --codebook).
    #[command(flatten)]
    pub codebook_settings: CodebookArgs,
    /// L2-normalise vectors on load instead of rejecting non-unit ones.
    #[arg(long)]
    pub normalize: bool,
    /// Replace an existing index in INDEX (publishes a new generation atomically).
    #[arg(long)]
    pub overwrite: bool,
    /// Reuse this index's centroids instead of training k-means (e.g. to build the same
    /// documents at another --nbits in a fraction of the time); the codec is trained anew.
    #[arg(long, conflicts_with_all = ["centroids", "kmeans_iters", "codebook"])]
    pub centroids_from: Option<PathBuf>,
    /// Encode with this codebook (from `tartan train`, or an index's or collection's): no
    /// k-means and no codec training, so that shards built apart share it. Deterministic.
    #[arg(long, conflicts_with_all = ["centroids", "nbits", "kmeans_iters", "sample_docs"])]
    pub codebook: Option<PathBuf>,
    /// Index only part I of N of the input (from 0): a contiguous run of documents, the parts'
    /// sizes within one of each other. With --codebook, N runs of `--part 0/N` … `--part
    /// N-1/N`, on any machines, build the shards of one collection.
    #[arg(long, value_name = "I/N", value_parser = parse_part)]
    pub part: Option<tartan::Part>,
    /// Metadata for `search --filter`: JSON lines, one object per document with an "id" field.
    #[arg(long)]
    pub metadata: Option<PathBuf>,
    /// Encode text with this model (and store the texts in the index).
    #[command(flatten)]
    pub encoder: EncoderArgs,
}

/// `tartan train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Embeddings directory (the documents, or a representative sample of them).
    pub embeddings: PathBuf,
    /// Codebook directory to write (codebook.tcb inside).
    pub codebook: PathBuf,
    /// Codebook settings.
    #[command(flatten)]
    pub settings: CodebookArgs,
    /// L2-normalise vectors on load instead of rejecting non-unit ones.
    #[arg(long)]
    pub normalize: bool,
    /// Replace a codebook already in the directory.
    #[arg(long)]
    pub overwrite: bool,
}

/// The codebook settings of `tartan index` and `tartan train`.
#[derive(Args, Debug)]
pub struct CodebookArgs {
    /// Residual bits per dimension: 1, 2, 4 or 8.
    #[arg(long, default_value_t = settings::DEFAULT_NBITS)]
    pub nbits: u8,
    /// Number of centroids (default: 2^floor(log2(16·sqrt(tokens))) of these documents; give
    /// it for the whole corpus when training on a sample).
    #[arg(long)]
    pub centroids: Option<usize>,
    /// k-means passes.
    #[arg(long, default_value_t = settings::DEFAULT_KMEANS_ITERS)]
    pub kmeans_iters: usize,
    /// Documents sampled to train k-means and the codec (default: ColBERT's formula).
    #[arg(long)]
    pub sample_docs: Option<usize>,
    /// Seed of sampling and k-means.
    #[arg(long, default_value_t = settings::DEFAULT_SEED)]
    pub seed: u64,
    /// Memory budget beside the codebook (e.g. 4GiB; default 2GiB). Chunks of the input and
    /// output are sized from it, which changes no byte of the index; a k-means sample larger
    /// than it is capped (`tartan inspect` shows the points used).
    #[arg(long, value_parser = parse_size)]
    pub memory: Option<u64>,
    /// k-means implementation: tartan's blocked one, or linfa-clustering's (small corpora only).
    #[arg(long, value_enum, default_value_t = KMeansImpl::Blocked)]
    pub kmeans: KMeansImpl,
    /// Compare every token with every centroid (k-means and encoding) instead of the default
    /// coarse-to-fine search over groups of centroids (used from 4,096 centroids on).
    #[arg(long)]
    pub exact_assign: bool,
    /// Groups of centroids each token is compared with by the coarse-to-fine search (default
    /// 8): fewer is faster and finds the nearest centroid less often.
    #[arg(long, conflicts_with = "exact_assign")]
    pub probes: Option<usize>,
    /// L2-normalise decoded tokens (a codebook flag; no extra bytes per token) [default:
    /// true for a trained codebook; a given codebook decides].
    #[arg(long, value_name = "BOOL")]
    pub normalize_decoded: Option<bool>,
    /// How residual buckets are placed: Lloyd–Max (least squared error) or ColBERT's
    /// quantiles.
    #[arg(long, value_enum, default_value_t = settings::DEFAULT_BUCKETS.into())]
    pub buckets: BucketsArg,
}

impl CodebookArgs {
    /// The facade's build settings for these flags.
    pub fn settings(&self, overwrite: bool) -> settings::BuildSettings {
        settings::BuildSettings {
            nbits: self.nbits,
            n_centroids: self.centroids,
            kmeans_iters: self.kmeans_iters,
            sample_docs: self.sample_docs,
            seed: self.seed,
            memory: self.memory,
            normalize_decoded: self.normalize_decoded,
            buckets: self.buckets.into(),
            kmeans: match self.kmeans {
                KMeansImpl::Blocked => tartan::KMeansAlgorithm::Blocked,
                KMeansImpl::Linfa => tartan::KMeansAlgorithm::Linfa,
            },
            exact_assign: self.exact_assign,
            probes: self.probes,
            overwrite,
        }
    }
}

/// `--kmeans`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum KMeansImpl {
    /// Blocked matrix-product assignment over all cores.
    Blocked,
    /// linfa-clustering's KMeans (point by point; small corpora).
    Linfa,
}

/// `--buckets`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum BucketsArg {
    /// Weights at their bucket's mean, cutoffs midway (least squared error).
    LloydMax,
    /// ColBERT's: equally full buckets, weights at their medians.
    Quantiles,
}

impl From<tartan::Buckets> for BucketsArg {
    fn from(b: tartan::Buckets) -> Self {
        match b {
            tartan::Buckets::LloydMax => BucketsArg::LloydMax,
            tartan::Buckets::Quantiles => BucketsArg::Quantiles,
        }
    }
}

impl From<BucketsArg> for tartan::Buckets {
    fn from(b: BucketsArg) -> Self {
        match b {
            BucketsArg::LloydMax => tartan::Buckets::LloydMax,
            BucketsArg::Quantiles => tartan::Buckets::Quantiles,
        }
    }
}

/// `tartan search`.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Index or collection directory.
    pub index: PathBuf,
    /// Embeddings directory holding query_embs.npy, query_lens.npy, query_ids.txt; with
    /// --model, texts: a BEIR directory (its test queries and qrels) or a queries.jsonl file.
    #[arg(long, required_unless_present = "query", conflicts_with = "query")]
    pub queries: Option<PathBuf>,
    /// A query as text (needs --model): prints the top hits with the start of their text.
    #[arg(long, requires = "model")]
    pub query: Option<String>,
    /// The model that encodes --query.
    #[command(flatten)]
    pub encoder: EncoderArgs,
    /// Hits per query [default: 100; 10 with --query].
    #[arg(long)]
    pub k: Option<usize>,
    /// Centroids probed per query token (default by k: 1, 2 or 4).
    #[arg(long)]
    pub ncells: Option<usize>,
    /// Candidates kept after the pruned approximate pass (default by k: 256, 1024, max(4k, 4096)).
    #[arg(long)]
    pub ndocs: Option<usize>,
    /// Centroid score threshold of the pruned pass (default by k: 0.5, 0.45, 0.4).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Only return documents whose metadata matches, e.g. `year >= 2020 and lang in ["en",
    /// "de"]` (see docs/filters.md).
    #[arg(long)]
    pub filter: Option<String>,
    /// TREC run to write (required with --queries).
    #[arg(long, required_unless_present = "query")]
    pub out: Option<PathBuf>,
    /// L2-normalise query vectors on load.
    #[arg(long)]
    pub normalize: bool,
    /// Collections with remote shards: how long each shard may take, in milliseconds.
    #[arg(long, default_value_t = settings::DEFAULT_DEADLINE_MS)]
    pub deadline_ms: u64,
    /// Collections: fail instead of answering from the shards that answered in time.
    #[arg(long)]
    pub require_all: bool,
    /// A cross-encoder reranks the first hits.
    #[command(flatten)]
    pub rerank: RerankArgs,
    /// Batch runs with --rerank over an embeddings directory: the queries' texts, by id (a
    /// queries.jsonl file or a BEIR directory).
    #[arg(long)]
    pub query_texts: Option<PathBuf>,
    /// With --query: print the hits as JSON (id, score, rerank score, text snippet).
    #[arg(long, requires = "query")]
    pub json: bool,
}

/// A cross-encoder stage after the index.
#[derive(Args, Debug)]
pub struct RerankArgs {
    /// Rerank with this cross-encoder (a BertForSequenceClassification directory, or a hub
    /// id such as cross-encoder/ms-marco-MiniLM-L-6-v2).
    #[arg(long)]
    pub rerank: Option<String>,
    /// First-stage hits the cross-encoder reads.
    #[arg(long, default_value_t = tartan::settings::DEFAULT_RERANK_DEPTH, requires = "rerank")]
    pub rerank_depth: usize,
    /// Query + passage length in tokens for the cross-encoder (default 512, capped by the
    /// model).
    #[arg(long, requires = "rerank")]
    pub rerank_max_length: Option<usize>,
    /// Passages for indexes built from embeddings (no stored texts): a BEIR directory or a
    /// corpus .jsonl[.zst].
    #[arg(long, requires = "rerank")]
    pub corpus: Option<PathBuf>,
}

/// `tartan exact`.
#[derive(Args, Debug)]
pub struct ExactArgs {
    /// Embeddings directory with documents and queries.
    pub embeddings: PathBuf,
    /// Hits per query.
    #[arg(long, default_value_t = settings::DEFAULT_RUN_K)]
    pub k: usize,
    /// TREC run to write.
    #[arg(long)]
    pub out: PathBuf,
    /// L2-normalise vectors on load.
    #[arg(long)]
    pub normalize: bool,
}

/// `tartan eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The run to score.
    #[arg(long)]
    pub run: PathBuf,
    /// Relevance judgements (query-id, doc-id, grade).
    #[arg(long)]
    pub qrels: Option<PathBuf>,
    /// An oracle run (from `tartan exact`): report recall@10 and recall@100 against it.
    #[arg(long)]
    pub against: Option<PathBuf>,
}

/// Which model and how to run it.
#[derive(Args, Debug)]
pub struct EncoderArgs {
    /// Model directory (config.json, tokenizer.json, model.safetensors), or a hub model id.
    #[arg(long)]
    pub model: Option<String>,
    /// Force a mode (default: ColBERT if the checkpoint has a projection, else raw).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Document length in tokens (default: the checkpoint's, else 180 ColBERT / 256 raw).
    #[arg(long)]
    pub doc_maxlen: Option<usize>,
    /// Query length in tokens (default: the checkpoint's, else 32).
    #[arg(long)]
    pub query_maxlen: Option<usize>,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
}

/// `--mode`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ModeArg {
    /// Last hidden states of every token, normalised.
    Raw,
    /// ColBERT: markers, projection, [MASK] query padding, punctuation skipped.
    Colbert,
}

/// `tartan encode`.
#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// BEIR directory: corpus.jsonl[.zst], queries.jsonl, qrels/<split>.tsv.
    pub beir: PathBuf,
    /// The model and its settings.
    #[command(flatten)]
    pub encoder: EncoderArgs,
    /// Embeddings directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Qrels split whose queries are encoded.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Encode only the first N documents (for quick trials).
    #[arg(long)]
    pub max_docs: Option<usize>,
    /// Write float32 instead of float16 vectors.
    #[arg(long)]
    pub f32: bool,
}

/// `tartan synth`.
#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Embeddings directory to write.
    pub out: PathBuf,
    /// Documents.
    #[arg(long, default_value_t = 10_000)]
    pub docs: usize,
    /// Vector dimension.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Queries (each made from a random document's tokens, which qrels.tsv names).
    #[arg(long, default_value_t = 100)]
    pub queries: usize,
    /// Mean document length in tokens (log-normal, clamped to 8..=300; with --like, the real
    /// lengths scaled to this mean).
    #[arg(long, default_value_t = 80.0)]
    pub mean_doc_len: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write float32 instead of float16 vectors.
    #[arg(long)]
    pub f32: bool,
    /// Draw the corpus from the token statistics of a real embeddings directory (documents
    /// and queries, e.g. from `tartan encode`): principal directions, token clusters with
    /// their real residuals, real documents and queries as templates.
    #[arg(long, value_name = "EMBEDDINGS")]
    pub like: Option<PathBuf>,
    /// With --like: token clusters fitted to the real vectors [default: 1024].
    #[arg(long, requires = "like")]
    pub clusters: Option<usize>,
    /// With --like: share of a query's tokens taken from its target document [default: 0.4].
    #[arg(long, requires = "like")]
    pub query_overlap: Option<f64>,
    /// With --like: scale of the real residual that moves a target token into a query
    /// [default: 0.6].
    #[arg(long, requires = "like")]
    pub query_noise: Option<f32>,
    /// With --like: weight of a second real residual mixed into each token's [default: 0.3].
    #[arg(long, requires = "like")]
    pub residual_mix: Option<f32>,
    /// With --like: Gaussian jitter per token, as a share of its cluster's residual norm
    /// [default: 0].
    #[arg(long, requires = "like")]
    pub jitter: Option<f32>,
    /// With --like: write the real corpus itself projected to --dim (its ids and qrels), the
    /// reference a generated corpus is compared with, instead of generating.
    #[arg(long, requires = "like")]
    pub project: bool,
}

/// `tartan sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Embeddings directory with documents and queries (and qrels.tsv for nDCG@10).
    pub embeddings: PathBuf,
    /// Output directory: sweep.csv, sweep.json, quality_vs_bytes.svg, quality_vs_latency.svg.
    #[arg(long)]
    pub out: PathBuf,
    /// Residual bits per dimension to build, comma-separated.
    #[arg(long, default_value_t = list(&SweepParams::new().nbits))]
    pub nbits: String,
    /// Codebook sizes K to build, comma-separated (default: the formula's K only).
    #[arg(long)]
    pub centroids: Option<String>,
    /// Search settings: centroids probed per query token, comma-separated.
    #[arg(long, default_value_t = list(&SweepParams::new().ncells))]
    pub ncells: String,
    /// Search settings: documents decompressed and scored exactly, comma-separated.
    #[arg(long, default_value_t = list(&SweepParams::new().ndocs))]
    pub ndocs: String,
    /// Hits per query (Recall@100 and recall@100 vs exact need 100).
    #[arg(long, default_value_t = settings::DEFAULT_RUN_K)]
    pub k: usize,
    /// Use only the first N queries (sweeps are long; quality needs a few hundred).
    #[arg(long)]
    pub max_queries: Option<usize>,
    /// Seed of sampling and k-means.
    #[arg(long, default_value_t = settings::DEFAULT_SEED)]
    pub seed: u64,
    /// L2-normalise vectors on load instead of rejecting non-unit ones.
    #[arg(long)]
    pub normalize: bool,
    /// Keep the built indexes in OUT (idx-K<k>-<n>bit) instead of removing each after use.
    #[arg(long)]
    pub keep_indexes: bool,
    /// A cross-encoder rereads exact MaxSim's first hits: a row beside the bi-encoder's
    /// (needs --query-texts, and --corpus for the passages).
    #[command(flatten)]
    pub rerank: RerankArgs,
    /// The queries' texts by id (a queries.jsonl file or a BEIR directory), for --rerank.
    #[arg(long, requires = "rerank")]
    pub query_texts: Option<PathBuf>,
}

/// A comma-separated list, as the sweep's flags take them.
fn list<T: std::fmt::Display>(values: &[T]) -> String {
    values.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

/// `tartan demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Synthetic documents.
    #[arg(long, default_value_t = 3000)]
    pub docs: usize,
    /// Vector dimension.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Queries.
    #[arg(long, default_value_t = 100)]
    pub queries: usize,
    /// Seed of the corpus and the builds.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// The body of [`outln!`].
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{args}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n).build_global() {
            eprintln!("error: cannot start {n} threads: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Index(a) => commands::index(&a),
        Command::Train(a) => commands::train(&a),
        Command::Collection(c) => collection::run(&c),
        Command::Search(a) => search::search(&a),
        Command::Exact(a) => commands::exact(&a),
        Command::Eval(a) => commands::eval(&a),
        Command::Inspect { index } => inspect::inspect(&index),
        Command::Verify { index } => inspect::verify(&index),
        Command::Demo(a) => demo::run(&a),
        Command::Sweep(a) => sweep::run(&a),
        Command::Synth(a) => demo::synth(&a),
        Command::Add(a) => live::add(&a),
        Command::Delete(a) => live::delete(&a),
        Command::Compact { index } => live::compact(&index),
        Command::Retrain(a) => live::retrain(&a),
        Command::Encode(a) => encode::run(&a),
        Command::Serve(a) => serve::run(&a),
        Command::Explain(a) => explain::run(&a),
        Command::Import(c) => import::run(&c),
        Command::Keys(c) => keys::run(&c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--memory 4GiB`.
fn parse_size(text: &str) -> Result<u64, String> {
    tartan::parse_bytes(text).map_err(|e| e.to_string())
}

/// `--part I/N`.
fn parse_part(text: &str) -> Result<tartan::Part, String> {
    tartan::Part::parse(text).map_err(|e| e.to_string())
}
