//! Latency percentiles, computed one way for every front end and bench.

use std::time::Duration;

/// Latency percentiles of a set of timings, by nearest rank, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Latency {
    /// Timings measured.
    pub n: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Mean.
    pub mean_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles of `times` (all zero when empty).
    pub fn of(times: &[Duration]) -> Self {
        let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let pick = |p: f64| {
            if ms.is_empty() {
                return 0.0;
            }
            let rank = ((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len());
            ms[rank - 1]
        };
        let mean = if ms.is_empty() { 0.0 } else { ms.iter().sum::<f64>() / ms.len() as f64 };
        Self {
            n: ms.len(),
            p50_ms: pick(0.50),
            p95_ms: pick(0.95),
            p99_ms: pick(0.99),
            mean_ms: mean,
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

/// Runs `search` on each query alone, one after the other; returns the results and each
/// query's duration (what latency percentiles are taken over).
pub fn timed_searches<T, E>(
    views: &[ndarray::ArrayView2<'_, f32>],
    mut search: impl FnMut(ndarray::ArrayView2<'_, f32>) -> Result<T, E>,
) -> Result<(Vec<T>, Vec<Duration>), E> {
    let mut out = Vec::with_capacity(views.len());
    let mut times = Vec::with_capacity(views.len());
    for v in views {
        let t = std::time::Instant::now();
        out.push(search(v.view())?);
        times.push(t.elapsed());
    }
    Ok((out, times))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let t: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = Latency::of(&t);
        assert_eq!((l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms), (50.0, 95.0, 99.0, 100.0));
        assert!((l.mean_ms - 50.5).abs() < 1e-9);
        let one = Latency::of(&[Duration::from_millis(7)]);
        assert_eq!((one.p50_ms, one.p99_ms), (7.0, 7.0));
        assert_eq!(Latency::of(&[]).p50_ms, 0.0);
    }
}
