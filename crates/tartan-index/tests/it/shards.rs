//! A shared codebook: trained once, saved, and used to build indexes apart that decode
//! alike; builds with it are reproducible byte for byte.

use std::path::Path;
use std::sync::Arc;

use tartan_index::{
    select_finalists, Codebook, Index, IndexError, IndexParams, NoProgress, SearchParams, ShardSet,
};

use crate::common::*;

/// Every file of an index directory, by name, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn builds_with_a_codebook_are_identical_whatever_the_thread_count() {
    let c = corpus();
    let train = subset(&c.docs, &(0..400).collect::<Vec<_>>());
    let params = IndexParams::new().nbits(2).n_centroids(256);
    let cb = Arc::new(Codebook::train(&train, &params, &NoProgress).unwrap());
    let shard = subset(&c.docs, &(400..800).collect::<Vec<_>>());
    let tmp = tempfile::tempdir().unwrap();
    let build_on = |threads: usize, name: &str| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let dir = tmp.path().join(name);
        let p = IndexParams::new().codebook(cb.clone());
        pool.install(|| Index::build(&shard, &dir, &p, &NoProgress).unwrap());
        dir
    };
    let one = files(&build_on(1, "one"));
    let two = files(&build_on(2, "two"));
    let three = files(&build_on(3, "three"));
    assert_eq!(
        one.iter().map(|f| &f.0).collect::<Vec<_>>(),
        ["codebook.000001.tcb", "meta.json", "segment.000001.tseg"]
    );
    assert!(one == two && two == three, "a build with a codebook is not reproducible");

    // The index's codebook file is the codebook, byte for byte as `save` writes it.
    let saved = tmp.path().join("cb");
    cb.save(&saved, false).unwrap();
    assert_eq!(std::fs::read(saved.join(tartan_index::CODEBOOK_FILE)).unwrap(), one[0].1);
    let reopened = Codebook::open(&saved).unwrap();
    assert_eq!(reopened.id(), cb.id());
    reopened.verify().unwrap();
}

#[test]
fn shards_of_one_codebook_share_it_and_others_are_refused() {
    let c = corpus();
    let tmp = tempfile::tempdir().unwrap();
    let a = build(&c, &tmp.path().join("a"), IndexParams::new().nbits(2).n_centroids(128));
    // A second index encoded with the first's codebook: no k-means, no codec training.
    let half = subset(&c.docs, &(0..300).collect::<Vec<_>>());
    let p = IndexParams::new().codebook(a.codebook().clone()).nbits(4).n_centroids(7);
    let b = Index::build(&half, &tmp.path().join("b"), &p, &NoProgress).unwrap();
    assert_eq!(b.codebook().id(), a.codebook().id());
    assert_eq!((b.manifest().nbits, b.manifest().n_centroids), (2, 128));
    // Every document decodes to the same vector in both.
    for d in [0u64, 17, 299] {
        assert_eq!(a.decompress(d).unwrap().unwrap(), b.decompress(d).unwrap().unwrap());
    }

    // Opened with the shared codebook, a shard answers as it does alone.
    let shared = Index::open_with_codebook(&tmp.path().join("b"), a.codebook().clone()).unwrap();
    assert!(Arc::ptr_eq(shared.codebook(), a.codebook()));
    let q = c.queries.doc(3);
    let params = SearchParams::new(10);
    assert_eq!(
        shared.search(view(&q, 64), &params).unwrap(),
        b.search(view(&q, 64), &params).unwrap()
    );
    let prepared = a.scorer().prepare(view(&q, 64), 0).unwrap();
    assert_eq!(
        shared.search_prepared(&prepared, &params).unwrap(),
        b.search(view(&q, 64), &params).unwrap()
    );

    // Another codebook is refused, at open and at search.
    let other = build(&c, &tmp.path().join("other"), IndexParams::new().nbits(2).n_centroids(64));
    match Index::open_with_codebook(&tmp.path().join("b"), other.codebook().clone()) {
        Err(IndexError::CodebookMismatch { .. }) => {}
        r => panic!("expected a codebook mismatch, got {r:?}"),
    }
    let foreign = other.scorer().prepare(view(&q, 64), 0).unwrap();
    assert!(matches!(
        b.search_prepared(&foreign, &params),
        Err(IndexError::CodebookMismatch { .. })
    ));
    // A query of the wrong dimension is named.
    let err = a.scorer().prepare(view(&q[..32], 32), 4).unwrap_err().to_string();
    assert!(err.contains("query 4 has dimension 32"), "{err}");
}

/// A search that finds no more candidates than stage 4 takes scores them all without
/// approximate scores; the two-round search (candidates, then the chosen ones scored) always
/// scores them. Both must give the same hits, over two shards (pool numbers offset by the
/// first shard's size), for queries on either side of that line.
#[test]
fn few_candidates_skip_approximate_scoring_with_the_same_hits() {
    let c = corpus();
    let tmp = tempfile::tempdir().unwrap();
    let first = subset(&c.docs, &(0..400).collect::<Vec<_>>());
    let a = Index::build(
        &first,
        &tmp.path().join("a"),
        &IndexParams::new().nbits(2).n_centroids(128),
        &NoProgress,
    )
    .unwrap();
    let second = subset(&c.docs, &(400..800).collect::<Vec<_>>());
    let p = IndexParams::new().codebook(a.codebook().clone());
    let b = Index::build(&second, &tmp.path().join("b"), &p, &NoProgress).unwrap();
    let set = ShardSet::new(&[&a, &b]).unwrap();
    let qs = queries(&c.queries);
    let prepared: Vec<_> =
        qs.iter().enumerate().map(|(i, q)| a.scorer().prepare(view(q, 64), i).unwrap()).collect();
    let (mut few, mut many) = (0, 0);
    for (ncells, k, ndocs) in [(1, 10, 40), (1, 5, 200), (2, 10, 40), (4, 20, 80)] {
        let params = SearchParams::new(k).ncells(ncells).ndocs(ndocs);
        let r = params.resolve().unwrap();
        let one_round = set.search_batch(&prepared, &params).unwrap();
        let cands = set.candidates_batch(&prepared, &params).unwrap();
        let chosen: Vec<Vec<u32>> = cands
            .iter()
            .map(|c| select_finalists(&[c], &r, set.n_docs()).into_iter().map(|(_, d)| d).collect())
            .collect();
        let mut two_rounds = set.score_batch(&prepared, &chosen).unwrap();
        for (i, hits) in two_rounds.iter_mut().enumerate() {
            hits.truncate(k);
            assert_eq!(one_round[i], *hits, "query {i}, ncells {ncells}, k {k}, ndocs {ndocs}");
            // `candidates_batch` keeps the best ndocs of them: fewer than the cap means
            // that was all of them.
            if cands[i].len() <= (ndocs / 4).max(k) {
                few += 1;
            } else {
                many += 1;
            }
        }
    }
    assert!(
        few >= 10 && many >= 10,
        "both paths taken: {few} with few candidates, {many} with many"
    );
}
