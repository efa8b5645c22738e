//! Live indexes: churn, readers during writes, writer exclusion, bad changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rand::seq::IteratorRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tartan_index::{Extras, Index, IndexError, IndexParams, IndexWriter, NoProgress, SearchParams};
use tartan_synth::{SynthCorpus, SynthParams};

use crate::common::*;

/// A pool of documents to add from: the first `initial` are built, the rest added later.
fn pool() -> SynthCorpus {
    SynthParams::new(900).dim(32).mean_doc_len(30.0).n_queries(30).seed(5).generate()
}

fn params() -> IndexParams {
    IndexParams::new().nbits(4).n_centroids(128)
}

/// The live documents as (id → position in the pool), as embeddings for the exact oracle.
fn live_docs(c: &SynthCorpus, live: &BTreeMap<String, usize>) -> tartan_embeddings::Embeddings {
    let named: Vec<(String, usize)> = live.iter().map(|(id, &p)| (id.clone(), p)).collect();
    subset_as(&c.docs, &named)
}

fn ids_of(index: &Index) -> BTreeSet<String> {
    index.ids().unwrap().into_iter().map(str::to_string).collect()
}

#[test]
fn churn_keeps_the_live_set_exact_and_recall_at_a_fresh_builds_level() {
    let c = pool();
    let qs = queries(&c.queries);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("idx");
    let mut live: BTreeMap<String, usize> =
        (0..300).map(|d| (c.docs.id(d).to_string(), d)).collect();
    Index::build(&subset(&c.docs, &(0..300).collect::<Vec<_>>()), &p, &params(), &NoProgress)
        .unwrap();
    let sp = SearchParams::new(10);
    let fresh_start = recall_over(&Index::open(&p).unwrap(), &live_docs(&c, &live), &qs, &sp, 10);

    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut next = 300;
    let mut recalls = Vec::new();
    for cycle in 0..55 {
        let mut w = IndexWriter::open(&p).unwrap();
        // Add ten new documents.
        let add: Vec<usize> = (next..next + 10).collect();
        next += 10;
        w.add(&subset(&c.docs, &add), &Extras::new(), &NoProgress).unwrap();
        // Delete eight committed ones.
        let del: Vec<String> = live.keys().cloned().choose_multiple(&mut rng, 8);
        assert_eq!(w.delete(&del).unwrap(), 8);
        for id in &del {
            live.remove(id);
        }
        // Every third cycle, replace two documents' content under their ids (upsert) after
        // committing the adds, so the replaced ones may be fresh.
        w.commit().unwrap();
        for &d in &add {
            live.insert(c.docs.id(d).to_string(), d);
        }
        if cycle % 3 == 0 {
            let ids: Vec<String> = live.keys().cloned().choose_multiple(&mut rng, 2);
            let named: Vec<(String, usize)> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), 850 + (cycle + i) % 50))
                .collect();
            assert_eq!(
                w.upsert(&subset_as(&c.docs, &named), &Extras::new(), &NoProgress).unwrap(),
                2
            );
            w.commit().unwrap();
            live.extend(named);
        }
        if cycle % 10 == 9 {
            w.compact(&NoProgress).unwrap();
        }
        drop(w);
        let index = Index::open(&p).unwrap();
        assert_eq!(ids_of(&index), live.keys().cloned().collect::<BTreeSet<_>>(), "cycle {cycle}");
        assert_eq!(index.n_docs(), live.len() as u64);
        if cycle % 10 == 9 || cycle == 54 {
            index.verify().unwrap();
            recalls.push(recall_over(&index, &live_docs(&c, &live), &qs, &sp, 10));
        }
    }
    // A fresh build of the final live set, for comparison.
    let fresh_dir = dir.path().join("fresh");
    let fresh = Index::build(&live_docs(&c, &live), &fresh_dir, &params(), &NoProgress).unwrap();
    let fresh_end = recall_over(&fresh, &live_docs(&c, &live), &qs, &sp, 10);
    let churned_end = *recalls.last().unwrap();
    eprintln!(
        "churn: recall@10 vs exact over the live set: start {fresh_start:.3}, after cycles \
         10..55 {recalls:.3?}; fresh build of the final set {fresh_end:.3}"
    );
    assert!(churned_end >= fresh_end - 0.05, "churned {churned_end} vs fresh {fresh_end}");
    assert!(recalls.iter().all(|&r| r >= fresh_start - 0.08), "{recalls:?} vs {fresh_start}");
}

