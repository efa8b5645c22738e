//! One Lloyd update: centroids become the means of their points. Shared by training
//! ([`crate::fit`]) and by the grouping of centroids in the coarse-to-fine search
//! ([`crate::coarse`]); it depends on neither.

use rand::Rng;

use crate::point::Point;

/// faiss's relative perturbation when splitting a cluster to fill an empty one.
const SPLIT_EPS: f32 = 1.0 / 1024.0;

/// One Lloyd update: each centroid becomes the mean of its points; empty clusters take half of
/// a large cluster (picked with probability proportional to its size − 1, as faiss does).
pub(crate) fn update_centroids<T: Point>(
    pts: &[T],
    labels: &[u32],
    dim: usize,
    cents: &mut [f32],
    rng: &mut impl Rng,
) {
    let k = cents.len() / dim;
    let mut sums = vec![0f64; k * dim];
    let mut counts = vec![0usize; k];
    for (p, &l) in pts.chunks_exact(dim).zip(labels) {
        let l = l as usize;
        counts[l] += 1;
        for (s, &v) in sums[l * dim..(l + 1) * dim].iter_mut().zip(p) {
            *s += v.to_f32() as f64;
        }
    }
    for c in 0..k {
        if counts[c] > 0 {
            let inv = 1.0 / counts[c] as f64;
            for (dst, s) in cents[c * dim..(c + 1) * dim].iter_mut().zip(&sums[c * dim..]) {
                *dst = (s * inv) as f32;
            }
        }
    }
    let n = labels.len();
    for empty in 0..k {
        if counts[empty] != 0 {
            continue;
        }
        // Walk clusters with probability (size − 1) / (n − k), like faiss's split.
        let big = loop {
            let r = rng.gen::<f64>() * (n.saturating_sub(k).max(1)) as f64;
            let mut acc = 0.0;
            let mut chosen = None;
            for (j, &cnt) in counts.iter().enumerate() {
                acc += cnt.saturating_sub(1) as f64;
                if acc > r {
                    chosen = Some(j);
                    break;
                }
            }
            if let Some(j) = chosen {
                break j;
            }
            if counts.iter().all(|&c| c <= 1) {
                break counts.iter().position(|&c| c == 1).unwrap_or(0);
            }
        };
        for d in 0..dim {
            let v = cents[big * dim + d];
            let (a, b) = if d % 2 == 0 {
                (v * (1.0 + SPLIT_EPS), v * (1.0 - SPLIT_EPS))
            } else {
                (v * (1.0 - SPLIT_EPS), v * (1.0 + SPLIT_EPS))
            };
            cents[empty * dim + d] = a;
            cents[big * dim + d] = b;
        }
        counts[empty] = counts[big] / 2;
        counts[big] -= counts[empty];
    }
}
