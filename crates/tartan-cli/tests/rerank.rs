//! `tartan explain` (CLI and server) with the shared MiniLM; and `tartan search --rerank`
//! and `tartan serve --rerank` with the shared tiny cross-encoder:
//! one text query (table and JSON), batch runs over text queries and over an embeddings
//! directory, indexes with and without stored texts, and the server's rerank requests. Rerank
//! scores are checked against the cross-encoder run on its own.

#![allow(clippy::print_stderr)] // the skip reason is printed

mod common;

use std::collections::HashMap;

use common::{fails, ok, shared_model, write_beir};
use serde_json::{json, Value};
use tartan_encoder::{CrossEncoder, CrossEncoderParams};

/// The five BEIR documents' texts as indexed: title and text.
fn passages() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("d1", "Vitamin D Vitamin D deficiency is associated with diabetes."),
        ("d2", "Cats Cats sleep for most of the day."),
        ("d3", "Rust Rust is a systems programming language."),
        ("d4", "Coffee Coffee contains caffeine, a stimulant."),
        ("d5", "Oceans Oceans cover most of the planet's surface."),
    ])
}

/// Checks reranked hits: the first `depth` carry the cross-encoder's own logit for their
/// passage, in descending order, and come from the first stage's first `depth`.
fn check(hits: &[Value], query: &str, depth: usize, ce: &CrossEncoder) {
    let texts = passages();
    let mut last = f32::INFINITY;
    for (i, h) in hits.iter().enumerate() {
        let id = h["id"].as_str().unwrap();
        if i >= depth {
            assert!(h["rerank_score"].is_null(), "{h}");
            continue;
        }
        let got = h["rerank_score"].as_f64().unwrap() as f32;
        let want = ce.score(query, &[texts[id]]).unwrap()[0];
        assert!((got - want).abs() < 1e-5, "{id}: {got} vs {want}");
        assert!(got <= last, "not in descending order: {hits:?}");
        last = got;
        if let Some(r) = h.get("first_stage_rank") {
            assert!(r.as_u64().unwrap() as usize <= depth, "{h}");
        }
    }
}

/// The five-document BEIR directory under `root` and an index of it built with `model`
/// (texts stored).
fn text_index(root: &std::path::Path, model: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let beir = root.join("beir");
    write_beir(&beir);
    let idx = root.join("idx");
    let corpus = beir.join("corpus.jsonl");
    let args = ["index", corpus.to_str().unwrap(), idx.to_str().unwrap(), "--model", model];
    ok(&[&args[..], &["--centroids", "8"]].concat());
    (beir, idx)
}

