//! Format compatibility: indexes written by earlier format versions, committed under
//! `tests/fixtures/v<N>/`, must keep opening, verifying and answering as recorded.
//!
//! The fixture holds the index and `expected.json` (query tokens and the hits recorded when
//! it was made). `TARTAN_WRITE_FIXTURE=1 cargo test -p tartan-index compat` regenerates the
//! current version's fixture; when bumping the format version, add a `v<N>` writer for the
//! new version and keep the old directories as they are.

use std::path::{Path, PathBuf};

use tartan_index::{Extras, Filter, Index, IndexParams, IndexWriter, NoProgress, SearchParams};

use crate::common::*;

fn fixture_dir(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/v{version}"))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Expected {
    dim: usize,
    query: Vec<f32>,
    hits: Vec<(String, f32)>,
    #[serde(default)]
    filter: Option<String>,
}

/// Opens, verifies and searches the fixture of `version` as recorded (unfiltered, and with
/// the filter recorded, if any).
fn check_fixture(version: u32) {
    let root = fixture_dir(version);
    let e: Expected =
        serde_json::from_slice(&std::fs::read(root.join("expected.json")).unwrap()).unwrap();
    let index = Index::open(&root.join("index")).unwrap();
    assert_eq!(index.manifest().format_version, version);
    index.verify().unwrap();
    let mut params = SearchParams::new(5).ncells(2);
    if let Some(f) = &e.filter {
        params = params.filter(Filter::parse(f).unwrap());
    }
    let hits = index.search(view(&e.query, e.dim), &params).unwrap();
    let got: Vec<(String, f32)> = hits.into_iter().map(|h| (h.id, h.score)).collect();
    assert_eq!(got.len(), e.hits.len());
    for (g, w) in got.iter().zip(&e.hits) {
        assert_eq!(g.0, w.0);
        assert_score(g.1, w.1, &g.0);
    }
}

/// Version 1: one segment, no deletions or metadata (written by tartan before live updates).
#[test]
fn v1_fixture_opens_verifies_and_answers_as_recorded() {
    check_fixture(1);
}

/// Version 2: two segments, a deletion bitmap, texts and metadata, searched with a filter;
/// codes as u16, a plain inverted file and float32 centroids.
#[test]
fn v2_fixture_opens_verifies_and_answers_as_recorded() {
    check_fixture(2);
}

/// Version 3: as version 2, with bit-packed codes, a packed inverted file and float16
/// centroids.
#[test]
fn v3_fixture_opens_verifies_and_answers_as_recorded() {
    check_fixture(3);
}

/// Version 4: as version 3, with the codebook's id in the manifest and the codebook file
/// (CBHASH), its training record (CBTRAIN), and no build time.
#[test]
fn v4_fixture_opens_verifies_and_answers_as_recorded() {
    check_fixture(4);
    let index = Index::open(&fixture_dir(4).join("index")).unwrap();
    let id = index.manifest().codebook_id.clone().unwrap();
    assert_eq!(id, index.codebook().id().to_hex());
    assert!(index.codebook().train_info().is_some());
    assert!(!index.codebook().normalizes_decoded());
}

/// Version 5 (current): as version 4; codebooks may hold float32 centroids again and flag
/// decoded tokens as L2-normalised (imported indexes), which version 4 readers must refuse.
#[test]
fn v5_fixture_opens_verifies_and_answers_as_recorded() {
    if std::env::var_os("TARTAN_WRITE_FIXTURE").is_some() {
        write_fixture(&fixture_dir(5));
    }
    check_fixture(5);
    let index = Index::open(&fixture_dir(5).join("index")).unwrap();
    let id = index.manifest().codebook_id.clone().unwrap();
    assert_eq!(id, index.codebook().id().to_hex());
    assert!(index.codebook().train_info().is_some());
    // The same data and settings as version 4: the codebook (and its id) did not change.
    let v4 = Index::open(&fixture_dir(4).join("index")).unwrap();
    assert_eq!(v4.codebook().id(), index.codebook().id());
}

/// Indexes from before format 4 state no codebook id; it is computed from the codebook's
/// content, the same on every open.
#[test]
fn old_indexes_get_a_stable_codebook_id() {
    for v in [1, 2, 3] {
        let dir = fixture_dir(v).join("index");
        let (a, b) = (Index::open(&dir).unwrap(), Index::open(&dir).unwrap());
        assert!(a.manifest().codebook_id.is_none());
        assert_eq!(a.codebook().id(), b.codebook().id());
        assert_eq!(
            tartan_index::Codebook::open(&dir.join(&a.manifest().codebook.file)).unwrap().id(),
            a.codebook().id()
        );
    }
    // Versions 1 and 2 were written from the same data with float32 centroids, version 3
    // with float16 ones: the stored form is part of the identity.
    let id = |v| Index::open(&fixture_dir(v).join("index")).unwrap().codebook().id();
    assert_eq!(id(1), id(2));
    assert_ne!(id(2), id(3));
}

