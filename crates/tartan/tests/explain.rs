//! Explanations against brute force: each query token's winner over the decompressed
//! document, the score search ranks by, shares summing to one, and the exact side over the
//! original vectors.

use ndarray::ArrayView2;
use tartan::explain::Explanation;
use tartan::{Index, IndexParams, NoProgress, SearchParams, Searcher};

#[test]
fn explanations_match_brute_force() {
    let dim = 32;
    let c = tartan_synth::SynthParams::new(300).dim(dim).n_queries(6).seed(3).generate();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("idx");
    let index = Index::build(&c.docs, &path, &IndexParams::new().nbits(2), &NoProgress).unwrap();
    let searcher = Searcher::open(&path).unwrap();
    let mut scratch = tartan_maxsim::MaxSimScratch::default();
    let mut moved = 0;
    for qi in 0..c.queries.n_docs() {
        let qv = c.queries.doc(qi);
        let q = ArrayView2::from_shape((qv.len() / dim, dim), &qv).unwrap();
        let hits = searcher.search(q, &SearchParams::new(3)).unwrap().hits;
        for hit in &hits {
            let e = Explanation::of(&searcher, q, &hit.id).unwrap();
            // Search ranks by the score the explanation adds up.
            assert!((e.score - hit.score).abs() <= 1e-4 * hit.score.abs().max(1.0), "{e:?}");
            let pos = c.docs.ids().iter().position(|d| *d == hit.id).unwrap();
            let dec = index.decompress(pos as u64).unwrap().unwrap();
            assert_eq!(e.doc_tokens, dec.len() / dim);
            assert_eq!(e.tokens.len(), q.nrows());
            let mut sum = 0.0f32;
            for (t, qrow) in e.tokens.iter().zip(qv.chunks_exact(dim)) {
                // Brute force: every document token's similarity.
                let sims: Vec<f32> = dec
                    .chunks_exact(dim)
                    .map(|d| d.iter().zip(qrow).map(|(a, b)| a * b).sum())
                    .collect();
                let best = sims.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                assert!((t.similarity - best).abs() < 1e-5, "{t:?} vs {best}");
                assert!((sims[t.doc_token] - best).abs() < 1e-5);
                sum += t.share;
            }
            assert!((sum - 1.0).abs() < 1e-4, "shares sum to {sum}");

            // The exact side: the original vectors' MaxSim.
            let orig = c.docs.doc(pos);
            let d = ArrayView2::from_shape((orig.len() / dim, dim), &orig).unwrap();
            let e = e.with_exact(q, d).unwrap();
            let want = tartan_maxsim::maxsim(&qv, &orig, dim, &mut scratch);
            assert!((e.exact_score.unwrap() - want).abs() < 1e-4, "{e:?} vs {want}");
            for (t, qrow) in e.tokens.iter().zip(qv.chunks_exact(dim)) {
                let j = t.exact_doc_token.unwrap();
                let s: f32 =
                    orig[j * dim..(j + 1) * dim].iter().zip(qrow).map(|(a, b)| a * b).sum();
                assert!((t.exact_similarity.unwrap() - s).abs() < 1e-5);
                moved += usize::from(j != t.doc_token);
            }
            assert!(e.notes.is_empty(), "{:?}", e.notes);
        }
    }
    // 2-bit residuals do move some winners: the two sides are computed apart.
    assert!(moved > 0);

    // Unknown ids and bad queries are named.
    let qv = c.queries.doc(0);
    let q = ArrayView2::from_shape((qv.len() / dim, dim), &qv).unwrap();
    let err = Explanation::of(&searcher, q, "no-such-doc").unwrap_err().to_string();
    assert!(err.contains("no-such-doc"), "{err}");
    let short = ArrayView2::from_shape((1, 16), &qv[..16]).unwrap();
    let err = Explanation::of(&searcher, short, &c.docs.ids()[0]).unwrap_err().to_string();
    assert!(err.contains("dimension 16"), "{err}");
    let wrong = c.docs.doc(1);
    let d = ArrayView2::from_shape((wrong.len() / dim, dim), &wrong).unwrap();
    let e = Explanation::of(&searcher, q, &c.docs.ids()[0]).unwrap().with_exact(q, d).unwrap();
    if d.nrows() != e.doc_tokens {
        assert!(e.notes[0].contains("do not refer to the same tokens"), "{:?}", e.notes);
    }
}

/// Positions count deleted documents: with a deleted document before it, a document is still
/// explained from its own vectors (its score is the one search gives it), and a deleted id is
/// unknown.
#[test]
fn explanations_skip_deleted_documents() {
    let dim = 32;
    let c = tartan_synth::SynthParams::new(200).dim(dim).n_queries(3).seed(4).generate();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("idx");
    Index::build(&c.docs, &path, &IndexParams::new().nbits(2), &NoProgress).unwrap();
    let gone: Vec<&str> = c.docs.ids()[..5].iter().map(String::as_str).collect();
    let mut w = tartan::IndexWriter::open(&path).unwrap();
    w.delete(&gone).unwrap();
    w.commit().unwrap();
    drop(w);
    let searcher = Searcher::open(&path).unwrap();
    for qi in 0..c.queries.n_docs() {
        let qv = c.queries.doc(qi);
        let q = ArrayView2::from_shape((qv.len() / dim, dim), &qv).unwrap();
        for hit in searcher.search(q, &SearchParams::new(3)).unwrap().hits {
            let e = Explanation::of(&searcher, q, &hit.id).unwrap();
            assert!((e.score - hit.score).abs() <= 1e-4 * hit.score.abs().max(1.0), "{e:?}");
            let pos = c.docs.ids().iter().position(|d| *d == hit.id).unwrap();
            assert_eq!(e.doc_tokens, c.docs.doc_len(pos));
        }
        let err = Explanation::of(&searcher, q, gone[0]).unwrap_err().to_string();
        assert!(err.contains(gone[0]), "{err}");
    }
}
