use ndarray::Array2;
use tartan_index::{Index, IndexError, IndexParams, NoProgress, SearchParams};

use crate::common::*;

fn small() -> (tempfile::TempDir, Index) {
    let c = tartan_synth::SynthParams::new(100).dim(16).n_queries(1).seed(7).generate();
    let dir = tempfile::tempdir().unwrap();
    let index = build(&c, &dir.path().join("i"), IndexParams::new());
    (dir, index)
}

#[test]
fn bad_queries_are_errors() {
    let (_d, index) = small();
    let p = SearchParams::new(3);
    let wrong_dim = Array2::<f32>::ones((2, 8));
    assert!(matches!(
        index.search(wrong_dim.view(), &p),
        Err(IndexError::QueryDim { expected: 16, got: 8, .. })
    ));
    let empty = Array2::<f32>::zeros((0, 16));
    assert!(matches!(index.search(empty.view(), &p), Err(IndexError::EmptyQuery { .. })));
    let mut nan = Array2::<f32>::ones((2, 16));
    nan[[1, 3]] = f32::NAN;
    assert!(matches!(index.search(nan.view(), &p), Err(IndexError::QueryNonFinite { .. })));
    let ok = Array2::<f32>::ones((2, 16)) / 4.0;
    assert!(matches!(
        index.search(ok.view(), &SearchParams::new(0)),
        Err(IndexError::Param { name: "k", .. })
    ));
    // k far beyond the corpus (even usize::MAX, which once overflowed 4·k and sized
    // collectors by it) returns every document once, best first, and agrees with a small k.
    let all = SearchParams::new(usize::MAX).ncells(1 << 20).centroid_score_threshold(f32::MIN);
    let hits = index.search(ok.view(), &all).unwrap();
    assert_eq!(hits.len(), 100);
    let ids: std::collections::HashSet<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids.len(), 100);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    let top =
        SearchParams::new(5).ncells(1 << 20).ndocs(1 << 20).centroid_score_threshold(f32::MIN);
    assert_eq!(index.search(ok.view(), &top).unwrap(), hits[..5]);
}

#[test]
fn bad_build_parameters_are_errors() {
    let c = tartan_synth::SynthParams::new(50).dim(16).n_queries(1).seed(8).generate();
    let dir = tempfile::tempdir().unwrap();
    let b = |p: IndexParams| Index::build(&c.docs, &dir.path().join("x"), &p, &NoProgress);
    assert!(matches!(b(IndexParams::new().nbits(3)), Err(IndexError::Param { name: "nbits", .. })));
    assert!(matches!(
        b(IndexParams::new().n_centroids(0)),
        Err(IndexError::Param { name: "n_centroids", .. })
    ));
    assert!(matches!(
        b(IndexParams::new().n_centroids(1 << 20)),
        Err(IndexError::Param { name: "n_centroids", .. })
    ));
    // A failed build leaves nothing behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn refuses_to_clobber_a_foreign_directory_and_reports_missing_index() {
    let c = tartan_synth::SynthParams::new(50).dim(16).n_queries(1).seed(9).generate();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let err = Index::build(&c.docs, dir.path(), &IndexParams::new().overwrite(true), &NoProgress)
        .unwrap_err();
    assert!(matches!(err, IndexError::Exists { .. }), "{err}");
    assert!(matches!(Index::open(dir.path()), Err(IndexError::NoIndex { .. })));
    // An existing empty directory is fine.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    Index::build(&c.docs, &empty, &IndexParams::new(), &NoProgress).unwrap();
}

#[test]
fn opening_never_writes() {
    let (d, index) = small();
    let snapshot = |p: &std::path::Path| {
        let mut v: Vec<(String, u64, std::time::SystemTime)> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                (e.file_name().to_string_lossy().into_owned(), m.len(), m.modified().unwrap())
            })
            .collect();
        v.sort();
        v
    };
    let before = snapshot(index.dir());
    let i2 = Index::open(index.dir()).unwrap();
    i2.verify().unwrap();
    let q = Array2::<f32>::ones((2, 16)) / 4.0;
    i2.search(q.view(), &SearchParams::new(3)).unwrap();
    assert_eq!(before, snapshot(index.dir()));
    drop(d);
}

#[test]
fn a_bad_query_in_a_batch_is_named_and_good_batches_match_single_searches() {
    let (_d, index) = small();
    let p = SearchParams::new(3);
    let good: Vec<Array2<f32>> = (0..5)
        .map(|i| Array2::from_shape_fn((3, 16), |(r, c)| ((r * 16 + c + i) % 7) as f32 - 3.0))
        .collect();
    let views: Vec<_> = good.iter().map(|q| q.view()).collect();
    let batch = index.search_batch(&views, &p).unwrap();
    for (q, hits) in good.iter().zip(&batch) {
        assert_eq!(hits, &index.search(q.view(), &p).unwrap());
    }
    // Queries are prepared as they are searched; a bad one still fails the batch, by position.
    let mut nan = good[3].clone();
    nan[[2, 5]] = f32::NAN;
    let mut views: Vec<_> = good.iter().map(|q| q.view()).collect();
    views[3] = nan.view();
    assert!(matches!(index.search_batch(&views, &p), Err(IndexError::QueryNonFinite { query: 3 })));
}
