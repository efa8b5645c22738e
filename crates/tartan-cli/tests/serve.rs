//! `tartan serve` processes on 127.0.0.1 (ephemeral ports): the OpenAPI contract, bad
//! requests, remote shards (equal to local ones, a killed one, a late one), readers during
//! writes, and a graceful stop. Every wait is bounded in count and time.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{call, call_raw, ok, Served};
use serde_json::{json, Value};
use tartan::{SearchOptions, SearchParams, Searcher, ShardPolicy};
use tartan_embeddings::{Kind, Precision};

const DIM: usize = 32;

/// An embeddings directory of `n` synthetic documents (with metadata `{"parity"}`) and 12
/// queries; returns the corpus.
fn corpus(dir: &Path, n: usize, seed: u64) -> tartan_synth::SynthCorpus {
    let c = tartan_synth::SynthParams::new(n).dim(DIM).n_queries(12).seed(seed).generate();
    c.docs.write(dir, Kind::Docs, Precision::F32).unwrap();
    c.queries.write(dir, Kind::Queries, Precision::F32).unwrap();
    let meta: String =
        (0..n).map(|d| format!("{{\"id\": \"d{d}\", \"parity\": {}}}\n", d % 2)).collect();
    std::fs::write(dir.join("meta.jsonl"), meta).unwrap();
    c
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn query_json(c: &tartan_synth::SynthCorpus, i: usize) -> Value {
    let q = c.queries.doc(i);
    Value::Array(q.chunks(DIM).map(|r| json!(r)).collect())
}

// ---------------------------------------------------------------- the OpenAPI document

/// Checks `v` against an OpenAPI schema (the subset docs/openapi.json uses: $ref, type,
/// required, properties, additionalProperties false, items, enum, oneOf).
fn conforms(spec: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        return conforms(spec, &spec["components"]["schemas"][name], v, at);
    }
    if let Some(alts) = schema.get("oneOf").and_then(Value::as_array) {
        return match alts.iter().filter(|s| conforms(spec, s, v, at).is_ok()).count() {
            1 => Ok(()),
            n => Err(format!("{at}: matches {n} of oneOf")),
        };
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            return Err(format!("{at}: {v} is not one of {allowed:?}"));
        }
    }
    let ok = match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_u64() || v.is_i64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        Some(t) => return Err(format!("{at}: unknown type {t}")),
    };
    if !ok {
        return Err(format!("{at}: {v} is not of type {}", schema["type"]));
    }
    if let Some(o) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for req in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !o.contains_key(req.as_str().unwrap()) {
                return Err(format!("{at}: missing {req}"));
            }
        }
        for (k, x) in o {
            match props.and_then(|p| p.get(k)) {
                Some(s) => conforms(spec, s, x, &format!("{at}.{k}"))?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{at}: undocumented field {k}"))
                }
                None if props.is_some() => return Err(format!("{at}: undocumented field {k}")),
                None => {}
            }
        }
    }
    if let (Some(items), Some(a)) = (schema.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            conforms(spec, items, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

#[test]
fn openapi_document_matches_the_server() {
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let documented: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> =
        tartan_server::ROUTES.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, served, "docs/openapi.json and the server's routes differ");

    let tmp = tempfile::tempdir().unwrap();
    corpus(&tmp.path().join("emb"), 200, 1);
    let idx = tmp.path().join("idx");
    ok(&[
        "index",
        p(&tmp.path().join("emb")),
        p(&idx),
        "--centroids",
        "32",
        "--metadata",
        p(&tmp.path().join("emb/meta.jsonl")),
    ]);
    let server = Served::start(&idx, &[]);
    // Every route with its documented example answers 200 with a body of the documented
    // schema; in the order of ROUTES (searches before the changes that move the snapshot).
    for (method, path, _) in tartan_server::ROUTES {
        let op = &spec["paths"][path][method];
        let example = op.pointer("/requestBody/content/application~1json/example");
        if let Some(ex) = example {
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            conforms(&spec, schema, ex, "example")
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        }
        let (status, body) =
            call(&method.to_uppercase(), &format!("{}{path}", server.url), example);
        assert_eq!(status, 200, "{method} {path}: {body}");
        let schema = &op["responses"]["200"]["content"]["application/json"]["schema"];
        conforms(&spec, schema, &body, "response")
            .unwrap_or_else(|e| panic!("{method} {path}: {e}: {body}"));
        // Every route that takes a body answers a broken one with a documented 400 and an error
        // body of the documented shape.
        if example.is_some() {
            let (status, body) = call_raw(
                &method.to_uppercase(),
                &format!("{}{path}", server.url),
                Some(b"{".to_vec()),
            );
            assert_eq!(status, 400, "{method} {path}: {body}");
            assert!(op["responses"]["400"].is_object(), "{method} {path}: 400 undocumented");
            conforms(&spec, &spec["components"]["schemas"]["Error"], &body, "error").unwrap();
        }
    }
}

// ---------------------------------------------------------------- bad requests

#[test]
fn bad_requests_get_named_errors_and_the_server_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(&tmp.path().join("emb"), 150, 2);
    let idx = tmp.path().join("idx");
    ok(&[
        "index",
        p(&tmp.path().join("emb")),
        p(&idx),
        "--centroids",
        "32",
        "--metadata",
        p(&tmp.path().join("emb/meta.jsonl")),
    ]);
    let server =
        Served::start(&idx, &["--max-k", "50", "--max-query-tokens", "40", "--max-body-mib", "1"]);
    let url = |r: &str| format!("{}{r}", server.url);
    let q = query_json(&c, 0);
    let nan32 = {
        let mut b = 1.0f32.to_le_bytes().to_vec();
        b.extend(f32::NAN.to_le_bytes());
        b.extend(std::iter::repeat_n(0u8, 4 * (DIM - 2)));
        json!({"dtype": "float32", "shape": [1, DIM], "data": base64_encode(&b)})
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("/search", json!({"query": [[1.0, 0.0]]}), 422, "query[0]"),
        ("/search", json!({"query": [vec![1e39f64; DIM]]}), 422, "query[0][0]"),
        ("/search", json!({"query": nan32}), 422, "query[0][1]"),
        ("/search", json!({"query": []}), 422, "query"),
        ("/search", json!({"query": q, "k": 0}), 422, "k"),
        ("/search", json!({"query": q, "k": 51}), 422, "k"),
        ("/search", json!({"query": q, "k": "ten"}), 422, "k"),
        ("/search", json!({"query": vec![vec![0.1f32; DIM]; 41]}), 422, "query"),
        ("/search", json!({"query": q, "filter": "parity = "}), 422, "filter"),
        ("/search", json!({"query": q, "filter": "colour = 1"}), 422, "filter"),
        ("/search", json!({"query": q, "kk": 1}), 422, "kk"),
        ("/search", json!({}), 422, "query"),
        ("/search", json!({"text": "no model here"}), 422, "text"),
        ("/search", json!({"queries": [q]}), 422, "queries/texts"),
        ("/search/batch", json!({"queries": []}), 422, "queries"),
        ("/search/score", json!({"queries": [q], "docs": [[0]], "snapshot": 99}), 409, ""),
        ("/search/score", json!({"queries": [q], "docs": [[1000000]], "snapshot": 1}), 422, "docs"),
        (
            "/documents",
            json!({"documents": [{"id": "x", "tokens": [vec![0.5f32; DIM]]}]}),
            422,
            "documents",
        ),
        ("/documents", json!({"documents": [{"id": "d1", "tokens": q}]}), 409, ""),
        ("/documents", json!({"documents": []}), 422, "documents"),
    ];
    for (route, body, want, field) in &cases {
        let (status, got) = call("POST", &url(route), Some(body));
        assert_eq!(status, *want, "{route} {body}: {got}");
        let err = &got["error"];
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()), "{got}");
        if !field.is_empty() {
            assert_eq!(err["field"], json!(field), "{route} {body}: {got}");
        }
    }
    let (status, got) = call("DELETE", &url("/documents"), Some(&json!({"ids": ["nope"]})));
    assert_eq!((status, got["error"]["code"].as_str()), (404, Some("unknown_id")));
    // A body over the limit (1 MiB here) is refused.
    let (status, got) = oversized_post(&server.url, "/search", (1 << 20) + 1);
    assert_eq!((status, got["error"]["code"].as_str()), (413, Some("payload_too_large")), "{got}");
    assert_eq!(call("GET", &url("/nope"), None).0, 404);
    assert_eq!(call("GET", &url("/search"), None).0, 405);
    // Still serving, and right.
    let (status, got) = call(
        "POST",
        &url("/search"),
        Some(&json!({"query": query_json(&c, 3), "k": 5, "filter": "parity = 1"})),
    );
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["hits"].as_array().unwrap().len(), 5);
    let target = &c.query_targets[3];
    if target % 2 == 1 {
        assert_eq!(got["hits"][0]["id"], json!(format!("d{target}")), "{got}");
    }
}

