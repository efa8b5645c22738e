use rayon::prelude::*;

use crate::{Hit, TopK};

/// A collection of documents' token vectors, read a block at a time (so it can be a memory
/// map of float16 values converted on the fly).
pub trait Corpus: Sync {
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// `n_docs + 1` token offsets: document `d` holds tokens `offsets[d]..offsets[d + 1]`.
    fn doc_offsets(&self) -> &[u64];
    /// Writes tokens `start..start + out.len() / dim` as f32 into `out`.
    fn read_tokens(&self, start: usize, out: &mut [f32]);
    /// Says tokens `tokens` will not be read again soon: a corpus mapped from a file lets go
    /// of their pages, so that a pass over a corpus larger than memory does not keep it all
    /// resident. Nothing by default.
    fn release(&self, tokens: std::ops::Range<usize>) {
        let _ = tokens;
    }
}

/// Budget per block of the score matrix and of the block's tokens, in floats (16 MiB each):
/// bounds memory whatever the batch size.
const BLOCK_FLOATS: usize = 4 << 20;

/// Brute-force MaxSim of every query against every document of `corpus`; the best `k` per
/// query. `queries[i]` is query `i`'s tokens (`q_i × dim`). Parallel over document blocks.
///
/// # Panics
/// If a query is not a whole number of `dim`-vectors.
pub fn exact_search(corpus: &dyn Corpus, queries: &[&[f32]], k: usize) -> Vec<Vec<Hit>> {
    let dim = corpus.dim();
    let offsets = corpus.doc_offsets();
    let n_docs = offsets.len().saturating_sub(1);
    let all_q: Vec<f32> = queries.iter().flat_map(|q| q.iter().copied()).collect();
    assert!(queries.iter().all(|q| q.len() % dim == 0), "query is not a whole number of vectors");
    let q_starts: Vec<usize> = std::iter::once(0)
        .chain(queries.iter().scan(0, |acc, q| {
            *acc += q.len() / dim;
            Some(*acc)
        }))
        .collect();
    let n_qtok = all_q.len() / dim;
    if n_qtok == 0 {
        return vec![Vec::new(); queries.len()];
    }
    // Both the score block (query tokens × block) and the token block (block × dim) stay
    // within budget: sized by the score block alone, a single query got 200 MB token blocks
    // and spent its time faulting in fresh pages.
    let block_tokens = (BLOCK_FLOATS / n_qtok.max(dim)).max(64);
    // Blocks of whole documents of about block_tokens tokens.
    let mut blocks = Vec::new();
    let mut start = 0;
    while start < n_docs {
        let mut end = start + 1;
        while end < n_docs && offsets[end + 1] - offsets[start] <= block_tokens as u64 {
            end += 1;
        }
        blocks.push((start, end));
        start = end;
    }
    // No collector is sized beyond the documents there are, whatever `k` says.
    let k = k.min(n_docs);
    let empty = || queries.iter().map(|_| TopK::new(k)).collect::<Vec<_>>();
    let tops = blocks
        .par_iter()
        .fold(
            || (empty(), Vec::new(), Vec::new()),
            |(mut tops, mut toks, mut scores), &(d0, d1)| {
                let (t0, t1) = (offsets[d0] as usize, offsets[d1] as usize);
                let nt = t1 - t0;
                toks.resize(nt * dim, 0.0);
                corpus.read_tokens(t0, &mut toks);
                // One pass over the corpus: its mapped pages need not stay resident.
                corpus.release(t0..t1);
                scores.resize(n_qtok * nt, 0.0);
                tartan_kernels::matmul_nt(&all_q, &toks, dim, &mut scores);
                for d in d0..d1 {
                    let (a, b) = (offsets[d] as usize - t0, offsets[d + 1] as usize - t0);
                    for (qi, top) in tops.iter_mut().enumerate() {
                        let score: f32 = if a == b {
                            0.0
                        } else {
                            (q_starts[qi]..q_starts[qi + 1])
                                .map(|r| {
                                    scores[r * nt + a..r * nt + b]
                                        .iter()
                                        .copied()
                                        .fold(f32::NEG_INFINITY, f32::max)
                                })
                                .sum()
                        };
                        top.push(Hit { doc: d as u32, score });
                    }
                }
                (tops, toks, scores)
            },
        )
        .map(|(tops, ..)| tops)
        .reduce(empty, |mut a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                x.merge(y);
            }
            a
        });
    tops.into_iter().map(TopK::into_sorted).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{maxsim_reference, Hit};
    use rand::{Rng, SeedableRng};

    struct Mem {
        dim: usize,
        offsets: Vec<u64>,
        toks: Vec<f32>,
    }
    impl Corpus for Mem {
        fn dim(&self) -> usize {
            self.dim
        }
        fn doc_offsets(&self) -> &[u64] {
            &self.offsets
        }
        fn read_tokens(&self, start: usize, out: &mut [f32]) {
            out.copy_from_slice(&self.toks[start * self.dim..start * self.dim + out.len()]);
        }
    }

    #[test]
    fn equals_per_document_reference() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let dim = 16;
        let mut offsets = vec![0u64];
        for _ in 0..300 {
            offsets.push(offsets.last().unwrap() + rng.gen_range(1..40));
        }
        let n_tok = *offsets.last().unwrap() as usize;
        let toks: Vec<f32> = (0..n_tok * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let qs: Vec<Vec<f32>> = (0..5)
            .map(|i| (0..(i + 1) * 3 * dim).map(|_| rng.gen_range(-1.0..1.0)).collect())
            .collect();
        let corpus = Mem { dim, offsets: offsets.clone(), toks: toks.clone() };
        let qrefs: Vec<&[f32]> = qs.iter().map(|q| q.as_slice()).collect();
        let got = exact_search(&corpus, &qrefs, 7);
        for (q, hits) in qs.iter().zip(&got) {
            let mut want: Vec<Hit> = (0..300)
                .map(|d| {
                    let doc = &toks[offsets[d] as usize * dim..offsets[d + 1] as usize * dim];
                    Hit { doc: d as u32, score: maxsim_reference(q, doc, dim) }
                })
                .collect();
            want.sort_by(Hit::rank_cmp);
            assert_eq!(hits.len(), 7);
            for (g, w) in hits.iter().zip(&want) {
                assert!((g.score - w.score).abs() < 1e-3, "{g:?} vs {w:?}");
            }
        }
    }
}
