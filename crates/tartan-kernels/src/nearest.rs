//! The nearest of a few hundred centroids for each of a few hundred points, product and scan
//! fused: the inner step of grouped assignment, where a large build spends its time.
//!
//! Through a general GEMM this step packed both operands on every call, wrote every
//! product to memory and scanned it again for the minimum (perf on the grouped assignment:
//! `sgemm` kernel 51%, argmin 19%, packing 8%). Here the centroids are laid out once, in
//! panels of 32 columns that a kernel reads straight into registers, and each panel's
//! distances go into 32 running minima per point while they are still in registers.
//!
//! Every implementation computes each dot product as the same chain of fused multiply-adds
//! over the dimensions in ascending order, so all of them return the same bits: an index
//! built on one CPU is the index built on another.

use std::sync::OnceLock;

/// Columns per panel: two AVX-512 registers, four AVX2 ones.
const W: usize = 32;

/// Centroids (`n × dim`) and their squared norms laid out for [`nearest_in_panels`]: panel
/// `p` holds centroids `32p .. 32p + 32` dimension-major (`dim × 32`), the last one padded
/// with zero vectors whose norm is +∞ so that they are never nearest.
#[derive(Debug, Clone)]
pub struct CentroidPanels {
    dim: usize,
    n: usize,
    data: Vec<f32>,
    norms: Vec<f32>,
}

impl CentroidPanels {
    /// Lays out `centroids` (`n × dim`, row-major) with `norms[j]` the value added to
    /// `−2·x·c_j` (the squared norm of centroid `j`, for distances).
    ///
    /// # Panics
    /// If `dim` is 0, `centroids` is not whole rows or `norms` is not one per row.
    pub fn new(centroids: &[f32], norms: &[f32], dim: usize) -> Self {
        assert!(dim > 0 && centroids.len().is_multiple_of(dim), "centroids are not whole rows");
        let n = centroids.len() / dim;
        assert_eq!(norms.len(), n, "one norm per centroid");
        let panels = n.div_ceil(W);
        let mut data = vec![0f32; panels * dim * W];
        let mut padded = vec![f32::INFINITY; panels * W];
        for (j, row) in centroids.chunks_exact(dim).enumerate() {
            let base = j / W * dim * W + j % W;
            for (d, &v) in row.iter().enumerate() {
                data[base + d * W] = v;
            }
        }
        padded[..n].copy_from_slice(norms);
        Self { dim, n, data, norms: padded }
    }
    /// Number of centroids.
    pub fn len(&self) -> usize {
        self.n
    }
    /// Whether there are no centroids.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    /// Length of each centroid.
    pub fn dim(&self) -> usize {
        self.dim
    }
    fn panels(&self) -> usize {
        self.norms.len() / W
    }
}

type NearestFn = fn(&[f32], &CentroidPanels, &mut [(f32, u32)]);

/// Every implementation this CPU can run, the scalar reference first, by name.
pub fn nearest_impls() -> Vec<(&'static str, NearestFn)> {
    let mut v: Vec<(&'static str, NearestFn)> = vec![("scalar", scalar)];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        v.push(("avx2", avx2::nearest));
        if std::arch::is_x86_feature_detected!("avx512f") {
            v.push(("avx512", avx512::nearest));
        }
    }
    v
}

fn best() -> NearestFn {
    static BEST: OnceLock<NearestFn> = OnceLock::new();
    *BEST.get_or_init(|| *nearest_impls().last().map(|(_, f)| f).unwrap_or(&(scalar as NearestFn)))
}

/// For each row `x` of `points` (`rows × dim`), the smallest `norms[j] − 2·x·c_j` over the
/// panels' centroids and the first `j` attaining it, into `out[row]`; `(+∞, u32::MAX)` when
/// no value is below +∞ (no centroids, or only NaN). NaN is never chosen.
///
/// # Panics
/// If `points` is not whole rows of `panels.dim()` or `out` is not one per row.
#[inline]
pub fn nearest_in_panels(points: &[f32], panels: &CentroidPanels, out: &mut [(f32, u32)]) {
    best()(points, panels, out)
}

