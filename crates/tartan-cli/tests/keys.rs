//! API keys on `tartan serve`: every route of both APIs × no key, a wrong key and each scope;
//! keys rotated without a restart; read-only; no keys off loopback.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{fails, ok, Served};
use serde_json::{json, Value};
use tartan_server::{Scope, NEXT_PLAID_ROUTES, ROUTES};

/// One call with an optional bearer key: status, `WWW-Authenticate`, JSON body.
fn call_with(method: &str, url: &str, key: Option<&str>) -> (u16, Option<String>, Value) {
    let mut req = ureq::request(method, url).timeout(Duration::from_secs(30));
    if let Some(k) = key {
        req = req.set("authorization", &format!("Bearer {k}"));
    }
    let res = if method == "get" || method == "GET" {
        req.call()
    } else {
        req.set("content-type", "application/json").send_string("{}")
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let challenge = resp.header("www-authenticate").map(str::to_string);
    let text = resp.into_string().unwrap_or_default();
    (status, challenge, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A key per scope in a key file made by `tartan keys new`.
fn key_file(dir: &Path) -> (std::path::PathBuf, Vec<(Scope, String)>) {
    let file = dir.join("keys.txt");
    let f = file.to_str().unwrap();
    let keys = Scope::ALL
        .iter()
        .map(|s| {
            let key = ok(&["keys", "new", f, "--name", &format!("k-{s}"), "--scope", s.name()]);
            (*s, key.trim().to_string())
        })
        .collect();
    (file, keys)
}

fn small_index(dir: &Path) -> std::path::PathBuf {
    let emb = dir.join("emb");
    ok(&["synth", emb.to_str().unwrap(), "--docs", "60", "--dim", "16", "--queries", "2"]);
    let idx = dir.join("idx");
    ok(&["index", emb.to_str().unwrap(), idx.to_str().unwrap(), "--centroids", "16"]);
    idx
}

/// Walks `routes` on `base`: without a key and with a wrong one every route is 401 with a
/// Bearer challenge; with a key, 403 below the route's scope and something else at or above.
fn walk(
    base: &str,
    routes: &[(&str, &str, Scope)],
    keys: &[(Scope, String)],
    (code_at, unauthorized, forbidden): (&str, &str, &str),
) {
    for &(method, path, need) in routes {
        let url = format!("{base}{}", path.replace("{name}", "nope"));
        for key in [None, Some("not-a-key-of-this-server")] {
            let (st, challenge, body) = call_with(method, &url, key);
            assert_eq!(st, 401, "{method} {path} with {key:?}: {body}");
            assert_eq!(challenge.as_deref(), Some("Bearer"), "{method} {path}");
            assert_eq!(body.pointer(code_at), Some(&json!(unauthorized)), "{body}");
        }
        for (scope, key) in keys {
            let (st, _, body) = call_with(method, &url, Some(key));
            if *scope >= need {
                assert!(st != 401 && st != 403, "{method} {path} with {scope}: {st} {body}");
            } else {
                assert_eq!(st, 403, "{method} {path} with {scope}: {body}");
                assert_eq!(body.pointer(code_at), Some(&json!(forbidden)), "{body}");
                let msg = body.to_string();
                assert!(msg.contains(&format!("needs {need}")), "{msg}");
            }
        }
    }
}

/// The policy the tables state: reading needs `read`, changing data needs `write`.
#[test]
fn routes_that_change_data_need_write() {
    for (method, path, need) in ROUTES {
        let changes = path == "/documents" || path == "/compact";
        assert_eq!(need, if changes { Scope::Write } else { Scope::Read }, "{method} {path}");
    }
    for (method, path, need) in NEXT_PLAID_ROUTES {
        let changes = matches!(method, "put" | "delete")
            || (method == "post"
                && (path == "/indices"
                    || path.ends_with("/update")
                    || path.ends_with("/documents")
                    || path.ends_with("/update_with_encoding")));
        assert_eq!(need, if changes { Scope::Write } else { Scope::Read }, "{method} {path}");
    }
}

/// docs/openapi.json names each route's scope as the server enforces it.
#[test]
fn the_openapi_document_names_each_routes_scope() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for (method, route, need) in ROUTES {
        let op = &doc["paths"][route][method];
        assert_eq!(op["x-scope"], json!(need.name()), "{method} {route}");
        assert!(op["responses"]["401"].is_object() && op["responses"]["403"].is_object());
    }
}

#[test]
fn every_route_needs_its_scope_in_both_apis() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, keys) = key_file(tmp.path());
    // The file holds hashes, never the keys.
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(keys.iter().all(|(_, k)| !text.contains(k.as_str())), "{text}");
    let err =
        fails(&["keys", "new", file.to_str().unwrap(), "--name", "k-read", "--scope", "read"]);
    assert!(err.contains("already has a key named \"k-read\""), "{err}");

    let idx = small_index(tmp.path());
    let server = Served::start(&idx, &["--api-keys", file.to_str().unwrap()]);
    walk(&server.url, &ROUTES, &keys, ("/error/code", "unauthorized", "forbidden"));
    drop(server);

    let data = tmp.path().join("named");
    let server = Served::start_with(&[
        "--indices",
        data.to_str().unwrap(),
        "--api-keys",
        file.to_str().unwrap(),
    ]);
    walk(&server.url, &NEXT_PLAID_ROUTES, &keys, ("/code", "UNAUTHORIZED", "FORBIDDEN"));
}

#[test]
fn keys_rotate_without_a_restart_and_read_only_refuses_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, keys) = key_file(tmp.path());
    let idx = small_index(tmp.path());
    let f = file.to_str().unwrap();
    let server = Served::start(&idx, &["--api-keys", f, "--read-only"]);
    let stats = format!("{}/stats", server.url);
    let compact = format!("{}/compact", server.url);
    let admin = &keys[2].1;
    assert_eq!(call_with("GET", &stats, Some(admin)).0, 200);
    // Read-only: even an admin key cannot change data.
    let (st, _, body) = call_with("POST", &compact, Some(admin));
    assert_eq!((st, &body["error"]["code"]), (403, &json!("read_only")), "{body}");

    // A new file: the old keys stop working and the new one works, without a restart.
    std::fs::remove_file(&file).unwrap();
    let fresh = ok(&["keys", "new", f, "--name", "fresh", "--scope", "read"]);
    let fresh = fresh.trim();
    let t = Instant::now();
    loop {
        let (old, new) =
            (call_with("GET", &stats, Some(admin)).0, call_with("GET", &stats, Some(fresh)).0);
        if (old, new) == (401, 200) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "old key {old}, new key {new}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A file that no longer parses keeps the keys the server had.
    std::fs::write(&file, "garbage line\n").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(call_with("GET", &stats, Some(fresh)).0, 200);
}

#[test]
fn without_keys_only_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = small_index(tmp.path());
    // Refused before anything is bound.
    let err = fails(&["serve", idx.to_str().unwrap(), "--addr", "0.0.0.0:0"]);
    assert!(err.contains("not a loopback address") && err.contains("--insecure-no-auth"), "{err}");
    // A key file that does not parse names the line.
    let bad = tmp.path().join("bad.txt");
    std::fs::write(&bad, "ops root sha256:00\n").unwrap();
    let err = fails(&[
        "serve",
        idx.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
        "--api-keys",
        bad.to_str().unwrap(),
    ]);
    assert!(err.contains("bad.txt:1") && err.contains("\"root\" is not a scope"), "{err}");
    // Without keys on loopback, as before: everything answers.
    let server = Served::start(&idx, &[]);
    assert_eq!(call_with("GET", &format!("{}/stats", server.url), None).0, 200);
}
