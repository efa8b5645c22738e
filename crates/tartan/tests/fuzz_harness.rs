//! What each fuzz target does with its input, shared by the cargo-fuzz targets in `fuzz/`
//! (which include this file) and by `fuzz_regressions.rs` (which replays the committed inputs
//! in CI). Every function must return normally on any input: an error is fine, a panic, an
//! abort or a hang is a bug.

#![allow(dead_code)] // each includer uses its own subset

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ndarray::Array2;
use tartan_index::{
    Extras, Filter, Index, IndexParams, IndexWriter, Manifest, NoProgress, SearchParams,
};

/// `.npy` header parsing.
pub fn npy_header(data: &[u8]) {
    let _ = tartan_embeddings::parse_npy_header(Path::new("fuzz.npy"), data);
}

/// The filter language: parse, list fields, evaluate on a few metadata objects.
pub fn filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let docs = [
        serde_json::json!({}),
        serde_json::json!({"a": 1, "b": "x", "c": [1, "y", null], "d": {"e": true}}),
        serde_json::json!({"year": 2021, "lang": ["en", "de"], "score": 0.5, "t": "deep"}),
    ];
    if let Ok(f) = Filter::parse(text) {
        let _ = f.fields();
        for doc in &docs {
            let _ = f.matches(doc.as_object().expect("object"));
        }
    }
    // The same text as a SQL condition (next-plaid's form), with parameters for up to three
    // `?`. A translated filter travels to remote shards as its printed text: that text must
    // parse, and select what the translation selects.
    let params = [serde_json::json!(1), serde_json::json!("x"), serde_json::json!(null)];
    for n in 0..=params.len() {
        let Ok(f) = Filter::from_sql(text, &params[..n]) else { continue };
        let back = Filter::parse(f.source())
            .unwrap_or_else(|e| panic!("{text:?} translated to {:?}: {e}", f.source()));
        for doc in &docs {
            let doc = doc.as_object().expect("object");
            assert_eq!(back.matches(doc), f.matches(doc), "{text:?} as {:?}", f.source());
        }
    }
}

/// A small index with two segments, a deletion bitmap, texts and metadata: the template the
/// file targets damage. Built once per process, exactly as the v5 compatibility fixture is
/// (builds are reproducible), so that the fixture's files are valid seeds.
pub fn template() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("template");
        let c = tartan_synth::SynthParams::new(30)
            .dim(16)
            .mean_doc_len(12.0)
            .n_queries(1)
            .seed(21)
            .generate();
        let meta: Vec<serde_json::Value> =
            (0..30).map(|d| serde_json::json!({"parity": d % 2, "n": d})).collect();
        let texts: Vec<String> = (0..30).map(|d| format!("text of {d}")).collect();
        let first = c.docs.select(&(0..24).collect::<Vec<_>>()).expect("select");
        let extras = Extras::new().texts(texts[..24].to_vec()).metadata(&meta[..24]);
        // The v5 fixture predates Lloyd–Max buckets and normalised decoding by default: the
        // settings of its time reproduce it.
        let params = IndexParams::new()
            .n_centroids(8)
            .nbits(2)
            .buckets(tartan_index::Buckets::Quantiles)
            .normalize_decoded(false);
        Index::build_with(&first, &extras, &dir, &params, &NoProgress).expect("template build");
        let mut w = IndexWriter::open(&dir).expect("writer");
        let rest = c.docs.select(&(24..30).collect::<Vec<_>>()).expect("select");
        let extras = Extras::new().texts(texts[24..].to_vec()).metadata(&meta[24..]);
        w.add(&rest, &extras, &NoProgress).expect("add");
        w.delete(&["d0", "d2"]).expect("delete");
        w.commit().expect("commit");
        drop(w);
        let _ = std::fs::remove_file(dir.join(tartan_index::LOCK_FILE));
        (tmp, dir)
    })
    .1
}

