use std::collections::HashSet;
use std::path::Path;

use ndarray::ArrayView2;
use tartan_embeddings::Embeddings;
use tartan_index::{Index, IndexParams, NoProgress, SearchParams};
use tartan_maxsim::exact_search;
use tartan_synth::{SynthCorpus, SynthParams};

/// The synthetic corpus most tests share: 800 docs of about 40 tokens, dim 64, 40 queries.
/// Asserts that a hit's score is MaxSim `want` over its decompressed document, to within
/// the fixed-point products search takes (a relative 1e-4; typically 1e-5).
pub fn assert_score(got: f32, want: f32, what: &str) {
    assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0), "{what}: {got} vs {want}");
}

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

/// In-memory embeddings of `docs`: (id to give, position in `all`) in order.
pub fn subset_as(all: &Embeddings, docs: &[(String, usize)]) -> Embeddings {
    let lens: Vec<u64> = docs.iter().map(|&(_, d)| all.doc_len(d) as u64).collect();
    let ids = docs.iter().map(|(id, _)| id.clone()).collect();
    let toks = docs.iter().flat_map(|&(_, d)| all.doc(d)).collect();
    Embeddings::from_parts(all.dim(), &lens, ids, toks, Default::default()).unwrap()
}

/// The documents at positions `docs` of `all`, with their own ids.
pub fn subset(all: &Embeddings, docs: &[usize]) -> Embeddings {
    all.select(docs).unwrap()
}

/// Mean recall@k of `index` against exact MaxSim over `docs` (the live documents), for the
/// queries `qs`.
pub fn recall_over(
    index: &Index,
    docs: &Embeddings,
    qs: &[Vec<f32>],
    params: &SearchParams,
    k: usize,
) -> f64 {
    let refs: Vec<&[f32]> = qs.iter().map(|q| q.as_slice()).collect();
    let exact = exact_search(docs, &refs, k);
    let views: Vec<_> = qs.iter().map(|q| view(q, docs.dim())).collect();
    let got = index.search_batch(&views, params).unwrap();
    let mut total = 0.0;
    for (hits, want) in got.iter().zip(exact) {
        let want: HashSet<&str> = want.iter().map(|h| docs.id(h.doc as usize)).collect();
        let n = want.len().clamp(1, k);
        let found = hits.iter().take(k).filter(|h| want.contains(h.id.as_str())).count();
        total += found as f64 / n as f64;
    }
    total / qs.len() as f64
}
