//! Live updates through the `tartan` binary: the command flow, readers in other processes
//! while a writer works, and a writer killed (SIGKILL) at many points.

#![allow(clippy::print_stderr)] // the tests report what they measured

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ok, tartan};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tartan_embeddings::{Embeddings, Kind, Precision};
use tartan_index::{Index, IndexWriter, NoProgress};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes documents `range` of `all` (with their ids) as an embeddings directory.
fn write_docs(all: &Embeddings, range: std::ops::Range<usize>, dir: &Path) {
    let e = all.select(&range.collect::<Vec<_>>()).unwrap();
    e.write(dir, Kind::Docs, Precision::F32).unwrap();
}

fn live_ids(dir: &Path) -> BTreeSet<String> {
    Index::open(dir).unwrap().ids().unwrap().into_iter().map(String::from).collect()
}

#[test]
fn add_delete_filter_compact_retrain_inspect_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let c = tartan_synth::SynthParams::new(260).dim(32).n_queries(5).seed(2).generate();
    let (base, more) = (tmp.path().join("base"), tmp.path().join("more"));
    write_docs(&c.docs, 0..200, &base);
    write_docs(&c.docs, 200..260, &more);
    c.queries.write(&base, Kind::Queries, Precision::F32).unwrap();
    let meta = tmp.path().join("meta.jsonl");
    let lines: String =
        (0..200).map(|d| format!("{{\"id\": \"d{d}\", \"shard\": {}}}\n", d % 4)).collect();
    std::fs::write(&meta, lines).unwrap();
    let idx = tmp.path().join("idx");
    let i = s(&idx);
    ok(&["index", s(&base), i, "--nbits", "2", "--centroids", "64", "--metadata", s(&meta)]);

    let out = ok(&["add", i, s(&more)]);
    assert!(out.contains("generation 2, +60 / -0"), "{out}");
    let again = tartan(&["add", i, s(&more)]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && err.contains("\"d200\" is already in the index"), "{err}");
    let out = ok(&["add", i, s(&more), "--upsert"]);
    assert!(out.contains("generation 3, +60 / -60"), "{out}");

    let out = ok(&["delete", i, "d0", "d1", "d250"]);
    assert!(out.contains("-3 documents") && out.contains("257 live"), "{out}");
    let missing = tartan(&["delete", i, "d0"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no live document has id \"d0\""));
    ok(&["delete", i, "d0", "d2", "--ignore-missing"]);

    let run = tmp.path().join("run.tsv");
    let out = ok(&[
        "search",
        i,
        "--queries",
        s(&base),
        "--k",
        "20",
        "--filter",
        "shard = 1",
        "--out",
        s(&run),
    ]);
    assert!(out.contains("generation 5"), "{out}");
    for line in std::fs::read_to_string(&run).unwrap().lines() {
        let n: usize = line.split(' ').nth(2).unwrap()[1..].parse().unwrap();
        assert!(n < 200 && n % 4 == 1, "{line}");
    }
    let bad =
        tartan(&["search", i, "--queries", s(&base), "--filter", "shard =", "--out", s(&run)]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("at byte 7"));
    // A field no document has is refused by the library, as the server and Python refuse it.
    let typo =
        tartan(&["search", i, "--queries", s(&base), "--filter", "shrad = 1", "--out", s(&run)]);
    let err = String::from_utf8_lossy(&typo.stderr);
    assert!(!typo.status.success(), "{err}");
    assert!(
        err.contains(r#"no document has the metadata field "shrad" (fields: id, shard)"#),
        "{err}"
    );

    let out = ok(&["inspect", i]);
    // The upsert deleted all of the first added segment, so it left the manifest.
    assert!(out.contains("256 live, 4 deleted") && out.contains("segment"), "{out}");
    let out = ok(&["compact", i]);
    assert!(out.contains("2 segments -> 1"), "{out}");
    let out = ok(&["inspect", i]);
    assert!(out.contains("256 live, 0 deleted") && out.contains("drift"), "{out}");
    let out = ok(&["retrain", i, "--nbits", "4", "--centroids", "32"]);
    assert!(out.contains("K 32, 4 bits"), "{out}");
    ok(&["verify", i]);
    assert_eq!(live_ids(&idx).len(), 256);
}

