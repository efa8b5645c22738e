//! Stage 4's inner loop fused: a tile of decoded residuals times the query, each product
//! shifted by its token's centroid scores, scaled by its token's inverse norm, and folded into
//! the running MaxSim maxima while still in registers. Unfused, the products were written
//! out and read back by a second pass (a tenth of a light search).
//!
//! Every implementation computes each product as [`crate::skinny_matmul`] does (one fused
//! multiply-add chain over the dimensions, ascending), then `(p + shift) · scale`, then the
//! maximum: the same bits as the unfused steps, on every CPU.

use std::sync::OnceLock;

use crate::SkinnyB;

type SkinnyMaxFn = fn(&[f32], &SkinnyB, Shifts<'_>, Option<&[f32]>, &mut [f32]);

/// Per-row shifts of [`skinny_max`]: row `t` of the product is shifted by row `ids[t]` of
/// `table` (`n` values per row, `n` the product's columns).
#[derive(Debug, Clone, Copy)]
pub struct Shifts<'a> {
    /// Rows of `n` values.
    pub table: &'a [f32],
    /// One row of `table` per row of A.
    pub ids: &'a [u32],
}

/// Every implementation this CPU can run, the scalar reference first, by name. "unfused" is
/// [`crate::skinny_matmul`] then a plain loop, the choice where no fused kernel applies.
pub fn skinny_max_impls() -> Vec<(&'static str, SkinnyMaxFn)> {
    let mut v: Vec<(&'static str, SkinnyMaxFn)> =
        vec![("scalar", crate::maxsim::skinny_max_ref), ("unfused", unfused)];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        v.push(("avx2", avx2::skinny_max));
        if std::arch::is_x86_feature_detected!("avx512f") {
            v.push(("avx512", avx512::skinny_max));
        }
    }
    v
}

/// For each row `t` of `a` (`rows × k`) and column `j` of the product with `b`:
/// `best[j] = max(best[j], (a_t · b_j + shifts.table[ids[t]·n + j]) · scale[t])`, with a scale
/// of 1 (no multiplication) when `scale` is `None`.
///
/// # Panics
/// If `a` is not whole rows of `b.k()`, `ids` (and `scale`) do not hold one value per row, an
/// id names a row past `table`, or `best` does not hold `b.n()` values.
#[inline]
pub fn skinny_max(
    a: &[f32],
    b: &SkinnyB,
    shifts: Shifts<'_>,
    scale: Option<&[f32]>,
    best: &mut [f32],
) {
    static BEST: OnceLock<SkinnyMaxFn> = OnceLock::new();
    BEST.get_or_init(|| *skinny_max_impls().last().map(|(_, f)| f).expect("scalar"))(
        a, b, shifts, scale, best,
    )
}

/// The shape checks every implementation makes; returns the number of rows.
pub(crate) fn check(
    a: &[f32],
    b: &SkinnyB,
    shifts: Shifts<'_>,
    scale: Option<&[f32]>,
    best: &[f32],
) -> usize {
    assert!(a.len().is_multiple_of(b.k), "skinny_max: A is not whole rows of length k");
    let rows = a.len() / b.k;
    check_fold("skinny_max", rows, b.n, shifts, scale, best);
    rows
}

/// The checks of folding `rows` rows of `n` products into `best` (shared with `lut_max`):
/// one shift row (inside the table) and scale per row, one maximum per column.
pub(crate) fn check_fold(
    kernel: &str,
    rows: usize,
    n: usize,
    shifts: Shifts<'_>,
    scale: Option<&[f32]>,
    best: &[f32],
) {
    assert_eq!(shifts.ids.len(), rows, "{kernel}: one shift row per row");
    assert!(scale.is_none_or(|s| s.len() == rows), "{kernel}: one scale per row");
    assert_eq!(best.len(), n, "{kernel}: one maximum per column");
    let n_rows = shifts.table.len().checked_div(n).unwrap_or(0);
    assert!(
        shifts.ids.iter().all(|&id| (id as usize) < n_rows),
        "{kernel}: a shift row past the table"
    );
}

/// The product, then the shift, scale and maximum in a plain loop.
fn unfused(a: &[f32], b: &SkinnyB, shifts: Shifts<'_>, scale: Option<&[f32]>, best: &mut [f32]) {
    let rows = check(a, b, shifts, scale, best);
    let n = b.n;
    let mut prod = vec![0f32; rows * n];
    crate::skinny_matmul(a, b, &mut prod);
    fold_rows(&mut prod, n, shifts, scale, best);
}