/// POSTs a body of `len` spaces after `{"k": 1`, then reads the answer (10 s at most).
fn oversized_post(base: &str, route: &str, len: usize) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "POST {route} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{{\"k\": 1").unwrap();
    s.write_all(&vec![b' '; len - 7]).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status: u16 = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    // The body may come chunked: take the JSON object inside.
    let json = body.find('{').and_then(|a| body.rfind('}').map(|b| &body[a..=b])).unwrap_or("null");
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

fn base64_encode(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------- remote shards

/// Three shards of one codebook, each behind its own server, searched as a collection.
struct Cluster {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    corpus: tartan_synth::SynthCorpus,
    servers: Vec<Served>,
}

fn cluster() -> Cluster {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let c = corpus(&root.join("emb"), 450, 3);
    ok(&["train", p(&root.join("emb")), p(&root.join("cb")), "--centroids", "64"]);
    let mut servers = Vec::new();
    let mut local = vec!["collection".to_string(), "create".into(), p(&root.join("local")).into()];
    for s in 0..3 {
        let part: Vec<usize> = (s * 150..(s + 1) * 150).collect();
        let emb = root.join(format!("e{s}"));
        c.docs.select(&part).unwrap().write(&emb, Kind::Docs, Precision::F32).unwrap();
        let shard = root.join(format!("s{s}"));
        ok(&["index", p(&emb), p(&shard), "--codebook", p(&root.join("cb"))]);
        servers.push(Served::start(&shard, &[]));
        local.push(format!("s{s}={}", p(&shard)));
    }
    let mut remote =
        vec!["collection".to_string(), "create".into(), p(&root.join("remote")).into()];
    remote.extend(servers.iter().enumerate().map(|(s, srv)| format!("s{s}={}", srv.url)));
    ok(&local.iter().map(String::as_str).collect::<Vec<_>>());
    ok(&remote.iter().map(String::as_str).collect::<Vec<_>>());
    Cluster { _tmp: tmp, root, corpus: c, servers }
}

fn queries(c: &tartan_synth::SynthCorpus) -> Vec<Vec<f32>> {
    (0..c.queries.n_docs()).map(|i| c.queries.doc(i)).collect()
}

fn views(qs: &[Vec<f32>]) -> Vec<ndarray::ArrayView2<'_, f32>> {
    qs.iter().map(|q| ndarray::ArrayView2::from_shape((q.len() / DIM, DIM), q).unwrap()).collect()
}

