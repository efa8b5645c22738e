//! Every validation error of the embeddings directory, each on a tiny directory.

use std::path::Path;

use tartan_embeddings::{EmbError, Embeddings, Kind, LoadOptions, Precision};

fn unit_docs(n_docs: usize, len: usize, dim: usize) -> Vec<f32> {
    (0..n_docs * len)
        .flat_map(|t| (0..dim).map(move |j| if j == t % dim { 1.0 } else { 0.0 }))
        .collect()
}

fn write_dir(dir: &Path, lens: &[u64], ids: &[&str], toks: Vec<f32>, dim: usize) {
    let e = Embeddings::from_parts(
        dim,
        lens,
        ids.iter().map(|s| s.to_string()).collect(),
        toks,
        LoadOptions::default(),
    )
    .unwrap();
    e.write(dir, Kind::Docs, Precision::F32).unwrap();
}

fn open(dir: &Path) -> Result<Embeddings, EmbError> {
    Embeddings::open(dir, Kind::Docs, LoadOptions::default())
}

#[test]
fn roundtrip_f32_and_f16() {
    let d = tempfile::tempdir().unwrap();
    write_dir(d.path(), &[2, 1], &["x", "y"], unit_docs(3, 1, 4), 4);
    let e = open(d.path()).unwrap();
    assert_eq!((e.n_docs(), e.n_tokens(), e.dim()), (2, 3, 4));
    assert_eq!(e.doc(1), vec![0.0, 0.0, 1.0, 0.0]);
    let d2 = tempfile::tempdir().unwrap();
    e.write(d2.path(), Kind::Queries, Precision::F16).unwrap();
    let q = Embeddings::open(d2.path(), Kind::Queries, LoadOptions::default()).unwrap();
    assert_eq!(q.doc(0), e.doc(0));
    assert!(!Embeddings::exists(d2.path(), Kind::Docs));
}

#[test]
fn lens_that_do_not_sum() {
    let d = tempfile::tempdir().unwrap();
    write_dir(d.path(), &[2, 1], &["x", "y"], unit_docs(3, 1, 4), 4);
    let other = tempfile::tempdir().unwrap();
    write_dir(other.path(), &[1, 1], &["x", "y"], unit_docs(2, 1, 4), 4);
    std::fs::copy(Kind::Docs.lens_path(other.path()), Kind::Docs.lens_path(d.path())).unwrap();
    let err = open(d.path()).unwrap_err();
    assert!(matches!(err, EmbError::LensSum { sum: 2, rows: 3, .. }), "{err}");
    // Lengths whose sum wraps to the row count are caught, not accepted.
    let wrap = Embeddings::from_parts(
        4,
        &[u64::MAX, 4],
        vec!["a".into(), "b".into()],
        unit_docs(3, 1, 4),
        Default::default(),
    );
    assert!(matches!(wrap, Err(EmbError::LensSum { .. })), "{wrap:?}");
}

#[test]
fn nan_and_non_unit_and_zero() {
    let d = tempfile::tempdir().unwrap();
    let mut toks = unit_docs(3, 1, 4);
    toks[9] = f32::NAN;
    let e = Embeddings::from_parts(
        4,
        &[1, 2],
        vec!["a".into(), "b".into()],
        toks,
        LoadOptions::default(),
    );
    let err = e.unwrap_err();
    assert!(matches!(&err, EmbError::NonFinite { token: 2, doc: 1, id, .. } if id == "b"), "{err}");

    let mut toks = unit_docs(3, 1, 4);
    toks[4] = 3.0;
    let err = Embeddings::from_parts(
        4,
        &[1, 2],
        vec!["a".into(), "b".into()],
        toks.clone(),
        LoadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, EmbError::NotUnit { token: 1, doc: 1, .. }), "{err}");
    assert!(err.to_string().contains("not unit length") && err.to_string().contains("--normalize"));
    let fixed = Embeddings::from_parts(
        4,
        &[1, 2],
        vec!["a".into(), "b".into()],
        toks,
        LoadOptions { normalize: true },
    )
    .unwrap();
    let n = 10f32.sqrt();
    let got = &fixed.doc(1)[..4];
    assert!(
        got.iter().zip([3.0 / n, 1.0 / n, 0.0, 0.0]).all(|(a, b)| (a - b).abs() < 1e-6),
        "{got:?}"
    );

    let mut toks = unit_docs(2, 1, 4);
    toks[4..8].fill(0.0);
    let err =
        Embeddings::from_parts(4, &[2], vec!["a".into()], toks, LoadOptions { normalize: true })
            .unwrap_err();
    assert!(matches!(err, EmbError::ZeroVector { token: 1, .. }), "{err}");
    let _ = d;
}

#[test]
fn empty_documents_duplicates_and_counts() {
    let err = Embeddings::from_parts(
        4,
        &[1, 0],
        vec!["a".into(), "b".into()],
        unit_docs(1, 1, 4),
        LoadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(&err, EmbError::EmptyDoc { index: 1, id, .. } if id == "b"), "{err}");
    let err = Embeddings::from_parts(
        4,
        &[1, 1],
        vec!["a".into(), "a".into()],
        unit_docs(2, 1, 4),
        LoadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, EmbError::DuplicateId { first_line: 1, line: 2, .. }), "{err}");
    let err = Embeddings::from_parts(
        4,
        &[1, 1],
        vec!["a".into()],
        unit_docs(2, 1, 4),
        LoadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, EmbError::IdCount { ids: 1, lens: 2, .. }), "{err}");

    let d = tempfile::tempdir().unwrap();
    write_dir(d.path(), &[1, 1], &["x", "y"], unit_docs(2, 1, 4), 4);
    std::fs::write(Kind::Docs.ids_path(d.path()), "x\nx\n").unwrap();
    assert!(matches!(open(d.path()).unwrap_err(), EmbError::DuplicateId { .. }));
    std::fs::write(Kind::Docs.ids_path(d.path()), "x\n\n").unwrap();
    assert!(matches!(open(d.path()).unwrap_err(), EmbError::Ids { line: 2, .. }));
}

