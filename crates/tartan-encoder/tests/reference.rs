//! The raw-mode encoder reproduces `../shared/models/all-MiniLM-L6-v2/reference/`: identical
//! token ids and every vector within 1e-3 (cosine ≥ 0.9999), one at a time and batched.

#![allow(clippy::print_stderr)] // the skip reason is printed

use std::path::{Path, PathBuf};

use tartan_encoder::{Encoder, EncoderParams, Mode};

fn model_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models/all-MiniLM-L6-v2");
    d.join("reference/texts.json").exists().then_some(d)
}

/// Little-endian float32/int32 `.npy` payload (the reference files' dtypes).
fn npy_payload(path: &Path) -> Vec<u8> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    b[10 + hlen..].to_vec()
}

#[test]
fn matches_reference_vectors() {
    let Some(dir) = model_dir() else {
        assert!(std::env::var_os("CI").is_none(), "CI must have ../shared/models/all-MiniLM-L6-v2");
        eprintln!("SKIPPED: ../shared/models/all-MiniLM-L6-v2 is not present");
        return;
    };
    let texts: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("reference/texts.json")).unwrap()).unwrap();
    let vectors: Vec<f32> = npy_payload(&dir.join("reference/vectors.npy"))
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let lens: Vec<usize> = npy_payload(&dir.join("reference/lens.npy"))
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as usize)
        .collect();
    let dim = 384;
    assert_eq!(vectors.len(), lens.iter().sum::<usize>() * dim);

    // Raw mode truncates queries at query_maxlen and documents at doc_maxlen: the reference's
    // 32-token texts go through the query path, its 256-token ones through the document path.
    let enc = Encoder::load(&dir, &EncoderParams::new().query_maxlen(32).doc_maxlen(256)).unwrap();
    assert_eq!((enc.mode(), enc.dim()), (Mode::Raw, dim));

    let mut offset = 0;
    let mut docs_batch = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let text = t["text"].as_str().unwrap();
        let max_len = t["max_len"].as_u64().unwrap();
        let want_ids: Vec<u32> =
            t["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let is_query = max_len == 32;
        let (ids, _) = enc.token_ids(&[text], is_query).unwrap().remove(0);
        assert_eq!(ids, want_ids, "token ids of text {i}");
        let got = if is_query {
            enc.encode_queries(&[text]).unwrap().remove(0)
        } else {
            docs_batch.push((i, text, offset));
            enc.encode_docs(&[text], &mut |_| {}).unwrap().remove(0)
        };
        let want = &vectors[offset * dim..(offset + lens[i]) * dim];
        compare(&got, want, dim, &format!("text {i}"));
        offset += lens[i];
    }
    // Batched with padding (texts of different lengths): the same vectors.
    let batch_texts: Vec<&str> = docs_batch.iter().map(|d| d.1).collect();
    let batched = enc.encode_docs(&batch_texts, &mut |_| {}).unwrap();
    for ((i, _, off), got) in docs_batch.iter().zip(&batched) {
        compare(
            got,
            &vectors[off * dim..(off + lens[*i]) * dim],
            dim,
            &format!("batched text {i}"),
        );
    }
}

fn compare(got: &[f32], want: &[f32], dim: usize, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: token count");
    let max_abs = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(max_abs <= 1e-3, "{what}: max abs diff {max_abs}");
    let mut min_cos = f32::INFINITY;
    for (g, w) in got.chunks_exact(dim).zip(want.chunks_exact(dim)) {
        let cos: f32 = g.iter().zip(w).map(|(a, b)| a * b).sum();
        assert!(cos >= 0.9999, "{what}: cosine {cos}");
        min_cos = min_cos.min(cos);
    }
    eprintln!("{what}: max abs diff {max_abs:.2e}, min cosine {min_cos:.7}");
}
