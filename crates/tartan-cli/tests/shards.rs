//! `tartan train`, `index --codebook`, `collection`, and search, inspect, verify, add and
//! delete on a collection, through the binary.

mod common;

use std::path::Path;

use common::{fails, ok};
use tartan_embeddings::{Embeddings, Kind, LoadOptions, Precision};

/// Writes `docs[range]` as an embeddings directory at `dir` (with the corpus's queries).
fn part(all: &tartan_synth::SynthCorpus, range: std::ops::Range<usize>, dir: &Path) {
    let pos: Vec<usize> = range.collect();
    all.docs.select(&pos).unwrap().write(dir, Kind::Docs, Precision::F16).unwrap();
    all.queries.write(dir, Kind::Queries, Precision::F32).unwrap();
    let meta: String =
        pos.iter().map(|d| format!("{{\"id\": \"d{d}\", \"third\": {}}}\n", d % 3)).collect();
    std::fs::write(dir.join("meta.jsonl"), meta).unwrap();
}

fn run_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn train_shards_collect_search_and_change() {
    let tmp = tempfile::tempdir().unwrap();
    let t = |p: &str| tmp.path().join(p).to_str().unwrap().to_string();
    let c = tartan_synth::SynthParams::new(300).dim(32).n_queries(10).seed(8).generate();
    part(&c, 0..300, &tmp.path().join("all"));
    part(&c, 0..150, &tmp.path().join("e0"));
    part(&c, 150..300, &tmp.path().join("e1"));

    // One codebook, trained once on a sample.
    let out = ok(&["train", &t("all"), &t("cb"), "--centroids", "64", "--sample-docs", "200"]);
    assert!(out.contains("trained codebook") && out.contains("K 64"), "{out}");
    assert!(fails(&["train", &t("all"), &t("cb")]).contains("already exists"));
    let out = ok(&["inspect", &t("cb")]);
    assert!(out.contains("K 64, dim 32, 2 bits"), "{out}");
    assert!(ok(&["verify", &t("cb")]).starts_with("ok: codebook"));

    // The whole corpus and two halves, each built with it; the same input twice gives the same
    // bytes.
    let meta = |e: &str| tmp.path().join(e).join("meta.jsonl").to_str().unwrap().to_string();
    ok(&["index", &t("all"), &t("single"), "--codebook", &t("cb"), "--metadata", &meta("all")]);
    ok(&["index", &t("e0"), &t("s0"), "--codebook", &t("cb"), "--metadata", &meta("e0")]);
    ok(&["index", &t("e1"), &t("s1"), "--codebook", &t("cb"), "--metadata", &meta("e1")]);
    ok(&[
        "index",
        &t("e1"),
        &t("s1-again"),
        "--codebook",
        &t("cb"),
        "--metadata",
        &meta("e1"),
        "--threads",
        "1",
    ]);
    // `--part 1/2` of the whole corpus is the second half: the same shard, metadata of the
    // other half skipped.
    let all_meta = meta("all");
    let args = ["index", &t("all"), &t("s1-part"), "--codebook", &t("cb"), "--part", "1/2"];
    ok(&[&args[..], &["--metadata", &all_meta]].concat());
    for again in ["s1-again", "s1-part"] {
        for f in ["meta.json", "segment.000001.tseg", "codebook.000001.tcb"] {
            assert_eq!(
                std::fs::read(tmp.path().join("s1").join(f)).unwrap(),
                std::fs::read(tmp.path().join(again).join(f)).unwrap(),
                "{again}/{f}"
            );
        }
    }
    let out =
        common::tartan(&["index", &t("all"), &t("x"), "--codebook", &t("cb"), "--part", "2/2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("need 0 <= part < count"), "{err}");
    // A codebook fixes nbits and K: asking for others is a usage error (clap exits with 2).
    let out = common::tartan(&["index", &t("e0"), &t("x"), "--codebook", &t("cb"), "--nbits", "4"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");

    let out = ok(&["collection", "create", &t("coll"), "--codebook", &t("cb"), &t("s0"), &t("s1")]);
    assert!(out.contains("2 shards, 300 documents"), "{out}");
    // A shard of another codebook is refused.
    ok(&["index", &t("e1"), &t("other"), "--centroids", "32"]);
    let err = fails(&["collection", "add-shard", &t("coll"), &format!("o={}", t("other"))]);
    assert!(err.contains("shard o") && err.contains("codebook"), "{err}");

    // The collection answers as the single index does.
    let (run_s, run_c) = (t("single.tsv"), t("coll.tsv"));
    ok(&["search", &t("single"), "--queries", &t("all"), "--k", "10", "--out", &run_s]);
    let out = ok(&["search", &t("coll"), "--queries", &t("all"), "--k", "10", "--out", &run_c]);
    assert!(out.contains("2 shards") && out.contains("p50"), "{out}");
    assert_eq!(run_lines(Path::new(&run_s)), run_lines(Path::new(&run_c)));
    // Filtered, too (metadata lives in each shard).
    let f = ["--filter", "third = 1"];
    ok(&[&["search", &t("single"), "--queries", &t("all"), "--k", "10", "--out", &run_s][..], &f]
        .concat());
    ok(&[&["search", &t("coll"), "--queries", &t("all"), "--k", "10", "--out", &run_c][..], &f]
        .concat());
    let lines = run_lines(Path::new(&run_c));
    assert_eq!(run_lines(Path::new(&run_s)), lines);
    assert!(lines
        .iter()
        .all(|l| l.split(' ').nth(2).unwrap()[1..].parse::<usize>().unwrap() % 3 == 1));

    let out = ok(&["inspect", &t("coll")]);
    assert!(
        out.contains("shard s0") && out.contains("shard s1") && out.contains("150 docs"),
        "{out}"
    );
    assert!(ok(&["verify", &t("coll")]).contains("2 local shards, 300 documents"));

    // Changes through the collection: deletes go to the shard holding the id, new documents
    // to the smaller shard.
    ok(&["delete", &t("coll"), "d3", "d200", "d201"]);
    assert!(fails(&["delete", &t("coll"), "nope"]).contains("no live document"));
    let extra = tartan_synth::SynthParams::new(5).dim(32).seed(99).generate();
    let lens: Vec<u64> = (0..5).map(|d| extra.docs.doc_len(d) as u64).collect();
    let ids: Vec<String> = (0..5).map(|d| format!("new{d}")).collect();
    let toks: Vec<f32> = (0..5).flat_map(|d| extra.docs.doc(d)).collect();
    Embeddings::from_parts(32, &lens, ids, toks, LoadOptions::default())
        .unwrap()
        .write(&tmp.path().join("more"), Kind::Docs, Precision::F32)
        .unwrap();
    let out = ok(&["add", &t("coll"), &t("more")]);
    assert!(out.contains("+5 / -0"), "{out}");
    let out = ok(&["inspect", &t("coll")]);
    assert!(out.contains("153 docs"), "s1 had 148 live and took the 5: {out}");
    assert!(ok(&["verify", &t("coll")]).contains("302 documents"));
    ok(&["compact", &t("coll")]);
    assert!(fails(&["retrain", &t("coll")]).contains("is a collection"));

    ok(&["collection", "remove-shard", &t("coll"), "s0"]);
    let out = ok(&["search", &t("coll"), "--queries", &t("all"), "--k", "5", "--out", &run_c]);
    assert!(out.contains("1 shards"), "{out}");
    assert!(
        fails(&["collection", "remove-shard", &t("coll"), "s0"]).contains("no shard of that name")
    );
}
