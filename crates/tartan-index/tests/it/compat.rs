//! Format compatibility: indexes written by earlier format versions, committed under
//! `tests/fixtures/v<N>/`, must keep opening, verifying and answering as recorded.
//!
//! The fixture holds the index and `expected.json` (query tokens and the hits recorded when
//! it was made). `TARTAN_WRITE_FIXTURE=1 cargo test -p tartan-index compat` regenerates it;
//! do that only when bumping the format version, into a new `v<N>` directory.

use std::path::{Path, PathBuf};

use tartan_index::{Index, IndexParams, SearchParams};

use crate::common::*;

fn fixture_dir(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/v{version}"))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Expected {
    dim: usize,
    query: Vec<f32>,
    hits: Vec<(String, f32)>,
}

#[test]
fn v1_fixture_opens_verifies_and_answers_as_recorded() {
    let root = fixture_dir(1);
    if std::env::var_os("TARTAN_WRITE_FIXTURE").is_some() {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let c = tartan_synth::SynthParams::new(24)
            .dim(16)
            .mean_doc_len(12.0)
            .n_queries(1)
            .seed(21)
            .generate();
        let index = build(&c, &root.join("index"), IndexParams::new().n_centroids(8).nbits(2));
        let query = c.queries.doc(0);
        let hits = index.search(view(&query, 16), &SearchParams::new(5).ncells(2)).unwrap();
        let e =
            Expected { dim: 16, query, hits: hits.into_iter().map(|h| (h.id, h.score)).collect() };
        std::fs::write(root.join("expected.json"), serde_json::to_string_pretty(&e).unwrap())
            .unwrap();
    }
    let e: Expected =
        serde_json::from_slice(&std::fs::read(root.join("expected.json")).unwrap()).unwrap();
    let index = Index::open(&root.join("index")).unwrap();
    assert_eq!(index.manifest().format_version, 1);
    index.verify().unwrap();
    let hits = index.search(view(&e.query, e.dim), &SearchParams::new(5).ncells(2)).unwrap();
    let got: Vec<(String, f32)> = hits.into_iter().map(|h| (h.id, h.score)).collect();
    assert_eq!(got.len(), e.hits.len());
    for (g, w) in got.iter().zip(&e.hits) {
        assert_eq!(g.0, w.0);
        assert!((g.1 - w.1).abs() < 1e-4, "{g:?} vs {w:?}");
    }
}
