//! `C = A · Bᵀ` when B has few rows (a query's 32 tokens): no packing of A.
//!
//! A general GEMM packs both operands into panels; with B this thin, packing A costs about as
//! much as the product (perf: `pack_avx2` was a third of search time). Here B is transposed
//! once into a `k × n` panel that stays in cache, and each pair of A rows is streamed
//! straight from memory: per element of A, one broadcast and `n / 8` fused multiply-adds.

use std::sync::OnceLock;

/// The right-hand operand of [`skinny_matmul`]: B (`n × k`) transposed to `k × n_pad`,
/// `n_pad` a multiple of 16 (zero-padded), whole AVX-512 registers.
#[derive(Debug, Clone)]
pub struct SkinnyB {
    pub(crate) k: usize,
    pub(crate) n: usize,
    pub(crate) n_pad: usize,
    pub(crate) data: Vec<f32>,
}

impl SkinnyB {
    /// Lays out `b` (`n × k`, row-major) for [`skinny_matmul`].
    ///
    /// # Panics
    /// If `k` is 0 or `b` is not whole rows.
    pub fn new(b: &[f32], k: usize) -> Self {
        assert!(k > 0 && b.len().is_multiple_of(k), "B is not whole rows of length k");
        let n = b.len() / k;
        let n_pad = n.div_ceil(16) * 16;
        let mut data = vec![0f32; k * n_pad];
        for (j, row) in b.chunks_exact(k).enumerate() {
            for (d, &v) in row.iter().enumerate() {
                data[d * n_pad + j] = v;
            }
        }
        Self { k, n, n_pad, data }
    }
    /// Rows of B (columns of the product).
    pub fn n(&self) -> usize {
        self.n
    }
    /// Length of each row of B.
    pub fn k(&self) -> usize {
        self.k
    }
}

type SkinnyFn = fn(&[f32], &SkinnyB, &mut [f32]);

/// Every implementation this CPU can run, scalar first, by name (for tests and benches).
pub fn skinny_impls() -> Vec<(&'static str, SkinnyFn)> {
    let mut v: Vec<(&'static str, SkinnyFn)> = vec![("scalar", scalar)];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        v.push(("avx2", avx2::skinny));
        if std::arch::is_x86_feature_detected!("avx512f") {
            v.push(("avx512", avx512::skinny));
        }
    }
    v
}

fn best() -> SkinnyFn {
    static BEST: OnceLock<SkinnyFn> = OnceLock::new();
    *BEST.get_or_init(|| *skinny_impls().last().map(|(_, f)| f).unwrap_or(&(scalar as SkinnyFn)))
}

/// `c = a · Bᵀ`: `a` is `rows × k` row-major, `c` is `rows × n` row-major.
///
/// # Panics
/// If `a` is not whole rows of `b.k()` or `c` is not `rows × b.n()`.
#[inline]
pub fn skinny_matmul(a: &[f32], b: &SkinnyB, c: &mut [f32]) {
    assert!(a.len().is_multiple_of(b.k), "A is not whole rows of length k");
    assert_eq!(c.len(), a.len() / b.k * b.n, "C must be rows × n");
    best()(a, b, c)
}

