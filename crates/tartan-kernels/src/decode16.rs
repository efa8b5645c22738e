//! A residual's bucket indices decoded to 16-bit integers ([`crate::FixedWeights`]): what
//! [`crate::decode_residual`] does for `f32`, for the fixed-point exact scoring of
//! [`crate::fixed_max`]. Scalar, a table lookup per dimension; with AVX2 two variable shifts,
//! masks and lane permutations of the (at most 16) weights yield 16 dimensions, packed to
//! `i16`. Both give the same values.

use std::sync::OnceLock;

type Decode16Fn = fn(&[u8], u8, &[i16], &mut [i16]);

/// Every implementation of [`decode_residual_i16`] this CPU can run, the scalar reference
/// first.
pub fn decode_i16_impls() -> Vec<(&'static str, Decode16Fn)> {
    let mut v: Vec<(&'static str, Decode16Fn)> = vec![("scalar", scalar)];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        v.push(("avx2", avx2::decode));
    }
    v
}

/// Decodes residuals: value `j` is `weights[b]` where `b` is the `nbits`-bit field `j` of
/// `packed` (least significant bits first), as [`crate::decode_residual`] reads them.
///
/// # Panics
/// If `nbits` is not 1, 2, 4 or 8, `weights` does not hold `2^nbits` values, or `packed`
/// does not hold exactly `out.len()` fields.
#[inline]
pub fn decode_residual_i16(packed: &[u8], nbits: u8, weights: &[i16], out: &mut [i16]) {
    static BEST: OnceLock<Decode16Fn> = OnceLock::new();
    BEST.get_or_init(|| *decode_i16_impls().last().map(|(_, f)| f).expect("scalar"))(
        packed, nbits, weights, out,
    )
}

fn check(packed: &[u8], nbits: u8, weights: &[i16], out: &[i16]) {
    assert!(matches!(nbits, 1 | 2 | 4 | 8), "decode_residual_i16: nbits {nbits}");
    assert_eq!(weights.len(), 1 << nbits, "decode_residual_i16: weights per nbits");
    let fields = packed.len() * 8;
    assert_eq!(fields, out.len() * nbits as usize, "decode_residual_i16: packed length");
}

/// Scalar reference.
fn scalar(packed: &[u8], nbits: u8, weights: &[i16], out: &mut [i16]) {
    check(packed, nbits, weights, out);
    let nb = nbits as usize;
    let mask = ((1u16 << nb) - 1) as u8;
    for (j, o) in out.iter_mut().enumerate() {
        let bit = j * nb;
        *o = weights[((packed[bit / 8] >> (bit % 8)) & mask) as usize];
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Safe entry point; handed out by `decode_i16_impls` only after AVX2 was detected.
    pub(super) fn decode(packed: &[u8], nbits: u8, weights: &[i16], out: &mut [i16]) {
        super::check(packed, nbits, weights, out);
        if nbits == 8 || !out.len().is_multiple_of(16) {
            return super::scalar(packed, nbits, weights, out);
        }
        let mut table = [0i32; 16];
        for (t, &w) in table.iter_mut().zip(weights) {
            *t = w as i32;
        }
        // SAFETY: the CPU has AVX2; `check` found `packed` holding exactly `out.len()`
        // fields of `nbits` ≤ 4 bits (a multiple of 16 of them) and `weights` 2^nbits ≤ 16
        // values; the table holds two 256-bit vectors.
        unsafe {
            let lo = _mm256_loadu_si256(table.as_ptr() as *const __m256i);
            let hi = _mm256_loadu_si256(table.as_ptr().add(8) as *const __m256i);
            match nbits {
                1 => groups::<1>(packed, lo, hi, out),
                2 => groups::<2>(packed, lo, hi, out),
                _ => groups::<4>(packed, lo, hi, out),
            }
        }
    }

    /// The weights of the 8 fields of `NB` bytes, one per `i32` lane.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn eight<const NB: usize>(bytes: &[u8], lo: __m256i, hi: __m256i) -> __m256i {
        let mut w = [0u8; 4];
        w[..NB].copy_from_slice(&bytes[..NB]);
        let v = _mm256_set1_epi32(u32::from_le_bytes(w) as i32);
        let s = NB as i32;
        let shifts = _mm256_setr_epi32(0, s, 2 * s, 3 * s, 4 * s, 5 * s, 6 * s, 7 * s);
        let idx = _mm256_and_si256(_mm256_srlv_epi32(v, shifts), _mm256_set1_epi32((1 << NB) - 1));
        let x = _mm256_permutevar8x32_epi32(lo, idx);
        if NB == 4 {
            // A lane permutation reads the low 3 bits of each index; bit 3 picks the upper
            // half of the table (moved to the sign bit, which the blend reads).
            let upper = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));
            let y = _mm256_permutevar8x32_epi32(hi, idx);
            _mm256_castps_si256(_mm256_blendv_ps(
                _mm256_castsi256_ps(x),
                _mm256_castsi256_ps(y),
                upper,
            ))
        } else {
            x
        }
    }

    /// # Safety
    /// The CPU must support AVX2; `packed` holds `out.len()` fields of `NB` bits, a multiple
    /// of 16 of them.
    #[target_feature(enable = "avx2")]
    unsafe fn groups<const NB: usize>(packed: &[u8], lo: __m256i, hi: __m256i, out: &mut [i16]) {
        for (g, o) in packed.chunks_exact(2 * NB).zip(out.chunks_exact_mut(16)) {
            let a = eight::<NB>(g, lo, hi);
            let b = eight::<NB>(&g[NB..], lo, hi);
            // Packing works within 128-bit halves: a0–3 b0–3 a4–7 b4–7, then put in order.
            // The weights are `i16` values, so the saturating pack is exact.
            let x = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0b11_01_10_00);
            // SAFETY: `o` holds 16 values.
            unsafe { _mm256_storeu_si256(o.as_mut_ptr() as *mut __m256i, x) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_impl_matches_the_reference_and_the_f32_decoder(
            nbits in prop::sample::select(vec![1u8, 2, 4, 8]),
            groups in 0usize..12,
            extra in 0usize..2,
            seed in 0u64..1000,
        ) {
            // Whole bytes of fields; `extra` makes the count miss a multiple of 16.
            let n = (groups * 16 + extra * 8).max(8);
            let bytes = n * nbits as usize / 8;
            let packed: Vec<u8> =
                (0..bytes).map(|i| ((i as u64 * 2654435761 + seed) >> 7) as u8).collect();
            let weights: Vec<i16> =
                (0..1i32 << nbits).map(|i| (i * 977 - 20_000 + seed as i32) as i16).collect();
            let mut want = vec![0i16; n];
            scalar(&packed, nbits, &weights, &mut want);
            let wf: Vec<f32> = weights.iter().map(|&w| w as f32).collect();
            let mut f = vec![0f32; n];
            crate::codes::decode_residual_ref(&packed, nbits, &wf, &mut f);
            prop_assert!(want.iter().zip(&f).all(|(&a, &b)| a as f32 == b));
            for (name, imp) in decode_i16_impls() {
                let mut got = vec![0i16; n];
                imp(&packed, nbits, &weights, &mut got);
                prop_assert_eq!(&got, &want, "{}", name);
            }
        }
    }

    #[test]
    fn the_wide_kernel_is_under_test_where_the_cpu_has_it() {
        let names: Vec<&str> = decode_i16_impls().iter().map(|(n, _)| *n).collect();
        crate::test_support::assert_avx2_kernel_listed(&names);
    }
}
