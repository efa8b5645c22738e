//! Scores quantised to bytes: the table approximate scoring gathers rows from (one row per
//! centroid, one byte per query token), built once per query from its centroid scores. At
//! K = 8,192 and 32 query tokens that is 262,144 values per query: the scalar loop spent
//! about a tenth of a light search there.

use std::sync::OnceLock;

type QuantizeFn = fn(&[f32], usize, Grid, &mut [u8], &mut [f32]);
type MinMaxFn = fn(&[f32]) -> (f32, f32);

/// A byte grid: score `s` maps to `round_half_up(clamp(s / step + zero, 0, 255))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// Score per byte step (positive).
    pub step: f32,
    /// The (whole) number of steps that stands for a score of 0.
    pub zero: f32,
}

/// Every implementation of [`quantize_rows`] this CPU can run, the scalar reference first.
pub fn quantize_impls() -> Vec<(&'static str, QuantizeFn)> {
    let mut v: Vec<(&'static str, QuantizeFn)> = vec![("scalar", crate::quant::quantize_rows_ref)];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        v.push(("avx2", avx2::quantize_rows));
        if std::arch::is_x86_feature_detected!("avx512f") {
            v.push(("avx512", avx512::quantize_rows));
        }
    }
    v
}

/// Every implementation of [`min_max`] this CPU can run, the scalar reference first.
pub fn min_max_impls() -> Vec<(&'static str, MinMaxFn)> {
    let mut v: Vec<(&'static str, MinMaxFn)> = vec![("scalar", crate::quant::min_max_ref)];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        v.push(("avx2", avx2::min_max));
    }
    v
}

/// The smallest and the largest of `values` (`(+∞, −∞)` when there are none): the range a
/// [`Grid`] must span. For values without NaN; with one, the result depends on the CPU.
#[inline]
pub fn min_max(values: &[f32]) -> (f32, f32) {
    static BEST: OnceLock<MinMaxFn> = OnceLock::new();
    BEST.get_or_init(|| *min_max_impls().last().map(|(_, f)| f).expect("scalar"))(values)
}

/// Quantises rows of `n` finite scores (`scores.len() / n` rows) onto `grid`: row `r` goes
/// to `out[r·w .. r·w + n]` where `w = out.len() / rows` (the bytes from `n` to `w` are left
/// as they are, padding), and its largest score to `maxes[r]`.
///
/// # Panics
/// If `n` is 0, `scores` is not whole rows, `maxes` does not hold one value per row, or
/// `out` does not hold rows of at least `n` bytes.
#[inline]
pub fn quantize_rows(scores: &[f32], n: usize, grid: Grid, out: &mut [u8], maxes: &mut [f32]) {
    static BEST: OnceLock<QuantizeFn> = OnceLock::new();
    BEST.get_or_init(|| *quantize_impls().last().map(|(_, f)| f).expect("scalar"))(
        scores, n, grid, out, maxes,
    )
}

/// The shape checks every implementation makes; returns the output row width.
pub(crate) fn check(scores: &[f32], n: usize, out: &[u8], maxes: &[f32]) -> usize {
    assert!(n > 0 && scores.len().is_multiple_of(n), "quantize_rows: rows of {n} scores");
    let rows = scores.len() / n;
    assert_eq!(maxes.len(), rows, "quantize_rows: one maximum per row");
    let w = out.len().checked_div(rows).unwrap_or(n);
    assert!(w >= n && out.len() == w * rows, "quantize_rows: output rows of {n} bytes");
    w
}

/// One score on the grid, as every implementation computes it.
#[inline]
pub(crate) fn to_byte(s: f32, grid: Grid) -> u8 {
    // Rounds half up: the value is in 0.5..=255.5 after the clamp, so truncation gives
    // 0..=255.
    ((s / grid.step + grid.zero).clamp(0.0, 255.0) + 0.5) as i32 as u8
}