#[test]
fn rerank_from_the_command_line_and_the_server() {
    let (Some(minilm), Some(tiny)) =
        (shared_model("all-MiniLM-L6-v2"), shared_model("tiny-cross-encoder"))
    else {
        return;
    };
    let (m, ce_dir) = (minilm.to_str().unwrap(), tiny.to_str().unwrap());
    let ce = CrossEncoder::load(&tiny, &CrossEncoderParams::new()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (beir, idx) = text_index(tmp.path(), m);
    let (b, i) = (beir.to_str().unwrap(), idx.to_str().unwrap());

    // One text query as JSON: five hits, the first three reranked.
    let query = "How long do cats sleep?";
    let search = ["search", i, "--model", m, "--query", query, "--k", "5"];
    // Every document scored (five documents, eight centroids).
    let rr = ["--rerank", ce_dir, "--rerank-depth", "3", "--ncells", "8", "--threshold=-1"];
    let out = ok(&[&search[..], &rr[..], &["--json"]].concat());
    let v: Value = serde_json::from_str(&out).unwrap();
    let hits = v["hits"].as_array().unwrap();
    assert_eq!((hits.len(), v["reranked"].as_u64()), (5, Some(3)), "{v}");
    check(hits, query, 3, &ce);
    assert!(hits[0]["snippet"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    // The table says the same.
    let table = ok(&[&search[..], &rr[..]].concat());
    let first = table.lines().find(|l| l.trim_start().starts_with("1 ")).unwrap();
    assert!(first.contains(hits[0]["id"].as_str().unwrap()), "{table}");

    // A batch run over the BEIR queries: scores are logits, metrics printed.
    let run = tmp.path().join("run.tsv");
    let r = run.to_str().unwrap();
    let batch = ["search", i, "--model", m, "--queries", b, "--out", r];
    let out = ok(&[&batch[..], &rr[..], &["--k", "3"]].concat());
    assert!(out.contains("reranked to depth 3") && out.contains("nDCG@10"), "{out}");
    let run_text = std::fs::read_to_string(&run).unwrap();
    let q2: Vec<Value> = run_text
        .lines()
        .filter(|l| l.starts_with("q2 "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            json!({"id": f[2], "rerank_score": f[4].parse::<f64>().unwrap()})
        })
        .collect();
    assert_eq!(q2.len(), 3, "{run_text}");
    check(&q2, "how long do cats sleep", 3, &ce);
    let err = fails(&[&batch[..], &rr[..], &["--k", "10"]].concat());
    assert!(err.contains("--rerank-depth"), "{err}");

    // An index built from embeddings stores no texts: the corpus must be given.
    let emb = tmp.path().join("emb");
    let e = emb.to_str().unwrap();
    ok(&["encode", b, "--model", m, "--out", e]);
    let bare = tmp.path().join("bare");
    ok(&["index", e, bare.to_str().unwrap(), "--centroids", "8"]);
    let on_bare = ["search", bare.to_str().unwrap(), "--model", m, "--query", query, "--json"];
    let err = fails(&[&on_bare[..], &rr[..]].concat());
    assert!(err.contains("has no text to rerank"), "{err}");
    let out = ok(&[&on_bare[..], &rr[..], &["--corpus", b, "--k", "5"]].concat());
    let v2: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v2["hits"], v["hits"], "same vectors, same texts, same answer");
    // Query vectors from the embeddings directory need their texts by id.
    let from_emb = ["search", bare.to_str().unwrap(), "--queries", e, "--out", r, "--k", "3"];
    let err = fails(&[&from_emb[..], &rr[..], &["--corpus", b]].concat());
    assert!(err.contains("--query-texts"), "{err}");
    ok(&[&from_emb[..], &rr[..], &["--corpus", b, "--query-texts", b]].concat());
    assert_eq!(std::fs::read_to_string(&run).unwrap().lines().count(), run_text.lines().count());

    // The sweep's third system: exact MaxSim's first hits reread by the cross-encoder.
    let sweep = tmp.path().join("sweep");
    let sw = sweep.to_str().unwrap();
    let sweep_args = ["sweep", e, "--out", sw, "--nbits", "2", "--ncells", "1", "--ndocs", "64"];
    let out = ok(&[
        &sweep_args[..],
        &["--k", "5", "--rerank", ce_dir, "--rerank-depth", "3", "--corpus", b],
        &["--query-texts", b, "--centroids", "4"],
    ]
    .concat());
    assert!(out.contains("cross-encoder over exact's top 3"), "{out}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(sweep.join("sweep.json")).unwrap()).unwrap();
    let row = report["rows"].as_array().unwrap().iter().find(|r| r["system"] == "cross-encoder");
    let row = row.unwrap_or_else(|| panic!("{report}"));
    assert!(row["rerank_ms_per_doc"].as_f64().unwrap() > 0.0, "{row}");
    // Every one of the five documents is in exact's top 5 and in the reranked top 5.
    assert_eq!(row["recall_10_vs_exact"], 1.0, "{row}");
    assert!((0.0..=1.0).contains(&row["ndcg_10"].as_f64().unwrap()), "{row}");
    let csv = std::fs::read_to_string(sweep.join("sweep.csv")).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("cross-encoder,")), "{csv}");

    // The server reranks text queries that ask for it.
    let server = common::Served::start(&idx, &["--model", m, "--rerank", ce_dir]);
    let url = format!("{}/search", server.url);
    let body = json!({"text": query, "k": 5, "rerank": true, "rerank_depth": 3, "with_text": true,
        "ncells": 8, "centroid_score_threshold": -1.0});
    let (status, got) = common::call("POST", &url, Some(&body));
    assert_eq!(status, 200, "{got}");
    let ids = |h: &Value| h.as_array().unwrap().iter().map(|x| x["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&got["hits"]), ids(&v["hits"]), "{got}");
    check(got["hits"].as_array().unwrap(), query, 3, &ce);
    let (status, got) = common::call(
        "POST",
        &format!("{}/search/batch", server.url),
        Some(&json!({"texts": [query, "vitamin D"], "k": 2, "rerank": true})),
    );
    assert_eq!(status, 200, "{got}");
    check(got["results"][0]["hits"].as_array().unwrap(), query, 2, &ce);
    let mut unit = vec![0.0f32; 384];
    unit[0] = 1.0;
    for (body, field) in [
        (json!({"query": [unit], "rerank": true}), "rerank"),
        (json!({"text": query, "rerank_depth": 3}), "rerank_depth"),
        (json!({"text": query, "rerank": true, "rerank_depth": 0}), "rerank_depth"),
    ] {
        let (status, got) = common::call("POST", &url, Some(&body));
        assert_eq!((status, got["error"]["field"].as_str()), (422, Some(field)), "{body}: {got}");
    }
    drop(server);
    let plain = common::Served::start(&idx, &["--model", m]);
    let (status, got) = common::call(
        "POST",
        &format!("{}/search", plain.url),
        Some(&json!({"text": query, "rerank": true})),
    );
    assert_eq!((status, got["error"]["field"].as_str()), (422, Some("rerank")), "{got}");
    assert!(got["error"]["message"].as_str().unwrap().contains("--rerank"), "{got}");
}

#[test]
fn explain_names_tokens_and_the_exact_side() {
    let Some(minilm) = shared_model("all-MiniLM-L6-v2") else { return };
    let m = minilm.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (beir, idx) = text_index(tmp.path(), m);
    let (b, i) = (beir.to_str().unwrap(), idx.to_str().unwrap());

    // A text query: tokens named, the stored text encoded again for the exact side.
    let query = "How long do cats sleep?";
    let out = ok(&["explain", i, "--model", m, "--query", query, "--doc", "d2", "--json"]);
    let e: Value = serde_json::from_str(&out).unwrap();
    let tokens = e["tokens"].as_array().unwrap();
    let texts: Vec<&str> = tokens.iter().map(|t| t["query_text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["[CLS]", "how", "long", "do", "cats", "sleep", "?", "[SEP]"], "{e}");
    let cats = &tokens[4];
    assert_eq!(cats["doc_text"], "cats", "{e}");
    assert_eq!(cats["exact_doc_token"], cats["doc_token"], "{e}");
    let (score, exact) = (e["score"].as_f64().unwrap(), e["exact_score"].as_f64().unwrap());
    assert!((score - exact).abs() < 0.1 * exact, "{e}");
    let shares: f64 = tokens.iter().map(|t| t["share"].as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-4, "{e}");
    assert!(e.get("notes").is_none(), "{e}");
    // The table.
    let table = ok(&["explain", i, "--model", m, "--query", query, "--doc", "d2"]);
    assert!(table.contains("exact") && table.lines().any(|l| l.contains(" cats ")), "{table}");
    // Another doc_maxlen than the build's: tokens do not line up, and it says so.
    let out = ok(&[
        "explain",
        i,
        "--model",
        m,
        "--doc-maxlen",
        "4",
        "--query",
        query,
        "--doc",
        "d2",
        "--json",
    ]);
    let e2: Value = serde_json::from_str(&out).unwrap();
    assert!(e2["exact_score"].is_null(), "{e2}");
    assert!(e2["notes"][0].as_str().unwrap().contains("doc_maxlen"), "{e2}");

    // A vector query from an embeddings directory, the exact side from its documents.
    let emb = tmp.path().join("emb");
    let e_dir = emb.to_str().unwrap();
    ok(&["encode", b, "--model", m, "--out", e_dir]);
    let out = ok(&[
        "explain",
        i,
        "--queries",
        e_dir,
        "--query-id",
        "q2",
        "--doc",
        "d2",
        "--embeddings",
        e_dir,
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["exact_score"].as_f64().is_some() && v["tokens"][0]["query_text"].is_null(), "{v}");

    // The server gives the same explanation.
    let server = common::Served::start(&idx, &["--model", m]);
    let url = format!("{}/explain", server.url);
    let (status, got) = common::call("POST", &url, Some(&json!({"text": query, "id": "d2"})));
    assert_eq!((status, &got), (200, &e));
    let (status, got) = common::call("POST", &url, Some(&json!({"text": query, "id": "nope"})));
    assert_eq!((status, got["error"]["field"].as_str()), (422, Some("id")), "{got}");
    drop(server);

    let err = fails(&["explain", i, "--model", m, "--query", query, "--doc", "nope"]);
    assert!(err.contains("\"nope\""), "{err}");
    let err = fails(&["explain", i, "--queries", e_dir, "--query-id", "q9", "--doc", "d2"]);
    assert!(err.contains("q9"), "{err}");
}
