//! Why a document scored what it did: for each query token, the document token that wins its
//! MaxSim, the similarity and its share of the score; beside it, with the document's original
//! vectors, what the exact score would be (what quantisation cost this document).

use ndarray::ArrayView2;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::searcher::Searcher;

/// One query token's part of a score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenMatch {
    /// Position of the query token.
    pub query_token: usize,
    /// Its text, when the query's tokens are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_text: Option<String>,
    /// Position of the document token that wins this query token's MaxSim (in the index's
    /// decompressed vectors).
    pub doc_token: usize,
    /// That document token's text, when the document's tokens are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_text: Option<String>,
    /// The winning similarity, with the decompressed vectors.
    pub similarity: f32,
    /// `similarity / score`: this token's share of the document's score.
    pub share: f32,
    /// With the original vectors: the winning document token (quantisation can change it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_doc_token: Option<usize>,
    /// With the original vectors: the winning similarity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_similarity: Option<f32>,
}

/// A document's score, token by token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The document's id.
    pub id: String,
    /// The shard holding it.
    pub shard: String,
    /// MaxSim with the decompressed vectors: what search ranks by.
    pub score: f32,
    /// MaxSim with the original vectors, when they were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_score: Option<f32>,
    /// The document's tokens in the index.
    pub doc_tokens: usize,
    /// One entry per query token, in query order.
    pub tokens: Vec<TokenMatch>,
    /// Why something could not be shown (no original vectors, tokens that do not line up).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Each query row's best document row: `(position, similarity)`.
fn best_matches(query: ArrayView2<'_, f32>, doc: ArrayView2<'_, f32>) -> Vec<(usize, f32)> {
    query
        .rows()
        .into_iter()
        .map(|q| {
            let mut best = (0, f32::NEG_INFINITY);
            for (j, d) in doc.rows().into_iter().enumerate() {
                let s = q.dot(&d);
                if s > best.1 {
                    best = (j, s);
                }
            }
            best
        })
        .collect()
}

fn check_matrix(m: ArrayView2<'_, f32>, dim: usize, what: &str) -> Result<()> {
    crate::exact_rank::check_matrix(m, dim, "explain", what)
}

/// The local shard and position holding the live document `id`.
///
/// # Errors
/// [`Error::Param`] naming the id if no local shard holds it.
pub(crate) fn locate(searcher: &Searcher, id: &str) -> Result<(usize, u64)> {
    for (si, shard) in searcher.shards().iter().enumerate() {
        let Some(index) = shard.index() else { continue };
        // Positions count deleted documents too: walk the live ones by position, never by
        // their rank among the live (an id may also live again after its deletion).
        for doc in index.matching(None)? {
            if index.id(doc).transpose()? == Some(id) {
                return Ok((si, doc));
            }
        }
    }
    let remote = searcher.shards().iter().any(|s| s.index().is_none());
    let reason = if remote {
        format!("no local shard holds {id:?} (a remote shard's documents are explained by its own server)")
    } else {
        format!("no document has the id {id:?}")
    };
    Err(Error::Param { name: "id", reason })
}

impl Explanation {
    /// Explains document `id`'s score for `query` (`n_tokens × dim`) from its decompressed
    /// vectors in the searcher's local shards.
    ///
    /// # Errors
    /// [`Error::Param`] for a bad query or an id no local shard holds (remote shards cannot
    /// decompress for us).
    pub fn of(searcher: &Searcher, query: ArrayView2<'_, f32>, id: &str) -> Result<Self> {
        Self::at(searcher, query, id, locate(searcher, id)?)
    }

    /// [`Explanation::of`] the document [`locate`] found at `(shard, pos)`.
    pub(crate) fn at(
        searcher: &Searcher,
        query: ArrayView2<'_, f32>,
        id: &str,
        (shard, pos): (usize, u64),
    ) -> Result<Self> {
        let dim = searcher.dim();
        check_matrix(query, dim, "the query")?;
        let shard = &searcher.shards()[shard];
        let index = shard.index().expect("located in a local shard");
        let doc = index.decompress_matrix(pos).expect("a listed document")?;
        let best = best_matches(query, doc.view());
        let score: f32 = best.iter().map(|b| b.1).sum();
        let tokens = best
            .into_iter()
            .enumerate()
            .map(|(i, (j, s))| TokenMatch {
                query_token: i,
                query_text: None,
                doc_token: j,
                doc_text: None,
                similarity: s,
                share: if score != 0.0 { s / score } else { 0.0 },
                exact_doc_token: None,
                exact_similarity: None,
            })
            .collect();
        Ok(Self {
            id: id.to_string(),
            shard: shard.name().to_string(),
            score,
            exact_score: None,
            doc_tokens: doc.nrows(),
            tokens,
            notes: Vec::new(),
        })
    }

    /// Adds the exact side from the document's original vectors: each query token's winner
    /// and similarity, and the exact score. `query` must be the one explained.
    ///
    /// # Errors
    /// [`Error::Param`] if `doc` has the wrong dimension, no rows or a value not finite.
    pub fn with_exact(
        mut self,
        query: ArrayView2<'_, f32>,
        doc: ArrayView2<'_, f32>,
    ) -> Result<Self> {
        check_matrix(doc, query.ncols(), "the document's original vectors")?;
        if doc.nrows() != self.doc_tokens {
            self.notes.push(format!(
                "the original vectors have {} tokens, the index holds {}: positions on the two \
                 sides do not refer to the same tokens",
                doc.nrows(),
                self.doc_tokens
            ));
        }
        let best = best_matches(query, doc);
        self.exact_score = Some(best.iter().map(|b| b.1).sum());
        for (t, (j, s)) in self.tokens.iter_mut().zip(best) {
            t.exact_doc_token = Some(j);
            t.exact_similarity = Some(s);
        }
        Ok(self)
    }

    /// Names the query's tokens (one per query row). A list of another length is left out,
    /// with a note.
    pub fn with_query_texts(mut self, query: &[String]) -> Self {
        if query.len() == self.tokens.len() {
            for t in &mut self.tokens {
                t.query_text = Some(query[t.query_token].clone());
            }
        } else {
            self.notes.push(format!(
                "the query re-tokenises to {} tokens for {} vectors: query tokens left unnamed",
                query.len(),
                self.tokens.len()
            ));
        }
        self
    }

    /// Names the document's tokens (one per row in the index). A list of another length is
    /// left out, with a note.
    pub fn with_doc_texts(mut self, doc: &[String]) -> Self {
        if doc.len() == self.doc_tokens {
            for t in &mut self.tokens {
                t.doc_text = Some(doc[t.doc_token].clone());
            }
        } else {
            self.notes.push(format!(
                "the stored text re-tokenises to {} tokens, the index holds {}: was the index \
                 built with another model or doc_maxlen? Document tokens left unnamed",
                doc.len(),
                self.doc_tokens
            ));
        }
        self
    }
}
