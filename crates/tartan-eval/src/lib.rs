//! Retrieval evaluation: relevance judgements (qrels), TREC run files and the usual metrics.
//!
//! Metrics follow trec_eval / pytrec_eval as BEIR uses them: nDCG@k with linear gain
//! (`grade / log2(rank + 1)`, ideal DCG from the judged grades), Recall@k over documents with
//! grade > 0, MRR@k of the first relevant document. Every query of the qrels counts, and one
//! missing from the run scores 0 (a stricter rule than pytrec_eval, which skips it).
//!
//! ```
//! use tartan_eval::{Qrels, Run, Metrics};
//!
//! let qrels = Qrels::parse("q1\td1\t1\nq1\td3\t1\n", "qrels")?;
//! let run = Run::parse("q1 Q0 d1 1 9.5 x\nq1 Q0 d2 2 9.0 x\nq1 Q0 d3 3 8.0 x\n", "run")?;
//! let m = Metrics::compute(&run, &qrels);
//! assert!((m.recall_100 - 1.0).abs() < 1e-9);
//! assert!((m.mrr_10 - 1.0).abs() < 1e-9);
//! assert!(m.ndcg_10 < 1.0 && m.ndcg_10 > 0.9);
//! # Ok::<(), tartan_eval::EvalError>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod beir;

pub use beir::{load_corpus, load_queries, load_query_texts, TextItem};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors reading qrels or runs.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Reading or writing failed.
    #[error("I/O on {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A required file is missing.
    #[error("{} not found", path.display())]
    Missing {
        /// What was looked for.
        path: PathBuf,
    },
    /// A line is malformed.
    #[error("{source_name}:{line}: {reason}")]
    Parse {
        /// File (or label) being parsed.
        source_name: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Relevance judgements: query id → document id → grade.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Qrels {
    judged: BTreeMap<String, HashMap<String, i32>>,
}

impl Qrels {
    /// Reads a qrels file: `query-id<TAB>doc-id<TAB>grade` (BEIR's layout, with or without its
    /// header line), or TREC's four-column `qid 0 docid grade`.
    pub fn load(path: &Path) -> Result<Self, EvalError> {
        let text = read(path)?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses qrels text; `name` labels errors.
    pub fn parse(text: &str, name: &str) -> Result<Self, EvalError> {
        let mut judged: BTreeMap<String, HashMap<String, i32>> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.is_empty() {
                continue;
            }
            let (q, d, g) = match f[..] {
                [q, d, g] => (q, d, g),
                [q, _, d, g] => (q, d, g),
                _ => return Err(parse_err(name, i, "expected query-id, doc-id and grade")),
            };
            let grade = match g.parse::<i32>() {
                Ok(g) => g,
                Err(_) if i == 0 => continue, // header
                Err(_) => {
                    return Err(parse_err(name, i, &format!("grade {g:?} is not an integer")))
                }
            };
            judged.entry(q.to_string()).or_default().insert(d.to_string(), grade);
        }
        Ok(Self { judged })
    }

    /// Writes BEIR-style TSV with a header.
    pub fn write(&self, path: &Path) -> Result<(), EvalError> {
        let mut s = String::from("query-id\tcorpus-id\tscore\n");
        for (q, docs) in &self.judged {
            let mut ds: Vec<_> = docs.iter().collect();
            ds.sort();
            for (d, g) in ds {
                s.push_str(&format!("{q}\t{d}\t{g}\n"));
            }
        }
        std::fs::write(path, s).map_err(|source| EvalError::Io { path: path.into(), source })
    }

    /// Judged queries.
    pub fn queries(&self) -> impl Iterator<Item = &str> {
        self.judged.keys().map(String::as_str)
    }
    /// Number of judged queries.
    pub fn n_queries(&self) -> usize {
        self.judged.len()
    }
    /// Judgements of one query.
    pub fn get(&self, query: &str) -> Option<&HashMap<String, i32>> {
        self.judged.get(query)
    }
    /// Keeps only the given queries.
    pub fn retain(&mut self, keep: &HashSet<&str>) {
        self.judged.retain(|q, _| keep.contains(q.as_str()));
    }
}

/// A ranked run: query id → documents best first, with scores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    ranked: BTreeMap<String, Vec<(String, f32)>>,
}

