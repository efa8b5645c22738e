//! `C = A · Bᵀ` in 16-bit fixed point, for a query's tokens (B, few rows) against every
//! centroid (A): twice the multiply-adds per instruction of the `f32` kernel.
//!
//! Each row of A and of B is scaled on its own to whole numbers that fit an `i16`, so a
//! product of two rows is an exact integer sum. AVX2's `vpmaddwd` multiplies 16 pairs of
//! `i16` per instruction and adds neighbours into 8 `i32` lanes, against 8 multiply-adds per
//! `f32` FMA (criterion `query_x_8192_centroids`: 32 tokens × 8,192 centroids, dim 128).
//!
//! **No overflow, by construction.** A row is scaled so that its quantised L2 norm stays
//! below 46,340 (and each value within `i16`). By Cauchy–Schwarz, every partial sum of the
//! products of two such rows, in any order, is below 46,340² < 2³¹, so the `i32` lanes never
//! wrap, and every implementation computes the same integer.
//!
//! **Error.** A value moves by at most half a step when rounded, a step being about
//! `‖row‖ / 46,000` (or the largest value / 32,767, where one value holds most of the norm), so
//! a product of unit rows at dim 128 is within about 1e-5 of the `f32` one (and within
//! [`FixedRows::error_bound`] always): below the float16 rounding of stored centroids, and far
//! below the byte grid approximate scoring puts the scores on.

use std::ops::Range;
use std::sync::OnceLock;

/// The quantised norm every row stays under, less the rounding's slack (see the module
/// documentation): 46,340² is the largest square below 2³¹.
const NORM_LIMIT: f32 = 46_000.0;

/// Largest value of a quantised element.
const VALUE_LIMIT: f32 = i16::MAX as f32;

/// Scales [`FixedWeights::new`] tries.
const SCALE_TRIES: usize = 4096;

/// Rows of `f32` values in 16-bit fixed point, each with its own scale: the A of
/// [`fixed_matmul`] (centroids), quantised once and reused by every query.
#[derive(Debug, Clone)]
pub struct FixedRows {
    k: usize,
    /// `k` rounded up to even: rows are read as pairs of values.
    k_pad: usize,
    data: Vec<i16>,
    /// What a row's integer products are multiplied by to come back to its scale.
    scales: Vec<f32>,
}

/// The B of [`fixed_matmul`] (a query's tokens), quantised like [`FixedRows`] and laid out
/// for the kernel: pairs of dimensions down, tokens across, `n_pad` (a multiple of 16) lanes
/// of two `i16` each per pair.
#[derive(Debug, Clone)]
pub struct FixedB {
    k: usize,
    n: usize,
    n_pad: usize,
    /// `[pair][column]`: dimension `2p` in the low half, `2p + 1` in the high half.
    data: Vec<i32>,
    /// Per column, zero in the padding.
    scales: Vec<f32>,
}

/// Quantises `x` into `out` (as long, or one longer when `x` is odd and the last element is
/// padding) and returns the factor that brings integer products back to scale; 0 for a row
/// of zeros (or without a finite scale).
fn quantize(x: &[f32], out: &mut [i16]) -> f32 {
    let max = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    // The norm in units of the largest value (1 to √k): squaring the values themselves
    // overflows to infinity beyond 1.8e19, which would have quantised a large but finite row
    // to zeros.
    let rel = x.iter().map(|v| (v / max) * (v / max)).sum::<f32>().sqrt();
    // Rounding adds at most half a step per value, √k/2 to the norm.
    let slack = 0.5 * (out.len() as f32).sqrt();
    let scale = VALUE_LIMIT.min((NORM_LIMIT - slack) / rel) / max;
    if !scale.is_finite() || scale <= 0.0 {
        out.fill(0);
        return 0.0;
    }
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v * scale).round() as i16;
    }
    out[x.len()..].fill(0);
    1.0 / scale
}

impl FixedRows {
    /// Quantises `a` (`rows × k`, row-major).
    ///
    /// # Panics
    /// If `k` is 0 or `a` is not whole rows.
    pub fn new(a: &[f32], k: usize) -> Self {
        assert!(k > 0 && a.len().is_multiple_of(k), "A is not whole rows of length k");
        let k_pad = k.div_ceil(2) * 2;
        let rows = a.len() / k;
        let mut data = vec![0i16; rows * k_pad];
        let scales = a
            .chunks_exact(k)
            .zip(data.chunks_exact_mut(k_pad))
            .map(|(row, out)| quantize(row, out))
            .collect();
        Self { k, k_pad, data, scales }
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.scales.len()
    }

