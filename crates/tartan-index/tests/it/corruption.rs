//! Flipping a byte anywhere in, or truncating, any index file gives an error from `open` or
//! `verify`, never a panic; a search on an index whose data was damaged after `open` returns
//! an error or a result, never a panic.

use std::path::Path;

use ndarray::Array2;
use tartan_index::{Index, IndexParams, SearchParams};

use crate::common::*;

fn tiny(dir: &Path) -> Index {
    let c = tartan_synth::SynthParams::new(40)
        .dim(16)
        .mean_doc_len(20.0)
        .n_queries(1)
        .seed(12)
        .generate();
    build(&c, dir, IndexParams::new().n_centroids(16).nbits(2))
}

fn open_and_verify(dir: &Path) -> tartan_index::Result<()> {
    let index = Index::open(dir)?;
    index.verify()?;
    // Structurally sound enough to open: searching must not panic either.
    let q = Array2::<f32>::ones((3, 16)) / 4.0;
    let _ = index.search(q.view(), &SearchParams::new(5).ncells(4));
    Ok(())
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// Positions to damage: every byte of the first 600 (headers, section tables, the manifest)
/// and then every 13th.
fn positions(len: usize) -> impl Iterator<Item = usize> {
    (0..len).filter(|&i| i < 600 || i % 13 == 0)
}

#[test]
fn every_flipped_byte_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i");
    tiny(&dir);
    open_and_verify(&dir).unwrap();
    let mut tried = 0;
    for f in files(&dir) {
        let orig = std::fs::read(&f).unwrap();
        for i in positions(orig.len()) {
            for mask in [0x01u8, 0x80] {
                let mut bad = orig.clone();
                bad[i] ^= mask;
                std::fs::write(&f, &bad).unwrap();
                assert!(
                    open_and_verify(&dir).is_err(),
                    "{} byte {i} ^ {mask:#x} went unnoticed",
                    f.display()
                );
                tried += 1;
            }
        }
        std::fs::write(&f, &orig).unwrap();
    }
    open_and_verify(&dir).unwrap();
    assert!(tried > 1000, "{tried}");
}

#[test]
fn every_truncation_and_extension_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i");
    tiny(&dir);
    for f in files(&dir) {
        let orig = std::fs::read(&f).unwrap();
        // The manifest's final newline is formatting, not content: cut into the JSON itself.
        let last = if f.extension().is_some_and(|e| e == "json") {
            orig.len() - 2
        } else {
            orig.len() - 1
        };
        for cut in [0, 1, 7, 8, 63, 64, 100, orig.len() / 2, last] {
            std::fs::write(&f, &orig[..cut.min(orig.len() - 1)]).unwrap();
            assert!(open_and_verify(&dir).is_err(), "{} cut at {cut}", f.display());
        }
        let mut longer = orig.clone();
        longer.extend_from_slice(b"\0\0\0\0");
        std::fs::write(&f, &longer).unwrap();
        // A JSON manifest with trailing NULs is invalid; binary files record their length.
        assert!(open_and_verify(&dir).is_err(), "{} extended", f.display());
        std::fs::write(&f, &orig).unwrap();
    }
    open_and_verify(&dir).unwrap();
    // A missing file is an error naming it.
    let seg = files(&dir).into_iter().find(|p| p.extension().is_some_and(|e| e == "tseg")).unwrap();
    std::fs::remove_file(&seg).unwrap();
    let err = Index::open(&dir).unwrap_err().to_string();
    assert!(err.contains("segment.000001.tseg"), "{err}");
}

#[test]
fn foreign_and_newer_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i");
    tiny(&dir);
    let meta = dir.join("meta.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    let current = format!("\"format_version\": {}", tartan_index::FORMAT_VERSION);
    let next = tartan_index::FORMAT_VERSION + 1;
    std::fs::write(&meta, text.replace(&current, &format!("\"format_version\": {next}"))).unwrap();
    let err = Index::open(&dir).unwrap_err();
    assert!(
        matches!(err, tartan_index::IndexError::NewerFormat { found, .. } if found == next),
        "{err}"
    );
    std::fs::write(&meta, &text).unwrap();

    let seg = dir.join("segment.000001.tseg");
    let orig = std::fs::read(&seg).unwrap();
    let mut newer = orig.clone();
    newer[8..12].copy_from_slice(&next.to_le_bytes());
    std::fs::write(&seg, &newer).unwrap();
    let err = Index::open(&dir).unwrap_err();
    assert!(
        matches!(err, tartan_index::IndexError::NewerFormat { found, .. } if found == next),
        "{err}"
    );
    std::fs::write(&seg, b"\x7fELF not an index file at all, but long enough to have a header....")
        .unwrap();
    assert!(matches!(Index::open(&dir).unwrap_err(), tartan_index::IndexError::NotTartan { .. }));
    std::fs::write(&meta, "{\"format\": \"something-else\"}").unwrap();
    assert!(matches!(Index::open(&dir).unwrap_err(), tartan_index::IndexError::NotTartan { .. }));
}