impl Run {
    /// An empty run.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the ranking of a query (best first).
    pub fn insert(&mut self, query: &str, ranking: Vec<(String, f32)>) {
        self.ranked.insert(query.to_string(), ranking);
    }
    /// Reads a TREC run file (`qid Q0 docid rank score tag`).
    pub fn load(path: &Path) -> Result<Self, EvalError> {
        let text = read(path)?;
        Self::parse(&text, &path.display().to_string())
    }
    /// Parses TREC run text; documents are ordered by score (descending), then by rank.
    pub fn parse(text: &str, name: &str) -> Result<Self, EvalError> {
        let mut rows: BTreeMap<String, Vec<(String, f32, u64)>> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.is_empty() {
                continue;
            }
            let [q, _, d, rank, score, ..] = f[..] else {
                return Err(parse_err(name, i, "expected `qid Q0 docid rank score tag`"));
            };
            let rank: u64 = rank
                .parse()
                .map_err(|_| parse_err(name, i, &format!("rank {rank:?} is not an integer")))?;
            let score: f32 = score
                .parse()
                .map_err(|_| parse_err(name, i, &format!("score {score:?} is not a number")))?;
            if !score.is_finite() {
                return Err(parse_err(name, i, "score is not finite"));
            }
            rows.entry(q.to_string()).or_default().push((d.to_string(), score, rank));
        }
        let mut ranked = BTreeMap::new();
        for (q, mut v) in rows {
            v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
            let mut seen = HashSet::new();
            if let Some(dup) = v.iter().find(|r| !seen.insert(r.0.clone())) {
                return Err(parse_err(
                    name,
                    0,
                    &format!("query {q} lists document {} twice", dup.0),
                ));
            }
            ranked.insert(q, v.into_iter().map(|(d, s, _)| (d, s)).collect());
        }
        Ok(Self { ranked })
    }
    /// Writes the run in TREC format with the given tag.
    pub fn write(&self, out: &mut impl Write, tag: &str) -> std::io::Result<()> {
        for (q, docs) in &self.ranked {
            for (r, (d, s)) in docs.iter().enumerate() {
                writeln!(out, "{q} Q0 {d} {} {s} {tag}", r + 1)?;
            }
        }
        Ok(())
    }
    /// Ranking of a query.
    pub fn get(&self, query: &str) -> Option<&[(String, f32)]> {
        self.ranked.get(query).map(Vec::as_slice)
    }
    /// Queries in the run.
    pub fn queries(&self) -> impl Iterator<Item = &str> {
        self.ranked.keys().map(String::as_str)
    }
}

/// Metrics of a run against qrels, averaged over the judged queries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    /// nDCG@10.
    pub ndcg_10: f64,
    /// Recall@100.
    pub recall_100: f64,
    /// MRR@10.
    pub mrr_10: f64,
    /// Judged queries averaged over.
    pub n_queries: usize,
    /// Judged queries the run has no ranking for (each scored 0).
    pub n_missing: usize,
}

impl Metrics {
    /// Computes the metrics.
    pub fn compute(run: &Run, qrels: &Qrels) -> Self {
        let (mut ndcg, mut rec, mut mrr, mut missing) = (0.0, 0.0, 0.0, 0);
        for (q, judged) in &qrels.judged {
            let Some(ranking) = run.get(q) else {
                missing += 1;
                continue;
            };
            ndcg += ndcg_at(ranking, judged, 10);
            rec += recall_at(ranking, judged, 100);
            mrr += mrr_at(ranking, judged, 10);
        }
        let n = qrels.n_queries().max(1) as f64;
        Self {
            ndcg_10: ndcg / n,
            recall_100: rec / n,
            mrr_10: mrr / n,
            n_queries: qrels.n_queries(),
            n_missing: missing,
        }
    }
}

/// nDCG@k with linear gain.
pub fn ndcg_at(ranking: &[(String, f32)], judged: &HashMap<String, i32>, k: usize) -> f64 {
    let dcg: f64 = ranking
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, (d, _))| {
            judged.get(d).copied().unwrap_or(0).max(0) as f64 / (i as f64 + 2.0).log2()
        })
        .sum();
    let mut ideal: Vec<i32> = judged.values().copied().filter(|&g| g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 =
        ideal.iter().take(k).enumerate().map(|(i, &g)| g as f64 / (i as f64 + 2.0).log2()).sum();
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}

/// Recall@k: share of relevant (grade > 0) documents in the top k.
pub fn recall_at(ranking: &[(String, f32)], judged: &HashMap<String, i32>, k: usize) -> f64 {
    let relevant = judged.values().filter(|&&g| g > 0).count();
    if relevant == 0 {
        return 0.0;
    }
    let hit = ranking.iter().take(k).filter(|(d, _)| judged.get(d).is_some_and(|&g| g > 0)).count();
    hit as f64 / relevant as f64
}

