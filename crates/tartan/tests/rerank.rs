//! The cross-encoder stage over a real index: SciFact passages encoded with the shared MiniLM,
//! reranked by the shared tiny cross-encoder. Scores are checked against the cross-encoder run
//! on its own, order against a sort of those scores.

#![allow(clippy::print_stderr)] // the skip reason is printed

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tartan::rerank::RerankSpec;
use tartan::{Error, Index, IndexParams, IngestOptions, NoProgress, SearchParams, Searcher};

fn shared() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    let need = ["models/all-MiniLM-L6-v2/config.json", "models/tiny-cross-encoder/config.json"];
    if need.iter().all(|p| root.join(p).exists()) && root.join("data/scifact").exists() {
        return Some(root);
    }
    assert!(std::env::var_os("CI").is_none(), "CI must have ../shared (models and SciFact)");
    eprintln!("SKIPPED: ../shared (MiniLM, tiny-cross-encoder, SciFact) is absent");
    None
}

#[test]
fn rerank_reorders_the_first_hits_by_the_cross_encoder() {
    let Some(root) = shared() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // 120 SciFact passages as a corpus file; an index of them that stores the texts.
    let mut corpus = tartan_eval::load_corpus(&root.join("data/scifact")).unwrap();
    corpus.truncate(120);
    let corpus_file = tmp.path().join("corpus.jsonl");
    let lines: Vec<String> = corpus
        .iter()
        .map(|d| serde_json::json!({"_id": d.id, "text": d.text}).to_string())
        .collect();
    std::fs::write(&corpus_file, lines.join("\n")).unwrap();
    let spec = tartan::text::ModelSpec {
        doc_maxlen: Some(48),
        query_maxlen: Some(24),
        ..tartan::text::ModelSpec::new(root.join("models/all-MiniLM-L6-v2").to_str().unwrap())
    };
    let enc = Arc::new(spec.load().unwrap());
    let opts = IngestOptions {
        encoder: Some(enc.clone()),
        scratch_dir: Some(tmp.path().into()),
        ..IngestOptions::default()
    };
    let docs = tartan::load_documents(&corpus_file, &opts, &NoProgress).unwrap();
    let with_text = tmp.path().join("with-text");
    Index::build_with(&docs.docs, &docs.extras, &with_text, &IndexParams::new(), &NoProgress)
        .unwrap();
    // The same vectors without texts.
    let bare = tmp.path().join("bare");
    Index::build(&docs.docs, &bare, &IndexParams::new(), &NoProgress).unwrap();

    let ce_dir = root.join("models/tiny-cross-encoder");
    let rerank = RerankSpec { depth: Some(8), ..RerankSpec::new(ce_dir.to_str().unwrap()) };
    let reranker = rerank.load().unwrap();
    let query = "Cells of the immune system respond to vaccination.";
    let q = tartan::text::encode_query(&enc, query).unwrap();
    let searcher = Searcher::open(&with_text).unwrap();

    // k 12 > depth 8: eight reranked hits, then four in first-stage order.
    let params = SearchParams::new(12);
    let (hits, coverage) = reranker.search(&searcher, q.view(), query, &params).unwrap();
    assert!(coverage.complete());
    assert_eq!(hits.len(), 12);
    let first = searcher.search(q.view(), &params).unwrap().hits;
    let by_id = |id: &str| corpus.iter().find(|d| d.id == id).unwrap().text.as_str();
    let head: Vec<&str> = first[..8].iter().map(|h| by_id(&h.id)).collect();
    let direct = reranker.model().score(query, &head).unwrap();
    let mut want: Vec<(usize, f32)> = direct.iter().copied().enumerate().collect();
    want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    for (got, (rank, score)) in hits[..8].iter().zip(&want) {
        assert_eq!(got.first_rank, *rank);
        assert_eq!(got.hit.id, first[*rank].id);
        assert_eq!(got.hit.score, first[*rank].score, "first-stage score kept");
        assert_eq!(got.rerank_score, Some(*score));
        assert_eq!(got.hit.text.as_deref(), Some(by_id(&got.hit.id)));
    }
    for (i, got) in hits[8..].iter().enumerate() {
        assert_eq!((got.first_rank, got.rerank_score), (8 + i, None));
        assert_eq!(got.hit.id, first[8 + i].id);
    }
    // The cross-encoder (random weights) does reorder: the test would see a no-op.
    assert!(hits[..8].iter().enumerate().any(|(i, h)| h.first_rank != i));

    // k 3 < depth: the best three of the eight reranked.
    let (top3, _) = reranker.search(&searcher, q.view(), query, &SearchParams::new(3)).unwrap();
    assert_eq!(top3, hits[..3].to_vec());

    // An index without texts needs the corpus; with it, the same answer.
    let bare_searcher = Searcher::open(&bare).unwrap();
    match reranker.search(&bare_searcher, q.view(), query, &params) {
        Err(Error::MissingText { id }) => assert_eq!(id, first[0].id),
        other => panic!("expected MissingText, got {other:?}"),
    }
    let reranker = reranker.with_corpus(&corpus_file).unwrap();
    let (from_corpus, _) = reranker.search(&bare_searcher, q.view(), query, &params).unwrap();
    let strip = |v: &[tartan::rerank::Reranked]| {
        v.iter().map(|r| (r.hit.id.clone(), r.rerank_score)).collect::<Vec<_>>()
    };
    assert_eq!(strip(&from_corpus[..8]), strip(&hits[..8]));

    let err = RerankSpec { depth: Some(0), ..rerank }.load().unwrap_err();
    assert!(err.to_string().contains("rerank_depth"), "{err}");
}
