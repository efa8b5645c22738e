//! `tartan explain`: a document's score token by token.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use tartan::explain::Explanation;
use tartan::{Embeddings, Kind, LoadOptions, Searcher};

use crate::EncoderArgs;

/// `tartan explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Index or collection directory.
    pub index: PathBuf,
    /// The document's id.
    #[arg(long)]
    pub doc: String,
    /// The query as text (needs --model). Tokens are named; the stored text, encoded again,
    /// gives the exact side.
    #[arg(long, requires = "model", conflicts_with = "queries")]
    pub query: Option<String>,
    /// The model that encodes --query.
    #[command(flatten)]
    pub encoder: EncoderArgs,
    /// A vector query: the embeddings directory holding it (with --query-id).
    #[arg(long, requires = "query_id")]
    pub queries: Option<PathBuf>,
    /// The query's id in --queries.
    #[arg(long, requires = "queries")]
    pub query_id: Option<String>,
    /// The documents' original vectors (an embeddings directory holding the document), for
    /// the exact side of a vector query.
    #[arg(long)]
    pub embeddings: Option<PathBuf>,
    /// L2-normalise vectors on load.
    #[arg(long)]
    pub normalize: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &ExplainArgs) -> Result<()> {
    let searcher =
        Searcher::open(&a.index).with_context(|| format!("opening {}", a.index.display()))?;
    let e = match (&a.query, &a.queries, &a.query_id) {
        (Some(text), _, _) => {
            let enc = a.encoder.load()?.context("--query needs --model")?;
            tartan::text::explain_text(&searcher, &enc, text, &a.doc)?
        }
        (None, Some(dir), Some(qid)) => {
            let queries = tartan::load_queries(dir, a.normalize)?;
            let Some(qi) = queries.ids().iter().position(|q| q == qid) else {
                bail!("no query has the id {qid:?} in {}", dir.display());
            };
            let q = queries.doc_matrix(qi);
            let mut e = Explanation::of(&searcher, q.view(), &a.doc)?;
            if let Some(emb) = &a.embeddings {
                let opts = LoadOptions { normalize: a.normalize };
                let docs = Embeddings::open(emb, Kind::Docs, opts)
                    .with_context(|| format!("reading the documents in {}", emb.display()))?;
                let Some(di) = docs.ids().iter().position(|d| *d == a.doc) else {
                    bail!("no document has the id {:?} in {}", a.doc, emb.display());
                };
                let d = docs.doc_matrix(di);
                e = e.with_exact(q.view(), d.view())?;
            }
            e
        }
        _ => bail!("give --query TEXT with --model, or --queries EMB_DIR --query-id ID"),
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&e)?);
        return Ok(());
    }
    print(&e);
    Ok(())
}

fn print(e: &Explanation) {
    let exact = match e.exact_score {
        Some(x) => format!(
            "; exact {x:.4} with the original vectors (quantisation moved it {:+.4}, {:+.2}%)",
            e.score - x,
            100.0 * (e.score - x) / x.abs().max(f32::MIN_POSITIVE)
        ),
        None => "; no original vectors, so no exact side".into(),
    };
    outln!(
        "document {} (shard {}, {} tokens): score {:.4} from the compressed vectors{exact}",
        e.id,
        e.shard,
        e.doc_tokens,
        e.score
    );
    let name = |t: &Option<String>| t.clone().unwrap_or_default();
    outln!(
        "{:>4}  {:<14}  {:>5}  {:<14}  {:>8}  {:>6}  {:>14}",
        "q#",
        "query token",
        "doc#",
        "doc token",
        "sim",
        "share",
        "exact (doc#)"
    );
    for t in &e.tokens {
        let exact = match (t.exact_similarity, t.exact_doc_token) {
            (Some(s), Some(j)) => {
                let moved = if j != t.doc_token { "*" } else { " " };
                format!("{s:.4} ({j}){moved}")
            }
            _ => "-".into(),
        };
        outln!(
            "{:>4}  {:<14}  {:>5}  {:<14}  {:>8.4}  {:>5.1}%  {:>14}",
            t.query_token,
            name(&t.query_text),
            t.doc_token,
            name(&t.doc_text),
            t.similarity,
            100.0 * t.share,
            exact
        );
    }
    if e.tokens.iter().any(|t| t.exact_doc_token.is_some_and(|j| j != t.doc_token)) {
        outln!("* quantisation changed the winning document token");
    }
    for n in &e.notes {
        outln!("note: {n}");
    }
}
