use tartan_index::{Index, IndexParams, SearchParams};

use crate::common::*;

#[test]
fn recall_at_10_vs_exact_is_high_at_4_bits_and_grows_with_nbits() {
    let c = corpus();
    let exact = exact_ids(&c, 10);
    let dir = tempfile::tempdir().unwrap();
    let mut recalls = Vec::new();
    for nbits in [1u8, 2, 4] {
        let index =
            build(&c, &dir.path().join(format!("b{nbits}")), IndexParams::new().nbits(nbits));
        let r = recall(&index, &c, &SearchParams::new(10), &exact, 10);
        eprintln!("nbits {nbits}: recall@10 {r:.3}");
        recalls.push(r);
    }
    assert!(recalls[2] >= 0.95, "recall@10 at 4 bits: {recalls:?}");
    assert!(recalls[0] < recalls[1] && recalls[1] <= recalls[2], "{recalls:?}");
}

#[test]
fn build_is_deterministic_and_reopens_identically() {
    let c = tartan_synth::SynthParams::new(300).dim(32).n_queries(5).seed(2).generate();
    let dir = tempfile::tempdir().unwrap();
    let a = build(&c, &dir.path().join("a"), IndexParams::new().seed(3));
    let b = build(&c, &dir.path().join("b"), IndexParams::new().seed(3));
    assert_eq!(a.centroids(), b.centroids());
    // Two builds of the same input with the same seed are the same bytes, file for file.
    for name in ["meta.json", "codebook.000001.tcb", "segment.000001.tseg"] {
        let read = |d: &str| std::fs::read(dir.path().join(d).join(name)).unwrap();
        assert!(read("a") == read("b"), "{name} differs between two builds");
    }
    let reopened = Index::open(&dir.path().join("a")).unwrap();
    reopened.verify().unwrap();
    let q = c.queries.doc(0);
    let p = SearchParams::new(5);
    assert_eq!(a.search(view(&q, 32), &p).unwrap(), b.search(view(&q, 32), &p).unwrap());
}

#[test]
fn every_document_is_findable_by_its_own_tokens() {
    // A document queried with its own tokens must come back first: checks ids, offsets and
    // decompression line up across the whole segment.
    let c = tartan_synth::SynthParams::new(200).dim(32).n_queries(1).seed(4).generate();
    let dir = tempfile::tempdir().unwrap();
    let index = build(&c, &dir.path().join("i"), IndexParams::new().nbits(4));
    let mut ok = 0;
    for d in 0..200 {
        let q = c.docs.doc(d);
        let hits = index.search(view(&q, 32), &SearchParams::new(1)).unwrap();
        ok += usize::from(hits[0].id == c.docs.id(d));
    }
    assert!(ok >= 196, "{ok}/200 documents found themselves first");
}

#[test]
fn searches_after_longer_and_shorter_queries_answer_alike() {
    // Searches reuse the buffers of earlier queries' centroid scores, of other lengths: every
    // answer must be the one a first search gives.
    let c = corpus();
    let dir = tempfile::tempdir().unwrap();
    build(&c, &dir.path().join("i"), IndexParams::new().nbits(2).n_centroids(256));
    let qs = queries(&c.queries);
    // Queries of 32 tokens; the short one is 5 tokens of another.
    let (short, long) = (&qs[0][..5 * 64], &qs[1][..]);
    assert_eq!(long.len(), 32 * 64);
    let p = SearchParams::new(10);
    let first = |q: &[f32]| {
        let fresh = Index::open(&dir.path().join("i")).unwrap();
        fresh.search(view(q, 64), &p).unwrap()
    };
    let (want_short, want_long) = (first(short), first(long));
    let index = Index::open(&dir.path().join("i")).unwrap();
    for _ in 0..3 {
        let batch = [view(long, 64), view(short, 64), view(long, 64), view(short, 64)];
        let got = index.search_batch(&batch, &p).unwrap();
        assert_eq!(got, [&want_long, &want_short, &want_long, &want_short].map(Vec::clone));
        assert_eq!(index.search(view(short, 64), &p).unwrap(), want_short);
        assert_eq!(index.search(view(long, 64), &p).unwrap(), want_long);
    }
}

#[test]
fn stats_account_for_every_byte() {
    let c = tartan_synth::SynthParams::new(300).dim(32).n_queries(1).seed(5).generate();
    let dir = tempfile::tempdir().unwrap();
    let index = build(&c, &dir.path().join("i"), IndexParams::new().nbits(2));
    let s = index.stats();
    assert_eq!(s.n_docs, 300);
    let residuals = s.components.iter().find(|c| c.0 == "residuals").unwrap().1;
    assert_eq!(residuals, s.n_tokens * 32 * 2 / 8);
    // Codes are packed at ⌈log2 K⌉ bits.
    let codes = s.components.iter().find(|c| c.0 == "codes").unwrap().1;
    let bits = u64::from(64 - (index.manifest().n_centroids as u64 - 1).leading_zeros());
    assert_eq!(codes, (s.n_tokens * bits).div_ceil(8));
    // Centroids are stored as float16.
    assert!(s.codebook_bytes >= (index.manifest().n_centroids * 32 * 2) as u64);
    assert!(s.codebook_bytes < (index.manifest().n_centroids * 32 * 2 + 1024) as u64);
    let seg: u64 = s.components.iter().map(|c| c.1).sum();
    assert_eq!(seg + s.codebook_bytes, s.total_bytes);
    let on_disk: u64 = std::fs::read_dir(index.dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "meta.json")
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert_eq!(on_disk, s.total_bytes);
    // Inverted lists hold each document once per distinct centroid of its tokens: more
    // postings than documents, fewer than tokens (tokens of a document share centroids).
    let (min, median, mean, max, _) = s.ivf_lists;
    let postings = mean * index.manifest().n_centroids as f64;
    assert!(min <= median && median <= max);
    assert!(postings > s.n_docs as f64 && postings < s.n_tokens as f64, "{postings} postings");
}

