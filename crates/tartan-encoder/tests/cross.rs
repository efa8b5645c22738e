//! The cross-encoder reproduces `../shared/models/tiny-cross-encoder/reference/`: transformers'
//! logits for 26 pairs (empty query and over-long passage included) to 2e-5 (measured: under
//! 1e-5), one pair at a time and batched with padding, and the same pair lengths after
//! truncation.

#![allow(clippy::print_stderr)] // the skip reason is printed

use std::path::{Path, PathBuf};

use tartan_encoder::{CrossEncoder, CrossEncoderParams, EncoderError};

fn model_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models/tiny-cross-encoder");
    if d.join("reference/pairs.json").exists() {
        return Some(d);
    }
    assert!(std::env::var_os("CI").is_none(), "CI must have ../shared/models/tiny-cross-encoder");
    eprintln!("SKIPPED: ../shared/models/tiny-cross-encoder is not present");
    None
}

fn reference(dir: &Path) -> (Vec<(String, String)>, Vec<usize>, Vec<f32>) {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("reference/pairs.json")).unwrap()).unwrap();
    assert_eq!(v["max_length"], 256);
    assert_eq!(v["truncation"], "only_second");
    let pairs = v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["query"].as_str().unwrap().into(), p["passage"].as_str().unwrap().into()))
        .collect();
    let n_tokens = v["n_tokens"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap() as usize);
    let b = std::fs::read(dir.join("reference/logits.npy")).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let logits =
        b[10 + hlen..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    (pairs, n_tokens.collect(), logits)
}

#[test]
fn matches_transformers_logits() {
    let Some(dir) = model_dir() else { return };
    let (pairs, n_tokens, want) = reference(&dir);
    assert_eq!((pairs.len(), want.len()), (26, 26));
    let ce =
        CrossEncoder::load(&dir, &CrossEncoderParams::new().max_length(256).batch_size(5)).unwrap();
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(q, p)| (q.as_str(), p.as_str())).collect();
    let mut max_diff = 0.0f32;
    for (i, (q, p)) in refs.iter().enumerate() {
        let (ids, types) = ce.pair_ids(q, p).unwrap();
        assert_eq!(ids.len(), n_tokens[i], "pair {i}: length after truncation");
        // Token types: 0 through the first [SEP], 1 after it.
        let first_sep = types.iter().position(|&t| t == 1).unwrap();
        assert!(types[first_sep..].iter().all(|&t| t == 1), "pair {i}: token types");
        let one = ce.score(q, &[p]).unwrap()[0];
        assert!((one - want[i]).abs() <= 2e-5, "pair {i}: {one} vs {}", want[i]);
        max_diff = max_diff.max((one - want[i]).abs());
    }
    // All 26 in batches of 5, lengths mixed (the empty query's pair is 12 tokens).
    let batched = ce.score_pairs(&refs).unwrap();
    for (i, (g, w)) in batched.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= 2e-5, "batched pair {i}: {g} vs {w}");
        max_diff = max_diff.max((g - w).abs());
    }
    eprintln!("max |logit - transformers| = {max_diff:.2e}");
}

#[test]
fn long_queries_and_bad_settings() {
    let Some(dir) = model_dir() else { return };
    let ce = CrossEncoder::load(&dir, &CrossEncoderParams::new().max_length(16)).unwrap();
    // A query longer than the whole budget is cut too, not refused.
    let q = "word ".repeat(40);
    let (ids, _) = ce.pair_ids(&q, "a short passage").unwrap();
    assert_eq!(ids.len(), 16);
    assert!(ce.score(&q, &["a short passage"]).unwrap()[0].is_finite());
    assert!(ce.score("q", &[]).unwrap().is_empty());
    for (p, name) in [
        (CrossEncoderParams::new().max_length(3), "max_length"),
        (CrossEncoderParams::new().max_length(513), "max_length"),
        (CrossEncoderParams::new().batch_size(0), "batch_size"),
    ] {
        match CrossEncoder::load(&dir, &p) {
            Err(EncoderError::Param { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{p:?}: {other:?}"),
        }
    }
    // A bi-encoder checkpoint has no classification head: refused by name.
    let mini = dir.join("../all-MiniLM-L6-v2");
    if mini.exists() {
        let err = CrossEncoder::load(&mini, &CrossEncoderParams::new()).unwrap_err();
        assert!(err.to_string().contains("classifier.weight"), "{err}");
    }
}
