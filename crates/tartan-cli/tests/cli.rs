//! The `tartan` binary end to end on a small synthetic embeddings directory.

#![allow(clippy::print_stderr)] // the skip reason is printed

mod common;

use std::path::Path;

use common::{fails, ok};
use tartan_embeddings::{Kind, Precision};

fn write_embeddings(dir: &Path) {
    let c = tartan_synth::SynthParams::new(300).dim(32).n_queries(12).seed(5).generate();
    c.docs.write(dir, Kind::Docs, Precision::F16).unwrap();
    c.queries.write(dir, Kind::Queries, Precision::F32).unwrap();
    let qrels: String =
        c.query_targets.iter().enumerate().map(|(q, d)| format!("q{q}\td{d}\t1\n")).collect();
    std::fs::write(dir.join("qrels.tsv"), format!("query-id\tcorpus-id\tscore\n{qrels}")).unwrap();
}

#[test]
fn index_search_exact_eval_inspect_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let emb = tmp.path().join("emb");
    write_embeddings(&emb);
    let idx = tmp.path().join("idx");
    let (e, i) = (emb.to_str().unwrap(), idx.to_str().unwrap());

    let out = ok(&["index", e, i, "--nbits", "4", "--seed", "3"]);
    assert!(out.contains("indexed 300 documents"), "{out}");
    let linfa = tmp.path().join("idx-linfa");
    let out = ok(&["index", e, linfa.to_str().unwrap(), "--kmeans", "linfa", "--centroids", "64"]);
    assert!(out.contains("K 64"), "{out}");

    let run = tmp.path().join("run.tsv");
    let out = ok(&["search", i, "--queries", e, "--k", "20", "--out", run.to_str().unwrap()]);
    assert!(out.contains("12 queries") && out.contains("p50") && out.contains("QPS"), "{out}");
    assert!(out.contains("nDCG@10"), "qrels.tsv beside the queries is scored: {out}");
    let lines = std::fs::read_to_string(&run).unwrap();
    assert_eq!(lines.lines().count(), 12 * 20);
    let first: Vec<&str> = lines.lines().next().unwrap().split(' ').collect();
    assert_eq!((first[1], first[3], first[5]), ("Q0", "1", "tartan"));

    // Absurd k (it once panicked or aborted the process): the candidates PLAID finds, each
    // once; exact MaxSim ranks every document.
    let huge = tmp.path().join("huge.tsv");
    let h = huge.to_str().unwrap();
    ok(&["search", i, "--queries", e, "--k", "18446744073709551615", "--out", h]);
    let huge_run = tartan_eval::Run::load(&huge).unwrap();
    for q in 0..12 {
        let n = huge_run.get(&format!("q{q}")).unwrap().len();
        assert!((10..=300).contains(&n), "query {q}: {n} hits");
    }
    ok(&["exact", e, "--k", "1000000000000", "--out", h]);
    assert_eq!(std::fs::read_to_string(&huge).unwrap().lines().count(), 12 * 300);

    let exact = tmp.path().join("exact.tsv");
    ok(&["exact", e, "--k", "20", "--out", exact.to_str().unwrap()]);
    let out = ok(&[
        "eval",
        "--run",
        run.to_str().unwrap(),
        "--qrels",
        emb.join("qrels.tsv").to_str().unwrap(),
        "--against",
        exact.to_str().unwrap(),
    ]);
    let recall10: f64 =
        out.split("recall@10 ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    assert!(recall10 >= 0.9, "{out}");
    let ndcg: f64 =
        out.split("nDCG@10 ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    // Queries copy tokens of a target document (judged relevant); random ranking scores ~0.03.
    assert!(ndcg > 0.5, "{out}");

    let out = ok(&["inspect", i]);
    assert!(out.contains("documents    300") && out.contains("residuals"), "{out}");
    let out = ok(&["verify", i]);
    assert!(out.starts_with("ok:"), "{out}");

    // Damage the segment's residuals (the middle of the file, which only the checksum
    // covers): verify must fail with a message naming the file.
    let seg = idx.join("segment.000001.tseg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    std::fs::write(&seg, &bytes).unwrap();
    let err = fails(&["verify", i]);
    assert!(err.contains("segment.000001.tseg") && err.contains("checksum"), "{err}");
}

#[test]
fn bad_input_gives_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let emb = tmp.path().join("emb");
    write_embeddings(&emb);
    let e = emb.to_str().unwrap();
    let idx = tmp.path().join("idx");
    let i = idx.to_str().unwrap();

    let err = fails(&["index", e, i, "--nbits", "3"]);
    assert!(err.contains("nbits"), "{err}");
    let err = fails(&["index", tmp.path().join("nope").to_str().unwrap(), i]);
    assert!(err.contains("doc_embs.npy"), "{err}");
    std::fs::write(Kind::Docs.ids_path(&emb), "a\n".repeat(300)).unwrap();
    let err = fails(&["index", e, i]);
    assert!(err.contains("duplicate") || err.contains("already appears"), "{err}");
    let err = fails(&["search", i, "--queries", e, "--out", "/dev/null"]);
    assert!(err.contains("neither a tartan index"), "{err}");
    let err = fails(&["demo", "--docs", "0"]);
    assert!(err.contains("--docs"), "{err}");
    let err = fails(&["eval", "--run", "/nonexistent.tsv", "--qrels", "/nonexistent"]);
    assert!(err.contains("/nonexistent.tsv"), "{err}");
}

fn minilm() -> Option<std::path::PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models/all-MiniLM-L6-v2");
    d.join("model.safetensors").exists().then_some(d)
}