/// The shape checks every implementation starts with (each is callable on its own through
/// [`nearest_impls`], so each checks; the dispatcher adds no second check).
fn check(points: &[f32], panels: &CentroidPanels, out: &[(f32, u32)]) {
    assert!(points.len().is_multiple_of(panels.dim), "points are not whole rows");
    assert_eq!(out.len(), points.len() / panels.dim, "one output per row");
}

/// The reference: per centroid, `acc = x[d]·c[d] + acc` fused, `d` ascending from 0.
fn scalar(points: &[f32], panels: &CentroidPanels, out: &mut [(f32, u32)]) {
    check(points, panels, out);
    let dim = panels.dim;
    for (x, o) in points.chunks_exact(dim).zip(out.iter_mut()) {
        *o = (f32::INFINITY, u32::MAX);
        for j in 0..panels.n {
            let col = &panels.data[j / W * dim * W + j % W..];
            let mut acc = 0f32;
            for (d, &v) in x.iter().enumerate() {
                acc = v.mul_add(col[d * W], acc);
            }
            let dist = panels.norms[j] - (acc + acc);
            if dist < o.0 {
                *o = (dist, j as u32);
            }
        }
    }
}

/// Merges a point's 32 lane minima (each the first of its own columns) into the first
/// overall minimum: the smallest value, the lowest column among equals.
fn merge_lanes(dist: &[f32; W], at: &[u32; W]) -> (f32, u32) {
    let mut best = (f32::INFINITY, u32::MAX);
    for (&d, &j) in dist.iter().zip(at) {
        if d < best.0 || (d == best.0 && j < best.1) {
            best = (d, j);
        }
    }
    best
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{merge_lanes, CentroidPanels, W};

    /// Points per step: 8 × 2 accumulators, with the two panel registers 18 of 32.
    const ROWS: usize = 8;
    /// Points whose running minima (256 bytes each) are kept while the panels pass.
    const CHUNK: usize = 32;

    /// Safe entry point; only handed out by `nearest_impls` after AVX-512F was detected.
    pub(super) fn nearest(points: &[f32], panels: &CentroidPanels, out: &mut [(f32, u32)]) {
        super::check(points, panels, out);
        // SAFETY: `nearest_impls` returns this function only when the CPU reports AVX-512F;
        // the shapes were checked above.
        unsafe { run(points, panels, out) }
    }

    /// # Safety
    /// The CPU must support AVX-512F; `points` is whole rows of `panels.dim`, `out` one per
    /// row.
    #[target_feature(enable = "avx512f")]
    unsafe fn run(points: &[f32], panels: &CentroidPanels, out: &mut [(f32, u32)]) {
        let dim = panels.dim;
        let iota0 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let iota1 = _mm512_add_epi32(iota0, _mm512_set1_epi32(16));
        // Panels outside, points inside: a panel (16 KiB at dim 128) stays in L1 while a
        // chunk of points (16 KiB) passes it, and the points' running minima wait in L1.
        for (c, outs) in out.chunks_mut(CHUNK).enumerate() {
            let rows = outs.len();
            let pts = &points[c * CHUNK * dim..][..rows * dim];
            let mut min = [[f32::INFINITY; W]; CHUNK];
            let mut at = [[u32::MAX; W]; CHUNK];
            for p in 0..panels.panels() {
                let base = panels.data[p * dim * W..].as_ptr();
                // SAFETY: the panel has 32 norms from p·32.
                let (n0, n1) = unsafe {
                    let np = panels.norms.as_ptr().add(p * W);
                    (_mm512_loadu_ps(np), _mm512_loadu_ps(np.add(16)))
                };
                let j = _mm512_set1_epi32((p * W) as i32);
                let (j0, j1) = (_mm512_add_epi32(j, iota0), _mm512_add_epi32(j, iota1));
                let mut r = 0;
                while r < rows {
                    let live = (rows - r).min(ROWS);
                    // Missing rows at the end repeat the last one; their results are dropped.
                    let xp: [*const f32; ROWS] =
                        std::array::from_fn(|i| pts[(r + i.min(live - 1)) * dim..].as_ptr());
                    let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
                    for d in 0..dim {
                        // SAFETY: d < dim, so element d of every point row exists; the panel
                        // holds dim·32 floats from `base`, and this reads d·32 .. d·32 + 32.
                        unsafe {
                            let w0 = _mm512_loadu_ps(base.add(d * W));
                            let w1 = _mm512_loadu_ps(base.add(d * W + 16));
                            for i in 0..ROWS {
                                let x = _mm512_set1_ps(*xp[i].add(d));
                                acc[i][0] = _mm512_fmadd_ps(x, w0, acc[i][0]);
                                acc[i][1] = _mm512_fmadd_ps(x, w1, acc[i][1]);
                            }
                        }
                    }
                    for i in 0..live {
                        for (h, (n, jv)) in [(n0, j0), (n1, j1)].into_iter().enumerate() {
                            // SAFETY: each row's arrays hold 32 values; h·16 + 16 ≤ 32.
                            unsafe {
                                let mp = min[r + i].as_mut_ptr().add(16 * h);
                                let ap = at[r + i].as_mut_ptr().add(16 * h).cast::<__m512i>();
                                let dist = _mm512_sub_ps(n, _mm512_add_ps(acc[i][h], acc[i][h]));
                                let old = _mm512_loadu_ps(mp);
                                // Strictly below: an earlier panel keeps its column on a tie.
                                let lt = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(dist, old);
                                _mm512_storeu_ps(mp, _mm512_mask_blend_ps(lt, old, dist));
                                let olda = _mm512_loadu_si512(ap);
                                _mm512_storeu_si512(ap, _mm512_mask_blend_epi32(lt, olda, jv));
                            }
                        }
                    }
                    r += ROWS;
                }
            }
            for (o, (m, a)) in outs.iter_mut().zip(min.iter().zip(&at)) {
                *o = merge_lanes(m, a);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{merge_lanes, CentroidPanels, W};

    /// Points per step, against half a panel (16 columns, two registers): 8 accumulators.
    const ROWS: usize = 4;

    /// Safe entry point; only handed out by `nearest_impls` after AVX2 and FMA were detected.
    pub(super) fn nearest(points: &[f32], panels: &CentroidPanels, out: &mut [(f32, u32)]) {
        super::check(points, panels, out);
        // SAFETY: `nearest_impls` returns this function only when the CPU reports AVX2 and
        // FMA; the shapes were checked above.
        unsafe { run(points, panels, out) }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA; `points` is whole rows of `panels.dim`, `out` one
    /// per row.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run(points: &[f32], panels: &CentroidPanels, out: &mut [(f32, u32)]) {
        let dim = panels.dim;
        let rows = out.len();
        let iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mut r = 0;
        while r < rows {
            let live = (rows - r).min(ROWS);
            let xp: [*const f32; ROWS] =
                std::array::from_fn(|i| points[(r + i.min(live - 1)) * dim..].as_ptr());
            let mut min = [[f32::INFINITY; W]; ROWS];
            let mut at = [[u32::MAX; W]; ROWS];
            for p in 0..panels.panels() {
                for half in 0..2 {
                    let base = panels.data[p * dim * W + half * 16..].as_ptr();
                    let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
                    for d in 0..dim {
                        // SAFETY: d < dim; the panel holds dim·32 floats from p·dim·32 and
                        // this reads d·32 + 16·half .. + 16 of them.
                        unsafe {
                            let w0 = _mm256_loadu_ps(base.add(d * W));
                            let w1 = _mm256_loadu_ps(base.add(d * W + 8));
                            for i in 0..ROWS {
                                let x = _mm256_broadcast_ss(&*xp[i].add(d));
                                acc[i][0] = _mm256_fmadd_ps(x, w0, acc[i][0]);
                                acc[i][1] = _mm256_fmadd_ps(x, w1, acc[i][1]);
                            }
                        }
                    }
                    for (i, row) in acc.iter().enumerate() {
                        for (v, &a) in row.iter().enumerate() {
                            let lane = half * 16 + v * 8;
                            // SAFETY: `lane + 8 ≤ 32` floats of each row's arrays, and of
                            // the panel's 32 norms from p·32.
                            unsafe {
                                let n = _mm256_loadu_ps(panels.norms.as_ptr().add(p * W + lane));
                                let dist = _mm256_sub_ps(n, _mm256_add_ps(a, a));
                                let mp = min[i].as_mut_ptr().add(lane);
                                let ap = at[i].as_mut_ptr().add(lane).cast::<__m256i>();
                                let old = _mm256_loadu_ps(mp);
                                let lt = _mm256_cmp_ps::<_CMP_LT_OQ>(dist, old);
                                let j = _mm256_add_epi32(
                                    _mm256_set1_epi32((p * W + lane) as i32),
                                    iota,
                                );
                                _mm256_storeu_ps(mp, _mm256_blendv_ps(old, dist, lt));
                                let olda = _mm256_loadu_si256(ap);
                                let keep = _mm256_castps_si256(lt);
                                _mm256_storeu_si256(ap, _mm256_blendv_epi8(olda, j, keep));
                            }
                        }
                    }
                }
            }
            for i in 0..live {
                out[r + i] = merge_lanes(&min[i], &at[i]);
            }
            r += ROWS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_impl_returns_the_reference_bits(
            dim in 1usize..40,
            n in 0usize..100,
            rows in 0usize..20,
            seed in 0u64..1000,
            ties in proptest::bool::ANY,
        ) {
            // With `ties`, values come from a coarse grid so equal distances are common.
            let levels = if ties { 3 } else { 1000 };
            let val = |i: usize| {
                ((i as u64 * 2654435761 + seed) % levels) as f32 / (levels as f32 / 2.0) - 1.0
            };
            let pts: Vec<f32> = (0..rows * dim).map(val).collect();
            let cs: Vec<f32> = (0..n * dim).map(|i| val(i + 7919)).collect();
            let norms: Vec<f32> = cs.chunks_exact(dim).map(|c| c.iter().map(|v| v * v).sum()).collect();
            let panels = CentroidPanels::new(&cs, &norms, dim);
            let mut want = vec![(0f32, 0u32); rows];
            scalar(&pts, &panels, &mut want);
            for (name, f) in nearest_impls() {
                let mut got = vec![(f32::NAN, 7u32); rows];
                f(&pts, &panels, &mut got);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    prop_assert!(g.0.to_bits() == w.0.to_bits() && g.1 == w.1, "{}: row {}: {:?} vs {:?}", name, i, g, w);
                }
            }
        }

        #[test]
        fn the_reference_finds_the_nearest(
            dim in 1usize..8,
            n in 1usize..50,
            rows in 1usize..10,
            seed in 0u64..1000,
        ) {
            let val = |i: usize| ((i as u64 * 2654435761 + seed) % 1000) as f32 / 500.0 - 1.0;
            let pts: Vec<f32> = (0..rows * dim).map(val).collect();
            let cs: Vec<f32> = (0..n * dim).map(|i| val(i + 31)).collect();
            let norms: Vec<f32> = cs.chunks_exact(dim).map(|c| c.iter().map(|v| v * v).sum()).collect();
            let mut got = vec![(0f32, 0u32); rows];
            nearest_in_panels(&pts, &CentroidPanels::new(&cs, &norms, dim), &mut got);
            for (x, &(d, j)) in pts.chunks_exact(dim).zip(&got) {
                let d2 = |c: &[f32]| x.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
                let want = cs.chunks_exact(dim).map(d2).fold(f32::INFINITY, f32::min);
                let xx: f32 = x.iter().map(|v| v * v).sum();
                prop_assert!((d2(&cs[j as usize * dim..][..dim]) - want).abs() < 1e-4);
                prop_assert!((d + xx - want).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn nothing_to_choose_gives_the_sentinel() {
        let empty = CentroidPanels::new(&[], &[], 3);
        let nan = CentroidPanels::new(&[f32::NAN; 3], &[1.0], 3);
        for (name, f) in nearest_impls() {
            for panels in [&empty, &nan] {
                let mut out = [(0.0, 0)];
                f(&[1.0, 2.0, 3.0], panels, &mut out);
                assert_eq!(out[0].1, u32::MAX, "{name}");
                assert_eq!(out[0].0, f32::INFINITY, "{name}");
            }
        }
    }

    #[test]
    fn the_wide_kernels_are_under_test_where_the_cpu_has_them() {
        let names: Vec<&str> = nearest_impls().iter().map(|(n, _)| *n).collect();
        crate::test_support::assert_wide_kernels_listed(&names);
    }

    #[test]
    #[should_panic(expected = "one output per row")]
    fn wrong_output_length_panics() {
        let panels = CentroidPanels::new(&[1.0; 6], &[1.0, 1.0], 3);
        nearest_in_panels(&[1.0; 3], &panels, &mut []);
    }
}