/// Scalar reference, in the same summation order as the vector kernel (d ascending).
pub(crate) fn scalar(a: &[f32], b: &SkinnyB, c: &mut [f32]) {
    let (k, n, np) = (b.k, b.n, b.n_pad);
    for (row, out) in a.chunks_exact(k).zip(c.chunks_exact_mut(n.max(1))) {
        let mut acc = vec![0f32; np];
        for (d, &x) in row.iter().enumerate() {
            for (s, &w) in acc.iter_mut().zip(&b.data[d * np..(d + 1) * np]) {
                *s = x.mul_add(w, *s);
            }
        }
        out.copy_from_slice(&acc[..n]);
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    use super::SkinnyB;

    /// Columns of C per pass: at most 4 vectors of 8.
    const COLS: usize = 32;

    /// Calls `$f::<NV, ROWS>($args)` for a pass of `$nv` registers of columns, with the rows
    /// of A per step that make about 8 accumulators (NV·ROWS): two FMA units of 4 cycles'
    /// latency need 8 independent chains to stay busy, and a short query (one or two
    /// registers) with 2 rows per step kept them a quarter to half idle.
    macro_rules! dispatch {
        ($nv:expr, $f:ident($($arg:expr),*)) => {
            match $nv {
                1 => $f::<1, 8>($($arg),*),
                2 => $f::<2, 4>($($arg),*),
                3 => $f::<3, 3>($($arg),*),
                _ => $f::<4, 2>($($arg),*),
            }
        };
    }
    pub(crate) use dispatch;

    /// Safe entry point; only handed out by `skinny_impls` after AVX2 and FMA were detected.
    pub(super) fn skinny(a: &[f32], b: &SkinnyB, c: &mut [f32]) {
        assert!(a.len().is_multiple_of(b.k) && c.len() == a.len() / b.k * b.n);
        // SAFETY: `skinny_impls` returns this function only when the CPU reports AVX2 and
        // FMA; the shapes were checked above.
        unsafe { skinny_avx2(a, b, c) }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA; `a` is whole rows of `b.k`, `c` is rows × `b.n`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn skinny_avx2(a: &[f32], b: &SkinnyB, c: &mut [f32]) {
        for col in (0..b.n).step_by(COLS) {
            // A pass over 8, 16, 24 or 32 columns; the count is a constant in each copy so
            // the accumulators stay in registers. Registers cover the columns that exist, not
            // the panel's padding to 16 (a query of 20 tokens takes 3 registers, not 4).
            // SAFETY: the caller's guarantees carry over; col < n and
            // col + 8·NV ≤ n rounded up to 8 ≤ n_pad.
            unsafe { dispatch!((b.n - col).div_ceil(8), pass(a, b, c, col)) }
        }
    }

    /// The products of rows `r .. r + live` of A (`live = min(rows − r, ROWS)`, at least 1;
    /// the missing rows of a last, short step repeat the last row) with panel columns `col .. col + 8·NV`,
    /// in registers: one fused multiply-add chain over the dimensions, ascending, per value.
    /// Shared by the product and by `skinny_max`, so both compute the same bits.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `a` is whole rows of `b.k`, `r` is below their
    /// count, `live` is as above and `col + 8·NV ≤ b.n_pad`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(crate) unsafe fn products<const NV: usize, const ROWS: usize>(
        a: &[f32],
        b: &SkinnyB,
        r: usize,
        live: usize,
        col: usize,
    ) -> [[__m256; NV]; ROWS] {
        let (k, np) = (b.k, b.n_pad);
        let bp = b.data.as_ptr();
        let ap: [*const f32; ROWS] =
            std::array::from_fn(|i| a[(r + i.min(live - 1)) * k..].as_ptr());
        let mut acc = [[_mm256_setzero_ps(); NV]; ROWS];
        for d in 0..k {
            // SAFETY: d < k, so element d of each A row exists; the panel reads
            // d·np + col .. d·np + col + 8·NV ≤ (d + 1)·np.
            unsafe {
                let w = bp.add(d * np + col);
                let wv: [__m256; NV] = std::array::from_fn(|v| _mm256_loadu_ps(w.add(8 * v)));
                for i in 0..ROWS {
                    let x = _mm256_broadcast_ss(&*ap[i].add(d));
                    for v in 0..NV {
                        acc[i][v] = _mm256_fmadd_ps(x, wv[v], acc[i][v]);
                    }
                }
            }
        }
        acc
    }

    /// Lane masks of each of `NV` registers that hold columns `col .. col + width` (the rest
    /// of a register is the panel's padding), for masked loads and stores.
    #[target_feature(enable = "avx2")]
    pub(crate) fn lane_masks<const NV: usize>(width: usize) -> [__m256i; NV] {
        std::array::from_fn(|v| {
            let live = width.saturating_sub(8 * v).min(8) as i32;
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            _mm256_cmpgt_epi32(_mm256_set1_epi32(live), lanes)
        })
    }

    /// Columns `col..col + 8·NV` of C, `ROWS` rows of A at a time, stored straight from the
    /// registers (masked where the last register is partly padding).
    ///
    /// # Safety
    /// As [`skinny_avx2`], and `col + 8·NV ≤ b.n_pad`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn pass<const NV: usize, const ROWS: usize>(
        a: &[f32],
        b: &SkinnyB,
        c: &mut [f32],
        col: usize,
    ) {
        let (k, n) = (b.k, b.n);
        let rows = a.len() / k;
        let width = (n - col).min(NV * 8);
        let masks = lane_masks::<NV>(width);
        let mut r = 0;
        while r < rows {
            let live = (rows - r).min(ROWS);
            // SAFETY: the caller's guarantees; r < rows and live as `products` requires.
            let acc = unsafe { products::<NV, ROWS>(a, b, r, live, col) };
            for (i, row) in acc.iter().enumerate().take(live) {
                let out = c[(r + i) * n + col..][..width].as_mut_ptr();
                for (v, &x) in row.iter().enumerate().take(width.div_ceil(8)) {
                    if width >= 8 * (v + 1) {
                        // SAFETY: columns col + 8·v .. col + 8·v + 8 are inside the `width`
                        // values starting at `out`.
                        unsafe { _mm256_storeu_ps(out.add(8 * v), x) };
                    } else {
                        // SAFETY: the mask's lanes are columns col + 8·v .. col + width of
                        // row r + i of C, inside the `width` values starting at `out`
                        // (masked-off lanes are not accessed).
                        unsafe { _mm256_maskstore_ps(out.add(8 * v), masks[v], x) };
                    }
                }
            }
            r += ROWS;
        }
    }
}