#[test]
fn truncated_foreign_and_missing_files() {
    let d = tempfile::tempdir().unwrap();
    write_dir(d.path(), &[1, 1], &["x", "y"], unit_docs(2, 1, 4), 4);
    let p = Kind::Docs.embs_path(d.path());
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
    let err = open(d.path()).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    std::fs::write(&p, b"GIF89a....").unwrap();
    assert!(matches!(open(d.path()).unwrap_err(), EmbError::Npy { .. }));
    std::fs::remove_file(&p).unwrap();
    assert!(matches!(open(d.path()).unwrap_err(), EmbError::Io { .. }));
}

#[test]
fn select_keeps_ids_lengths_vectors_and_precision() {
    let d = tempfile::tempdir().unwrap();
    write_dir(d.path(), &[2, 1, 3], &["a", "b", "c"], unit_docs(6, 1, 4), 4);
    let f32s = open(d.path()).unwrap();
    assert_eq!(f32s.precision(), Precision::F32);
    let d16 = tempfile::tempdir().unwrap();
    f32s.write(d16.path(), Kind::Docs, Precision::F16).unwrap();
    let e = open(d16.path()).unwrap();
    assert_eq!(e.precision(), Precision::F16);
    let s = e.select(&[2, 0]).unwrap();
    assert_eq!(s.ids(), ["c", "a"]);
    assert_eq!((s.doc_len(0), s.doc_len(1)), (3, 2));
    assert_eq!(s.doc(0), e.doc(2));
    assert_eq!(s.doc(1), e.doc(0));
    assert_eq!(s.precision(), Precision::F16);
    match e.select(&[1, 1]) {
        Err(EmbError::DuplicateId { id, .. }) => assert_eq!(id, "b"),
        other => panic!("expected a duplicate id, got {other:?}"),
    }
}

#[test]
fn a_window_of_documents_is_those_documents() {
    let dim = 8;
    // Five documents of 1..=5 tokens, distinct unit vectors.
    let lens = [1u64, 2, 3, 4, 5];
    let ids = ["a", "b", "c", "d", "e"];
    let toks = unit_docs(15, 1, dim);
    for precision in [Precision::F32, Precision::F16] {
        let d = tempfile::tempdir().unwrap();
        let e = Embeddings::from_parts(
            dim,
            &lens,
            ids.iter().map(|s| s.to_string()).collect(),
            toks.clone(),
            LoadOptions::default(),
        )
        .unwrap();
        e.write(d.path(), Kind::Docs, precision).unwrap();
        let all = open(d.path()).unwrap();
        assert_eq!(Embeddings::count(d.path(), Kind::Docs).unwrap(), 5);
        for range in [0..5, 0..1, 1..3, 4..5, 2..5] {
            let w = Embeddings::open_docs(
                d.path(),
                Kind::Docs,
                LoadOptions::default(),
                Some(range.clone()),
            )
            .unwrap();
            assert_eq!(w.ids(), &all.ids()[range.clone()], "{range:?}");
            assert_eq!(w.precision(), precision);
            for (i, doc) in range.clone().enumerate() {
                assert_eq!(w.doc(i), all.doc(doc), "{range:?} doc {doc}");
            }
        }
        for bad in [0..0, 3..6, 5..5] {
            let err =
                Embeddings::open_docs(d.path(), Kind::Docs, LoadOptions::default(), Some(bad))
                    .unwrap_err();
            assert!(matches!(err, EmbError::Range { n_docs: 5, .. }), "{err}");
        }
    }
}

#[test]
fn a_window_validates_its_documents_and_the_whole_shape() {
    let d = tempfile::tempdir().unwrap();
    write_dir(d.path(), &[1, 1, 2], &["x", "y", "z"], unit_docs(4, 1, 4), 4);
    // A NaN in document 1's token, written over the file (a valid directory cannot hold one).
    let path = d.path().join("doc_embs.npy");
    let mut bytes = std::fs::read(&path).unwrap();
    let data = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[data + 16..data + 20].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let part = |r| Embeddings::open_docs(d.path(), Kind::Docs, LoadOptions::default(), Some(r));
    assert!(matches!(part(1..2).unwrap_err(), EmbError::NonFinite { .. }));
    assert!(matches!(open(d.path()).unwrap_err(), EmbError::NonFinite { .. }));
    // Another part's vectors are not read, so not judged.
    assert_eq!(part(2..3).unwrap().ids(), ["z"]);
    // Lengths that do not match the vectors are refused whatever the window.
    write_dir(d.path(), &[1, 1, 2], &["x", "y", "z"], unit_docs(4, 1, 4), 4);
    write_lens(&d.path().join("doc_lens.npy"), &[1, 1, 3]);
    assert!(matches!(part(0..1).unwrap_err(), EmbError::LensSum { .. }));
}

/// An int64 `.npy` vector, written by hand (version 1 header, padded to 64 bytes).
fn write_lens(path: &Path, lens: &[i64]) {
    let dict = format!("{{'descr': '<i8', 'fortran_order': False, 'shape': ({},), }}", lens.len());
    let pad = 64 - (10 + dict.len() + 1) % 64;
    let header = format!("{dict}{}\n", " ".repeat(pad % 64));
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    lens.iter().for_each(|l| out.extend_from_slice(&l.to_le_bytes()));
    std::fs::write(path, out).unwrap();
}
