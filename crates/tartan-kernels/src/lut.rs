//! Exact scoring without decoding residuals: the query's products with every value a nibble
//! of packed residual can take, looked up and summed.
//!
//! A residual at 1, 2 or 4 bits is one of 16 patterns per nibble of its packed bytes (4, 2 or
//! 1 dimensions). For each nibble position `g` and pattern `v`, [`NibbleTable`] holds the
//! query's products with the weights that pattern decodes to, one value per query token. A
//! token's product with the query is then the sum of one table row per nibble: at 2 bits and
//! dim 128, 64 loads and adds per register of query tokens where decoding and multiplying
//! takes 128 fused multiply-adds and the decoding itself. The sum is the same product up to
//! rounding (each row adds a nibble's dimensions first), so it ranks as decoding does.
//!
//! Every implementation adds the rows in one order, the even nibbles into one sum and the odd
//! into another (two chains of additions, so the adder is not waiting on its own latency),
//! then the two sums: the same bits on every CPU.

use std::sync::OnceLock;

use crate::maxsim::{check_fold, fold_rows};
use crate::{Shifts, SkinnyB};

/// A query's products with every nibble pattern of packed residuals, for [`lut_max`].
#[derive(Debug, Clone)]
pub struct NibbleTable {
    /// Query tokens (columns).
    n: usize,
    /// Columns per table row: `n` rounded up to 8, whole AVX2 registers (zero-padded).
    stride: usize,
    /// Packed bytes per token.
    bytes: usize,
    /// `[nibble][pattern][column]`: `2 · bytes · 16` rows of `stride` values.
    data: Vec<f32>,
}

impl NibbleTable {
    /// Whether [`NibbleTable::new`] takes residuals of `nbits` bits: 1, 2 or 4 (a nibble
    /// holds whole fields).
    pub fn supports(nbits: u8) -> bool {
        matches!(nbits, 1 | 2 | 4)
    }

    /// The table for the query `q` and residuals of `nbits` bits per dimension whose fields
    /// decode to `weights` (field `j` of a token is bits `j·nbits ..` of its packed bytes,
    /// least significant first, as [`crate::decode_residual`] reads them).
    ///
    /// # Panics
    /// If `nbits` is not supported, `weights` does not hold `2^nbits` values or `q.k()` times
    /// `nbits` is not whole bytes.
    pub fn new(q: &SkinnyB, nbits: u8, weights: &[f32]) -> Self {
        assert!(Self::supports(nbits), "NibbleTable: {nbits} bits do not fill a nibble");
        assert_eq!(weights.len(), 1 << nbits, "NibbleTable: one weight per bucket");
        let (k, n) = (q.k, q.n);
        let nb = nbits as usize;
        assert!((k * nb).is_multiple_of(8), "NibbleTable: dimensions are not whole bytes");
        let bytes = k * nb / 8;
        let stride = n.div_ceil(8) * 8;
        let per = 4 / nb;
        let mask = (1usize << nb) - 1;
        let mut data = vec![0f32; 2 * bytes * 16 * stride];
        for (g, block) in data.chunks_exact_mut(16 * stride).enumerate() {
            for (v, row) in block.chunks_exact_mut(stride).enumerate() {
                for i in 0..per {
                    let d = g * per + i;
                    let w = weights[(v >> (i * nb)) & mask];
                    let col = &q.data[d * q.n_pad..][..n];
                    for (t, &x) in row.iter_mut().zip(col) {
                        *t += x * w;
                    }
                }
            }
        }
        Self { n, stride, bytes, data }
    }

    /// Query tokens: the columns of every row.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Packed residual bytes per token the table reads.
    pub fn bytes_per_token(&self) -> usize {
        self.bytes
    }

    /// Row `(nibble g, pattern v)`: `stride` values.
    fn row(&self, g: usize, v: usize) -> &[f32] {
        &self.data[(g * 16 + v) * self.stride..][..self.stride]
    }
}

