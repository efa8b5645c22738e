//! Filtered search: results are the filter-restricted exact MaxSim ranking, as far as the
//! compression allows, for selective and broad filters.

use std::collections::HashSet;

use serde_json::json;
use tartan_index::{Extras, Filter, Index, IndexParams, NoProgress, SearchParams};
use tartan_maxsim::{exact_search, maxsim_reference};

use crate::common::*;

#[test]
fn filtered_results_match_exact_maxsim_over_the_matching_documents() {
    let c = tartan_synth::SynthParams::new(1000)
        .dim(32)
        .mean_doc_len(30.0)
        .n_queries(25)
        .seed(4)
        .generate();
    // group: 0..99 (1% each); year: 1990..2019 (broad ranges); tags: arrays.
    let meta: Vec<serde_json::Value> = (0..1000)
        .map(|d| json!({"group": d % 100, "year": 1990 + d % 30, "tags": [format!("t{}", d % 7)]}))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("idx");
    let index = Index::build_with(
        &c.docs,
        &Extras::new().metadata(&meta),
        &p,
        &IndexParams::new().nbits(4).n_centroids(256),
        &NoProgress,
    )
    .unwrap();
    index.verify().unwrap();
    let qs = queries(&c.queries);
    let k = 10;
    // Unfiltered recall at the same settings: what a filter must not lose.
    let exact_all = exact_ids(&c, k);
    let baseline = |ndocs| recall(&index, &c, &SearchParams::new(k).ndocs(ndocs), &exact_all, k);
    // (filter, few enough matches to be scored exhaustively, ndocs): ndocs 16 makes the
    // broad filters take the probing path (more than 8·ndocs matches), widening the cells.
    for (src, selective, ndocs) in [
        ("group = 42", true, 256),
        ("group in [3, 17] and year >= 2000", true, 256),
        ("year >= 2005", false, 256),
        ("year >= 2005", false, 16),
        ("not tags = \"t3\"", false, 16),
        ("tags in [\"t1\", \"t2\"] and year < 2000", false, 16),
    ] {
        let f = Filter::parse(src).unwrap();
        let matching: Vec<usize> =
            (0..1000).filter(|&d| f.matches(meta[d].as_object().unwrap())).collect();
        let docs = subset(&c.docs, &matching);
        let params = SearchParams::new(k).ndocs(ndocs).filter(f);
        let mut got_recall = 0.0;
        for q in &qs {
            let hits = index.search(view(q, 32), &params).unwrap();
            let allowed: HashSet<&str> = matching.iter().map(|&d| c.docs.id(d)).collect();
            assert!(hits.iter().all(|h| allowed.contains(h.id.as_str())), "{src}");
            assert_eq!(hits.len(), k.min(matching.len()), "{src}");
            if selective {
                // Few matches: every matching document is decompressed and scored, so the
                // hits are exactly the top-k of the decompressed vectors.
                let mut want: Vec<(f32, String)> = (0..index.manifest().n_docs)
                    .filter(|&d| allowed.contains(c.docs.id(d as usize)))
                    .map(|d| {
                        let v = index.decompress(d).unwrap().unwrap();
                        (maxsim_reference(q, &v, 32), c.docs.id(d as usize).to_string())
                    })
                    .collect();
                want.sort_by(|a, b| b.0.total_cmp(&a.0));
                let got: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
                let want: Vec<&str> = want.iter().take(k).map(|w| w.1.as_str()).collect();
                assert_eq!(got, want, "{src}");
            }
            let exact = exact_search(&docs, &[q.as_slice()], k).remove(0);
            let want: HashSet<&str> = exact.iter().map(|h| docs.id(h.doc as usize)).collect();
            got_recall += hits.iter().filter(|h| want.contains(h.id.as_str())).count() as f64
                / want.len() as f64;
        }
        let recall = got_recall / qs.len() as f64;
        let base = baseline(ndocs);
        eprintln!(
            "filter {src:?} (ndocs {ndocs}): {} matching, recall@{k} vs exact over them \
             {recall:.3} (unfiltered {base:.3})",
            matching.len()
        );
        assert!(recall >= base - 0.05, "{src}: recall {recall}, unfiltered {base}");
    }
    // A filter matching nothing returns nothing; documents without metadata never match.
    let none = SearchParams::new(k).filter(Filter::parse("group = 1000").unwrap());
    assert!(index.search(view(&qs[0], 32), &none).unwrap().is_empty());
    let small = tartan_synth::SynthParams::new(50).dim(32).seed(1).generate();
    let plain = build(&small, &dir.path().join("plain"), IndexParams::new().n_centroids(16));
    let any = SearchParams::new(k).filter(Filter::parse("group exists").unwrap());
    assert!(plain.search(view(&qs[0], 32), &any).unwrap().is_empty());
}

#[test]
fn matching_lists_live_documents_by_condition_across_segments() {
    let c = tartan_synth::SynthParams::new(60).dim(16).n_queries(1).seed(8).generate();
    let meta: Vec<serde_json::Value> = (0..60).map(|d| json!({"n": d})).collect();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("idx");
    let first: Vec<(String, usize)> = (0..40).map(|d| (format!("d{d}"), d)).collect();
    let extras = Extras::new().metadata(&meta[..40]);
    Index::build_with(&subset_as(&c.docs, &first), &extras, &p, &IndexParams::new(), &NoProgress)
        .unwrap();
    let mut w = tartan_index::IndexWriter::open(&p).unwrap();
    let rest: Vec<(String, usize)> = (40..60).map(|d| (format!("d{d}"), d)).collect();
    w.add(&subset_as(&c.docs, &rest), &Extras::new().metadata(&meta[40..]), &NoProgress).unwrap();
    w.commit().unwrap();
    w.delete(&["d3", "d45"]).unwrap();
    w.commit().unwrap();
    drop(w);
    let index = Index::open(&p).unwrap();
    let ids = |docs: Vec<u64>| -> Vec<String> {
        docs.iter().map(|&d| index.id(d).unwrap().unwrap().to_string()).collect()
    };
    let all = ids(index.matching(None).unwrap());
    assert_eq!(all.len(), 58);
    assert!(!all.contains(&"d3".to_string()) && !all.contains(&"d45".to_string()));
    assert_eq!(all, index.ids().unwrap());
    let f = Filter::parse("n >= 38 and n < 47").unwrap();
    let want: Vec<String> =
        [38, 39, 40, 41, 42, 43, 44, 46].iter().map(|d| format!("d{d}")).collect();
    assert_eq!(ids(index.matching(Some(&f)).unwrap()), want);
    assert!(index.id(10_000).is_none());
}