    /// Length of each row.
    pub fn k(&self) -> usize {
        self.k
    }

    /// How far [`fixed_matmul`]'s value for row `r` of A and a row of B of L2 norm `b_norm`
    /// can be from the exact product, before the final rounding to `f32`: each row's rounding
    /// moves it by at most `√k_pad / 2` steps.
    pub fn error_bound(&self, r: usize, a_norm: f32, b_norm: f32) -> f32 {
        let half = 0.5 * (self.k_pad as f32).sqrt();
        // B's step is its norm over (NORM_LIMIT − slack), or its largest value over
        // VALUE_LIMIT (at most its norm) where that is coarser; A's is its scale.
        let b_step = b_norm / VALUE_LIMIT.min(NORM_LIMIT - half);
        let a_step = self.scales[r];
        half * a_step * b_norm + half * b_step * a_norm + half * half * a_step * b_step
    }
}

impl FixedB {
    /// Quantises and lays out `b` (`n × k`, row-major).
    ///
    /// # Panics
    /// If `k` is 0 or `b` is not whole rows.
    pub fn new(b: &[f32], k: usize) -> Self {
        assert!(k > 0 && b.len().is_multiple_of(k), "B is not whole rows of length k");
        let n = b.len() / k;
        let n_pad = n.div_ceil(16) * 16;
        let pairs = k.div_ceil(2);
        let mut data = vec![0i32; pairs * n_pad];
        let mut scales = vec![0f32; n_pad];
        let mut row = vec![0i16; pairs * 2];
        for (j, x) in b.chunks_exact(k).enumerate() {
            scales[j] = quantize(x, &mut row);
            for (p, pair) in row.chunks_exact(2).enumerate() {
                data[p * n_pad + j] =
                    (pair[0] as u16 as u32 | (pair[1] as u16 as u32) << 16) as i32;
            }
        }
        Self { k, n, n_pad, data, scales }
    }

    /// Rows of B (columns of the product).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Length of each row of B.
    pub fn k(&self) -> usize {
        self.k
    }

    /// `k` rounded up to even: the length of the `i16` rows it multiplies.
    pub fn k_pad(&self) -> usize {
        self.k.div_ceil(2) * 2
    }

    /// Row `r` of A (`k_pad` values) against column `j`: the exact integer product.
    pub(crate) fn dot(&self, row: &[i16], j: usize) -> i32 {
        let mut acc = 0i32;
        for (p, pair) in row.chunks_exact(2).enumerate() {
            let w = self.data[p * self.n_pad + j];
            let (lo, hi) = (w as i16 as i32, (w >> 16) as i16 as i32);
            // Wrapping as the vector lanes do; it never wraps (module documentation).
            acc = acc.wrapping_add((pair[0] as i32 * lo).wrapping_add(pair[1] as i32 * hi));
        }
        acc
    }

    /// Per column, what its integer products are multiplied by (zero in the padding).
    pub(crate) fn scales(&self) -> &[f32] {
        &self.scales
    }
}

/// The values a residual's fields decode to (its codec's bucket weights) in 16-bit fixed
/// point, on one scale chosen so that any row of `dim` of them stays within the norm that
/// keeps products with a [`FixedB`] from wrapping: stage 4's residuals, decoded to integers
/// (a token's row is `values[field]` per dimension, times `scale`).
#[derive(Debug, Clone)]
pub struct FixedWeights {
    values: Vec<i16>,
    scale: f32,
}

