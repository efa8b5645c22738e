//! Stage 4's inner loop in 16-bit fixed point: a tile of residuals decoded to integers
//! ([`crate::FixedWeights`]) times the query ([`FixedB`]), each product brought back to scale,
//! shifted by its token's centroid scores, scaled by its token's inverse norm and folded into
//! the running MaxSim maxima in registers: [`crate::skinny_max`] at twice the multiply-adds
//! per instruction.
//!
//! Every implementation computes each product as the same integer, then
//! `(p · (tile scale · column scale) + shift) · scale` in `f32`, then the maximum: the same
//! bits on every CPU.

use std::sync::OnceLock;

use crate::maxsim::check_fold;
use crate::{FixedB, Shifts};

/// Rows of `i16` values on one scale: the A of [`fixed_max`] (`rows × b.k_pad()`). For the
/// products not to wrap, each row's L2 norm must stay within the bound
/// [`crate::FixedWeights`] keeps decoded residuals in.
#[derive(Debug, Clone, Copy)]
pub struct FixedTile<'a> {
    /// Rows of `k_pad` values.
    pub rows: &'a [i16],
    /// What an integer product with a row is multiplied by.
    pub scale: f32,
}

type FixedMaxFn = fn(FixedTile<'_>, &FixedB, Shifts<'_>, Option<&[f32]>, &mut [f32]);

/// Every implementation this CPU can run, the scalar reference first, by name.
pub fn fixed_max_impls() -> Vec<(&'static str, FixedMaxFn)> {
    let mut v: Vec<(&'static str, FixedMaxFn)> = vec![("scalar", scalar)];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        v.push(("avx2", avx2::fixed_max));
    }
    v
}

/// For each row `t` of `a` and column `j` of `b`: `best[j] = max(best[j], (a_t · b_j ·
/// a.scale · s_j + shifts.table[ids[t]·n + j]) · scale[t])`, `s_j` column `j`'s scale, with a
/// scale of 1 (no multiplication) when `scale` is `None`.
///
/// # Panics
/// If `a.rows` is not whole rows of `b.k_pad()`, `ids` (and `scale`) do not hold one value
/// per row, an id names a row past `table`, or `best` does not hold `b.n()` values.
#[inline]
pub fn fixed_max(
    a: FixedTile<'_>,
    b: &FixedB,
    shifts: Shifts<'_>,
    scale: Option<&[f32]>,
    best: &mut [f32],
) {
    static BEST: OnceLock<FixedMaxFn> = OnceLock::new();
    BEST.get_or_init(|| *fixed_max_impls().last().map(|(_, f)| f).expect("scalar"))(
        a, b, shifts, scale, best,
    )
}

/// The shape checks every implementation makes; returns the number of rows.
fn check(
    a: FixedTile<'_>,
    b: &FixedB,
    shifts: Shifts<'_>,
    scale: Option<&[f32]>,
    best: &[f32],
) -> usize {
    let kp = b.k_pad();
    assert!(a.rows.len().is_multiple_of(kp), "fixed_max: A is not whole rows of length k_pad");
    let rows = a.rows.len() / kp;
    check_fold("fixed_max", rows, b.n(), shifts, scale, best);
    rows
}