/// Opens `dir` as a reader would and uses everything: verify, stats, search (plain, filtered,
/// exhaustive), decompression, texts, metadata.
fn exercise(dir: &Path) {
    let Ok(index) = Index::open(dir) else { return };
    let _ = index.verify();
    let _ = index.stats();
    let _ = index.ids();
    let q = Array2::<f32>::from_elem((3, index.dim()), 1.0 / (index.dim() as f32).sqrt());
    let _ = index.search(q.view(), &SearchParams::new(5));
    let _ = index
        .search(q.view(), &SearchParams::new(3).filter(Filter::parse("n >= 3").expect("filter")));
    let _ = index.search(
        q.view(),
        &SearchParams::new(50).ncells(1 << 20).centroid_score_threshold(f32::MIN),
    );
    for d in 0..index.manifest().n_docs.min(64) {
        let _ = index.decompress(d);
        let _ = index.text(d);
        let _ = index.metadata(d);
    }
}

/// A fresh copy of the template in a directory of its own.
fn copy_template() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(template()).expect("template") {
        let e = e.expect("entry");
        // libFuzzer's timer signals can interrupt the copy (EINTR): retry, it is not the input.
        let mut tries = 0;
        while let Err(err) = std::fs::copy(e.path(), tmp.path().join(e.file_name())) {
            tries += 1;
            assert!(err.kind() == std::io::ErrorKind::Interrupted && tries < 100, "copy: {err}");
        }
    }
    tmp
}

/// The manifest parser and everything it sizes: `data` is `meta.json` beside the template's
/// files.
pub fn manifest(data: &[u8]) {
    let tmp = copy_template();
    std::fs::write(tmp.path().join(tartan_index::META_FILE), data).expect("write");
    let _ = Manifest::load(tmp.path());
    exercise(tmp.path());
}

/// Index files: the first byte picks the template's codebook, a segment or the deletion
/// bitmap, the rest replaces it, and the manifest is rewritten to name the new length and
/// checksum (as a buggy writer would), so that the file's own parser is reached.
pub fn index_files(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let tmp = copy_template();
    let dir = tmp.path();
    let Ok(mut m) = Manifest::load(dir) else { return };
    let crc = crc32(body);
    let target = match pick % 4 {
        0 => &mut m.codebook,
        1 => &mut m.segments[0].file,
        2 => &mut m.segments[1].file,
        _ => match m.segments.iter_mut().find_map(|s| s.deletions.as_mut()) {
            Some(d) => d,
            None => return,
        },
    };
    target.bytes = body.len() as u64;
    target.crc32 = crc;
    let name = target.file.clone();
    std::fs::write(dir.join(&name), body).expect("write");
    write_manifest(dir, &m);
    exercise(dir);
}

/// `tartan serve`'s request bodies: parse, resolve the settings, decode the queries.
pub fn request(data: &[u8]) {
    use tartan::wire::{self, Limits, SearchRequest};
    let limits = Limits::default();
    let Ok(req) = wire::parse_body::<SearchRequest>(data) else { return };
    let _ = req.resolve(&limits);
    for dim in [1, 16, 384] {
        if let Some(q) = &req.query {
            let _ = wire::decode_query(q, "query", dim, &limits);
        }
        for (i, q) in req.queries.iter().flatten().enumerate() {
            let _ = wire::decode_query(q, &format!("queries[{i}]"), dim, &limits);
        }
    }
    let _ = wire::parse_body::<wire::ScoreRequest>(data);
}

/// CRC-32 (IEEE), bit by bit: the fuzz crate has no checksum dependency of its own.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Writes `m` as `meta.json` as docs/format.md says (format 4: pretty, table order, checksum
/// of the bytes before the checksum member).
fn write_manifest(dir: &Path, m: &Manifest) {
    let mut body = serde_json::to_vec_pretty(m).expect("serialises");
    body.truncate(body.len() - 2);
    let crc = crc32(&body);
    body.extend(format!(",\n  \"checksum\": {crc}\n}}\n").into_bytes());
    std::fs::write(dir.join(tartan_index::META_FILE), body).expect("write");
}