impl FixedWeights {
    /// Quantises `weights` for rows of `dim` values.
    ///
    /// Unlike a query's values, a weight's rounding error is the same wherever it is used,
    /// so it adds up over a token's dimensions instead of averaging out. The scale is
    /// therefore the one, between half the largest allowed and the largest, at which the
    /// weights come closest to whole numbers.
    pub fn new(weights: &[f32], dim: usize) -> Self {
        let max = weights.iter().fold(0f32, |m, v| m.max(v.abs()));
        // A row's norm is at most √dim times its largest value, which rounding may raise by
        // half a step.
        let root = (dim.div_ceil(2) as f32 * 2.0).sqrt();
        let top = (VALUE_LIMIT / max).min((NORM_LIMIT / root - 0.5) / max);
        if !top.is_finite() || top <= 0.0 {
            return Self { values: vec![0; weights.len()], scale: 0.0 };
        }
        // The largest error in the weights' own units at scale `s`.
        let worst = |s: f32| {
            weights.iter().map(|&w| (w * s - (w * s).round()).abs() / s).fold(0f32, f32::max)
        };
        let s = (0..SCALE_TRIES)
            .map(|i| top * (1.0 - 0.5 * i as f32 / SCALE_TRIES as f32))
            .min_by(|&a, &b| worst(a).total_cmp(&worst(b)))
            .unwrap_or(top);
        let values = weights.iter().map(|&w| (w * s).round() as i16).collect();
        Self { values, scale: 1.0 / s }
    }

    /// The quantised weights, in the order given.
    pub fn values(&self) -> &[i16] {
        &self.values
    }

    /// What an integer product with a row of them is multiplied by.
    pub fn scale(&self) -> f32 {
        self.scale
    }
}

type FixedFn = fn(&FixedRows, Range<usize>, &FixedB, &mut [f32]);

/// Every implementation this CPU can run, scalar first, by name (for tests and benches).
pub fn fixed_impls() -> Vec<(&'static str, FixedFn)> {
    let mut v: Vec<(&'static str, FixedFn)> = vec![("scalar", scalar)];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        v.push(("avx2", avx2::fixed));
    }
    v
}

fn best() -> FixedFn {
    static BEST: OnceLock<FixedFn> = OnceLock::new();
    *BEST.get_or_init(|| *fixed_impls().last().map(|(_, f)| f).unwrap_or(&(scalar as FixedFn)))
}

/// Checks the shapes of a product; `(rows, n)`.
fn check(a: &FixedRows, rows: &Range<usize>, b: &FixedB, c: &[f32]) -> (usize, usize) {
    assert_eq!(a.k, b.k, "A and B rows differ in length");
    assert!(rows.start <= rows.end && rows.end <= a.rows(), "rows beyond A");
    let m = rows.end - rows.start;
    assert_eq!(c.len(), m * b.n, "C must be rows × n");
    (m, b.n)
}

/// `c = A[rows] · Bᵀ`: row `i` of `c` (`rows.len() × b.n()`, row-major) holds row
/// `rows.start + i` of A against every row of B, each value the integer product times both
/// rows' scales (the same bits on every CPU).
///
/// # Panics
/// If A and B rows differ in length, `rows` is beyond A or `c` is not `rows.len() × b.n()`.
#[inline]
pub fn fixed_matmul(a: &FixedRows, rows: Range<usize>, b: &FixedB, c: &mut [f32]) {
    check(a, &rows, b, c);
    best()(a, rows, b, c)
}