/// Readers in separate processes (`tartan search`) run in a loop while this process adds,
/// deletes and compacts: every search succeeds and returns only documents of the generation
/// it reports.
#[test]
fn reader_processes_survive_a_busy_writer() {
    let tmp = tempfile::tempdir().unwrap();
    // Enough documents for every cycle the loop below may run (10 added per cycle): on a
    // loaded machine the readers can take many cycles to see three generations.
    const MAX_CYCLES: usize = 300;
    let n_docs = 200 + 10 * MAX_CYCLES;
    let c = tartan_synth::SynthParams::new(n_docs).dim(32).n_queries(8).seed(3).generate();
    let base = tmp.path().join("base");
    write_docs(&c.docs, 0..200, &base);
    c.queries.write(&base, Kind::Queries, Precision::F32).unwrap();
    let idx = tmp.path().join("idx");
    ok(&["index", s(&base), s(&idx), "--centroids", "64"]);

    let published: Arc<Mutex<HashMap<u64, BTreeSet<String>>>> = Default::default();
    published.lock().unwrap().insert(1, live_ids(&idx));
    let done = Arc::new(AtomicBool::new(false));
    let gens_seen: Arc<Mutex<BTreeSet<u64>>> = Default::default();
    let reader = {
        let (idx, base, done, gens_seen) =
            (idx.clone(), base.clone(), done.clone(), gens_seen.clone());
        let run = tmp.path().join("run.tsv");
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let out =
                    ok(&["search", s(&idx), "--queries", s(&base), "--k", "10", "--out", s(&run)]);
                let g: u64 =
                    out.split_whitespace().nth(1).unwrap().trim_end_matches(',').parse().unwrap();
                let ids: BTreeSet<String> = std::fs::read_to_string(&run)
                    .unwrap()
                    .lines()
                    .map(|l| l.split(' ').nth(2).unwrap().to_string())
                    .collect();
                gens_seen.lock().unwrap().insert(g);
                seen.push((g, ids));
            }
            seen
        })
    };
    let mut w = IndexWriter::open(&idx).unwrap();
    let mut live = live_ids(&idx);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let t = Instant::now();
    let mut cycles = 0;
    // Keep writing until the readers have searched at least three generations (bounded: 60 s,
    // 300 cycles), so the test cannot pass on readers that only ever saw the first.
    while (cycles < 10 || gens_seen.lock().unwrap().len() < 3)
        && t.elapsed() < Duration::from_secs(60)
        && cycles < MAX_CYCLES
    {
        let add: Vec<usize> = (200 + cycles * 10..210 + cycles * 10).collect();
        let docs = {
            let lens: Vec<u64> = add.iter().map(|&d| c.docs.doc_len(d) as u64).collect();
            let ids = add.iter().map(|&d| c.docs.id(d).to_string()).collect();
            let toks = add.iter().flat_map(|&d| c.docs.doc(d)).collect();
            Embeddings::from_parts(32, &lens, ids, toks, Default::default()).unwrap()
        };
        w.add(&docs, &Default::default(), &NoProgress).unwrap();
        let del: Vec<String> = {
            let v: Vec<&String> = live.iter().collect();
            (0..5)
                .map(|_| v[rng.gen_range(0..v.len())].clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        w.delete(&del).unwrap();
        let g = w.commit().unwrap().generation;
        live.retain(|id| !del.contains(id));
        live.extend(add.iter().map(|&d| c.docs.id(d).to_string()));
        published.lock().unwrap().insert(g, live.clone());
        if cycles % 3 == 2 {
            let g = w.compact(&NoProgress).unwrap().generation;
            published.lock().unwrap().insert(g, live.clone());
        }
        cycles += 1;
    }
    done.store(true, Ordering::Relaxed);
    let seen = reader.join().expect("the reader loop failed");
    let published = published.lock().unwrap();
    let gens: BTreeSet<u64> = seen.iter().map(|s| s.0).collect();
    eprintln!(
        "{} reader processes over {} generations during {cycles} write cycles",
        seen.len(),
        gens.len()
    );
    assert!(gens.len() >= 3, "readers saw only generations {gens:?}");
    for (g, ids) in &seen {
        let live = published.get(g).unwrap_or_else(|| panic!("generation {g} never published"));
        assert!(ids.is_subset(live), "generation {g} returned a dead document");
    }
}

/// One writer command of the crash test and the live set it publishes.
struct Step {
    args: Vec<String>,
    after: BTreeSet<String>,
}

/// Kills `tartan add / delete / compact` with SIGKILL at random moments (spread over how long
/// each takes uninterrupted) and checks after every kill that the index opens, verifies, and
/// holds exactly the live set of the last or the next generation.
#[test]
fn a_writer_killed_anywhere_loses_nothing_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let c = tartan_synth::SynthParams::new(1200)
        .dim(32)
        .mean_doc_len(40.0)
        .n_queries(1)
        .seed(6)
        .generate();
    let base = tmp.path().join("base");
    write_docs(&c.docs, 0..300, &base);
    let idx = tmp.path().join("idx");
    ok(&["index", s(&base), s(&idx), "--centroids", "64"]);
    let batches: Vec<PathBuf> = (0..9)
        .map(|b| {
            let dir = tmp.path().join(format!("batch{b}"));
            write_docs(&c.docs, 300 + b * 100..400 + b * 100, &dir);
            dir
        })
        .collect();

    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut live = live_ids(&idx);
    let (mut tried, mut lost, mut unopenable, mut completed) = (0, 0, 0, 0);
    let mut next_batch = 0;
    let mut durations: HashMap<&'static str, Duration> = HashMap::new();
    for round in 0..150 {
        // The next operation, cycling add / delete / compact.
        let (kind, step) = match round % 3 {
            0 if next_batch < batches.len() => {
                let b = next_batch;
                let ids = (300 + b * 100..400 + b * 100).map(|d| c.docs.id(d).to_string());
                let mut after = live.clone();
                after.extend(ids);
                (
                    "add",
                    Step { args: vec!["add".into(), s(&idx).into(), s(&batches[b]).into()], after },
                )
            }
            1 | 0 => {
                let v: Vec<&String> = live.iter().collect();
                let del: BTreeSet<String> =
                    (0..5).map(|_| v[rng.gen_range(0..v.len())].clone()).collect();
                let mut args = vec!["delete".to_string(), s(&idx).into()];
                args.extend(del.iter().cloned());
                let after = live.difference(&del).cloned().collect();
                ("delete", Step { args, after })
            }
            _ => (
                "compact",
                Step { args: vec!["compact".into(), s(&idx).into()], after: live.clone() },
            ),
        };
        // The first run of each kind is uninterrupted, to learn how long it takes; every
        // uninterrupted run after it refines that.
        let budget = durations.get(kind).copied();
        let delay = budget.map(|d| d.mul_f64(rng.gen_range(0.0..1.1)));
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tartan"))
            .args(&step.args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let killed = match delay {
            Some(d) => {
                std::thread::sleep(d);
                match child.try_wait().unwrap() {
                    Some(_) => false,
                    None => {
                        child.kill().unwrap(); // SIGKILL
                        true
                    }
                }
            }
            None => false,
        };
        let status = child.wait().unwrap();
        if !killed {
            // The shortest uninterrupted run so far: a first run slowed by the tests running
            // beside it (CI) made later delays overshoot, and only 11 of 150 kills landed.
            let took = started.elapsed();
            let d = durations.entry(kind).or_insert(took);
            *d = (*d).min(took);
            assert!(status.success(), "{kind} failed without being killed");
            completed += 1;
        } else {
            tried += 1;
        }
        // The index must open and verify at the old or the new generation.
        let now = match Index::open(&idx).and_then(|i| i.verify().map(|()| i)) {
            Ok(i) => i.ids().unwrap().into_iter().map(String::from).collect::<BTreeSet<_>>(),
            Err(e) => {
                eprintln!("round {round}: {kind} killed, index unopenable: {e}");
                unopenable += 1;
                break;
            }
        };
        if now == step.after {
            if kind == "add" {
                next_batch += 1;
            }
            live = now;
        } else if now != live || !killed {
            eprintln!("round {round}: {kind} (killed {killed}) left an unexpected live set");
            lost += 1;
            live = now;
        }
    }
    // The next writer removes what killed writers left behind.
    let w = IndexWriter::open(&idx).unwrap();
    let named: BTreeSet<&str> = w.index().manifest().files().collect();
    for f in std::fs::read_dir(&idx).unwrap() {
        let f = f.unwrap().file_name().into_string().unwrap();
        assert!(named.contains(f.as_str()) || f == "meta.json" || f == "tartan.lock", "{f} left");
    }
    eprintln!(
        "crash test: {tried} kill points tried, {completed} runs completed; {lost} lost, \
         {unopenable} unopenable; {} live documents at generation {}",
        live.len(),
        w.index().generation()
    );
    assert_eq!((lost, unopenable), (0, 0));
    assert!(tried >= 80, "only {tried} kills landed");
}