/// Rewrites `meta.json` with `edit` applied and a correct checksum (computed here as
/// docs/format.md says: the CRC-32 of the bytes before the checksum member), as a buggy writer
/// or an attacker would: the checksum passes, the checks behind it must not.
fn forge_manifest(dir: &Path, edit: impl Fn(&mut tartan_index::Manifest)) {
    let mut m = tartan_index::Manifest::load(dir).unwrap();
    edit(&mut m);
    let mut body = serde_json::to_vec_pretty(&m).unwrap();
    assert!(body.ends_with(b"\n}"));
    body.truncate(body.len() - 2);
    let crc = crc32fast::hash(&body);
    body.extend(format!(",\n  \"checksum\": {crc}\n}}\n").into_bytes());
    std::fs::write(dir.join("meta.json"), body).unwrap();
}

/// A second implementation checks the manifest: Python's own zlib over the bytes before the
/// checksum member, as written.
#[test]
fn manifest_checksum_is_reproducible_by_an_independent_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i");
    tiny(&dir);
    let script = "import json, sys, zlib\n\
        b = open(sys.argv[1], 'rb').read()\n\
        i = b.rindex(b',\\n  \"checksum\": ')\n\
        sys.exit(0 if zlib.crc32(b[:i]) == json.loads(b)['checksum'] else 1)\n";
    match std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.join("meta.json"))
        .status()
    {
        Ok(st) => assert!(st.success(), "python computes another checksum"),
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "CI must have python3: {e}");
            eprintln!("SKIPPED: no python3 ({e})");
        }
    }
    // And the checksum catches an edit that leaves the JSON valid.
    let text = std::fs::read_to_string(dir.join("meta.json")).unwrap();
    std::fs::write(dir.join("meta.json"), text.replacen("\"seed\": 0", "\"seed\": 1", 1)).unwrap();
    assert!(Index::open(&dir).unwrap_err().to_string().contains("checksum mismatch"));
}

#[test]
fn forged_manifests_with_valid_checksums_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    tiny(&good);
    type Edit = fn(&mut tartan_index::Manifest);
    let edits: [(&str, Edit); 8] = [
        ("nbits", |m| m.nbits = 3),
        ("dim", |m| m.dim = 0),
        ("centroids", |m| m.n_centroids = 0),
        ("format version", |m| m.format_version = 0),
        ("segment id", |m| {
            let mut s = m.segments[0].clone();
            s.file.file = "segment.000009.tseg".into();
            m.segments.push(s);
            m.n_docs *= 2;
            m.n_tokens *= 2;
        }),
        ("wrapping counts", |m| {
            let mut s = m.segments[0].clone();
            s.id = 7;
            s.file.file = "segment.000007.tseg".into();
            // Unchecked, n + (2^64 - 1) wraps to n - 1, which the totals then claim.
            s.n_docs = u64::MAX;
            s.n_tokens = u64::MAX;
            m.n_docs -= 1;
            m.n_tokens -= 1;
            m.segments.push(s);
            m.next_segment_id = 8;
        }),
        ("2^32 documents", |m| {
            m.segments[0].n_docs = 1 << 32;
            m.segments[0].n_tokens = 1 << 33;
            m.n_docs = 1 << 32;
            m.n_tokens = 1 << 33;
        }),
        ("empty segment", |m| {
            m.segments[0].n_docs = 0;
            m.n_docs = 0;
        }),
    ];
    // An unknown field nested in a segment, the codebook or the build record.
    for (what, field) in [("segment field", "\"id\""), ("build field", "\"seed\"")] {
        let dir = tmp.path().join(what.replace(' ', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(&good).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        let text = std::fs::read_to_string(dir.join("meta.json")).unwrap();
        let text = text.replacen(field, &format!("\"surprise\": 1, {field}"), 1);
        // Re-checksummed as written, so only the field check can refuse it.
        let at = text.rfind(",\n  \"checksum\": ").unwrap();
        let crc = crc32fast::hash(&text.as_bytes()[..at]);
        std::fs::write(
            dir.join("meta.json"),
            format!("{},\n  \"checksum\": {crc}\n}}\n", &text[..at]),
        )
        .unwrap();
        let err = Index::open(&dir).unwrap_err().to_string();
        assert!(err.contains("unknown field") && err.contains("surprise"), "{what}: {err}");
    }
    for (what, edit) in edits {
        let dir = tmp.path().join(what.replace(' ', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(&good).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        forge_manifest(&dir, edit);
        match Index::open(&dir) {
            Err(tartan_index::IndexError::Corrupt { .. }) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
}