#[test]
fn remote_shards_answer_as_local_ones_and_a_killed_one_is_reported() {
    let mut cl = cluster();
    let qs = queries(&cl.corpus);
    let local = Searcher::open(&cl.root.join("local")).unwrap();
    let remote = Searcher::open(&cl.root.join("remote")).unwrap();
    assert_eq!((remote.n_docs(), remote.shards().len()), (450, 3));
    let opts = SearchOptions::default();
    for params in
        [SearchParams::new(10), SearchParams::new(20).ndocs(32), SearchParams::new(5).ncells(4)]
    {
        let a = local.search_batch(&views(&qs), &params, &opts).unwrap();
        let b = remote.search_batch(&views(&qs), &params, &opts).unwrap();
        for (qi, (x, y)) in a.iter().zip(&b).enumerate() {
            let x: Vec<(&str, f32, usize)> =
                x.hits.iter().map(|h| (h.id.as_str(), h.score, h.shard)).collect();
            let y: Vec<(&str, f32, usize)> =
                y.hits.iter().map(|h| (h.id.as_str(), h.score, h.shard)).collect();
            assert_eq!(x, y, "query {qi}, {params:?}");
        }
        assert!(b.iter().all(|r| r.coverage.complete()));
    }
    // A batch larger than a server takes in one request (256) is split into requests.
    let all = views(&qs);
    let many: Vec<_> = (0..300).map(|i| all[i % all.len()]).collect();
    let key = |r: Vec<tartan::Results>| -> Vec<Vec<(String, f32, usize)>> {
        r.into_iter()
            .map(|r| r.hits.into_iter().map(|h| (h.id, h.score, h.shard)).collect())
            .collect()
    };
    let a = key(local.search_batch(&many, &SearchParams::new(3), &opts).unwrap());
    let b = key(remote.search_batch(&many, &SearchParams::new(3), &opts).unwrap());
    assert!(a == b, "a batch of 300 differs between local and remote shards");
    // Local and remote shards in one collection: the coordinator prepares the batch a chunk
    // at a time for both rounds, and a bad query is still named by its place in the batch.
    let mixed = cl.root.join("mixed");
    let (s1, s2) = (format!("s1={}", cl.servers[1].url), format!("s2={}", cl.servers[2].url));
    let s0 = format!("s0={}", p(&cl.root.join("s0")));
    ok(&["collection", "create", p(&mixed), &s0, &s1, &s2]);
    let mixed = Searcher::open(&mixed).unwrap();
    let m = key(mixed.search_batch(&many, &SearchParams::new(3), &opts).unwrap());
    assert!(a == m, "a batch of 300 differs between local and mixed shards");
    let nan = vec![f32::NAN; DIM];
    let mut bad = many.clone();
    bad[200] = ndarray::ArrayView2::from_shape((1, DIM), &nan).unwrap();
    let err = mixed.search_batch(&bad, &SearchParams::new(3), &opts).unwrap_err().to_string();
    assert!(err.contains("query 200"), "{err}");
    // The CLI's run over the remote collection equals the local one's.
    let (rl, rr) = (cl.root.join("local.tsv"), cl.root.join("remote.tsv"));
    ok(&[
        "search",
        p(&cl.root.join("local")),
        "--queries",
        p(&cl.root.join("emb")),
        "--k",
        "10",
        "--out",
        p(&rl),
    ]);
    ok(&[
        "search",
        p(&cl.root.join("remote")),
        "--queries",
        p(&cl.root.join("emb")),
        "--k",
        "10",
        "--out",
        p(&rr),
    ]);
    assert_eq!(std::fs::read_to_string(&rl).unwrap(), std::fs::read_to_string(&rr).unwrap());

    // Kill shard 1: answers come from the other two, with the coverage saying so.
    drop(cl.servers.remove(1));
    let r = remote.search(views(&qs)[0], &SearchParams::new(10)).unwrap();
    assert_eq!((r.coverage.shards, r.coverage.answered), (3, 2));
    assert_eq!((r.coverage.docs, r.coverage.docs_answered), (450, 300));
    assert_eq!(r.coverage.failed[0].0, "s1");
    assert!(r.hits.iter().all(|h| h.shard != 1));
    assert!(
        r.coverage.describe().starts_with("2 of 3 shards, 66.7% of documents"),
        "{}",
        r.coverage.describe()
    );
    let strict = SearchOptions {
        policy: Some(ShardPolicy { require_all: true, ..ShardPolicy::default() }),
        ..opts
    };
    let err =
        remote.search_with(views(&qs)[0], &SearchParams::new(10), &strict).unwrap_err().to_string();
    assert!(err.contains("2 of 3 shards answered") && err.contains("s1"), "{err}");
    let out = ok(&[
        "search",
        p(&cl.root.join("remote")),
        "--queries",
        p(&cl.root.join("emb")),
        "--k",
        "10",
        "--out",
        p(&rr),
    ]);
    assert!(out.contains("partial results: 2 of 3 shards"), "{out}");
    let out = common::tartan(&[
        "search",
        p(&cl.root.join("remote")),
        "--queries",
        p(&cl.root.join("emb")),
        "--out",
        p(&rr),
        "--require-all",
    ]);
    assert_eq!(out.status.code(), Some(1));

    // A collection served by a server answers through it, coverage included.
    let front = Served::start(&cl.root.join("remote"), &["--deadline-ms", "5000"]);
    let body = json!({"query": query_json(&cl.corpus, 0), "k": 10});
    let (status, got) = call("POST", &format!("{}/search", front.url), Some(&body));
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["coverage"]["shards_answered"], json!(2));
    assert_eq!(got["coverage"]["failed"][0]["shard"], json!("s1"));
    let (status, got) = call(
        "POST",
        &format!("{}/search", front.url),
        Some(&json!({"query": query_json(&cl.corpus, 0), "require_all": true})),
    );
    assert_eq!((status, got["error"]["code"].as_str()), (503, Some("unavailable")), "{got}");
}

