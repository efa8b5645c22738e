//! `import_next_plaid` on indexes the next-plaid crate built (`tests/fixtures/next-plaid-*`,
//! written by benches/vs-next-plaid's `import-fixture`): every token decodes to the vector
//! next-plaid decodes, next-plaid's answers are scored the same, the source is left
//! untouched, and broken sources are named.

#![allow(clippy::print_stderr)] // the measured agreement is printed

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::ArrayView2;
use tartan::import::import_next_plaid;
use tartan::{Index, NoProgress, SearchParams};

fn fixture(nbits: u8) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/next-plaid-{nbits}bit"))
}

fn f32_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    let h = tartan_embeddings::parse_npy_header(path, &b).unwrap();
    let v = b[h.data_offset..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()));
    (h.shape, v.collect())
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect()
}

fn maxsim(q: &[f32], d: &[f32], dim: usize) -> f32 {
    q.chunks_exact(dim)
        .map(|qt| {
            d.chunks_exact(dim)
                .map(|dt| qt.iter().zip(dt).map(|(a, b)| a * b).sum::<f32>())
                .fold(f32::NEG_INFINITY, f32::max)
        })
        .sum()
}

fn check(nbits: u8) {
    let fx = fixture(nbits);
    let src = fx.join("index");
    let before = snapshot(&src);
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("imported");
    let r = import_next_plaid(&src, &dest, false, 1 << 20, &NoProgress).unwrap();
    assert_eq!(snapshot(&src), before, "the source is only read");
    assert_eq!(r.nbits, nbits);
    let index = Index::open(&dest).unwrap();
    index.verify().unwrap();
    assert!(index.codebook().normalizes_decoded());
    let dim = r.dim;

    // Token by token, the vectors next-plaid's reconstruct() returns.
    let (shape, decoded) = f32_npy(&fx.join("decoded.npy"));
    assert_eq!(shape, [r.n_tokens as usize, dim]);
    let lens: Vec<usize> =
        serde_json::from_slice(&std::fs::read(fx.join("decoded_lens.json")).unwrap()).unwrap();
    assert_eq!(lens.len(), r.n_docs);
    let (mut off, mut max_diff) = (0, 0.0f32);
    let mut docs = Vec::new();
    for (d, &n) in lens.iter().enumerate() {
        assert_eq!(index.id(d as u64).unwrap().unwrap(), d.to_string());
        let got = index.decompress(d as u64).unwrap().unwrap();
        let want = &decoded[off * dim..(off + n) * dim];
        assert_eq!(got.len(), want.len(), "document {d}");
        for (g, w) in got.iter().zip(want) {
            max_diff = max_diff.max((g - w).abs());
        }
        docs.push(want.to_vec());
        off += n;
    }
    assert!(max_diff <= 1e-6, "{nbits} bits: largest difference {max_diff}");

    // next-plaid's answers. Its scores are MaxSim over the same decoded vectors except that
    // its residual term uses an int8-quantised query (residual_lut.rs): they agree within
    // that rounding. An exhaustive tartan search (every cell, every document scored exactly)
    // finds next-plaid's top 10, but for documents whose exact scores are within that
    // rounding of the 10th.
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.join("search.json")).unwrap()).unwrap();
    let everything = SearchParams::new(10).ncells(r.n_centroids).ndocs(4 * r.n_docs);
    let (mut worst, mut same, mut total) = (0.0f32, 0, 0);
    for a in s["answers"].as_array().unwrap() {
        let q: Vec<f32> =
            a["query"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let ids: Vec<usize> =
            a["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let scores: Vec<f32> =
            a["scores"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        for (&d, &sc) in ids.iter().zip(&scores) {
            let want = maxsim(&q, &docs[d], dim);
            worst = worst.max((sc - want).abs() / want.abs().max(1.0));
        }
        let view = ArrayView2::from_shape((q.len() / dim, dim), &q).unwrap();
        let hits = index.search(view, &everything).unwrap();
        let ours: Vec<usize> = hits.iter().map(|h| h.id.parse().unwrap()).collect();
        for (h, &d) in hits.iter().zip(&ours) {
            // Within the error of search's fixed-point products (a relative 1e-4).
            let want = maxsim(&q, &docs[d], dim);
            assert!((h.score - want).abs() <= 1e-4 * want.abs().max(1.0), "{} vs {want}", h.score);
        }
        let tenth = hits.last().unwrap().score;
        for &d in &ids {
            total += 1;
            if ours.contains(&d) {
                same += 1;
            } else {
                // Only a near-tie with the 10th can swap places under next-plaid's rounding.
                let exact = maxsim(&q, &docs[d], dim);
                assert!(tenth - exact <= 2e-3 * tenth.abs(), "doc {d}: {exact} vs 10th {tenth}");
            }
        }
    }
    eprintln!(
        "{nbits} bits: decoded max |diff| {max_diff:.1e}; next-plaid's scores vs exact MaxSim: \
         max relative {worst:.1e}; {same} of {total} of its top 10 in the exhaustive top 10"
    );
    assert!(worst <= 2e-3, "{nbits} bits: next-plaid's scores off by {worst} (relative)");
    assert!(same * 10 >= total * 9, "{same} of {total} of next-plaid's top 10 found");
}

#[test]
fn next_plaid_2bit_indexes_import_token_for_token() {
    check(2);
}

#[test]
fn next_plaid_4bit_indexes_import_token_for_token() {
    check(4);
}

#[test]
fn broken_sources_are_named() {
    let src = fixture(2).join("index");
    let tmp = tempfile::tempdir().unwrap();
    let copy = |name: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        for e in std::fs::read_dir(&src).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), d.join(e.file_name())).unwrap();
        }
        d
    };
    let err = |dir: &Path| {
        let dest = dir.with_extension("out");
        let e = import_next_plaid(dir, &dest, false, 1 << 20, &NoProgress).unwrap_err();
        assert!(!dest.exists(), "nothing is left behind");
        e.to_string()
    };
    // A truncated residuals file.
    let d = copy("truncated");
    let p = d.join("0.residuals.npy");
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 3]).unwrap();
    let e = err(&d);
    assert!(e.contains("0.residuals.npy"), "{e}");
    // A code past the centroids.
    let d = copy("bad-code");
    let p = d.join("0.codes.npy");
    let mut b = std::fs::read(&p).unwrap();
    let n = b.len();
    b[n - 8..].copy_from_slice(&i64::MAX.to_le_bytes());
    std::fs::write(&p, b).unwrap();
    let e = err(&d);
    assert!(e.contains("0.codes.npy") && e.contains("centroid"), "{e}");
    // Lengths that do not add up.
    let d = copy("lens");
    std::fs::write(d.join("doclens.0.json"), "[1, 2, 3]").unwrap();
    let e = err(&d);
    assert!(e.contains("num_documents 120, the chunks hold 3"), "{e}");
    // A binary index.
    let d = copy("binary");
    let p = d.join("metadata.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    m["binary"] = true.into();
    std::fs::write(&p, m.to_string()).unwrap();
    assert!(err(&d).contains("binary"));
    // Not an index at all.
    let e = err(&tmp.path().join("nothing"));
    assert!(e.contains("metadata.json"), "{e}");
}

#[test]
fn documents_added_later_decode_the_same_normalised_way() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("imported");
    import_next_plaid(&fixture(2).join("index"), &dest, false, 1 << 20, &NoProgress).unwrap();
    let c = tartan_synth::SynthParams::new(3).dim(32).mean_doc_len(10.0).seed(5).generate();
    let mut w = tartan::IndexWriter::open(&dest).unwrap();
    let new: Vec<usize> = (0..3).collect();
    w.add(&c.docs.select(&new).unwrap(), &tartan::Extras::new(), &NoProgress).unwrap();
    w.commit().unwrap();
    drop(w);
    let index = Index::open(&dest).unwrap();
    assert_eq!(index.n_docs(), 123);
    index.verify().unwrap();
    for d in 120..123u64 {
        let v = index.decompress(d).unwrap().unwrap();
        for row in v.chunks_exact(32) {
            let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((n - 1.0).abs() < 1e-5, "norm {n}");
        }
        let q = c.docs.doc(d as usize - 120);
        let hits = index
            .search(ArrayView2::from_shape((q.len() / 32, 32), &q).unwrap(), &SearchParams::new(1));
        assert_eq!(hits.unwrap()[0].id, c.docs.id(d as usize - 120));
    }
}
