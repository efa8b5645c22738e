//! The memory budget: chunking never changes a byte; only a sample the budget cannot hold is
//! capped, and that is recorded.

use std::sync::Mutex;

use tartan_index::{Codebook, IndexError, IndexParams, NoProgress, Progress};

use crate::common::*;

/// Counts the `advance` calls of each stage: one per encoding batch, one per range of
/// inverted lists.
#[derive(Default)]
struct Chunks(Mutex<Vec<(&'static str, usize)>>);

impl Progress for Chunks {
    fn stage(&self, name: &'static str, _total: u64) {
        self.0.lock().unwrap().push((name, 0));
    }
    fn advance(&self, _n: u64) {
        if let Some(last) = self.0.lock().unwrap().last_mut() {
            last.1 += 1;
        }
    }
}

impl Chunks {
    fn count(&self, stage: &str) -> usize {
        let s = self.0.lock().unwrap();
        s.iter().filter(|(n, _)| *n == stage).map(|(_, c)| c).sum()
    }
}

fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "tartan.lock")
        .map(|e| (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn a_budget_that_forces_many_chunks_gives_the_same_bytes() {
    // 480k tokens: 1 MiB leaves ~1,800-token encoding batches and 65,536-posting ranges of
    // the inverted file, while the sample (200 documents, 256 centroids) still fits.
    let c = tartan_synth::SynthParams::new(12_000)
        .dim(32)
        .mean_doc_len(40.0)
        .n_queries(1)
        .seed(5)
        .generate();
    let dir = tempfile::tempdir().unwrap();
    let params = IndexParams::new().n_centroids(256).sample_docs(200).seed(1);
    let (wide, tight) = (Chunks::default(), Chunks::default());
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    tartan_index::Index::build(&c.docs, &a, &params, &wide).unwrap();
    tartan_index::Index::build(&c.docs, &b, &params.clone().memory(1 << 20), &tight).unwrap();
    eprintln!(
        "1 MiB: {} encoding batches, {} inverted-file ranges",
        tight.count("encoding"),
        tight.count("inverted file")
    );
    assert_eq!(wide.count("encoding"), 8, "the default budget: 65,536-token batches");
    assert_eq!(wide.count("inverted file"), 1);
    assert!(tight.count("encoding") >= 100, "{}", tight.count("encoding"));
    assert!(tight.count("inverted file") >= 4, "{}", tight.count("inverted file"));
    let (fa, fb) = (files(&a), files(&b));
    assert_eq!(fa.len(), fb.len());
    for ((na, ba), (nb, bb)) in fa.iter().zip(&fb) {
        assert_eq!(na, nb);
        assert!(ba == bb, "{na} differs between the default and a 1 MiB budget");
    }

    // The same with a given codebook (no training at all), and the spill files are gone.
    let cb = std::sync::Arc::new(Codebook::open(&a.join("codebook.000001.tcb")).unwrap());
    let given = IndexParams::new().codebook(cb);
    let (c1, c2) = (dir.path().join("c1"), dir.path().join("c2"));
    tartan_index::Index::build(&c.docs, &c1, &given, &NoProgress).unwrap();
    tartan_index::Index::build(&c.docs, &c2, &given.clone().memory(1 << 20), &NoProgress).unwrap();
    assert_eq!(files(&c1), files(&c2));
    assert!(files(&c2).iter().all(|(n, _)| !n.ends_with(".tmp")));
}

#[test]
fn a_budget_too_small_for_the_sample_caps_it_and_says_so() {
    let c = corpus();
    let dir = tempfile::tempdir().unwrap();
    let params = IndexParams::new().n_centroids(512).seed(2);
    let full = build(&c, &dir.path().join("full"), params.clone());
    let capped = build(&c, &dir.path().join("capped"), params.clone().memory(1 << 20));
    let (f, k) = (full.manifest().build.kmeans_points, capped.manifest().build.kmeans_points);
    // 1 MiB: (1 MiB - 512·64·20 - 128 KiB) / (64·2 + 8) bytes per point.
    assert_eq!(k, (((1u64 << 20) - 512 * 64 * 20 - (1 << 17)) / 136));
    assert!(k < f, "{k} vs {f}");
    // Fewer points than centroids is refused, naming the setting and what would do.
    let err = tartan_index::Index::build(
        &c.docs,
        &dir.path().join("refused"),
        &params.n_centroids(4096).memory(1 << 20),
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, IndexError::Param { name: "memory", .. }), "{err}");
    assert!(err.to_string().contains("4096 centroids"), "{err}");
    let err = tartan_index::Index::build(
        &c.docs,
        &dir.path().join("refused"),
        &IndexParams::new().memory(1000),
        &NoProgress,
    )
    .unwrap_err();
    assert!(err.to_string().contains("at least 1 MiB"), "{err}");
}