type LutMaxFn = fn(&NibbleTable, &[u8], Shifts<'_>, Option<&[f32]>, &mut [f32]);

/// Every implementation this CPU can run, the scalar reference first, by name.
pub fn lut_max_impls() -> Vec<(&'static str, LutMaxFn)> {
    let mut v: Vec<(&'static str, LutMaxFn)> = vec![("scalar", scalar)];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        v.push(("avx2", avx2::lut_max));
    }
    v
}

/// [`crate::skinny_max`] for tokens given as packed residuals: for each token `t` (a row of
/// `table.bytes_per_token()` bytes of `packed`) and query token `j`:
/// `best[j] = max(best[j], (r_t · q_j + shifts.table[ids[t]·n + j]) · scale[t])`, with
/// `r_t · q_j` summed from the table.
///
/// # Panics
/// If `packed` is not whole tokens, `ids` (and `scale`) do not hold one value per token, an
/// id names a row past `shifts.table`, or `best` does not hold `table.n()` values.
#[inline]
pub fn lut_max(
    table: &NibbleTable,
    packed: &[u8],
    shifts: Shifts<'_>,
    scale: Option<&[f32]>,
    best: &mut [f32],
) {
    static BEST: OnceLock<LutMaxFn> = OnceLock::new();
    BEST.get_or_init(|| *lut_max_impls().last().map(|(_, f)| f).expect("scalar"))(
        table, packed, shifts, scale, best,
    )
}

/// The shape checks every implementation makes; returns the number of tokens.
fn check(
    table: &NibbleTable,
    packed: &[u8],
    shifts: Shifts<'_>,
    scale: Option<&[f32]>,
    best: &[f32],
) -> usize {
    let bpt = table.bytes;
    assert!(packed.len().is_multiple_of(bpt.max(1)), "lut_max: packed is not whole tokens");
    let rows = packed.len().checked_div(bpt).unwrap_or(0);
    check_fold("lut_max", rows, table.n, shifts, scale, best);
    rows
}

/// Scalar reference: each token's products summed in the kernels' order, then the shift,
/// scale and maximum as [`crate::skinny_max`]'s reference applies them.
fn scalar(
    table: &NibbleTable,
    packed: &[u8],
    shifts: Shifts<'_>,
    scale: Option<&[f32]>,
    best: &mut [f32],
) {
    let rows = check(table, packed, shifts, scale, best);
    let n = table.n;
    let mut prod = vec![0f32; rows * n];
    for (token, out) in packed.chunks_exact(table.bytes.max(1)).zip(prod.chunks_exact_mut(n.max(1)))
    {
        let (mut even, mut odd) = (vec![0f32; n], vec![0f32; n]);
        for (b, &byte) in token.iter().enumerate() {
            let lo = table.row(2 * b, (byte & 15) as usize);
            let hi = table.row(2 * b + 1, (byte >> 4) as usize);
            for j in 0..n {
                even[j] += lo[j];
                odd[j] += hi[j];
            }
        }
        for (o, (e, d)) in out.iter_mut().zip(even.iter().zip(&odd)) {
            *o = e + d;
        }
    }
    if n > 0 {
        fold_rows(&mut prod, n, shifts, scale, best);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::NibbleTable;
    use crate::skinny::avx2::lane_masks;
    use crate::Shifts;

    /// Safe entry point; handed out by `lut_max_impls` only after AVX2 was detected.
    pub(super) fn lut_max(
        table: &NibbleTable,
        packed: &[u8],
        shifts: Shifts<'_>,
        scale: Option<&[f32]>,
        best: &mut [f32],
    ) {
        super::check(table, packed, shifts, scale, best);
        for col in (0..table.n).step_by(32) {
            // SAFETY: the CPU has AVX2; `check` found packed whole tokens, one shift id (in
            // the table) and scale per token, `best` n long; col < n and
            // col + 8·NV ≤ n rounded up to 8 = stride.
            unsafe {
                match (table.n - col).div_ceil(8) {
                    1 => pass::<1>(table, packed, shifts, scale, best, col),
                    2 => pass::<2>(table, packed, shifts, scale, best, col),
                    3 => pass::<3>(table, packed, shifts, scale, best, col),
                    _ => pass::<4>(table, packed, shifts, scale, best, col),
                }
            }
        }
    }

    /// Adds the table rows of `token`'s bytes to its sums: the low nibble's row to `even`,
    /// the high nibble's to `odd`.
    ///
    /// # Safety
    /// The CPU must support AVX2; `tp` is the table's data; `token` is the table's bytes per
    /// token long; `col + 8·NV ≤ stride`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn add_rows<const NV: usize>(
        tp: *const f32,
        token: &[u8],
        stride: usize,
        col: usize,
        even: &mut [__m256; NV],
        odd: &mut [__m256; NV],
    ) {
        for (b, &byte) in token.iter().enumerate() {
            let lo = ((2 * b) * 16 + (byte & 15) as usize) * stride + col;
            let hi = ((2 * b + 1) * 16 + (byte >> 4) as usize) * stride + col;
            for v in 0..NV {
                // SAFETY: rows (2b, lo nibble) and (2b + 1, hi nibble) exist (b < bytes per
                // token), and col + 8·v + 8 ≤ stride stays inside each row.
                unsafe {
                    even[v] = _mm256_add_ps(even[v], _mm256_loadu_ps(tp.add(lo + 8 * v)));
                    odd[v] = _mm256_add_ps(odd[v], _mm256_loadu_ps(tp.add(hi + 8 * v)));
                }
            }
        }
    }

    /// Columns `col..col + 8·NV`: each token's sums in registers, then shift, scale and
    /// maximum there; `best` is read and written once per pass.
    ///
    /// # Safety
    /// The CPU must support AVX2; the shapes as `check` requires; `col + 8·NV ≤ stride`.
    #[target_feature(enable = "avx2")]
    unsafe fn pass<const NV: usize>(
        table: &NibbleTable,
        packed: &[u8],
        shifts: Shifts<'_>,
        scale: Option<&[f32]>,
        best: &mut [f32],
        col: usize,
    ) {
        let (n, bpt, stride) = (table.n, table.bytes, table.stride);
        let width = (n - col).min(NV * 8);
        let masks = lane_masks::<NV>(width);
        let bestp = best[col..col + width].as_mut_ptr();
        let tp = table.data.as_ptr();
        // Lanes past `width` are padding: they start at −∞ (never stored) and load no shift.
        let mut m: [__m256; NV] = std::array::from_fn(|v| {
            let init = _mm256_set1_ps(f32::NEG_INFINITY);
            // SAFETY: the mask covers lanes col + 8·v .. col + width of `best`; masked-off
            // lanes are not accessed.
            let x = unsafe { _mm256_maskload_ps(bestp.add(8 * v), masks[v]) };
            _mm256_blendv_ps(init, x, _mm256_castsi256_ps(masks[v]))
        });
        for (t, token) in packed.chunks_exact(bpt).enumerate() {
            let mut even = [_mm256_setzero_ps(); NV];
            let mut odd = [_mm256_setzero_ps(); NV];
            // SAFETY: the token is `bytes` long; col + 8·NV ≤ stride.
            unsafe { add_rows::<NV>(tp, token, stride, col, &mut even, &mut odd) };
            let sp = shifts.table[shifts.ids[t] as usize * n + col..][..width].as_ptr();
            for v in 0..NV {
                // SAFETY: the mask covers lanes col + 8·v .. col + width of the shift row;
                // masked-off lanes are not accessed.
                let s = unsafe { _mm256_maskload_ps(sp.add(8 * v), masks[v]) };
                let mut x = _mm256_add_ps(_mm256_add_ps(even[v], odd[v]), s);
                if let Some(scale) = scale {
                    x = _mm256_mul_ps(x, _mm256_set1_ps(scale[t]));
                }
                m[v] = _mm256_max_ps(m[v], x);
            }
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
    use proptest::prelude::*;

    /// Deterministic values in [−1, 1).
    fn val(i: usize, seed: u64) -> f32 {
        ((i as u64 * 2654435761 + seed) % 1000) as f32 / 500.0 - 1.0
    }

    proptest! {
        /// Every implementation gives the scalar reference's bits, and both agree with
        /// decoding the residuals and multiplying (up to rounding).
        #[test]
        fn every_impl_matches_the_reference_and_decoding(
            nbits in prop::sample::select(vec![1u8, 2, 4]),
            k8 in 1usize..6,
            n in 1usize..45,
            rows in 0usize..12,
            scaled in any::<bool>(),
            seed in 0u64..1000,
        ) {
            let k = k8 * 8;
            let q: Vec<f32> = (0..n * k).map(|i| val(i, seed)).collect();
            let qb = SkinnyB::new(&q, k);
            let weights: Vec<f32> = (0..1usize << nbits).map(|i| val(i + 31, seed) / 4.0).collect();
            let table = NibbleTable::new(&qb, nbits, &weights);
            let bpt = k * nbits as usize / 8;
            let packed: Vec<u8> = (0..rows * bpt).map(|i| (i as u64 * 7919 + seed * 13) as u8).collect();
            let n_shift_rows = 5;
            let shift_table: Vec<f32> = (0..n_shift_rows * n).map(|i| val(i + 101, seed)).collect();
            let ids: Vec<u32> = (0..rows).map(|t| (t % n_shift_rows) as u32).collect();
            let scale: Vec<f32> = (0..rows).map(|t| 0.5 + val(t + 7, seed).abs()).collect();
            let scale = scaled.then_some(&scale[..]);
            let shifts = Shifts { table: &shift_table, ids: &ids };
            let start: Vec<f32> = (0..n).map(|j| if j % 3 == 0 { f32::NEG_INFINITY } else { val(j + 3, seed) }).collect();

            // Decoding and multiplying, in f64: what the table's sums approximate.
            let mut decoded = vec![0f32; rows * k];
            for (t, out) in decoded.chunks_exact_mut(k).enumerate() {
                crate::decode_residual(&packed[t * bpt..][..bpt], nbits, &weights, out);
            }
            let mut want = start.clone();
            for t in 0..rows {
                for j in 0..n {
                    let p: f64 = (0..k).map(|d| decoded[t * k + d] as f64 * q[j * k + d] as f64).sum();
                    let mut x = p + shift_table[ids[t] as usize * n + j] as f64;
                    if let Some(s) = scale {
                        x *= s[t] as f64;
                    }
                    want[j] = want[j].max(x as f32);
                }
            }

            let mut reference = start.clone();
            scalar(&table, &packed, shifts, scale, &mut reference);
            for (j, (r, w)) in reference.iter().zip(&want).enumerate() {
                prop_assert!(r == w || (r - w).abs() <= 1e-4 * (1.0 + w.abs()), "[{}] {} vs {}", j, r, w);
            }
            for (name, f) in lut_max_impls() {
                let mut got = start.clone();
                f(&table, &packed, shifts, scale, &mut got);
                prop_assert_eq!(
                    got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    reference.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    "{}", name
                );
            }
        }
    }

    #[test]
    fn the_avx2_kernel_is_under_test_where_the_cpu_has_it() {
        let names: Vec<&str> = lut_max_impls().iter().map(|(n, _)| *n).collect();
        assert_eq!(names[0], "scalar");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(names.contains(&"avx2"), std::arch::is_x86_feature_detected!("avx2"));
    }

    #[test]
    #[should_panic(expected = "do not fill a nibble")]
    fn eight_bits_are_refused() {
        let qb = SkinnyB::new(&[1.0; 8], 8);
        NibbleTable::new(&qb, 8, &[0.0; 256]);
    }

    #[test]
    #[should_panic(expected = "lut_max: one maximum per column")]
    fn wrong_best_length_panics() {
        let qb = SkinnyB::new(&[1.0; 16], 8);
        let table = NibbleTable::new(&qb, 2, &[0.0; 4]);
        lut_max(&table, &[0; 2], Shifts { table: &[0.0; 2], ids: &[0] }, None, &mut [0.0; 1]);
    }
}