/// Scalar reference.
fn scalar(
    a: FixedTile<'_>,
    b: &FixedB,
    shifts: Shifts<'_>,
    scale: Option<&[f32]>,
    best: &mut [f32],
) {
    check(a, b, shifts, scale, best);
    let n = b.n();
    for (t, row) in a.rows.chunks_exact(b.k_pad()).enumerate() {
        let shift = &shifts.table[shifts.ids[t] as usize * n..][..n];
        for (j, m) in best.iter_mut().enumerate() {
            let p = b.dot(row, j) as f32 * (a.scale * b.scales()[j]);
            let mut x = p + shift[j];
            if let Some(scale) = scale {
                x *= scale[t];
            }
            *m = m.max(x);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::FixedTile;
    use crate::fixed::avx2::products;
    use crate::skinny::avx2::{dispatch, lane_masks};
    use crate::{FixedB, Shifts};

    /// Safe entry point; handed out by `fixed_max_impls` only after AVX2 was detected.
    pub(super) fn fixed_max(
        a: FixedTile<'_>,
        b: &FixedB,
        shifts: Shifts<'_>,
        scale: Option<&[f32]>,
        best: &mut [f32],
    ) {
        super::check(a, b, shifts, scale, best);
        for col in (0..b.n()).step_by(32) {
            // SAFETY: the CPU has AVX2; `check` found A whole rows, one shift id (in the
            // table) and scale per row, `best` b.n() long; col < n and col + 8·NV ≤ n rounded
            // up to 8 ≤ n_pad.
            unsafe { dispatch!((b.n() - col).div_ceil(8), pass(a, b, shifts, scale, best, col)) }
        }
    }

    /// Columns `col..col + 8·NV`: the products of `ROWS` rows at a time in registers, then
    /// scale, shift, scale and maximum there; `best` is read and written once per pass.
    ///
    /// # Safety
    /// The CPU must support AVX2; the shapes as `check` requires; `col + 8·NV ≤ n_pad`.
    #[target_feature(enable = "avx2")]
    unsafe fn pass<const NV: usize, const ROWS: usize>(
        a: FixedTile<'_>,
        b: &FixedB,
        shifts: Shifts<'_>,
        scale: Option<&[f32]>,
        best: &mut [f32],
        col: usize,
    ) {
        let (kp, n) = (b.k_pad(), b.n());
        let rows = a.rows.len() / kp;
        let width = (n - col).min(NV * 8);
        let masks = lane_masks::<NV>(width);
        let bestp = best[col..col + width].as_mut_ptr();
        let ta = _mm256_set1_ps(a.scale);
        // SAFETY: col + 8·NV ≤ n_pad, the length of the column scales.
        let cs: [__m256; NV] = std::array::from_fn(|v| unsafe {
            _mm256_mul_ps(ta, _mm256_loadu_ps(b.scales().as_ptr().add(col + 8 * v)))
        });
        // Lanes past `width` are padding: they start at −∞ (never stored) and load no shift.
        let mut m: [__m256; NV] = std::array::from_fn(|v| {
            let init = _mm256_set1_ps(f32::NEG_INFINITY);
            // SAFETY: the mask covers lanes col + 8·v .. col + width of `best`; masked-off
            // lanes are not accessed.
            let x = unsafe { _mm256_maskload_ps(bestp.add(8 * v), masks[v]) };
            _mm256_blendv_ps(init, x, _mm256_castsi256_ps(masks[v]))
        });
        let mut r = 0;
        while r < rows {
            let live = (rows - r).min(ROWS);
            let ap: [*const i16; ROWS] =
                std::array::from_fn(|i| a.rows[(r + i.min(live - 1)) * kp..][..kp].as_ptr());
            // SAFETY: the caller's guarantees; each pointer starts a row of kp values.
            let acc = unsafe { products::<NV, ROWS>(ap, b, col) };
            for (i, row) in acc.iter().enumerate().take(live) {
                let t = r + i;
                let sp = shifts.table[shifts.ids[t] as usize * n + col..][..width].as_ptr();
                for v in 0..NV {
                    // SAFETY: the mask covers lanes col + 8·v .. col + width of the row;
                    // masked-off lanes are not accessed.
                    let s = unsafe { _mm256_maskload_ps(sp.add(8 * v), masks[v]) };
                    let p = _mm256_mul_ps(_mm256_cvtepi32_ps(row[v]), cs[v]);
                    let mut x = _mm256_add_ps(p, s);
                    if let Some(scale) = scale {
                        x = _mm256_mul_ps(x, _mm256_set1_ps(scale[t]));
                    }
                    m[v] = _mm256_max_ps(m[v], x);
                }
            }
            r += ROWS;
        }
        for v in 0..NV {
            // SAFETY: as for the load.
            unsafe { _mm256_maskstore_ps(bestp.add(8 * v), masks[v], m[v]) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FixedWeights;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_impl_gives_the_scalar_bits_within_the_error(
            k in 1usize..40,
            n in 1usize..70,
            rows in 0usize..20,
            table_rows in 1usize..6,
            scaled in any::<bool>(),
            nbits in prop::sample::select(vec![1u32, 2, 4]),
            seed in 0u64..1000,
        ) {
            let val = |i: usize| ((i as u64 * 2654435761 + seed) % 1000) as f32 / 500.0 - 1.0;
            let weights: Vec<f32> = (0..1usize << nbits).map(|i| val(i + 17) * 0.3).collect();
            let fields: Vec<usize> = (0..rows * k).map(|i| (val(i) .abs() * 1000.0) as usize % weights.len()).collect();
            let b: Vec<f32> = (0..n * k).map(|i| val(i + 7919)).collect();
            let table: Vec<f32> = (0..table_rows * n).map(|i| val(i + 104729)).collect();
            let ids: Vec<u32> = (0..rows).map(|t| ((t * 7 + seed as usize) % table_rows) as u32).collect();
            let scale: Vec<f32> = (0..rows).map(|t| 0.5 + val(t + 31).abs()).collect();
            let scale = scaled.then_some(&scale[..]);
            let fw = FixedWeights::new(&weights, k);
            let fb = FixedB::new(&b, k);
            let kp = fb.k_pad();
            let mut tile = vec![0i16; rows * kp];
            for t in 0..rows {
                for d in 0..k {
                    tile[t * kp + d] = fw.values()[fields[t * k + d]];
                }
            }
            let a = FixedTile { rows: &tile, scale: fw.scale() };
            let shifts = Shifts { table: &table, ids: &ids };
            let start: Vec<f32> = (0..n).map(|j| val(j + 3) * 3.0).collect();
            let mut want = start.clone();
            scalar(a, &fb, shifts, scale, &mut want);
            // The reference against `f32` arithmetic on the unquantised weights: within the
            // quantisation of both sides (a step is at most a row's norm over 4,000 here).
            for (j, &w) in want.iter().enumerate() {
                let mut m = start[j];
                let bn: f32 = b[j * k..][..k].iter().map(|v| v * v).sum::<f32>().sqrt();
                for t in 0..rows {
                    let dot: f32 = (0..k).map(|d| weights[fields[t * k + d]] * b[j * k + d]).sum();
                    let v = (dot + table[ids[t] as usize * n + j]) * scale.map_or(1.0, |s| s[t]);
                    m = m.max(v);
                }
                let tol = 2e-3 * (1.0 + bn) * (k as f32).sqrt() * 1.5;
                prop_assert!((w - m).abs() <= tol, "[{}] {} vs {} (tolerance {})", j, w, m, tol);
            }
            for (name, f) in fixed_max_impls() {
                let mut got = start.clone();
                f(a, &fb, shifts, scale, &mut got);
                prop_assert_eq!(&got, &want, "{}", name);
            }
        }
    }

    /// Residual rows at the bound: every field at the largest weight, at a dimension where
    /// a scale chosen for the values alone would wrap the `i32` sums.
    #[test]
    fn the_largest_residual_rows_do_not_wrap() {
        let k = 1024;
        let fw = FixedWeights::new(&[-1.0, 1.0], k);
        let q = vec![1.0f32; k];
        let fb = FixedB::new(&q, k);
        let tile = vec![fw.values()[1]; k];
        let a = FixedTile { rows: &tile, scale: fw.scale() };
        let table = [0.0f32];
        for (name, f) in fixed_max_impls() {
            let mut best = [f32::NEG_INFINITY];
            f(a, &fb, Shifts { table: &table, ids: &[0] }, None, &mut best);
            assert!((best[0] - k as f32).abs() <= 1e-3 * k as f32, "{name}: {}", best[0]);
        }
    }

    #[test]
    fn the_wide_kernel_is_under_test_where_the_cpu_has_it() {
        let names: Vec<&str> = fixed_max_impls().iter().map(|(n, _)| *n).collect();
        crate::test_support::assert_avx2_kernel_listed(&names);
    }
}
