//! A sweep's rows and what is written of them: `sweep.csv`, `sweep.json` and the trade-off
//! plots, with each row's place on the Pareto fronts.

use std::path::Path;

use serde::Serialize;

use super::plot::{self, Point};
use crate::error::{Error, Result};

/// A quality axis: how a row scores on it.
type Score = fn(&Row) -> f64;

/// One point of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// `tartan`, `exact`, `float16` or `bi-encoder`.
    pub system: String,
    /// Codebook size K (tartan rows).
    pub n_centroids: Option<usize>,
    /// Residual bits per dimension (tartan rows).
    pub nbits: Option<u8>,
    /// Centroids probed per query token (tartan rows).
    pub ncells: Option<usize>,
    /// Candidates kept after the pruned pass (tartan rows).
    pub ndocs: Option<usize>,
    /// Bytes stored per document token.
    pub bytes_per_token: f64,
    /// Seconds to build the index (tartan rows).
    pub build_s: Option<f64>,
    /// Median latency of one query alone, in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile latency, in milliseconds.
    pub p95_ms: f64,
    /// nDCG@10 against the qrels, when the directory has `qrels.tsv`.
    pub ndcg_10: Option<f64>,
    /// Recall@100 against the qrels.
    pub recall_100: Option<f64>,
    /// Overlap of the top 10 with exact MaxSim's top 10.
    pub recall_10_vs_exact: f64,
    /// Overlap of the top 100 with exact MaxSim's top 100 (k permitting).
    pub recall_100_vs_exact: f64,
    /// On the Pareto front of quality against bytes per token.
    pub pareto_bytes: bool,
    /// On the Pareto front of quality against p50 latency.
    pub pareto_latency: bool,
    /// The cross-encoder row: milliseconds per (query, document) pair read.
    pub rerank_ms_per_doc: Option<f64>,
}

impl Row {
    /// The quality axis of the plots: nDCG@10 if there are qrels, else recall@10 vs exact.
    pub fn quality(&self) -> f64 {
        self.ndcg_10.unwrap_or(self.recall_10_vs_exact)
    }
    /// The plots' legend entry.
    pub fn series(&self) -> &'static str {
        match (self.system.as_str(), self.nbits) {
            ("tartan", Some(1)) => "tartan 1-bit",
            ("tartan", Some(2)) => "tartan 2-bit",
            ("tartan", Some(4)) => "tartan 4-bit",
            ("tartan", _) => "tartan 8-bit",
            ("exact", _) => "exact MaxSim",
            ("float16", _) => "float16 MaxSim",
            ("cross-encoder", _) => "exact + cross-encoder",
            _ => "bi-encoder (mean-pooled)",
        }
    }
    /// Short label for plots and tables.
    pub fn label(&self) -> String {
        match (self.nbits, self.ncells, self.ndocs) {
            (Some(b), Some(c), Some(d)) => format!(
                "{b}-bit K{} c{c} d{d}",
                self.n_centroids.map_or(String::new(), |k| k.to_string())
            ),
            _ => self.system.clone(),
        }
    }
}

/// A sweep's rows and what they were measured on; serialised, what `sweep.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    /// The embeddings directory.
    pub embeddings: String,
    /// Documents.
    pub n_docs: usize,
    /// Document tokens.
    pub n_tokens: usize,
    /// Dimension.
    pub dim: usize,
    /// Queries searched.
    pub n_queries: usize,
    /// Hits per query.
    pub k: usize,
    /// Threads the searches ran on.
    pub threads: usize,
    /// The quality axis: `nDCG@10` with qrels, else `recall@10 vs exact`.
    pub quality: &'static str,
    /// Every row, reference points first, with their places on the Pareto fronts.
    pub rows: Vec<Row>,
}

/// Marks the rows no other row beats on both quality and cost (lower `cost`, higher
/// `quality`).
pub fn pareto(
    rows: &[&Row],
    cost: impl Fn(&Row) -> f64,
    quality: impl Fn(&Row) -> f64,
) -> Vec<bool> {
    rows.iter()
        .map(|r| {
            let (rc, rq) = (cost(r), quality(r));
            !rows.iter().any(|o| {
                let (oc, oq) = (cost(o), quality(o));
                oc <= rc && oq >= rq && (oc < rc || oq > rq)
            })
        })
        .collect()
}

/// Marks each row's place on the fronts of quality against bytes and against latency.
pub(crate) fn mark_fronts(rows: &mut [Row]) {
    let refs: Vec<&Row> = rows.iter().collect();
    let by_bytes = pareto(&refs, |r| r.bytes_per_token, Row::quality);
    let by_latency = pareto(&refs, |r| r.p50_ms, Row::quality);
    for (r, (b, l)) in rows.iter_mut().zip(by_bytes.into_iter().zip(by_latency)) {
        r.pareto_bytes = b;
        r.pareto_latency = l;
    }
}