#[test]
fn overwrite_publishes_a_new_generation_and_removes_old_files() {
    let c = tartan_synth::SynthParams::new(200).dim(32).n_queries(1).seed(6).generate();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("i");
    build(&c, &p, IndexParams::new().nbits(2));
    let err =
        Index::build(&c.docs, &p, &IndexParams::new(), &tartan_index::NoProgress).unwrap_err();
    assert!(matches!(err, tartan_index::IndexError::Exists { .. }), "{err}");
    let again = build(&c, &p, IndexParams::new().nbits(4).overwrite(true));
    assert_eq!(again.manifest().generation, 2);
    assert_eq!(again.manifest().nbits, 4);
    let mut names: Vec<String> = std::fs::read_dir(&p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["codebook.000002.tcb", "meta.json", "segment.000002.tseg", "tartan.lock"]);
    // No temporary directories are left beside the index.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn texts_are_stored_verified_and_returned() {
    let c = tartan_synth::SynthParams::new(120).dim(32).n_queries(2).seed(8).generate();
    let texts: Vec<String> = (0..120).map(|i| format!("document {i}: ünïcode ✓")).collect();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("i");
    let index = Index::build_with(
        &c.docs,
        &tartan_index::Extras::new().texts(texts.clone()),
        &p,
        &IndexParams::new(),
        &tartan_index::NoProgress,
    )
    .unwrap();
    index.verify().unwrap();
    let q = c.queries.doc(0);
    for h in index.search(view(&q, 32), &SearchParams::new(5)).unwrap() {
        let n: usize = h.id[1..].parse().unwrap();
        assert_eq!(index.text(h.doc).unwrap().unwrap(), texts[n]);
    }
    assert!(index.text(120).is_none());
    let s = index.stats();
    let text_bytes = s.components.iter().find(|c| c.0 == "texts").unwrap().1;
    assert!(text_bytes > texts.iter().map(String::len).sum::<usize>() as u64);
    assert!(s.bytes_per_token() < s.total_bytes as f64 / s.n_tokens as f64);
    // An index built without texts has none.
    let plain = build(&c, &dir.path().join("plain"), IndexParams::new());
    assert!(plain.text(0).is_none());
    let wrong = Index::build_with(
        &c.docs,
        &tartan_index::Extras::new().texts(texts[..3].to_vec()),
        &dir.path().join("x"),
        &IndexParams::new(),
        &tartan_index::NoProgress,
    );
    assert!(matches!(wrong, Err(tartan_index::IndexError::Param { name: "texts", .. })));
}

#[test]
fn given_centroids_reproduce_a_full_build() {
    let c = corpus();
    let dir = tempfile::tempdir().unwrap();
    let two = build(&c, &dir.path().join("two"), IndexParams::new().nbits(2).seed(4));
    let full = build(&c, &dir.path().join("full"), IndexParams::new().nbits(4).seed(4));
    let reused = build(
        &c,
        &dir.path().join("reused"),
        IndexParams::new().nbits(4).seed(4).centroids(two.centroids().to_vec()),
    );
    assert_eq!(reused.centroids(), full.centroids());
    assert_eq!(reused.manifest().build.kmeans_points, 0);
    let qs = queries(&c.queries);
    let views: Vec<_> = qs.iter().map(|q| view(q, 64)).collect();
    let p = SearchParams::new(10);
    assert_eq!(reused.search_batch(&views, &p).unwrap(), full.search_batch(&views, &p).unwrap());
    let bad = IndexParams::new().centroids(vec![0.5; 65]);
    let err = Index::build(&c.docs, &dir.path().join("bad"), &bad, &tartan_index::NoProgress);
    assert!(matches!(err, Err(tartan_index::IndexError::Param { name: "centroids", .. })));
}

#[test]
fn hit_scores_are_maxsim_over_the_decompressed_documents_at_every_nbits() {
    // Stage 4 decodes residuals at some widths and sums them from a per-query table at
    // others (1 bit): either way a hit's score is MaxSim over what `decompress` returns, to
    // within the fixed-point products' error.
    let c = tartan_synth::SynthParams::new(300).dim(32).n_queries(4).seed(6).generate();
    let dir = tempfile::tempdir().unwrap();
    let qs = queries(&c.queries);
    for nbits in [1u8, 2, 4, 8] {
        let index =
            build(&c, &dir.path().join(format!("b{nbits}")), IndexParams::new().nbits(nbits));
        for q in &qs {
            let hits = index.search(view(q, 32), &SearchParams::new(5)).unwrap();
            assert_eq!(hits.len(), 5);
            for h in hits {
                let v = index.decompress(h.doc).unwrap().unwrap();
                let want: f32 = q
                    .chunks_exact(32)
                    .map(|qt| {
                        v.chunks_exact(32)
                            .map(|t| qt.iter().zip(t).map(|(a, b)| a * b).sum::<f32>())
                            .fold(f32::NEG_INFINITY, f32::max)
                    })
                    .sum();
                assert_score(h.score, want, &format!("{nbits} bits"));
            }
        }
    }
}
