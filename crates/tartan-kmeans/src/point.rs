//! The element types k-means trains on: `f32`, or `f16` for half the memory per point.
//!
//! A large build's k-means sample is most of its resident memory; stored in float16 (the
//! precision centroids are kept in, and that of most stored embeddings) it takes half. The
//! arithmetic stays in f32: float16 points are widened a block at a time.

use half::f16;
use rayon::prelude::*;

/// Rows widened to f32 at a time when searching float16 points (8 MiB at dim 128).
pub(crate) const WIDEN_ROWS: usize = 16_384;

/// A point coordinate type.
pub trait Point: Copy + Send + Sync + 'static {
    /// The value as f32.
    fn to_f32(self) -> f32;
    /// The slice itself when it already is f32 (no copy needed).
    fn as_f32(s: &[Self]) -> Option<&[f32]>;
}

impl Point for f32 {
    fn to_f32(self) -> f32 {
        self
    }
    fn as_f32(s: &[Self]) -> Option<&[f32]> {
        Some(s)
    }
}

impl Point for f16 {
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    fn as_f32(_: &[Self]) -> Option<&[f32]> {
        None
    }
}

/// Runs `f` over `points` (`n × dim`) as f32: directly, or `WIDEN_ROWS` rows at a time
/// widened into one reused buffer; the per-row results are concatenated. `f` must treat rows
/// independently (nearest-centroid searches do), so the chunking changes no result.
pub(crate) fn per_row_f32<T: Point>(
    points: &[T],
    dim: usize,
    f: impl Fn(&[f32]) -> (Vec<u32>, Vec<f32>),
) -> (Vec<u32>, Vec<f32>) {
    if let Some(p) = T::as_f32(points) {
        return f(p);
    }
    let n = points.len() / dim;
    let (mut labels, mut dists) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut buf = vec![0f32; WIDEN_ROWS.min(n) * dim];
    for chunk in points.chunks(WIDEN_ROWS * dim) {
        let buf = &mut buf[..chunk.len()];
        buf.par_chunks_mut(dim)
            .zip(chunk.par_chunks(dim))
            .for_each(|(o, i)| o.iter_mut().zip(i).for_each(|(o, &v)| *o = v.to_f32()));
        let (l, d) = f(buf);
        labels.extend(l);
        dists.extend(d);
    }
    (labels, dists)
}