#[test]
fn a_shard_that_does_not_answer_hits_the_deadline() {
    let cl = cluster();
    // A shard that accepts connections and never answers.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_url = format!("http://{}", hole.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        hole.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until && conns.len() < 16 {
            match hole.accept() {
                Ok((c, _)) => conns.push(c),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    // The collection is written directly: `collection create` would wait on the hole's health.
    let coll = cl.root.join("with-hole");
    let mut m = tartan::CollectionManifest::load(&cl.root.join("remote")).unwrap();
    m.generation = 0;
    m.shards.truncate(2);
    m.shards.push(tartan::ShardEntry {
        name: "hole".into(),
        location: hole_url,
        n_docs: 100,
        generation: 0,
    });
    m.publish(&coll).unwrap();
    let policy = ShardPolicy { deadline: Duration::from_millis(400), require_all: false };
    let t = Instant::now();
    let s = Searcher::open_with(&coll, policy).unwrap();
    let opened = t.elapsed();
    let qs = queries(&cl.corpus);
    let t = Instant::now();
    let r = s.search(views(&qs)[1], &SearchParams::new(10)).unwrap();
    let took = t.elapsed();
    assert_eq!((r.coverage.shards, r.coverage.answered), (3, 2), "{:?}", r.coverage);
    assert_eq!(r.coverage.failed[0].0, "hole");
    assert!(r.coverage.failed[0].1.contains("deadline of 400 ms"), "{:?}", r.coverage.failed);
    assert!(
        opened < Duration::from_secs(5) && took < Duration::from_secs(5),
        "open {opened:?}, search {took:?}"
    );
    assert!(took >= Duration::from_millis(350), "the deadline was not waited for: {took:?}");
    drop(held);
}

// ---------------------------------------------------------------- readers during writes

#[test]
fn clients_see_no_errors_while_a_writer_publishes() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(&tmp.path().join("emb"), 300, 4);
    let idx = tmp.path().join("idx");
    ok(&["index", p(&tmp.path().join("emb")), p(&idx), "--centroids", "32"]);
    let server = Served::start(&idx, &[]);
    let url = format!("{}/search", server.url);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let bodies: Vec<Value> = (0..12).map(|i| json!({"query": query_json(&c, i), "k": 5})).collect();
    let (statuses, generations) = std::thread::scope(|s| {
        let clients: Vec<_> = (0..3)
            .map(|t| {
                let (url, bodies, stop) = (&url, &bodies, &stop);
                s.spawn(move || {
                    let mut seen: HashMap<u16, usize> = HashMap::new();
                    let mut gens = BTreeSet::new();
                    let until = Instant::now() + Duration::from_secs(60);
                    for i in 0..2000 {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) || Instant::now() > until
                        {
                            break;
                        }
                        let (status, got) =
                            call("POST", url, Some(&bodies[(i + t) % bodies.len()]));
                        *seen.entry(status).or_default() += 1;
                        if let Some(g) = got["generation"].as_u64() {
                            gens.insert(g);
                        }
                    }
                    (seen, gens)
                })
            })
            .collect();
        // The writer: another process deleting and adding, five generations.
        for round in 0..5 {
            ok(&["delete", p(&idx), &format!("d{round}")]);
            std::thread::sleep(Duration::from_millis(150));
        }
        // Let the server's reload loop see the last one, then stop the clients.
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut statuses: HashMap<u16, usize> = HashMap::new();
        let mut gens = BTreeSet::new();
        for h in clients {
            let (s, g) = h.join().unwrap();
            for (k, v) in s {
                *statuses.entry(k).or_default() += v;
            }
            gens.extend(g);
        }
        (statuses, gens)
    });
    assert_eq!(statuses.keys().copied().collect::<Vec<_>>(), [200], "{statuses:?}");
    assert!(statuses[&200] >= 30, "{statuses:?}");
    // The readers were served more than one generation, the last one included.
    assert!(generations.len() >= 2 && generations.contains(&6), "{generations:?}");
    let (_, h) = call("GET", &format!("{}/health", server.url), None);
    assert_eq!((h["generation"].as_u64(), h["n_docs"].as_u64()), (Some(6), Some(295)));
}