/// Scalar reference.
fn scalar(a: &FixedRows, rows: Range<usize>, b: &FixedB, c: &mut [f32]) {
    let (_, n) = check(a, &rows, b, c);
    for (r, out) in rows.zip(c.chunks_exact_mut(n.max(1))) {
        let row = &a.data[r * a.k_pad..][..a.k_pad];
        for (j, o) in out.iter_mut().enumerate() {
            *o = b.dot(row, j) as f32 * (a.scales[r] * b.scales[j]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{FixedB, FixedRows};
    use crate::skinny::avx2::{dispatch, lane_masks};

    /// Columns of C per pass: at most 4 registers of 8.
    const COLS: usize = 32;

    /// Safe entry point; only handed out by `fixed_impls` after AVX2 was detected.
    pub(super) fn fixed(a: &FixedRows, rows: Range<usize>, b: &FixedB, c: &mut [f32]) {
        super::check(a, &rows, b, c);
        for col in (0..b.n).step_by(COLS) {
            // Rows of A per step as in the `f32` kernel: about 8 accumulators, so that each
            // panel load feeds several multiply-adds, within the 16 registers.
            // SAFETY: `fixed_impls` returns this function only when the CPU reports AVX2;
            // shapes were checked above; col < n, and col + 8·NV ≤ n rounded up to 8 ≤ n_pad.
            unsafe { dispatch!((b.n - col).div_ceil(8), pass(a, rows.clone(), b, c, col)) }
        }
    }

    /// Columns `col .. col + 8·NV` of C, `ROWS` rows of A at a time (a last, short step
    /// repeats its last row and stores only the rows that exist).
    ///
    /// # Safety
    /// The CPU must support AVX2; shapes as `check` requires; `col + 8·NV ≤ b.n_pad`.
    #[target_feature(enable = "avx2")]
    unsafe fn pass<const NV: usize, const ROWS: usize>(
        a: &FixedRows,
        rows: Range<usize>,
        b: &FixedB,
        c: &mut [f32],
        col: usize,
    ) {
        let (n, kp) = (b.n, a.k_pad);
        let width = (n - col).min(NV * 8);
        let masks = lane_masks::<NV>(width);
        // SAFETY: col + 8·NV ≤ n_pad = scales.len().
        let sb: [__m256; NV] =
            std::array::from_fn(|v| unsafe { _mm256_loadu_ps(b.scales.as_ptr().add(col + 8 * v)) });
        let m = rows.end - rows.start;
        let mut i0 = 0;
        while i0 < m {
            let live = (m - i0).min(ROWS);
            let rs: [usize; ROWS] = std::array::from_fn(|i| rows.start + i0 + i.min(live - 1));
            let ap: [*const i16; ROWS] =
                std::array::from_fn(|i| a.data[rs[i] * kp..][..kp].as_ptr());
            // SAFETY: the caller's guarantees; each pointer starts a row of kp values.
            let acc = unsafe { products::<NV, ROWS>(ap, b, col) };
            for (i, row) in acc.iter().enumerate().take(live) {
                let sa = _mm256_set1_ps(a.scales[rs[i]]);
                let out = c[(i0 + i) * n + col..][..width].as_mut_ptr();
                for (v, &x) in row.iter().enumerate().take(width.div_ceil(8)) {
                    let y = _mm256_mul_ps(_mm256_cvtepi32_ps(x), _mm256_mul_ps(sa, sb[v]));
                    if width >= 8 * (v + 1) {
                        // SAFETY: columns col + 8·v .. + 8 are inside the `width` values at `out`.
                        unsafe { _mm256_storeu_ps(out.add(8 * v), y) };
                    } else {
                        // SAFETY: the mask's lanes are columns col + 8·v .. col + width, inside
                        // the `width` values at `out` (masked-off lanes are not accessed).
                        unsafe { _mm256_maskstore_ps(out.add(8 * v), masks[v], y) };
                    }
                }
            }
            i0 += ROWS;
        }
    }

    /// The integer products of `ROWS` rows (each `b.k_pad()` values at its pointer) with
    /// panel columns `col .. col + 8·NV`, in registers. Shared by the product and by
    /// `fixed_max`, so both compute the same integers.
    ///
    /// # Safety
    /// The CPU must support AVX2; each pointer is valid for `b.k_pad()` reads;
    /// `col + 8·NV ≤ b.n_pad`.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) unsafe fn products<const NV: usize, const ROWS: usize>(
        rows: [*const i16; ROWS],
        b: &FixedB,
        col: usize,
    ) -> [[__m256i; NV]; ROWS] {
        let np = b.n_pad;
        let bp = b.data.as_ptr();
        let mut acc = [[_mm256_setzero_si256(); NV]; ROWS];
        for p in 0..b.k_pad() / 2 {
            // SAFETY: p < k_pad / 2, so pair p of each row exists; the panel reads
            // p·np + col .. p·np + col + 8·NV ≤ (p + 1)·np.
            unsafe {
                let w = bp.add(p * np + col);
                let wv: [__m256i; NV] =
                    std::array::from_fn(|v| _mm256_loadu_si256(w.add(8 * v) as *const __m256i));
                for i in 0..ROWS {
                    let x = _mm256_set1_epi32((rows[i] as *const i32).add(p).read_unaligned());
                    for v in 0..NV {
                        acc[i][v] = _mm256_add_epi32(acc[i][v], _mm256_madd_epi16(x, wv[v]));
                    }
                }
            }
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn norm(x: &[f32]) -> f32 {
        x.iter().map(|v| v * v).sum::<f32>().sqrt()
    }

    proptest! {
        #[test]
        fn every_impl_gives_the_scalar_bits_within_the_error_bound(
            k in 1usize..40,
            n in 1usize..70,
            rows in 0usize..20,
            skip in 0usize..3,
            seed in 0u64..1000,
        ) {
            let val = |i: usize| ((i as u64 * 2654435761 + seed) % 1000) as f32 / 500.0 - 1.0;
            let a: Vec<f32> = (0..rows * k).map(val).collect();
            let b: Vec<f32> = (0..n * k).map(|i| val(i + 7919)).collect();
            let fa = FixedRows::new(&a, k);
            let fb = FixedB::new(&b, k);
            let range = skip.min(rows)..rows;
            let m = range.len();
            let mut want = vec![0f32; m * n];
            scalar(&fa, range.clone(), &fb, &mut want);
            for (name, f) in fixed_impls() {
                let mut got = vec![f32::NAN; m * n];
                f(&fa, range.clone(), &fb, &mut got);
                prop_assert_eq!(&got, &want, "{}", name);
            }
            for (i, r) in range.enumerate() {
                let ar = &a[r * k..][..k];
                for j in 0..n {
                    let br = &b[j * k..][..k];
                    let exact: f64 = ar.iter().zip(br).map(|(&x, &y)| x as f64 * y as f64).sum();
                    let bound = fa.error_bound(r, norm(ar), norm(br)) + 1e-6 * exact.abs() as f32;
                    let got = want[i * n + j];
                    prop_assert!((got as f64 - exact).abs() <= bound as f64,
                        "row {} col {}: {} vs {} (bound {})", r, j, got, exact, bound);
                }
            }
        }
    }

    /// Rows at the extremes: the quantised values reach the norm limit, where a wider
    /// scale would wrap the `i32` sums (all values equal) or an `i16` value (one large
    /// value), and still give the product to within the bound.
    #[test]
    fn extreme_rows_neither_wrap_nor_saturate() {
        for (k, x) in [(512, vec![1.0f32; 512]), (3, vec![0.0, 5.0, 0.0]), (1, vec![-2.0])] {
            let fa = FixedRows::new(&x, k);
            let fb = FixedB::new(&x, k);
            let exact: f32 = x.iter().map(|v| v * v).sum();
            for (name, f) in fixed_impls() {
                let mut c = [0f32];
                f(&fa, 0..1, &fb, &mut c);
                let bound = fa.error_bound(0, norm(&x), norm(&x)) + 1e-6 * exact;
                assert!((c[0] - exact).abs() <= bound, "{name}, k {k}: {} vs {exact}", c[0]);
            }
        }
    }

    /// Rows far from unit length keep their products: values whose squares overflow `f32`
    /// and values near its smallest normal.
    #[test]
    fn large_and_small_rows_keep_their_products() {
        for s in [1e20f32, 1e-20] {
            let a: Vec<f32> = [0.3, -0.5, 0.8, 0.1].iter().map(|v| v * s).collect();
            let b = [0.2f32, 0.4, -0.1, 0.9];
            let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let (fa, fb) = (FixedRows::new(&a, 4), FixedB::new(&b, 4));
            for (name, f) in fixed_impls() {
                let mut c = [0f32];
                f(&fa, 0..1, &fb, &mut c);
                assert!(
                    (c[0] - exact).abs() <= 1e-3 * exact.abs(),
                    "{name}, {s}: {} vs {exact}",
                    c[0]
                );
            }
        }
    }

    #[test]
    fn zero_rows_give_zero() {
        let fa = FixedRows::new(&[0.0; 6], 3);
        let fb = FixedB::new(&[1.0, 2.0, 3.0], 3);
        for (name, f) in fixed_impls() {
            let mut c = [f32::NAN; 2];
            f(&fa, 0..2, &fb, &mut c);
            assert_eq!(c, [0.0, 0.0], "{name}");
        }
    }

    #[test]
    fn the_wide_kernel_is_under_test_where_the_cpu_has_it() {
        let names: Vec<&str> = fixed_impls().iter().map(|(n, _)| *n).collect();
        crate::test_support::assert_avx2_kernel_listed(&names);
    }

    #[test]
    #[should_panic(expected = "rows × n")]
    fn wrong_output_shape_panics() {
        let fa = FixedRows::new(&[1.0; 6], 3);
        let fb = FixedB::new(&[1.0; 3], 3);
        fixed_matmul(&fa, 0..2, &fb, &mut [0.0; 3]);
    }
}
