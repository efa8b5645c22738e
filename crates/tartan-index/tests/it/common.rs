use std::collections::HashSet;
use std::path::Path;

use ndarray::ArrayView2;
use tartan_embeddings::Embeddings;
use tartan_index::{Index, IndexParams, NoProgress, SearchParams};
use tartan_maxsim::exact_search;
use tartan_synth::{SynthCorpus, SynthParams};

/// The synthetic corpus most tests share: 800 docs of about 40 tokens, dim 64, 40 queries.
pub fn corpus() -> SynthCorpus {
    SynthParams::new(800).dim(64).mean_doc_len(40.0).n_queries(40).seed(11).generate()
}

pub fn build(c: &SynthCorpus, dir: &Path, params: IndexParams) -> Index {
    Index::build(&c.docs, dir, &params, &NoProgress).unwrap()
}

pub fn queries(q: &Embeddings) -> Vec<Vec<f32>> {
    (0..q.n_docs()).map(|i| q.doc(i)).collect()
}

pub fn view(q: &[f32], dim: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((q.len() / dim, dim), q).unwrap()
}

/// Exact top-k ids per query.
pub fn exact_ids(c: &SynthCorpus, k: usize) -> Vec<Vec<String>> {
    let qs = queries(&c.queries);
    let refs: Vec<&[f32]> = qs.iter().map(|q| q.as_slice()).collect();
    exact_search(&c.docs, &refs, k)
        .into_iter()
        .map(|hits| hits.iter().map(|h| c.docs.id(h.doc as usize).to_string()).collect())
        .collect()
}

/// Mean recall@k of the index's top-k against the exact top-k.
pub fn recall(
    index: &Index,
    c: &SynthCorpus,
    params: &SearchParams,
    exact: &[Vec<String>],
    k: usize,
) -> f64 {
    let qs = queries(&c.queries);
    let views: Vec<_> = qs.iter().map(|q| view(q, c.docs.dim())).collect();
    let got = index.search_batch(&views, params).unwrap();
    let mut total = 0.0;
    for (hits, want) in got.iter().zip(exact) {
        let want: HashSet<&String> = want.iter().take(k).collect();
        total += hits.iter().take(k).filter(|h| want.contains(&h.id)).count() as f64 / k as f64;
    }
    total / exact.len() as f64
}
