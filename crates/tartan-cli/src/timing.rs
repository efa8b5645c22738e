use std::time::Duration;

/// Latency percentiles of a set of timings (nearest rank).
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

pub fn latency(times: &[Duration]) -> Latency {
    let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let pick = |p: f64| {
        if ms.is_empty() {
            return 0.0;
        }
        let rank = ((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len());
        ms[rank - 1]
    };
    Latency { p50_ms: pick(0.50), p95_ms: pick(0.95), p99_ms: pick(0.99) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let t: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = latency(&t);
        assert_eq!((l.p50_ms, l.p95_ms, l.p99_ms), (50.0, 95.0, 99.0));
        assert_eq!(latency(&[]).p50_ms, 0.0);
    }
}