/// `best[j] = max(best[j], (p[t][j] + shift) · scale)` over the rows of `prod`.
pub(crate) fn fold_rows(
    prod: &mut [f32],
    n: usize,
    shifts: Shifts<'_>,
    scale: Option<&[f32]>,
    best: &mut [f32],
) {
    for (t, row) in prod.chunks_exact_mut(n.max(1)).enumerate() {
        let add = &shifts.table[shifts.ids[t] as usize * n..][..n];
        for (p, &s) in row.iter_mut().zip(add) {
            *p += s;
        }
        if let Some(scale) = scale {
            let f = scale[t];
            row.iter_mut().for_each(|p| *p *= f);
        }
        crate::max_assign(best, row);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::Shifts;
    use crate::skinny::avx2::{dispatch, lane_masks, products};
    use crate::SkinnyB;

    /// Safe entry point; handed out by `skinny_max_impls` only after AVX2 and FMA were
    /// detected.
    pub(super) fn skinny_max(
        a: &[f32],
        b: &SkinnyB,
        shifts: Shifts<'_>,
        scale: Option<&[f32]>,
        best: &mut [f32],
    ) {
        super::check(a, b, shifts, scale, best);
        // Registers cover the columns that exist, not the panel's padding to 16 (a query of
        // 20 tokens takes 3 registers, not 4).
        for col in (0..b.n).step_by(32) {
            // SAFETY: the CPU has AVX2 and FMA; `check` found A whole rows, one shift id (in
            // the table) and scale per row, `best` b.n long; col < n and
            // col + 8·NV ≤ n rounded up to 8 ≤ n_pad.
            unsafe { dispatch!((b.n - col).div_ceil(8), pass(a, b, shifts, scale, best, col)) }
        }
    }

    /// Columns `col..col + 8·NV`: the products of `ROWS` rows at a time in registers, then
    /// shift, scale and maximum there; `best` is read and written once per pass.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; the shapes as `check` requires;
    /// `col + 8·NV ≤ n_pad`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn pass<const NV: usize, const ROWS: usize>(
        a: &[f32],
        b: &SkinnyB,
        shifts: Shifts<'_>,
        scale: Option<&[f32]>,
        best: &mut [f32],
        col: usize,
    ) {
        let (k, n) = (b.k, b.n);
        let rows = a.len() / k;
        let width = (n - col).min(NV * 8);
        let masks = lane_masks::<NV>(width);
        let bestp = best[col..col + width].as_mut_ptr();
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
            // SAFETY: the caller's guarantees; r < rows and live as `products` requires.
            let acc = unsafe { products::<NV, ROWS>(a, b, r, live, col) };
            for (i, row) in acc.iter().enumerate().take(live) {
                let t = r + i;
                let sp = shifts.table[shifts.ids[t] as usize * n + col..][..width].as_ptr();
                for v in 0..NV {
                    // SAFETY: the mask covers lanes col + 8·v .. col + width of the row;
                    // masked-off lanes are not accessed.
                    let s = unsafe { _mm256_maskload_ps(sp.add(8 * v), masks[v]) };
                    let mut x = _mm256_add_ps(row[v], s);
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

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::Shifts;
    use crate::skinny::avx512::{lane_masks, products, ROWS};
    use crate::SkinnyB;

    /// Safe entry point; handed out by `skinny_max_impls` only after AVX-512F was detected.
    pub(super) fn skinny_max(
        a: &[f32],
        b: &SkinnyB,
        shifts: Shifts<'_>,
        scale: Option<&[f32]>,
        best: &mut [f32],
    ) {
        super::check(a, b, shifts, scale, best);
        assert!(b.n_pad.is_multiple_of(16));
        for col in (0..b.n_pad).step_by(32) {
            // SAFETY: the CPU has AVX-512F; `check` found A whole rows, one shift id (in the
            // table) and scale per row, `best` b.n long; col < n_pad, a multiple of 16.
            unsafe {
                if b.n_pad - col >= 32 {
                    pass::<2>(a, b, shifts, scale, best, col)
                } else {
                    pass::<1>(a, b, shifts, scale, best, col)
                }
            }
        }
    }

    /// Columns `col..col + 16·NV`: the products of `ROWS` rows at a time in registers, then
    /// shift, scale and maximum there; `best` is read and written once per pass.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; the shapes as `check` requires; `col + 16·NV ≤ n_pad`.
    #[target_feature(enable = "avx512f")]
    unsafe fn pass<const NV: usize>(
        a: &[f32],
        b: &SkinnyB,
        shifts: Shifts<'_>,
        scale: Option<&[f32]>,
        best: &mut [f32],
        col: usize,
    ) {
        let (k, n) = (b.k, b.n);
        let rows = a.len() / k;
        let width = (n - col).min(NV * 16);
        let masks = lane_masks::<NV>(width);
        let bestp = best[col..col + width].as_mut_ptr();
        let mut m: [__m512; NV] = std::array::from_fn(|v| {
            let init = _mm512_set1_ps(f32::NEG_INFINITY);
            // SAFETY: the mask covers lanes col + 16·v .. col + width of `best`.
            unsafe { _mm512_mask_loadu_ps(init, masks[v], bestp.add(16 * v)) }
        });
        let mut r = 0;
        while r < rows {
            let live = (rows - r).min(ROWS);
            // SAFETY: the caller's guarantees; r < rows and live as `products` requires.
            let acc = unsafe { products::<NV>(a, b, r, live, col) };
            for (i, row) in acc.iter().enumerate().take(live) {
                let t = r + i;
                let sp = shifts.table[shifts.ids[t] as usize * n + col..][..width].as_ptr();
                for v in 0..NV {
                    // SAFETY: the mask covers lanes col + 16·v .. col + width of the row.
                    let s = unsafe { _mm512_maskz_loadu_ps(masks[v], sp.add(16 * v)) };
                    let mut x = _mm512_add_ps(row[v], s);
                    if let Some(scale) = scale {
                        x = _mm512_mul_ps(x, _mm512_set1_ps(scale[t]));
                    }
                    m[v] = _mm512_max_ps(m[v], x);
                }
            }
            r += ROWS;
        }
        for v in 0..NV {
            // SAFETY: as for the load.
            unsafe { _mm512_mask_storeu_ps(bestp.add(16 * v), masks[v], m[v]) };
        }
    }
}

/// The fused MaxSim tile, one step at a time: each row's products in the summation order of
/// [`crate::skinny_matmul`] (one fused multiply-add chain over the dimensions), then shift,
/// scale and maximum.
///
/// # Panics
/// As [`crate::skinny_max`].
pub fn skinny_max_ref(
    a: &[f32],
    b: &crate::SkinnyB,
    shifts: crate::Shifts<'_>,
    scale: Option<&[f32]>,
    best: &mut [f32],
) {
    let rows = check(a, b, shifts, scale, best);
    let mut prod = vec![0f32; rows * b.n];
    crate::skinny::scalar(a, b, &mut prod);
    fold_rows(&mut prod, b.n, shifts, scale, best);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_impl_gives_the_scalar_bits(
            k in 1usize..40,
            n in 1usize..70,
            rows in 0usize..20,
            table_rows in 1usize..6,
            scaled in any::<bool>(),
            seed in 0u64..1000,
        ) {
            let val = |i: usize| ((i as u64 * 2654435761 + seed) % 1000) as f32 / 500.0 - 1.0;
            let a: Vec<f32> = (0..rows * k).map(val).collect();
            let b: Vec<f32> = (0..n * k).map(|i| val(i + 7919)).collect();
            let table: Vec<f32> = (0..table_rows * n).map(|i| val(i + 104729)).collect();
            let ids: Vec<u32> = (0..rows).map(|t| ((t * 7 + seed as usize) % table_rows) as u32).collect();
            let scale: Vec<f32> = (0..rows).map(|t| 0.5 + val(t + 31) .abs()).collect();
            let scale = scaled.then_some(&scale[..]);
            let sb = SkinnyB::new(&b, k);
            let shifts = Shifts { table: &table, ids: &ids };
            let start: Vec<f32> = (0..n).map(|j| val(j + 3) * 3.0).collect();
            let mut want = start.clone();
            crate::maxsim::skinny_max_ref(&a, &sb, shifts, scale, &mut want);
            // The reference against the definition (within rounding: the definition sums in
            // another order).
            for (j, &w) in want.iter().enumerate() {
                let mut m = start[j];
                for t in 0..rows {
                    let dot: f32 = (0..k).map(|d| a[t * k + d] * b[j * k + d]).sum();
                    let v = (dot + table[ids[t] as usize * n + j]) * scale.map_or(1.0, |s| s[t]);
                    m = m.max(v);
                }
                prop_assert!((w - m).abs() <= 1e-4 * (1.0 + m.abs()), "[{}] {} vs {}", j, w, m);
            }
            for (name, f) in skinny_max_impls() {
                let mut got = start.clone();
                f(&a, &sb, shifts, scale, &mut got);
                prop_assert_eq!(&got, &want, "{}", name);
            }
        }
    }

    #[test]
    fn the_wide_kernel_is_under_test_where_the_cpu_has_it() {
        #[cfg(target_arch = "x86_64")]
        {
            let names: Vec<_> = skinny_max_impls().into_iter().map(|(n, _)| n).collect();
            crate::test_support::assert_wide_kernels_listed(&names);
        }
    }

    #[test]
    #[should_panic(expected = "past the table")]
    fn a_shift_row_past_the_table_panics() {
        let b = SkinnyB::new(&[1.0; 6], 3);
        let shifts = Shifts { table: &[0.0; 4], ids: &[2] };
        skinny_max(&[1.0; 3], &b, shifts, None, &mut [0.0; 2]);
    }
}