/// A version 1 or 2 codebook (float32 centroids) saved again keeps its centroids, its id and
/// a verifiable file.
#[test]
fn old_float32_codebooks_save_as_they_are() {
    for v in [1, 2] {
        let dir = fixture_dir(v).join("index");
        let index = Index::open(&dir).unwrap();
        let cb = index.codebook();
        let tmp = tempfile::tempdir().unwrap();
        cb.save(tmp.path(), false).unwrap();
        let back = tartan_index::Codebook::open(tmp.path()).unwrap();
        assert_eq!((back.id(), back.centroids()), (cb.id(), cb.centroids()));
        back.verify().unwrap();
    }
}

/// An index a writer touched after the format changed: a version 2 or 3 index with a segment
/// added by the current writer holds both forms side by side, and reads as both would.
#[test]
fn old_indexes_take_current_segments() {
    old_index_takes_current_segments(2);
    old_index_takes_current_segments(3);
}

fn old_index_takes_current_segments(version: u32) {
    let c = tartan_synth::SynthParams::new(6).dim(16).mean_doc_len(12.0).seed(99).generate();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("index");
    copy_dir(&fixture_dir(version).join("index"), &dir);
    let before = Index::open(&dir).unwrap();
    let n_docs = before.n_docs();
    drop(before);
    let mut w = IndexWriter::open(&dir).unwrap();
    let new: Vec<(String, usize)> = (0..6).map(|d| (format!("new{d}"), d)).collect();
    w.add(&subset_as(&c.docs, &new), &Extras::new(), &NoProgress).unwrap();
    w.commit().unwrap();
    drop(w);
    let index = Index::open(&dir).unwrap();
    assert_eq!(index.manifest().format_version, tartan_index::FORMAT_VERSION);
    assert_eq!(index.n_docs(), n_docs + 6);
    index.verify().unwrap();
    // Each new document is its own best match, scored through the old codebook.
    for d in 0..6 {
        let q = c.docs.doc(d);
        let hits = index.search(view(&q, 16), &SearchParams::new(1)).unwrap();
        assert_eq!(hits[0].id, format!("new{d}"));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn write_fixture(root: &Path) {
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root).unwrap();
    let c = tartan_synth::SynthParams::new(30)
        .dim(16)
        .mean_doc_len(12.0)
        .n_queries(1)
        .seed(21)
        .generate();
    let meta: Vec<serde_json::Value> =
        (0..30).map(|d| serde_json::json!({"parity": d % 2, "n": d})).collect();
    let texts: Vec<String> = (0..30).map(|d| format!("text of {d}")).collect();
    let first = subset(&c.docs, &(0..24).collect::<Vec<_>>());
    let dir = root.join("index");
    let extras = Extras::new().texts(texts[..24].to_vec()).metadata(&meta[..24]);
    let params = IndexParams::new().n_centroids(8).nbits(2);
    Index::build_with(&first, &extras, &dir, &params, &NoProgress).unwrap();
    let mut w = IndexWriter::open(&dir).unwrap();
    let extras = Extras::new().texts(texts[24..].to_vec()).metadata(&meta[24..]);
    w.add(&subset(&c.docs, &(24..30).collect::<Vec<_>>()), &extras, &NoProgress).unwrap();
    w.delete(&["d0", "d2"]).unwrap();
    w.commit().unwrap();
    drop(w);
    std::fs::remove_file(dir.join(tartan_index::LOCK_FILE)).unwrap();
    let index = Index::open(&dir).unwrap();
    let query = c.queries.doc(0);
    let filter = "parity = 0".to_string();
    let params = SearchParams::new(5).ncells(2).filter(Filter::parse(&filter).unwrap());
    let hits = index.search(view(&query, 16), &params).unwrap();
    let e = Expected {
        dim: 16,
        query,
        hits: hits.into_iter().map(|h| (h.id, h.score)).collect(),
        filter: Some(filter),
    };
    std::fs::write(root.join("expected.json"), serde_json::to_string_pretty(&e).unwrap()).unwrap();
}