/// What a reader saw: the generation it opened and the ids one search returned.
type Observed = (u64, Vec<String>);

#[test]
fn readers_keep_working_and_only_see_published_generations() {
    let c = pool();
    let qs = queries(&c.queries);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("idx");
    Index::build(&subset(&c.docs, &(0..200).collect::<Vec<_>>()), &p, &params(), &NoProgress)
        .unwrap();
    // generation → live ids, recorded by the writer after each publish.
    let published: Arc<Mutex<HashMap<u64, BTreeSet<String>>>> = Default::default();
    published.lock().unwrap().insert(1, (0..200).map(|d| c.docs.id(d).to_string()).collect());
    let done = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<Observed>>> = Default::default();
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (p, done, seen, qs) = (p.clone(), done.clone(), seen.clone(), qs.clone());
            std::thread::spawn(move || {
                let mut i = r;
                while !done.load(Ordering::Relaxed) {
                    let index = Index::open(&p).expect("a reader can always open");
                    let q = &qs[i % qs.len()];
                    // Search the same opened generation a few times while it may be replaced.
                    for _ in 0..3 {
                        let hits = index.search(view(q, 32), &SearchParams::new(10)).unwrap();
                        let ids = hits.into_iter().map(|h| h.id).collect();
                        seen.lock().unwrap().push((index.generation(), ids));
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut live: BTreeSet<String> = (0..200).map(|d| c.docs.id(d).to_string()).collect();
    let mut w = IndexWriter::open(&p).unwrap();
    for cycle in 0..20 {
        let add: Vec<usize> = (200 + cycle * 10..210 + cycle * 10).collect();
        w.add(&subset(&c.docs, &add), &Extras::new(), &NoProgress).unwrap();
        let del: Vec<String> = live.iter().cloned().choose_multiple(&mut rng, 6);
        w.delete(&del).unwrap();
        let mut g = w.commit().unwrap().generation;
        for id in &del {
            live.remove(id);
        }
        live.extend(add.iter().map(|&d| c.docs.id(d).to_string()));
        published.lock().unwrap().insert(g, live.clone());
        if cycle % 4 == 3 {
            g = w.compact(&NoProgress).unwrap().generation;
            published.lock().unwrap().insert(g, live.clone());
        }
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("reader thread panicked");
    }
    let published = published.lock().unwrap();
    let seen = seen.lock().unwrap();
    let generations: BTreeSet<u64> = seen.iter().map(|s| s.0).collect();
    eprintln!("readers ran {} searches over {} generations", seen.len(), generations.len());
    for (g, ids) in seen.iter() {
        let live = published.get(g).unwrap_or_else(|| panic!("generation {g} was never published"));
        assert!(ids.iter().all(|id| live.contains(id)), "generation {g} returned a dead id");
    }
    // Old generations' files are gone once no reader holds them.
    drop(w);
    let w = IndexWriter::open(&p).unwrap();
    let files: Vec<String> = std::fs::read_dir(&p)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let named: BTreeSet<&str> = w.index().manifest().files().collect();
    for f in &files {
        assert!(named.contains(f.as_str()) || f == "meta.json" || f == "tartan.lock", "{f} left");
    }
}

#[test]
fn one_writer_at_a_time_and_bad_changes_are_refused() {
    let c = pool();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("idx");
    Index::build(&subset(&c.docs, &(0..100).collect::<Vec<_>>()), &p, &params(), &NoProgress)
        .unwrap();
    let mut w = IndexWriter::open(&p).unwrap();
    assert!(matches!(IndexWriter::open(&p), Err(IndexError::Locked { .. })));
    // An overwrite build is a writer too.
    let over = Index::build(&subset(&c.docs, &[1]), &p, &params().overwrite(true), &NoProgress);
    assert!(matches!(over, Err(IndexError::Locked { .. })));

    let err = w.delete(&["d1", "nope"]).unwrap_err();
    assert!(matches!(&err, IndexError::UnknownId { id } if id == "nope"), "{err}");
    assert!(w.contains("d1"), "a failed delete stages nothing");
    assert!(matches!(w.delete(&["d1", "d1"]), Err(IndexError::UnknownId { .. })));
    let dup = w.add(&subset(&c.docs, &[5, 500]), &Extras::new(), &NoProgress);
    assert!(matches!(dup, Err(IndexError::DuplicateId { id }) if id == "d5"));
    let other_dim = SynthParams::new(3).dim(16).seed(1).generate().docs;
    assert!(matches!(
        w.add(&other_dim, &Extras::new(), &NoProgress),
        Err(IndexError::DimMismatch { expected: 32, got: 16 })
    ));
    w.add(&subset(&c.docs, &[500]), &Extras::new(), &NoProgress).unwrap();
    assert!(matches!(w.delete(&["d500"]), Err(IndexError::Param { .. })));
    let bad_meta = Extras::new().metadata(&[serde_json::json!([1, 2])]);
    let err = w.add(&subset(&c.docs, &[501]), &bad_meta, &NoProgress).unwrap_err();
    assert!(matches!(&err, IndexError::Metadata { doc: 0, id, .. } if id == "d501"), "{err}");

    // Deleted documents never come back, before or after compaction.
    w.delete(&["d0", "d1", "d2"]).unwrap();
    assert_eq!(w.commit().unwrap().deleted, 3);
    let dead = ["d0", "d1", "d2"];
    let check = |index: &Index| {
        for d in 0..3 {
            let q = c.docs.doc(d); // the document itself as the query: its own best match
            let hits = index.search(view(&q, 32), &SearchParams::new(20)).unwrap();
            assert!(hits.iter().all(|h| !dead.contains(&h.id.as_str())));
        }
    };
    check(&Index::open(&p).unwrap());
    assert_eq!(Index::open(&p).unwrap().n_docs(), 98);
    w.compact(&NoProgress).unwrap();
    let after = Index::open(&p).unwrap();
    check(&after);
    assert_eq!((after.n_docs(), after.manifest().segments.len()), (98, 1));
    after.verify().unwrap();
    // Deleting everything leaves a valid, empty index.
    let all: Vec<String> = after.ids().unwrap().into_iter().map(str::to_string).collect();
    w.delete(&all).unwrap();
    w.commit().unwrap();
    let empty = Index::open(&p).unwrap();
    assert_eq!((empty.n_docs(), empty.manifest().segments.len()), (0, 0));
    assert!(empty.search(view(&c.docs.doc(0), 32), &SearchParams::new(5)).unwrap().is_empty());
    w.add(&subset(&c.docs, &[7]), &Extras::new(), &NoProgress).unwrap();
    w.commit().unwrap();
    assert_eq!(ids_of(&Index::open(&p).unwrap()), BTreeSet::from(["d7".to_string()]));
}

#[test]
fn drift_is_reported_and_retrain_restores_the_fit() {
    // Documents from other topics than the build's: their tokens sit far from the centroids.
    let c = pool();
    let other = SynthParams::new(200).dim(32).mean_doc_len(30.0).n_queries(10).seed(77).generate();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("idx");
    Index::build(&subset(&c.docs, &(0..200).collect::<Vec<_>>()), &p, &params(), &NoProgress)
        .unwrap();
    // The baseline is the codebook's held-out tokens, drawn from the same documents: the
    // build's own tokens sit as far from their centroids, give or take sampling noise.
    let fresh = Index::open(&p).unwrap().stats().codebook_drift();
    assert!((0.85..1.15).contains(&fresh), "drift right after a build {fresh}");
    let mut w = IndexWriter::open(&p).unwrap();
    let renamed: Vec<(String, usize)> = (0..200).map(|d| (format!("o{d}"), d)).collect();
    let texts: Vec<String> = (0..200).map(|d| format!("other {d}")).collect();
    let meta: Vec<serde_json::Value> = (0..200).map(|d| serde_json::json!({"n": d})).collect();
    let extras = Extras::new().texts(texts).metadata(&meta);
    w.add(&subset_as(&other.docs, &renamed), &extras, &NoProgress).unwrap();
    w.commit().unwrap();
    let stats = Index::open(&p).unwrap().stats();
    let drift = stats.codebook_drift();
    assert!(drift > 1.2, "drift {drift}");
    let added_msr = stats.segments[1].4.unwrap();
    let before = Index::open(&p).unwrap().ids().unwrap().len();
    w.retrain(&params(), &NoProgress).unwrap();
    let after = Index::open(&p).unwrap();
    after.verify().unwrap();
    let retrained_msr = after.manifest().build.mean_sq_residual;
    eprintln!(
        "codebook drift {drift:.2} after adding other topics (their mean squared residual \
         {added_msr:.4}); after retrain every token's is {retrained_msr:.4}"
    );
    assert!(retrained_msr < 0.8 * added_msr, "{retrained_msr} vs {added_msr}");
    assert_eq!(after.ids().unwrap().len(), before);
    // Texts and metadata survive; filters still work.
    let f = tartan_index::Filter::parse("n = 5").unwrap();
    let q = other.docs.doc(5);
    let hits = after.search(view(&q, 32), &SearchParams::new(3).filter(f)).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, "o5");
    assert_eq!(after.text(hits[0].doc).unwrap().unwrap(), "other 5");
    assert!(!Path::new(&p.join("retrain.tmp")).exists());
}

/// A writer stopped between locking an old file and removing it (a SIGSTOP in garbage
/// collection) must not make a reader wait: the reader moves on without blocking.
#[test]
fn readers_never_wait_on_a_writer_holding_a_file() {
    let c = pool();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("idx");
    Index::build(&subset(&c.docs, &(0..50).collect::<Vec<_>>()), &p, &params(), &NoProgress)
        .unwrap();
    let seg = std::fs::File::open(p.join("segment.000001.tseg")).unwrap();
    seg.lock().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = p.clone();
    std::thread::spawn(move || {
        let _ = tx.send(Index::open(&reader).map(|i| i.n_docs()));
    });
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("Index::open blocked on the lock");
    // The file belongs to the published generation, so there is no newer one to open.
    let err = got.unwrap_err().to_string();
    assert!(err.contains("segment.000001.tseg"), "{err}");
    drop(seg);
    assert_eq!(Index::open(&p).unwrap().n_docs(), 50);
}

/// Deletions must not cost hits: with most documents deleted, a search still returns k live
/// ones (probing widens past cells of deleted documents), and a writer does not leave a lock
/// file where there is no index.
#[test]
fn many_deletions_still_give_k_hits() {
    let c = pool();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("idx");
    Index::build(&subset(&c.docs, &(0..300).collect::<Vec<_>>()), &p, &params(), &NoProgress)
        .unwrap();
    let mut w = IndexWriter::open(&p).unwrap();
    let doomed: Vec<String> = (0..300).filter(|d| d % 25 != 0).map(|d| format!("d{d}")).collect();
    w.delete(&doomed).unwrap();
    w.commit().unwrap();
    let index = Index::open(&p).unwrap();
    assert_eq!(index.n_docs(), 12);
    for qd in [1usize, 77, 250] {
        let q = c.docs.doc(qd); // a deleted document's tokens: its cells hold deleted documents
        let hits = index.search(view(&q, 32), &SearchParams::new(10).ncells(1)).unwrap();
        assert_eq!(hits.len(), 10, "query from d{qd}");
        assert!(hits.iter().all(|h| h.id[1..].parse::<usize>().unwrap() % 25 == 0));
    }
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        IndexWriter::open(empty.path()),
        Err(tartan_index::IndexError::NoIndex { .. })
    ));
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0, "no lock file left behind");
}
