//! `tartan serve --indices`: next-plaid's routes over raw HTTP on 127.0.0.1 (an ephemeral
//! port), above all their error answers (status, `code`, `message`). next-plaid's own client
//! drives the same server in crates/tartan-py/tests/test_next_plaid_client.py.

mod common;

use std::time::{Duration, Instant};

use common::{call, call_raw, Served};
use serde_json::{json, Value};

const DIM: usize = 16;

/// `n` unit vectors of `DIM` dimensions, as next-plaid's nested arrays.
fn doc(seed: usize, n: usize) -> Value {
    let rows: Vec<Vec<f32>> = (0..n)
        .map(|t| {
            let v: Vec<f32> =
                (0..DIM).map(|j| (((seed * 31 + t * 7 + j * 13) % 17) as f32) - 8.0).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
            v.iter().map(|x| x / norm).collect()
        })
        .collect();
    json!({ "embeddings": rows })
}

/// Polls `GET /indices/{name}` until it holds `n` documents (30 s at most).
fn wait_docs(url: &str, name: &str, n: u64) -> Value {
    let start = Instant::now();
    loop {
        let (status, info) = call("GET", &format!("{url}/indices/{name}"), None);
        assert_eq!(status, 200, "{info}");
        if info["num_documents"] == n && info["pending_updates"] == 0 {
            return info;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "stuck at {info}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn expect(status: u16, body: &Value, want_status: u16, code: &str, words: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(msg.contains(words), "{words:?} not in {body}");
    assert_eq!(body["error"], body["message"]);
}

#[test]
fn next_plaid_routes_and_their_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = Served::start_with(&["--indices", data.to_str().unwrap()]);
    let url = &s.url;

    let (st, h) = call("GET", &format!("{url}/health"), None);
    assert_eq!((st, &h["status"], &h["loaded_indices"]), (200, &json!("healthy"), &json!(0)));
    assert_eq!(call("GET", &format!("{url}/"), None).1["status"], "healthy");

    // Declaring.
    let (st, b) = call(
        "POST",
        &format!("{url}/indices"),
        Some(&json!({"name": "a", "config": {"nbits": 2}})),
    );
    assert_eq!((st, &b["config"]["nbits"]), (200, &json!(2)), "{b}");
    let (st, b) = call("POST", &format!("{url}/indices"), Some(&json!({"name": "a"})));
    expect(st, &b, 409, "INDEX_ALREADY_EXISTS", "\"a\"");
    let (st, b) = call("POST", &format!("{url}/indices"), Some(&json!({"name": "../up"})));
    expect(st, &b, 400, "BAD_REQUEST", "../up");
    let (st, b) = call(
        "POST",
        &format!("{url}/indices"),
        Some(&json!({"name": "b", "config": {"nbits": 3}})),
    );
    expect(st, &b, 400, "BAD_REQUEST", "nbits");
    let (st, b) = call(
        "POST",
        &format!("{url}/indices"),
        Some(&json!({"name": "b", "config": {"nbits": "x"}})),
    );
    expect(st, &b, 422, "UNPROCESSABLE_ENTITY", "config.nbits");
    let (st, b) = call_raw("POST", &format!("{url}/indices"), Some(b"{not json".to_vec()));
    expect(st, &b, 400, "BAD_REQUEST", "key must be a string");
    let (st, b) = call(
        "POST",
        &format!("{url}/indices"),
        Some(&json!({"name": "b", "config": {"binary": true}})),
    );
    expect(st, &b, 400, "BAD_REQUEST", "binary");
    assert_eq!(call("GET", &format!("{url}/indices"), None).1, json!(["a"]));

    // Unknown index, method, route; routes tartan does not serve.
    let (st, b) = call("GET", &format!("{url}/indices/zz"), None);
    expect(st, &b, 404, "INDEX_NOT_FOUND", "zz");
    let (st, b) =
        call("POST", &format!("{url}/indices/zz/search"), Some(&json!({"queries": [doc(1, 2)]})));
    expect(st, &b, 404, "INDEX_NOT_FOUND", "zz");
    let (st, b) = call("PATCH", &format!("{url}/indices"), None);
    expect(st, &b, 405, "METHOD_NOT_ALLOWED", "PATCH");
    let (st, b) = call("GET", &format!("{url}/nowhere"), None);
    expect(st, &b, 404, "NOT_FOUND", "/nowhere");
    // Text routes without a model: 503 as next-plaid answers (its client raises
    // ModelNotLoadedError); reranking given embeddings needs no model.
    let (st, b) = call("POST", &format!("{url}/encode"), Some(&json!({"texts": ["x"]})));
    expect(st, &b, 503, "MODEL_NOT_LOADED", "--model");
    let (st, b) = call(
        "POST",
        &format!("{url}/indices/zz/update_with_encoding"),
        Some(&json!({"documents": ["x"]})),
    );
    expect(st, &b, 404, "INDEX_NOT_FOUND", "zz");
    let rerank =
        json!({"query": doc(5, 3)["embeddings"], "documents": [doc(1, 4), doc(5, 3), doc(9, 2)]});
    let (st, b) = call("POST", &format!("{url}/rerank"), Some(&rerank));
    assert_eq!(
        (st, &b["num_documents"], &b["results"][0]["index"]),
        (200, &json!(3), &json!(1)),
        "{b}"
    );
    let s0 = b["results"][0]["score"].as_f64().unwrap();
    assert!((s0 - 3.0).abs() < 1e-4, "a document scores 1 per identical query token: {b}");
    let bad =
        json!({"query": doc(5, 3)["embeddings"], "documents": [{"embeddings": [[1.0, 0.0]]}]});
    let (st, b) = call("POST", &format!("{url}/rerank"), Some(&bad));
    expect(st, &b, 400, "BAD_REQUEST", "document 0: dimension 2");

    // Bad documents: refused at once, nothing queued.
    let upd = format!("{url}/indices/a/update");
    let (st, b) = call("POST", &upd, Some(&json!({"documents": []})));
    expect(st, &b, 400, "BAD_REQUEST", "no documents");
    let (st, b) =
        call("POST", &upd, Some(&json!({"documents": [doc(1, 3), {"embeddings": [[1.0, 0.0]]}]})));
    expect(st, &b, 400, "BAD_REQUEST", "document 1 has dimension 2");
    let (st, b) = call("POST", &upd, Some(&json!({"documents": [{"embeddings": [[2.0, 0.0]]}]})));
    expect(st, &b, 400, "BAD_REQUEST", "unit");
    let (st, b) = call("POST", &upd, Some(&json!({"documents": [{"embeddings": []}]})));
    expect(st, &b, 422, "UNPROCESSABLE_ENTITY", "documents[0].embeddings");
    let (st, b) =
        call("POST", &upd, Some(&json!({"documents": [doc(1, 2)], "metadata": [{}, {}]})));
    expect(st, &b, 400, "BAD_REQUEST", "2 objects for 1 documents");
    let (st, b) =
        call("POST", &upd, Some(&json!({"documents": [doc(1, 2)], "metadata": [{"_subset_": 5}]})));
    expect(st, &b, 400, "BAD_REQUEST", "_subset_");
    let (st, b) = call(
        "POST",
        &upd,
        Some(&json!({"documents": [{"embeddings_b64": "AAAA", "shape": [2, 16]}]})),
    );
    expect(st, &b, 422, "UNPROCESSABLE_ENTITY", "needs 128");

    // 40 documents in two batches: 202 each, then published.
    let docs: Vec<Value> = (0..40).map(|i| doc(i, 3 + i % 5)).collect();
    let meta: Vec<Value> =
        (0..40).map(|i| json!({"kind": if i % 2 == 0 { "x" } else { "y" }, "n": i})).collect();
    for range in [0..25, 25..40] {
        let body = json!({"documents": docs[range.clone()], "metadata": meta[range]});
        let (st, b) = call("POST", &upd, Some(&body));
        assert_eq!(st, 202, "{b}");
        assert!(b.as_str().unwrap().contains("queued"), "{b}");
    }
    let info = wait_docs(url, "a", 40);
    assert_eq!(info["dimension"], DIM);

    // Searching: settings and filters checked, answers in next-plaid's shape.
    let search = format!("{url}/indices/a/search");
    let (st, b) =
        call("POST", &search, Some(&json!({"queries": [doc(7, 4)], "params": {"top_k": 3}})));
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["num_queries"], 1);
    let r = &b["results"][0];
    assert_eq!(r["document_ids"][0], 7, "{b}");
    assert_eq!(r["metadata"][0], json!({"kind": "y", "n": 7, "_subset_": 7}));
    let (st, b) =
        call("POST", &search, Some(&json!({"queries": [doc(7, 4)], "params": {"top_k": 0}})));
    expect(st, &b, 400, "BAD_REQUEST", "top_k");
    let (st, b) = call("POST", &search, Some(&json!({"queries": []})));
    expect(st, &b, 400, "BAD_REQUEST", "0 queries or documents");
    let (st, b) = call("POST", &search, Some(&json!({"queries": [{"embeddings": [[1.0, 0.0]]}]})));
    expect(st, &b, 400, "DIMENSION_MISMATCH", "dimension");
    let (st, b) =
        call("POST", &search, Some(&json!({"queries": [doc(7, 2)], "text_query": ["x"]})));
    expect(st, &b, 400, "BAD_REQUEST", "full-text");
    let (st, b) = call("POST", &search, Some(&json!({"queries": [doc(7, 2)], "unknown": 1})));
    expect(st, &b, 422, "UNPROCESSABLE_ENTITY", "unknown");
    let filtered = format!("{url}/indices/a/search/filtered");
    let body = json!({"queries": [doc(7, 4)], "params": {"top_k": 40, "n_full_scores": 64},
                      "filter_condition": "kind = ? AND n >= ?", "filter_parameters": ["x", 30]});
    let (st, b) = call("POST", &filtered, Some(&body));
    assert_eq!(st, 200, "{b}");
    let ids: Vec<u64> = b["results"][0]["document_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 5, "{b}");
    assert!(ids.iter().all(|&i| i % 2 == 0 && i >= 30), "{ids:?}");
    for (cond, params, token) in [
        ("kind = ? OR", json!(["x"]), "end"),
        ("kind = ?", json!([]), "no parameter"),
        ("upper(kind) = ?", json!(["X"]), "("),
        ("kind = ? UNION SELECT 1", json!(["x"]), "UNION"),
    ] {
        let body =
            json!({"queries": [doc(7, 2)], "filter_condition": cond, "filter_parameters": params});
        let (st, b) = call("POST", &filtered, Some(&body));
        expect(st, &b, 422, "INVALID_CONDITION", token);
    }
    // A parameter is a value, never SQL: this matches nothing and breaks nothing.
    let body = json!({"queries": [doc(7, 2)], "filter_condition": "kind = ?", "filter_parameters": ["x' OR '1'='1"]});
    let (st, b) = call("POST", &filtered, Some(&body));
    assert_eq!((st, &b["results"][0]["document_ids"]), (200, &json!([])), "{b}");
    let (st, b) = call(
        "POST",
        &search,
        Some(&json!({"queries": [doc(7, 4)], "subset": [3, 4, 7], "params": {"top_k": 10}})),
    );
    assert_eq!(st, 200, "{b}");
    let mut got: Vec<u64> = b["results"][0]["document_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    got.sort_unstable();
    assert_eq!(got, [3, 4, 7]);

    // Metadata routes.
    let m = format!("{url}/indices/a/metadata");
    assert_eq!(
        call("GET", &format!("{m}/count"), None).1,
        json!({"count": 40, "has_metadata": true})
    );
    let (st, b) = call(
        "POST",
        &format!("{m}/query"),
        Some(&json!({"condition": "n BETWEEN ? AND ?", "parameters": [3, 5]})),
    );
    assert_eq!((st, &b["document_ids"]), (200, &json!([3, 4, 5])), "{b}");
    let (st, b) =
        call("POST", &format!("{m}/get"), Some(&json!({"document_ids": [39, 0, 77], "limit": 1})));
    assert_eq!(
        (st, &b["count"], &b["metadata"][0]["_subset_"]),
        (200, &json!(1), &json!(0)),
        "{b}"
    );
    let (st, b) = call("POST", &format!("{m}/get"), Some(&json!({"parameters": [1]})));
    expect(st, &b, 400, "BAD_REQUEST", "without a condition");
    let (st, b) = call("POST", &format!("{m}/check"), Some(&json!({"document_ids": [1, -1, 40]})));
    assert_eq!(
        (st, &b["existing_ids"], &b["missing_ids"]),
        (200, &json!([1]), &json!([-1, 40])),
        "{b}"
    );
    let upd_meta = json!({"condition": "n IN (?, ?)", "parameters": [1, 2], "updates": {"kind": "z", "new": true}});
    let (st, b) = call("POST", &format!("{m}/update"), Some(&upd_meta));
    assert_eq!((st, &b), (200, &json!({"updated": 2})));
    let (_, b) = call(
        "POST",
        &format!("{m}/get"),
        Some(&json!({"condition": "kind = ?", "parameters": ["z"]})),
    );
    assert_eq!(
        b["metadata"],
        json!([{"kind": "z", "new": true, "n": 1, "_subset_": 1}, {"kind": "z", "new": true, "n": 2, "_subset_": 2}])
    );
    let bad = json!({"condition": "n = ?", "parameters": [1], "updates": {"_subset_": 9}});
    let (st, b) = call("POST", &format!("{m}/update"), Some(&bad));
    expect(st, &b, 400, "BAD_REQUEST", "_subset_");

    // Deleting by condition: 202, and a bad condition is refused before anything is queued.
    let del = format!("{url}/indices/a/documents");
    let (st, b) = call("DELETE", &del, Some(&json!({"condition": "n <", "parameters": []})));
    expect(st, &b, 422, "INVALID_CONDITION", "value");
    let (st, b) = call("DELETE", &del, Some(&json!({"condition": "n < ?", "parameters": [10]})));
    assert_eq!(st, 202, "{b}");
    wait_docs(url, "a", 30);
    let (_, b) = call("POST", &format!("{m}/check"), Some(&json!({"document_ids": [9, 10]})));
    assert_eq!(b["existing_ids"], json!([10]));

    // The document limit, then deleting the index.
    let (st, b) =
        call("PUT", &format!("{url}/indices/a/config"), Some(&json!({"max_documents": 0})));
    expect(st, &b, 400, "BAD_REQUEST", "max_documents");
    let (st, b) =
        call("PUT", &format!("{url}/indices/a/config"), Some(&json!({"max_documents": 12})));
    assert_eq!((st, &b["config"]["max_documents"]), (200, &json!(12)), "{b}");
    wait_docs(url, "a", 12);
    let (_, b) = call(
        "POST",
        &format!("{m}/query"),
        Some(&json!({"condition": "n >= ?", "parameters": [0]})),
    );
    assert_eq!(b["document_ids"], json!((28..40).collect::<Vec<_>>()), "the oldest went first");
    let (st, b) = call("DELETE", &format!("{url}/indices/a"), None);
    assert_eq!((st, b), (200, json!({"deleted": true, "name": "a"})));
    let (st, b) = call("GET", &format!("{url}/indices/a"), None);
    expect(st, &b, 404, "INDEX_NOT_FOUND", "\"a\"");
    assert!(!data.join("a").exists());
}