impl Sweep {
    /// Writes `sweep.csv`, `sweep.json` and the SVG plots into `out` (created if missing);
    /// returns the files' names.
    pub fn write(&self, out: &Path) -> Result<Vec<String>> {
        std::fs::create_dir_all(out)
            .map_err(|source| Error::Io { path: out.to_path_buf(), source })?;
        let rows = &self.rows;
        let mut csv = String::from("system,n_centroids,nbits,ncells,ndocs,bytes_per_token,build_s,p50_ms,p95_ms,ndcg_10,recall_100,recall_10_vs_exact,recall_100_vs_exact,pareto_bytes,pareto_latency,rerank_ms_per_doc\n");
        let o = |v: Option<String>| v.unwrap_or_default();
        for r in rows {
            csv += &format!(
                "{},{},{},{},{},{:.3},{},{:.3},{:.3},{},{},{:.4},{:.4},{},{},{}\n",
                r.system,
                o(r.n_centroids.map(|v| v.to_string())),
                o(r.nbits.map(|v| v.to_string())),
                o(r.ncells.map(|v| v.to_string())),
                o(r.ndocs.map(|v| v.to_string())),
                r.bytes_per_token,
                o(r.build_s.map(|v| format!("{v:.2}"))),
                r.p50_ms,
                r.p95_ms,
                o(r.ndcg_10.map(|v| format!("{v:.4}"))),
                o(r.recall_100.map(|v| format!("{v:.4}"))),
                r.recall_10_vs_exact,
                r.recall_100_vs_exact,
                r.pareto_bytes,
                r.pareto_latency,
                o(r.rerank_ms_per_doc.map(|v| format!("{v:.4}")))
            );
        }
        write(&out.join("sweep.csv"), csv.as_bytes())?;
        let json = serde_json::to_string_pretty(self).expect("rows serialise");
        write(&out.join("sweep.json"), json.as_bytes())?;
        let mut written = vec!["sweep.csv".to_string(), "sweep.json".to_string()];
        let rows_ref: Vec<&Row> = rows.iter().collect();
        let bytes = ("bytes", "bytes per token (log scale)");
        let latency = ("latency", "search latency p50, ms (log scale)");
        let quality = self.quality;
        for (name, x_label) in [bytes, latency] {
            let cost = |r: &Row| if name == "bytes" { r.bytes_per_token } else { r.p50_ms };
            // With qrels, the main axis is nDCG@10; fidelity to exact MaxSim gets its own plots.
            let mut plots: Vec<(String, &str, Score)> =
                vec![(format!("quality_vs_{name}.svg"), quality, Row::quality)];
            if quality != RECALL_VS_EXACT {
                plots.push((format!("recall_vs_{name}.svg"), RECALL_VS_EXACT, |r| {
                    r.recall_10_vs_exact
                }));
            }
            for (file, axis, score) in plots {
                let front = pareto(&rows_ref, cost, score);
                let points: Vec<Point> = rows
                    .iter()
                    .zip(front)
                    .map(|(r, on_front)| Point {
                        x: cost(r),
                        y: score(r),
                        series: r.series(),
                        on_front,
                    })
                    .collect();
                plot::tradeoff(&out.join(&file), &points, axis, x_label)?;
                written.push(file);
            }
        }
        Ok(written)
    }
}

/// The quality axis without qrels.
pub(crate) const RECALL_VS_EXACT: &str = "recall@10 vs exact";

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bytes: f64, q: f64) -> Row {
        Row {
            system: "t".into(),
            n_centroids: None,
            nbits: None,
            ncells: None,
            ndocs: None,
            bytes_per_token: bytes,
            build_s: None,
            p50_ms: 1.0,
            p95_ms: 1.0,
            ndcg_10: Some(q),
            recall_100: None,
            recall_10_vs_exact: 0.0,
            recall_100_vs_exact: 0.0,
            pareto_bytes: false,
            pareto_latency: false,
            rerank_ms_per_doc: None,
        }
    }

    #[test]
    fn pareto_front_keeps_only_undominated_points() {
        let rows =
            [row(10.0, 0.5), row(20.0, 0.7), row(20.0, 0.6), row(30.0, 0.65), row(40.0, 0.8)];
        let rows: Vec<&Row> = rows.iter().collect();
        let front = pareto(&rows, |r| r.bytes_per_token, Row::quality);
        assert_eq!(front, [true, true, false, false, true]);
        // Equal points do not dominate each other.
        let twins = [row(1.0, 0.5), row(1.0, 0.5)];
        let twins: Vec<&Row> = twins.iter().collect();
        assert_eq!(pareto(&twins, |r| r.bytes_per_token, Row::quality), [true, true]);
        // Another quality axis gives another front.
        let by_recall = pareto(&rows, |r| r.bytes_per_token, |r| -r.bytes_per_token);
        assert_eq!(by_recall, [true, false, false, false, false]);
    }
}