/// A row's values (those past a kernel's last whole register), one at a time, onto `out`;
/// returns the row's maximum given the maximum `max` of the values before.
pub(crate) fn finish_row(tail: &[f32], out: &mut [u8], grid: Grid, mut max: f32) -> f32 {
    for (b, &s) in out.iter_mut().zip(tail) {
        *b = to_byte(s, grid);
        max = if s > max { s } else { max };
    }
    max
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Grid;
    use std::arch::x86_64::*;

    /// Safe entry point; handed out by `min_max_impls` only after AVX2 was detected.
    pub(super) fn min_max(values: &[f32]) -> (f32, f32) {
        // SAFETY: the CPU has AVX2 (which implies the AVX this uses).
        unsafe { min_max_avx(values) }
    }

    /// Four independent pairs of running extremes, 8 lanes each: one scalar chain waits on
    /// every comparison in turn (a query's 262,144 centroid scores at K = 8,192).
    ///
    /// # Safety
    /// The CPU must support AVX.
    #[target_feature(enable = "avx")]
    unsafe fn min_max_avx(values: &[f32]) -> (f32, f32) {
        let mut lo = [_mm256_set1_ps(f32::INFINITY); 4];
        let mut hi = [_mm256_set1_ps(f32::NEG_INFINITY); 4];
        let mut blocks = values.chunks_exact(32);
        for b in &mut blocks {
            for i in 0..4 {
                // SAFETY: the block holds 32 values.
                let v = unsafe { _mm256_loadu_ps(b.as_ptr().add(8 * i)) };
                lo[i] = _mm256_min_ps(lo[i], v);
                hi[i] = _mm256_max_ps(hi[i], v);
            }
        }
        let (mut l, mut h) = ([0f32; 8], [0f32; 8]);
        // SAFETY: the arrays hold one 256-bit vector each.
        unsafe {
            _mm256_storeu_ps(
                l.as_mut_ptr(),
                _mm256_min_ps(_mm256_min_ps(lo[0], lo[1]), _mm256_min_ps(lo[2], lo[3])),
            );
            _mm256_storeu_ps(
                h.as_mut_ptr(),
                _mm256_max_ps(_mm256_max_ps(hi[0], hi[1]), _mm256_max_ps(hi[2], hi[3])),
            );
        }
        crate::quant::min_max_from(l.into_iter().zip(h), blocks.remainder())
    }

    /// Safe entry point; handed out by `quantize_impls` only after AVX2 was detected.
    pub(super) fn quantize_rows(
        scores: &[f32],
        n: usize,
        grid: Grid,
        out: &mut [u8],
        maxes: &mut [f32],
    ) {
        let w = super::check(scores, n, out, maxes);
        // SAFETY: the CPU has AVX2; `check` found `scores` made of rows of `n`, `out` of rows
        // of `w ≥ n` bytes, one maximum per row.
        unsafe { quantize_avx2(scores, n, w, grid, out, maxes) }
    }

    /// # Safety
    /// The CPU must support AVX2; the shapes must be as `check` requires.
    #[target_feature(enable = "avx2")]
    unsafe fn quantize_avx2(
        scores: &[f32],
        n: usize,
        w: usize,
        grid: Grid,
        out: &mut [u8],
        maxes: &mut [f32],
    ) {
        let step = _mm256_set1_ps(grid.step);
        let zero = _mm256_set1_ps(grid.zero);
        let (lo, hi, half) = (_mm256_setzero_ps(), _mm256_set1_ps(255.0), _mm256_set1_ps(0.5));
        let whole = n / 8 * 8;
        for ((row, o), m) in scores.chunks_exact(n).zip(out.chunks_exact_mut(w)).zip(maxes) {
            let mut best = _mm256_set1_ps(f32::NEG_INFINITY);
            let mut j = 0;
            while j < whole {
                // SAFETY: j + 8 <= whole <= n = row.len().
                let s = unsafe { _mm256_loadu_ps(row.as_ptr().add(j)) };
                best = _mm256_max_ps(best, s);
                let x = _mm256_add_ps(_mm256_div_ps(s, step), zero);
                let x = _mm256_add_ps(_mm256_min_ps(_mm256_max_ps(x, lo), hi), half);
                // 0..=255 after the clamp, so the two narrowing packs do not saturate.
                let i = _mm256_cvttps_epi32(x);
                let words =
                    _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
                let b = _mm_packus_epi16(words, words);
                // SAFETY: j + 8 <= n <= w = o.len().
                unsafe { _mm_storel_epi64(o.as_mut_ptr().add(j).cast(), b) };
                j += 8;
            }
            let mut lanes = [0f32; 8];
            // SAFETY: the array holds one 256-bit vector.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), best) };
            let m_row = lanes.into_iter().fold(f32::NEG_INFINITY, f32::max);
            *m = super::finish_row(&row[whole..], &mut o[whole..n], grid, m_row);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Grid;
    use std::arch::x86_64::*;

    /// Safe entry point; handed out by `quantize_impls` only after AVX-512F was detected.
    pub(super) fn quantize_rows(
        scores: &[f32],
        n: usize,
        grid: Grid,
        out: &mut [u8],
        maxes: &mut [f32],
    ) {
        let w = super::check(scores, n, out, maxes);
        // SAFETY: the CPU has AVX-512F; `check` found `scores` made of rows of `n`, `out` of
        // rows of `w ≥ n` bytes, one maximum per row.
        unsafe { quantize_avx512(scores, n, w, grid, out, maxes) }
    }

    /// # Safety
    /// The CPU must support AVX-512F; the shapes must be as `check` requires.
    #[target_feature(enable = "avx512f")]
    unsafe fn quantize_avx512(
        scores: &[f32],
        n: usize,
        w: usize,
        grid: Grid,
        out: &mut [u8],
        maxes: &mut [f32],
    ) {
        let step = _mm512_set1_ps(grid.step);
        let zero = _mm512_set1_ps(grid.zero);
        let (lo, hi, half) = (_mm512_setzero_ps(), _mm512_set1_ps(255.0), _mm512_set1_ps(0.5));
        let whole = n / 16 * 16;
        for ((row, o), m) in scores.chunks_exact(n).zip(out.chunks_exact_mut(w)).zip(maxes) {
            let mut best = _mm512_set1_ps(f32::NEG_INFINITY);
            let mut j = 0;
            while j < whole {
                // SAFETY: j + 16 <= whole <= n = row.len().
                let s = unsafe { _mm512_loadu_ps(row.as_ptr().add(j)) };
                best = _mm512_max_ps(best, s);
                let x = _mm512_add_ps(_mm512_div_ps(s, step), zero);
                let x = _mm512_add_ps(_mm512_min_ps(_mm512_max_ps(x, lo), hi), half);
                let b = _mm512_cvtusepi32_epi8(_mm512_cvttps_epi32(x));
                // SAFETY: j + 16 <= n <= w = o.len().
                unsafe { _mm_storeu_si128(o.as_mut_ptr().add(j).cast(), b) };
                j += 16;
            }
            let m_row = _mm512_reduce_max_ps(best);
            *m = super::finish_row(&row[whole..], &mut o[whole..n], grid, m_row);
        }
    }
}

/// The smallest and largest value, one comparison at a time.
pub fn min_max_ref(values: &[f32]) -> (f32, f32) {
    min_max_from(std::iter::empty(), values)
}

/// [`min_max`] of `values` together with `(lo, hi)` pairs already found (a vector kernel's
/// lanes).
pub(crate) fn min_max_from(pairs: impl Iterator<Item = (f32, f32)>, values: &[f32]) -> (f32, f32) {
    let pick = |(lo, hi): (f32, f32), (l, h): (f32, f32)| {
        (if l < lo { l } else { lo }, if h > hi { h } else { hi })
    };
    let start = pairs.fold((f32::INFINITY, f32::NEG_INFINITY), pick);
    values.iter().fold(start, |acc, &v| pick(acc, (v, v)))
}

/// Rows of scores onto a byte grid, one value at a time, with each row's largest score.
///
/// # Panics
/// As [`crate::quantize_rows`].
pub fn quantize_rows_ref(
    scores: &[f32],
    n: usize,
    grid: crate::Grid,
    out: &mut [u8],
    maxes: &mut [f32],
) {
    let w = check(scores, n, out, maxes);
    for ((row, o), m) in scores.chunks_exact(n).zip(out.chunks_exact_mut(w)).zip(maxes) {
        *m = finish_row(row, &mut o[..n], grid, f32::NEG_INFINITY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_min_max_matches_scalar(values in prop::collection::vec(-1e3f32..1e3, 0..200)) {
            let want = crate::quant::min_max_ref(&values);
            let naive = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
            prop_assert_eq!(want, naive);
            for (name, f) in min_max_impls() {
                prop_assert_eq!(f(&values), want, "{}", name);
            }
        }

        #[test]
        fn every_impl_matches_scalar(
            n in 1usize..70,
            pad in 0usize..40,
            rows in 0usize..12,
            seed in any::<u64>(),
            step in 0.001f32..0.1,
            zero in 0u8..255,
        ) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            // Scores beyond both ends of the grid, so the clamp is exercised.
            let scores: Vec<f32> = (0..rows * n).map(|_| rng.gen_range(-30.0..30.0) * step).collect();
            let grid = Grid { step, zero: zero as f32 };
            let w = n + pad;
            let mut want = vec![7u8; rows * w];
            let mut want_max = vec![0f32; rows];
            crate::quant::quantize_rows_ref(&scores, n, grid, &mut want, &mut want_max);
            for (r, row) in scores.chunks_exact(n).enumerate() {
                prop_assert_eq!(want_max[r], row.iter().copied().fold(f32::NEG_INFINITY, f32::max));
                for (j, &s) in row.iter().enumerate() {
                    let b = want[r * w + j];
                    let exact = s / step + zero as f32;
                    prop_assert!((b as f32 - exact.clamp(0.0, 255.0)).abs() <= 0.5, "{} {}", b, exact);
                }
                prop_assert!(want[r * w + n..(r + 1) * w].iter().all(|&b| b == 7));
            }
            for (name, f) in quantize_impls() {
                let mut got = vec![7u8; rows * w];
                let mut got_max = vec![0f32; rows];
                f(&scores, n, grid, &mut got, &mut got_max);
                prop_assert_eq!(&got, &want, "{}", name);
                prop_assert_eq!(&got_max, &want_max, "{}", name);
            }
        }
    }

    #[test]
    fn the_wide_kernel_is_under_test_where_the_cpu_has_it() {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::arch::is_x86_feature_detected!("avx2");
            let names: Vec<_> = min_max_impls().into_iter().map(|(n, _)| n).collect();
            assert_eq!(names.contains(&"avx2"), avx2, "{names:?}");
            let names: Vec<_> = quantize_impls().into_iter().map(|(n, _)| n).collect();
            assert_eq!(names.contains(&"avx2"), avx2, "{names:?}");
            let f = avx2 && std::arch::is_x86_feature_detected!("avx512f");
            assert_eq!(names.contains(&"avx512"), f, "{names:?}");
        }
    }
}
