//! `normalize_decoded`: a trained codebook that L2-normalises decoded tokens. Decoded rows are
//! unit vectors, search scores them exactly as brute force over the decompressed documents,
//! the flag survives writers, and a given codebook must agree with the setting.

use std::sync::Arc;

use tartan_index::{
    Codebook, Extras, Index, IndexError, IndexParams, IndexWriter, NoProgress, SearchParams,
};

use crate::common::*;

#[test]
fn normalised_codebooks_decode_unit_tokens_and_score_them() {
    let c = corpus();
    let tmp = tempfile::tempdir().unwrap();
    let dim = c.docs.dim();
    let plain =
        build(&c, &tmp.path().join("plain"), IndexParams::new().seed(3).normalize_decoded(false));
    let norm = build(&c, &tmp.path().join("norm"), IndexParams::new().seed(3));
    assert!(norm.codebook().normalizes_decoded() && !plain.codebook().normalizes_decoded());
    // The same centroids and codes; only decoding differs, so the ids differ.
    assert_eq!(norm.centroids(), plain.centroids());
    assert_ne!(norm.codebook().id(), plain.codebook().id());
    norm.verify().unwrap();
    for d in [0u64, 17, 400] {
        let (a, b) = (plain.decompress(d).unwrap().unwrap(), norm.decompress(d).unwrap().unwrap());
        for (ra, rb) in a.chunks_exact(dim).zip(b.chunks_exact(dim)) {
            let n = ra.iter().map(|x| x * x).sum::<f32>().sqrt();
            for (x, y) in ra.iter().zip(rb) {
                assert!((x / n - y).abs() < 1e-6);
            }
        }
    }
    // Search's exact stage scores what decompress gives (brute force over the top hits).
    let qs = queries(&c.queries);
    for q in qs.iter().take(5) {
        let hits = norm.search(view(q, dim), &SearchParams::new(5)).unwrap();
        for h in hits {
            let d = c.docs.ids().iter().position(|i| *i == h.id).unwrap();
            let v = norm.decompress(d as u64).unwrap().unwrap();
            let want: f32 = q
                .chunks_exact(dim)
                .map(|qt| {
                    v.chunks_exact(dim)
                        .map(|t| qt.iter().zip(t).map(|(a, b)| a * b).sum::<f32>())
                        .fold(f32::NEG_INFINITY, f32::max)
                })
                .sum();
            assert_score(h.score, want, &h.id);
        }
    }
    // Writers keep the flag: an added segment and a compaction decode the same way.
    let dir = tmp.path().join("norm");
    drop(norm);
    let mut w = IndexWriter::open(&dir).unwrap();
    let extra = subset_as(&c.docs, &[("extra".to_string(), 3)]);
    w.add(&extra, &Extras::new(), &NoProgress).unwrap();
    w.commit().unwrap();
    w.compact(&NoProgress).unwrap();
    drop(w);
    let after = Index::open(&dir).unwrap();
    assert!(after.codebook().normalizes_decoded());
    let v = after.decompress(after.n_docs() - 1).unwrap().unwrap();
    assert!(v.chunks_exact(dim).all(|r| (r.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5));

    // A given codebook decodes one way: a contrary setting is refused by name.
    let cb: Arc<Codebook> = plain.codebook().clone();
    // Unset, the given codebook decides: the default (on) does not override it.
    let p = IndexParams::new().codebook(cb.clone());
    let shard = Index::build(&c.docs, &tmp.path().join("y"), &p, &NoProgress).unwrap();
    assert!(!shard.codebook().normalizes_decoded());
    assert_eq!(shard.codebook().id(), plain.codebook().id());
    let p = IndexParams::new().codebook(cb).normalize_decoded(true);
    match Index::build(&c.docs, &tmp.path().join("x"), &p, &NoProgress) {
        Err(IndexError::Param { name, .. }) => assert_eq!(name, "normalize_decoded"),
        other => panic!("{other:?}"),
    }
}