/// Four times the AVX2 kernel's work per step: eight rows of A against two 16-lane registers
/// of columns, sixteen accumulators, one FMA per accumulator per element of A. On a CPU with
/// two 512-bit FMA units this halves the query × centroid product.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    use super::SkinnyB;

    /// Columns of C per pass: 2 vectors of 16.
    const COLS: usize = 32;
    /// Rows of A per step: 8 × 2 accumulators of the 32 registers, so that each pair of
    /// panel loads feeds 16 fused multiply-adds (4 rows: 8; criterion query × 8,192
    /// centroids 539 → 503 µs).
    pub(crate) const ROWS: usize = 8;

    /// Safe entry point; only handed out by `skinny_impls` after AVX-512F was detected.
    pub(super) fn skinny(a: &[f32], b: &SkinnyB, c: &mut [f32]) {
        assert!(a.len().is_multiple_of(b.k) && c.len() == a.len() / b.k * b.n);
        assert!(b.n_pad.is_multiple_of(16));
        // SAFETY: `skinny_impls` returns this function only when the CPU reports AVX-512F;
        // the shapes were checked above and the panel is whole 16-lane registers wide.
        unsafe { skinny_avx512(a, b, c) }
    }

    /// # Safety
    /// The CPU must support AVX-512F; `a` is whole rows of `b.k`, `c` is rows × `b.n`, and
    /// `b.n_pad` is a multiple of 16.
    #[target_feature(enable = "avx512f")]
    unsafe fn skinny_avx512(a: &[f32], b: &SkinnyB, c: &mut [f32]) {
        for col in (0..b.n_pad).step_by(COLS) {
            // SAFETY: the caller's guarantees carry over; col < n_pad and n_pad is a multiple
            // of 16, so one or two whole registers remain.
            unsafe {
                if b.n_pad - col >= COLS {
                    pass::<2>(a, b, c, col)
                } else {
                    pass::<1>(a, b, c, col)
                }
            }
        }
    }

    /// Lanes of each of `NV` registers that hold columns `col .. col + width` (the rest of a
    /// register is the panel's padding).
    pub(crate) fn lane_masks<const NV: usize>(width: usize) -> [__mmask16; NV] {
        std::array::from_fn(|v| {
            let live = width.saturating_sub(16 * v).min(16);
            ((1u32 << live) - 1) as __mmask16
        })
    }

    /// The products of rows `r .. r + live` of A (`live = min(rows − r, ROWS)`; the missing
    /// rows of a last, short step repeat the last row) with panel columns
    /// `col .. col + 16·NV`, in registers: one fused multiply-add chain over the dimensions,
    /// ascending, per value. Shared by the product and by `skinny_max`, so both compute the
    /// same bits.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `a` is whole rows of `b.k`, `r` is below their count,
    /// `live` is as above and `col + 16·NV ≤ b.n_pad`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) unsafe fn products<const NV: usize>(
        a: &[f32],
        b: &SkinnyB,
        r: usize,
        live: usize,
        col: usize,
    ) -> [[__m512; NV]; ROWS] {
        let (k, np) = (b.k, b.n_pad);
        let bp = b.data.as_ptr();
        let ap: [*const f32; ROWS] =
            std::array::from_fn(|i| a[(r + i.min(live - 1)) * k..].as_ptr());
        let mut acc = [[_mm512_setzero_ps(); NV]; ROWS];
        for d in 0..k {
            // SAFETY: d < k, so element d of each A row exists; the panel reads
            // d·np + col .. d·np + col + 16·NV ≤ (d + 1)·np.
            unsafe {
                let w = bp.add(d * np + col);
                let wv: [__m512; NV] = std::array::from_fn(|v| _mm512_loadu_ps(w.add(16 * v)));
                for i in 0..ROWS {
                    let x = _mm512_set1_ps(*ap[i].add(d));
                    for v in 0..NV {
                        acc[i][v] = _mm512_fmadd_ps(x, wv[v], acc[i][v]);
                    }
                }
            }
        }
        acc
    }

    /// Columns `col..col + 16·NV` of C, `ROWS` rows of A at a time, stored straight from
    /// the registers (masked where the last register is partly padding).
    ///
    /// # Safety
    /// As [`skinny_avx512`], and `col + 16·NV ≤ b.n_pad`.
    #[target_feature(enable = "avx512f")]
    unsafe fn pass<const NV: usize>(a: &[f32], b: &SkinnyB, c: &mut [f32], col: usize) {
        let (k, n) = (b.k, b.n);
        let rows = a.len() / k;
        let width = (n - col).min(NV * 16);
        let masks = lane_masks::<NV>(width);
        let mut r = 0;
        while r < rows {
            let live = (rows - r).min(ROWS);
            // SAFETY: the caller's guarantees; r < rows and live as `products` requires.
            let acc = unsafe { products::<NV>(a, b, r, live, col) };
            for (i, row) in acc.iter().enumerate().take(live) {
                let out = c[(r + i) * n + col..][..width].as_mut_ptr();
                for (v, &x) in row.iter().enumerate() {
                    if masks[v] != 0 {
                        // SAFETY: the mask's lanes are columns col + 16·v .. col + width of
                        // row r + i of C, inside the `width` values starting at `out`.
                        unsafe { _mm512_mask_storeu_ps(out.add(16 * v), masks[v], x) };
                    }
                }
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
        fn every_impl_matches_the_scalar_matmul(
            k in 1usize..40,
            n in 1usize..70,
            rows in 0usize..20,
            seed in 0u64..1000,
        ) {
            let val = |i: usize| ((i as u64 * 2654435761 + seed) % 1000) as f32 / 500.0 - 1.0;
            let a: Vec<f32> = (0..rows * k).map(val).collect();
            let b: Vec<f32> = (0..n * k).map(|i| val(i + 7919)).collect();
            let mut want = vec![0f32; rows * n];
            crate::matmul::matmul_nt_ref(&a, &b, k, &mut want);
            let sb = SkinnyB::new(&b, k);
            for (name, f) in skinny_impls() {
                let mut got = vec![f32::NAN; rows * n];
                f(&a, &sb, &mut got);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    prop_assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{}: [{}] {} vs {}", name, i, g, w);
                }
            }
        }
    }

    #[test]
    fn the_wide_kernels_are_under_test_where_the_cpu_has_them() {
        let names: Vec<&str> = skinny_impls().iter().map(|(n, _)| *n).collect();
        crate::test_support::assert_wide_kernels_listed(&names);
    }

    #[test]
    #[should_panic(expected = "rows × n")]
    fn wrong_output_shape_panics() {
        let b = SkinnyB::new(&[1.0; 6], 3);
        skinny_matmul(&[1.0; 3], &b, &mut [0.0; 3]);
    }
}