/// Reciprocal rank of the first relevant document within the top k.
pub fn mrr_at(ranking: &[(String, f32)], judged: &HashMap<String, i32>, k: usize) -> f64 {
    ranking
        .iter()
        .take(k)
        .position(|(d, _)| judged.get(d).is_some_and(|&g| g > 0))
        .map_or(0.0, |i| 1.0 / (i as f64 + 1.0))
}

/// Mean over the oracle's queries of |run top-k ∩ oracle top-k| / k (queries missing from
/// the run score 0).
pub fn overlap_at(run: &Run, oracle: &Run, k: usize) -> f64 {
    let mut total = 0.0;
    let mut n = 0;
    for q in oracle.queries() {
        let want: HashSet<&str> =
            oracle.get(q).unwrap_or(&[]).iter().take(k).map(|(d, _)| d.as_str()).collect();
        if want.is_empty() {
            continue;
        }
        n += 1;
        let got = run.get(q).unwrap_or(&[]);
        total += got.iter().take(k).filter(|(d, _)| want.contains(d.as_str())).count() as f64
            / want.len() as f64;
    }
    if n == 0 {
        0.0
    } else {
        total / n as f64
    }
}

fn read(path: &Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path).map_err(|source| EvalError::Io { path: path.into(), source })
}

fn parse_err(name: &str, i: usize, reason: &str) -> EvalError {
    EvalError::Parse { source_name: name.to_string(), line: i + 1, reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(ids: &[&str]) -> Vec<(String, f32)> {
        ids.iter().enumerate().map(|(i, d)| (d.to_string(), 10.0 - i as f32)).collect()
    }

    #[test]
    fn ndcg_matches_hand_computation() {
        let j: HashMap<String, i32> = [("a".to_string(), 2), ("b".to_string(), 1)].into();
        // Ranking b, x, a: DCG = 1/log2(2) + 2/log2(4) = 2; IDCG = 2 + 1/log2(3).
        let want = 2.0 / (2.0 + 1.0 / 3f64.log2());
        assert!((ndcg_at(&r(&["b", "x", "a"]), &j, 10) - want).abs() < 1e-12);
        assert_eq!(ndcg_at(&r(&["a", "b"]), &j, 10), 1.0);
        assert_eq!(ndcg_at(&r(&["x", "y"]), &j, 10), 0.0);
        assert_eq!(recall_at(&r(&["x", "a"]), &j, 1), 0.0);
        assert_eq!(recall_at(&r(&["x", "a"]), &j, 2), 0.5);
        assert_eq!(mrr_at(&r(&["x", "y", "b"]), &j, 10), 1.0 / 3.0);
    }

    #[test]
    fn qrels_with_header_and_trec_layout() {
        let q =
            Qrels::parse("query-id\tcorpus-id\tscore\n1\t10\t1\n1\t11\t2\n2 0 5 1\n", "t").unwrap();
        assert_eq!(q.n_queries(), 2);
        assert_eq!(q.get("1").unwrap()["11"], 2);
        assert_eq!(q.get("2").unwrap()["5"], 1);
        let e = Qrels::parse("1\t10\t1\n1\t11\tx\n", "t").unwrap_err();
        assert!(e.to_string().starts_with("t:2:"), "{e}");
    }

    #[test]
    fn run_roundtrip_and_errors() {
        let mut run = Run::new();
        run.insert("q", r(&["a", "b"]));
        let mut buf = Vec::new();
        run.write(&mut buf, "t").unwrap();
        let back = Run::parse(std::str::from_utf8(&buf).unwrap(), "x").unwrap();
        assert_eq!(back, run);
        assert!(Run::parse("q Q0 a 1 nan t\n", "x").is_err());
        assert!(Run::parse("q Q0 a\n", "x").is_err());
        assert!(Run::parse("q Q0 a 1 1.0 t\nq Q0 a 2 0.5 t\n", "x").is_err());
    }

    #[test]
    fn metrics_count_missing_queries_as_zero() {
        let q = Qrels::parse("1\ta\t1\n2\tb\t1\n", "t").unwrap();
        let mut run = Run::new();
        run.insert("1", r(&["a"]));
        let m = Metrics::compute(&run, &q);
        assert_eq!((m.n_queries, m.n_missing), (2, 1));
        assert!((m.ndcg_10 - 0.5).abs() < 1e-12);
        let mut oracle = Run::new();
        oracle.insert("1", r(&["a", "c"]));
        oracle.insert("2", r(&["b", "d"]));
        assert!((overlap_at(&run, &oracle, 2) - 0.25).abs() < 1e-12);
    }
}