#[test]
fn text_encode_index_and_search() {
    let Some(model) = minilm() else {
        assert!(std::env::var_os("CI").is_none(), "CI must have ../shared/models/all-MiniLM-L6-v2");
        eprintln!("SKIPPED: ../shared/models/all-MiniLM-L6-v2 is not present");
        return;
    };
    let m = model.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let beir = tmp.path().join("beir");
    common::write_beir(&beir);
    let emb = tmp.path().join("emb");
    let out = ok(&["encode", beir.to_str().unwrap(), "--model", m, "--out", emb.to_str().unwrap()]);
    assert!(
        out.contains("5 documents") && out.contains("tokens/s") && out.contains("2 queries"),
        "{out}"
    );
    let docs = tartan_embeddings::Embeddings::open(&emb, Kind::Docs, Default::default()).unwrap();
    assert_eq!((docs.n_docs(), docs.dim()), (5, 384));
    assert!(emb.join("qrels.tsv").exists());

    let idx = tmp.path().join("idx");
    let out = ok(&[
        "index",
        beir.join("corpus.jsonl").to_str().unwrap(),
        idx.to_str().unwrap(),
        "--model",
        m,
        "--centroids",
        "8",
    ]);
    assert!(out.contains("indexed 5 documents"), "{out}");
    let out = ok(&[
        "search",
        idx.to_str().unwrap(),
        "--model",
        m,
        "--query",
        "How long do cats sleep?",
        "--k",
        "3",
    ]);
    let first = out.lines().nth(1).unwrap();
    assert!(first.contains("d2") && first.contains("Cats sleep for most"), "{out}");
    // No temporary encoding directory is left beside the index.
    let left: Vec<_> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 3, "{left:?}");

    // Served with the model: text queries, and documents added as text.
    let server = common::Served::start(&idx, &["--model", m]);
    let search = |text: &str| {
        let body = serde_json::json!({"text": text, "k": 2, "with_text": true});
        common::call("POST", &format!("{}/search", server.url), Some(&body))
    };
    let (status, got) = search("How long do cats sleep?");
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["hits"][0]["id"], "d2", "{got}");
    assert!(got["hits"][0]["text"].as_str().unwrap().contains("Cats sleep"), "{got}");
    let doc = serde_json::json!({"documents": [{"id": "d6", "text": "Owls hunt at night and sleep by day."}]});
    let (status, got) = common::call("POST", &format!("{}/documents", server.url), Some(&doc));
    assert_eq!(status, 200, "{got}");
    let (_, got) = search("which birds hunt at night?");
    assert_eq!(got["hits"][0]["id"], "d6", "{got}");
    let (_, h) = common::call("GET", &format!("{}/health", server.url), None);
    assert_eq!((h["text"].as_bool(), h["n_docs"].as_u64()), (Some(true), Some(6)));
}