#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus(&tmp.path().join("emb"), 2000, 5);
    let idx = tmp.path().join("idx");
    ok(&["index", p(&tmp.path().join("emb")), p(&idx), "--centroids", "256"]);
    let server = Served::start(&idx, &[]);
    // A slow request: every cell, every document scored exactly, for 200 queries.
    let qs: Vec<Value> = (0..200).map(|i| query_json(&c, i % 12)).collect();
    let body = json!({"queries": qs, "k": 10, "ncells": 256, "ndocs": 100000, "centroid_score_threshold": -100.0});
    let url = format!("{}/search/batch", server.url);
    std::thread::scope(|s| {
        let req = s.spawn(|| {
            let t = Instant::now();
            let r = call("POST", &url, Some(&body));
            (r, t.elapsed())
        });
        std::thread::sleep(Duration::from_millis(300));
        server.terminate();
        let ((status, got), took) = req.join().unwrap();
        assert_eq!(status, 200, "{got}");
        assert_eq!(got["results"].as_array().unwrap().len(), 200);
        assert!(took > Duration::from_millis(300), "the request ended before the signal: {took:?}");
    });
    let mut server = server;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = server.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "tartan serve did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let lines: Vec<String> = server.stdout.try_iter().collect();
    assert!(lines.iter().any(|l| l.starts_with("stopped")), "{lines:?}");
}