#[test]
fn synth_writes_an_embeddings_directory_that_indexes() {
    let tmp = tempfile::tempdir().unwrap();
    let emb = tmp.path().join("syn");
    let e = emb.to_str().unwrap();
    let out = ok(&["synth", e, "--docs", "60", "--dim", "16", "--queries", "4", "--seed", "2"]);
    assert!(out.contains("wrote 60 documents") && out.contains("4 queries"), "{out}");
    let qrels = std::fs::read_to_string(emb.join("qrels.tsv")).unwrap();
    assert_eq!(qrels.lines().count(), 5);
    let idx = tmp.path().join("idx");
    ok(&["index", e, idx.to_str().unwrap(), "--centroids", "16"]);
    let err = fails(&["synth", tmp.path().join("x").to_str().unwrap(), "--docs", "0"]);
    assert!(err.contains("--docs"), "{err}");

    // A corpus drawn from the statistics of that one (as from a real encoded corpus), and the
    // source itself through the same projection.
    let like = tmp.path().join("like");
    let args = ["--like", e, "--dim", "8", "--clusters", "16", "--seed", "3"];
    let out =
        ok(&[&["synth", like.to_str().unwrap(), "--docs", "90", "--queries", "5"], &args[..]]
            .concat());
    assert!(out.contains("16 → 8 dims") && out.contains("16 clusters"), "{out}");
    assert!(out.contains("wrote 90 documents") && out.contains("5 queries"), "{out}");
    let docs = tartan_embeddings::Embeddings::open(
        &like,
        tartan_embeddings::Kind::Docs,
        Default::default(),
    )
    .unwrap();
    assert_eq!((docs.n_docs(), docs.dim()), (90, 8));
    ok(&[
        "index",
        like.to_str().unwrap(),
        idx.to_str().unwrap(),
        "--centroids",
        "8",
        "--overwrite",
    ]);
    let proj = tmp.path().join("proj");
    let out = ok(&[&["synth", proj.to_str().unwrap(), "--project"], &args[..]].concat());
    assert!(
        out.contains("wrote 60 documents") && out.contains("projected to dimension 8"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(proj.join("qrels.tsv")).unwrap(), qrels);
    let err = fails(&["synth", tmp.path().join("y").to_str().unwrap(), "--like", e, "--dim", "17"]);
    assert!(err.contains("dimension 16 to dimension 17"), "{err}");
    // A --like setting without --like is a usage error (clap's exit code 2).
    let out = common::tartan(&["synth", tmp.path().join("z").to_str().unwrap(), "--clusters", "4"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--like"), "{err}");
}

#[test]
fn sweep_writes_table_json_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let emb = tmp.path().join("syn");
    let e = emb.to_str().unwrap();
    ok(&["synth", e, "--docs", "200", "--dim", "16", "--queries", "8", "--seed", "4"]);
    let out_dir = tmp.path().join("sweep");
    let o = out_dir.to_str().unwrap();
    let args = ["--nbits", "1,2", "--ncells", "1,2", "--ndocs", "64", "--centroids", "64,128"];
    let stdout = ok(&[&["sweep", e, "--out", o, "--k", "20"][..], &args].concat());
    assert!(stdout.contains("bi-encoder") && stdout.contains("2-bit K128 c2 d64"), "{stdout}");

    // Two reference rows (the stored vectors are float16, so no separate float16 row), then
    // 2 K × 2 nbits × 2 ncells × 1 ndocs.
    assert!(stdout.contains("the stored vectors are float16, so it is the exact row"), "{stdout}");
    let csv = std::fs::read_to_string(out_dir.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 + 8, "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("sweep.json")).unwrap())
            .unwrap();
    assert_eq!(json["quality"], "nDCG@10");
    assert_eq!(json["n_docs"], 200);
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    let systems: Vec<&str> = rows.iter().map(|r| r["system"].as_str().unwrap()).collect();
    assert_eq!(&systems[..2], ["exact", "bi-encoder"]);
    // The exact row is the oracle the others are measured against; its nDCG@10 is the one
    // `tartan exact` reports on the same directory.
    let exact_out =
        ok(&["exact", e, "--k", "100", "--out", out_dir.join("exact.tsv").to_str().unwrap()]);
    let ndcg: f64 = exact_out
        .split("nDCG@10 ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((rows[0]["ndcg_10"].as_f64().unwrap() - ndcg).abs() < 5e-4, "{exact_out}");
    let q = |r: &serde_json::Value| r["ndcg_10"].as_f64().unwrap();
    assert!(rows.iter().all(|r| (0.0..=1.0).contains(&q(r))));
    // float16 vectors are stored: exact MaxSim costs 2·dim bytes per token.
    assert_eq!(rows[0]["bytes_per_token"], 32.0);
    let tartan: Vec<_> = rows.iter().filter(|r| r["system"] == "tartan").collect();
    let ks: std::collections::HashSet<u64> =
        tartan.iter().map(|r| r["n_centroids"].as_u64().unwrap()).collect();
    assert_eq!(ks, [64, 128].into());
    let bpt = |k: u64, b: u64| {
        let r = tartan.iter().find(|r| r["n_centroids"] == k && r["nbits"] == b).unwrap();
        r["bytes_per_token"].as_f64().unwrap()
    };
    assert!(bpt(64, 2) > bpt(64, 1) && bpt(128, 1) > bpt(64, 1));
    // The best quality is on both fronts, and the fronts are not everything.
    let best = rows.iter().map(q).fold(0.0, f64::max);
    for front in ["pareto_bytes", "pareto_latency"] {
        assert!(rows.iter().any(|r| q(r) == best && r[front] == true), "{front}");
        assert!(rows.iter().any(|r| r[front] == false), "{front}");
    }
    for svg in [
        "quality_vs_bytes.svg",
        "quality_vs_latency.svg",
        "recall_vs_bytes.svg",
        "recall_vs_latency.svg",
    ] {
        let s = std::fs::read_to_string(out_dir.join(svg)).unwrap();
        assert!(s.starts_with("<svg") && s.contains("Pareto front") && s.contains("bi-encoder"));
    }
    // Indexes are removed unless --keep-indexes.
    assert!(!std::fs::read_dir(&out_dir)
        .unwrap()
        .any(|d| { d.unwrap().file_name().to_string_lossy().starts_with("idx-") }));
    let err = fails(&["sweep", e, "--out", o, "--nbits", "3"]);
    assert!(err.contains("--nbits"), "{err}");
    let err = fails(&["sweep", e, "--out", o, "--ncells", "1,x"]);
    assert!(err.contains("--ncells") && err.contains("\"x\""), "{err}");

    // Float32 input: the float16 row is there, a float16 index of the rounded vectors at half
    // the exact row's bytes.
    let e32 = tmp.path().join("syn32");
    let e32 = e32.to_str().unwrap();
    ok(&["synth", e32, "--docs", "200", "--dim", "16", "--queries", "8", "--seed", "4", "--f32"]);
    let o32 = tmp.path().join("sweep32");
    let args = ["--nbits", "2", "--ncells", "1", "--ndocs", "64", "--centroids", "64"];
    ok(&[&["sweep", e32, "--out", o32.to_str().unwrap(), "--k", "20"][..], &args].concat());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(o32.join("sweep.json")).unwrap()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    let systems: Vec<&str> = rows.iter().map(|r| r["system"].as_str().unwrap()).collect();
    assert_eq!(systems, ["exact", "float16", "bi-encoder", "tartan"]);
    assert_eq!(
        (rows[0]["bytes_per_token"].as_f64(), rows[1]["bytes_per_token"].as_f64()),
        (Some(64.0), Some(32.0))
    );
}

#[test]
fn closed_stdout_ends_quietly() {
    // `tartan ... | head` closes the pipe early: exit without a broken-pipe panic. The read end
    // is closed before the child starts, so its first write meets a closed pipe every time
    // (dropping a piped stdout after spawning raced with the child's write).
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("syn");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tartan"))
        .args(["synth", dir.to_str().unwrap(), "--docs", "20", "--dim", "8", "--queries", "2"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn import_next_plaid_then_search() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tartan/tests/fixtures/next-plaid-2bit/index");
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("imported");
    let i = idx.to_str().unwrap();
    let out = ok(&["import", "next-plaid", src.to_str().unwrap(), i]);
    assert!(out.contains("imported 120 documents (1464 tokens, 1 chunks)"), "{out}");
    let err = fails(&["import", "next-plaid", src.to_str().unwrap(), i]);
    assert!(err.contains("exists"), "{err}");
    ok(&["import", "next-plaid", src.to_str().unwrap(), i, "--overwrite"]);
    ok(&["verify", i]);
    let info = ok(&["inspect", i]);
    assert!(info.contains("120"), "{info}");
    let err = fails(&["import", "next-plaid", tmp.path().to_str().unwrap(), "x"]);
    assert!(err.contains("metadata.json"), "{err}");
}
