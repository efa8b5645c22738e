//! Reading packed codes: the two loops every search runs per stored token.
//!
//! * [`unpack_uints`]: fields of a fixed bit width (a segment's centroid ids, ⌈log2 K⌉ bits
//!   each). Scalar, it is a shift and a mask per field on one 8-byte load; with AVX-512 VBMI
//!   one byte permutation, one variable shift and one mask yield 16 fields; with AVX2 a
//!   byte shuffle within each 128-bit half, a variable shift and a mask yield 8.
//! * [`decode_residual`]: a token's residual from its 1-, 2- or 4-bit bucket indices, one
//!   weight per dimension. Scalar, a table lookup per dimension; with AVX-512 one variable
//!   shift, one mask and one lane permutation of the (at most 16) weights yield 16 dimensions;
//!   with AVX2 the same yields 8 (two permutations and a blend at 4 bits, whose 16 weights
//!   span two registers).
//!
//! Both return exactly what their scalar references in [`crate::scalar`] return.

use std::sync::OnceLock;

type UnpackFn = fn(&[u8], u32, usize, &mut [u32]);
type DecodeFn = fn(&[u8], u8, &[f32], &mut [f32]);

/// Every implementation of [`unpack_uints`] this CPU can run, the scalar reference first.
pub fn unpack_impls() -> Vec<(&'static str, UnpackFn)> {
    let mut v: Vec<(&'static str, UnpackFn)> = vec![("scalar", crate::codes::unpack_uints_ref)];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        v.push(("avx2", avx2::unpack_uints));
        if avx512::has_vbmi() {
            v.push(("avx512", avx512::unpack_uints));
        }
    }
    v
}

/// Every implementation of [`decode_residual`] this CPU can run, the scalar reference first.
pub fn decode_impls() -> Vec<(&'static str, DecodeFn)> {
    let mut v: Vec<(&'static str, DecodeFn)> = vec![("scalar", crate::codes::decode_residual_ref)];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        v.push(("avx2", avx2::decode_residual));
        if std::arch::is_x86_feature_detected!("avx512f") {
            v.push(("avx512", avx512::decode_residual));
        }
    }
    v
}

/// Fields `first .. first + out.len()` of a stream of `width`-bit unsigned fields packed
/// least significant bit first (field `i` starts at bit `i · width`), into `out`. Bits past
/// the end of `bytes` read as zero.
///
/// # Panics
/// If `width` is outside 1..=32 or a field starts past the end of `bytes`.
#[inline]
pub fn unpack_uints(bytes: &[u8], width: u32, first: usize, out: &mut [u32]) {
    static BEST: OnceLock<UnpackFn> = OnceLock::new();
    BEST.get_or_init(|| *unpack_impls().last().map(|(_, f)| f).expect("scalar"))(
        bytes, width, first, out,
    )
}

/// Decodes one token's residual: dimension `j` is `weights[b]` where `b` is the `nbits`-bit
/// field `j` of `packed` (least significant bits first).
///
/// # Panics
/// If `nbits` is not 1, 2, 4 or 8, `weights` does not hold `2^nbits` values, or `packed`
/// does not hold exactly `out.len()` fields.
#[inline]
pub fn decode_residual(packed: &[u8], nbits: u8, weights: &[f32], out: &mut [f32]) {
    static BEST: OnceLock<DecodeFn> = OnceLock::new();
    BEST.get_or_init(|| *decode_impls().last().map(|(_, f)| f).expect("scalar"))(
        packed, nbits, weights, out,
    )
}

/// The shape checks every [`unpack_uints`] implementation makes.
pub(crate) fn check_unpack(bytes: &[u8], width: u32, first: usize, n: usize) {
    assert!((1..=32).contains(&width), "unpack_uints: width {width} is outside 1..=32");
    if n > 0 {
        let last_bit = (first + n - 1) * width as usize;
        assert!(
            last_bit / 8 < bytes.len(),
            "unpack_uints: field {} is past the stream",
            first + n - 1
        );
    }
}

/// The shape checks every [`decode_residual`] implementation makes.
pub(crate) fn check_decode(packed: &[u8], nbits: u8, weights: &[f32], out: &[f32]) {
    assert!(matches!(nbits, 1 | 2 | 4 | 8), "decode_residual: nbits {nbits}");
    assert_eq!(weights.len(), 1 << nbits, "decode_residual: weights per nbits");
    assert_eq!(packed.len() * 8, out.len() * nbits as usize, "decode_residual: packed length");
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Safe entry point; handed out by `unpack_impls` only after AVX2 was detected.
    pub(super) fn unpack_uints(bytes: &[u8], width: u32, first: usize, out: &mut [u32]) {
        super::check_unpack(bytes, width, first, out.len());
        if width > 25 {
            // A field at bit offset 7 would span more than the 4 bytes a lane gathers.
            return crate::codes::unpack_uints_ref(bytes, width, first, out);
        }
        // SAFETY: the CPU has AVX2; `check_unpack` found every field's first byte inside
        // `bytes`, and the kernel loads 16 bytes straight from `bytes` only where they are
        // inside it (a zero-padded copy otherwise).
        unsafe { unpack_avx2(bytes, width, first, out) }
    }

    /// # Safety
    /// The CPU must support AVX2; `width` must be 1..=25.
    #[target_feature(enable = "avx2")]
    unsafe fn unpack_avx2(bytes: &[u8], width: u32, first: usize, out: &mut [u32]) {
        let w = width as usize;
        let start_bit = first * w;
        let offset = start_bit % 8;
        // A group of 8 fields spans w bytes from the same bit offset, so the byte shuffle and
        // the shifts are the same for every group. A byte shuffle stays within a 128-bit
        // half: the low half takes fields 0-3 from the group's first byte, the high half
        // fields 4-7 from `high`, the byte field 4 starts in (at most 7 + 4·25 = 107 bits
        // from either start, inside 16 bytes).
        let high = (offset + 4 * w) / 8;
        let mut idx = [0u8; 32];
        let mut shifts = [0u32; 8];
        for (j, s) in shifts.iter_mut().enumerate() {
            let bit = offset + j * w - if j < 4 { 0 } else { 8 * high };
            for k in 0..4 {
                idx[16 * (j / 4) + 4 * (j % 4) + k] = (bit / 8 + k) as u8;
            }
            *s = (bit % 8) as u32;
        }
        // SAFETY: the arrays hold one 256-bit vector each.
        let (idx, shifts) = unsafe {
            (_mm256_loadu_si256(idx.as_ptr().cast()), _mm256_loadu_si256(shifts.as_ptr().cast()))
        };
        let mask = _mm256_set1_epi32(((1u64 << w) - 1) as i32);
        let mut byte = start_bit / 8;
        for chunk in out.chunks_mut(8) {
            let mut pad = [0u8; 48];
            let src = if byte + high + 16 <= bytes.len() {
                // SAFETY: both 16-byte loads end at or before byte + high + 16 <= len.
                unsafe {
                    let p = bytes.as_ptr().add(byte);
                    _mm256_loadu2_m128i(p.add(high).cast(), p.cast())
                }
            } else {
                // Near the end: bytes past the stream read as zero, as in the reference.
                // `byte` is at most the last field's first byte, inside the stream.
                let avail = (bytes.len() - byte).min(pad.len());
                pad[..avail].copy_from_slice(&bytes[byte..byte + avail]);
                // SAFETY: high + 16 <= 29 < 48, inside `pad`.
                unsafe { _mm256_loadu2_m128i(pad.as_ptr().add(high).cast(), pad.as_ptr().cast()) }
            };
            let gathered = _mm256_shuffle_epi8(src, idx);
            let fields = _mm256_and_si256(_mm256_srlv_epi32(gathered, shifts), mask);
            if chunk.len() == 8 {
                // SAFETY: the chunk holds 8 values.
                unsafe { _mm256_storeu_si256(chunk.as_mut_ptr().cast(), fields) };
            } else {
                let mut tmp = [0u32; 8];
                // SAFETY: the array holds one 256-bit vector.
                unsafe { _mm256_storeu_si256(tmp.as_mut_ptr().cast(), fields) };
                let n = chunk.len();
                chunk.copy_from_slice(&tmp[..n]);
            }
            byte += w;
        }
    }

    /// Safe entry point; handed out by `decode_impls` only after AVX2 was detected.
    pub(super) fn decode_residual(packed: &[u8], nbits: u8, weights: &[f32], out: &mut [f32]) {
        super::check_decode(packed, nbits, weights, out);
        if nbits == 8 || !out.len().is_multiple_of(8) {
            return crate::codes::decode_residual_ref(packed, nbits, weights, out);
        }
        // SAFETY: the CPU has AVX2; `check_decode` found `packed` holding exactly
        // `out.len()` fields of `nbits` ≤ 4 bits and `weights` 2^nbits ≤ 16 values.
        unsafe { decode_avx2(packed, nbits, weights, out) }
    }

    /// # Safety
    /// The CPU must support AVX2; `nbits` must be 1, 2 or 4, `weights` must hold `2^nbits`
    /// values, `out.len()` must be a multiple of 8 and `packed` hold `out.len() · nbits / 8`
    /// bytes.
    #[target_feature(enable = "avx2")]
    unsafe fn decode_avx2(packed: &[u8], nbits: u8, weights: &[f32], out: &mut [f32]) {
        let mut table = [0f32; 16];
        table[..weights.len()].copy_from_slice(weights);
        // SAFETY: the array holds two 256-bit vectors.
        let (lo, hi) =
            unsafe { (_mm256_loadu_ps(table.as_ptr()), _mm256_loadu_ps(table.as_ptr().add(8))) };
        match nbits {
            // SAFETY: the caller's contract, with NB = nbits.
            1 => unsafe { decode_groups::<1>(packed, lo, hi, out) },
            // SAFETY: as above.
            2 => unsafe { decode_groups::<2>(packed, lo, hi, out) },
            // SAFETY: as above (nbits is 4: 8 is decoded by the scalar reference).
            _ => unsafe { decode_groups::<4>(packed, lo, hi, out) },
        }
    }

    /// # Safety
    /// As `decode_avx2`, with `NB = nbits`.
    #[target_feature(enable = "avx2")]
    unsafe fn decode_groups<const NB: usize>(
        packed: &[u8],
        lo: __m256,
        hi: __m256,
        out: &mut [f32],
    ) {
        // Lane j takes field j of an 8-field group: bits j·NB of the group's NB bytes.
        let shifts = _mm256_setr_epi32(
            0,
            NB as i32,
            2 * NB as i32,
            3 * NB as i32,
            4 * NB as i32,
            5 * NB as i32,
            6 * NB as i32,
            7 * NB as i32,
        );
        let mask = _mm256_set1_epi32((1 << NB) - 1);
        for (g, o) in packed.chunks_exact(NB).zip(out.chunks_exact_mut(8)) {
            let mut w = [0u8; 4];
            w[..NB].copy_from_slice(g);
            let v = _mm256_set1_epi32(u32::from_le_bytes(w) as i32);
            let idx = _mm256_and_si256(_mm256_srlv_epi32(v, shifts), mask);
            // A lane permutation reads the low 3 bits of each index; at 4 bits, bit 3 picks
            // the table's upper half (moved to the sign bit, which the blend reads).
            let x = if NB == 4 {
                let upper = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));
                _mm256_blendv_ps(
                    _mm256_permutevar8x32_ps(lo, idx),
                    _mm256_permutevar8x32_ps(hi, idx),
                    upper,
                )
            } else {
                _mm256_permutevar8x32_ps(lo, idx)
            };
            // SAFETY: `o` holds 8 values.
            unsafe { _mm256_storeu_ps(o.as_mut_ptr(), x) };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    pub(super) fn has_vbmi() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vbmi")
    }

    /// Safe entry point; handed out by `unpack_impls` only after AVX-512 F, BW and VBMI were
    /// detected.
    pub(super) fn unpack_uints(bytes: &[u8], width: u32, first: usize, out: &mut [u32]) {
        super::check_unpack(bytes, width, first, out.len());
        if width > 25 {
            // A field at bit offset 7 would span more than the 4 bytes a lane gathers.
            return crate::codes::unpack_uints_ref(bytes, width, first, out);
        }
        // SAFETY: the CPU has the features (see above); `check_unpack` found every field's
        // first byte inside `bytes`, and the kernel reads bytes only through masked loads
        // bounded by `bytes.len()`.
        unsafe { unpack_vbmi(bytes, width, first, out) }
    }

    /// # Safety
    /// The CPU must support AVX-512 F, BW and VBMI; `width` must be 1..=25.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    unsafe fn unpack_vbmi(bytes: &[u8], width: u32, first: usize, out: &mut [u32]) {
        let w = width as usize;
        let start_bit = first * w;
        let offset = start_bit % 8;
        // Each group of 16 fields starts 2·w bytes after the last, at the same bit offset, so
        // the byte gather and the shifts are the same for every group.
        let mut idx = [0u8; 64];
        let mut shifts = [0u32; 16];
        for j in 0..16 {
            let bit = offset + j * w;
            for k in 0..4 {
                idx[4 * j + k] = (bit / 8 + k) as u8;
            }
            shifts[j] = (bit % 8) as u32;
        }
        // SAFETY: the array holds exactly one 512-bit vector.
        let idx = unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) };
        // SAFETY: as above.
        let shifts = unsafe { _mm512_loadu_si512(shifts.as_ptr().cast()) };
        let mask = _mm512_set1_epi32(((1u64 << w) - 1) as i32);
        let mut byte = start_bit / 8;
        for chunk in out.chunks_mut(16) {
            // Only bytes that exist are loaded; the others read as zero, as in the reference.
            let avail = bytes.len().saturating_sub(byte).min(64);
            let load: __mmask64 = if avail == 64 { !0 } else { (1u64 << avail) - 1 };
            // SAFETY: the mask limits the load to bytes[byte .. byte + avail], inside `bytes`
            // (masked-off bytes are not accessed); with avail = 0 nothing is read.
            let src = unsafe { _mm512_maskz_loadu_epi8(load, bytes.as_ptr().add(byte).cast()) };
            let gathered = _mm512_permutexvar_epi8(idx, src);
            let fields = _mm512_and_si512(_mm512_srlv_epi32(gathered, shifts), mask);
            let store: __mmask16 = if chunk.len() == 16 { !0 } else { (1u16 << chunk.len()) - 1 };
            // SAFETY: the mask limits the store to the chunk's `chunk.len()` values.
            unsafe { _mm512_mask_storeu_epi32(chunk.as_mut_ptr().cast(), store, fields) };
            byte += 2 * w;
        }
    }

    /// Safe entry point; handed out by `decode_impls` only after AVX-512F was detected.
    pub(super) fn decode_residual(packed: &[u8], nbits: u8, weights: &[f32], out: &mut [f32]) {
        super::check_decode(packed, nbits, weights, out);
        if nbits == 8 || !out.len().is_multiple_of(16) {
            return crate::codes::decode_residual_ref(packed, nbits, weights, out);
        }
        // SAFETY: the CPU has AVX-512F; `check_decode` found `packed` holding exactly
        // `out.len()` fields of `nbits` ≤ 4 bits and `weights` 2^nbits ≤ 16 values.
        unsafe { decode_avx512(packed, nbits, weights, out) }
    }

    /// # Safety
    /// The CPU must support AVX-512F; `nbits` must be 1, 2 or 4, `weights` must hold
    /// `2^nbits` values, `out.len()` must be a multiple of 16 and `packed` hold
    /// `out.len() · nbits / 8` bytes.
    #[target_feature(enable = "avx512f")]
    unsafe fn decode_avx512(packed: &[u8], nbits: u8, weights: &[f32], out: &mut [f32]) {
        let mut table = [0f32; 16];
        table[..weights.len()].copy_from_slice(weights);
        // SAFETY: the array holds one 512-bit vector.
        let table = unsafe { _mm512_loadu_ps(table.as_ptr()) };
        match nbits {
            // SAFETY: the caller's contract, with NB = nbits.
            1 => unsafe { decode_groups::<1>(packed, table, out) },
            // SAFETY: as above.
            2 => unsafe { decode_groups::<2>(packed, table, out) },
            // SAFETY: as above (nbits is 4: 8 is decoded by the scalar reference).
            _ => unsafe { decode_groups::<4>(packed, table, out) },
        }
    }

    /// # Safety
    /// As `decode_avx512`, with `NB = nbits` (a constant, so that a group's bytes are one
    /// fixed-size load rather than a copy of a runtime length).
    #[target_feature(enable = "avx512f")]
    unsafe fn decode_groups<const NB: usize>(packed: &[u8], table: __m512, out: &mut [f32]) {
        // Lane j takes field j of a 16-field group: bits j·NB of the group's first 32 bits,
        // or at 4 bits, of its low (lanes 0-7) or high (lanes 8-15) 32 bits.
        let mut shifts = [0u32; 16];
        for (j, s) in shifts.iter_mut().enumerate() {
            *s = ((j * NB) % 32) as u32;
        }
        // SAFETY: the array holds one 512-bit vector.
        let shifts = unsafe { _mm512_loadu_si512(shifts.as_ptr().cast()) };
        let mask = _mm512_set1_epi32((1 << NB) - 1);
        for (g, o) in packed.chunks_exact(2 * NB).zip(out.chunks_exact_mut(16)) {
            let v = if NB == 4 {
                let w = u64::from_le_bytes(g.try_into().expect("8 bytes"));
                _mm512_inserti64x4(
                    _mm512_set1_epi32(w as u32 as i32),
                    _mm256_set1_epi32((w >> 32) as u32 as i32),
                    1,
                )
            } else {
                let mut w = [0u8; 4];
                w[..2 * NB].copy_from_slice(g);
                _mm512_set1_epi32(u32::from_le_bytes(w) as i32)
            };
            let idx = _mm512_and_si512(_mm512_srlv_epi32(v, shifts), mask);
            // SAFETY: `o` holds 16 values.
            unsafe { _mm512_storeu_ps(o.as_mut_ptr(), _mm512_permutexvar_ps(idx, table)) };
        }
    }
}

/// Fields `first ..` of a stream of `width`-bit fields (least significant bit first), one
/// 8-byte load, shift and mask per field; bits past the end of `bytes` read as zero.
///
/// # Panics
/// As [`crate::unpack_uints`].
pub fn unpack_uints_ref(bytes: &[u8], width: u32, first: usize, out: &mut [u32]) {
    check_unpack(bytes, width, first, out.len());
    let w = width as usize;
    let mask = (1u64 << width) - 1;
    for (i, o) in out.iter_mut().enumerate() {
        let bit = (first + i) * w;
        let byte = bit / 8;
        let mut word = [0u8; 8];
        let avail = (bytes.len() - byte).min(8);
        word[..avail].copy_from_slice(&bytes[byte..byte + avail]);
        *o = ((u64::from_le_bytes(word) >> (bit % 8)) & mask) as u32;
    }
}

/// A token's residual, one table lookup per dimension: `out[j] = weights[field j]`.
///
/// # Panics
/// As [`crate::decode_residual`].
pub fn decode_residual_ref(packed: &[u8], nbits: u8, weights: &[f32], out: &mut [f32]) {
    check_decode(packed, nbits, weights, out);
    let nb = nbits as usize;
    let mask = ((1u16 << nb) - 1) as u8;
    for (j, o) in out.iter_mut().enumerate() {
        let bit = j * nb;
        *o = weights[((packed[bit / 8] >> (bit % 8)) & mask) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A stream of `n` random fields of `width` bits, packed as the segment writer packs them.
    fn packed(width: u32, n: usize, seed: u64) -> (Vec<u32>, Vec<u8>) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let vals: Vec<u32> =
            (0..n).map(|_| (rng.gen::<u64>() & ((1u64 << width) - 1)) as u32).collect();
        let mut bytes = vec![0u8; (n * width as usize).div_ceil(8)];
        for (i, &v) in vals.iter().enumerate() {
            for b in 0..width as usize {
                let bit = i * width as usize + b;
                bytes[bit / 8] |= (((v >> b) & 1) as u8) << (bit % 8);
            }
        }
        (vals, bytes)
    }

    proptest! {
        #[test]
        fn unpack_matches_the_fields_written(
            width in 1u32..=32,
            n in 0usize..120,
            seed in any::<u64>(),
            from in 0usize..40,
            extra in 0usize..3,
        ) {
            let (vals, mut bytes) = packed(width, n + from, seed);
            // Trailing bytes beyond the last field (as in a segment) must not be read as
            // fields: fill them with ones.
            bytes.extend(std::iter::repeat_n(0xff, extra));
            for (name, f) in unpack_impls() {
                let mut out = vec![u32::MAX; n];
                f(&bytes, width, from, &mut out);
                prop_assert_eq!(&out[..], &vals[from..], "{}", name);
            }
        }

        #[test]
        fn decode_matches_the_reference(
            nbits in prop::sample::select(vec![1u8, 2, 4, 8]),
            groups in 1usize..12,
            seed in any::<u64>(),
        ) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            // Dimensions that are multiples of 16 (the AVX-512 kernel's group), of 8 only (the
            // AVX2 kernel's), and of neither.
            for dim in [groups * 16, groups * 16 + 8, groups * 8 + 8 / nbits as usize] {
                let packed: Vec<u8> = (0..dim * nbits as usize / 8).map(|_| rng.gen()).collect();
                let weights: Vec<f32> = (0..1 << nbits).map(|i| i as f32 * 0.5 - 1.0).collect();
                let mut want = vec![0f32; dim];
                crate::codes::decode_residual_ref(&packed, nbits, &weights, &mut want);
                for (j, &w) in want.iter().enumerate() {
                    let bit = j * nbits as usize;
                    let code = (packed[bit / 8] >> (bit % 8)) & ((1u16 << nbits) - 1) as u8;
                    prop_assert_eq!(w, weights[code as usize]);
                }
                for (name, f) in decode_impls() {
                    let mut got = vec![f32::NAN; dim];
                    f(&packed, nbits, &weights, &mut got);
                    prop_assert_eq!(&got, &want, "{}", name);
                }
            }
        }
    }

    #[test]
    fn the_wide_kernels_are_under_test_where_the_cpu_has_them() {
        #[cfg(target_arch = "x86_64")]
        {
            let names: Vec<_> = decode_impls().into_iter().map(|(n, _)| n).collect();
            let avx2 = std::arch::is_x86_feature_detected!("avx2");
            assert_eq!(names.contains(&"avx2"), avx2, "{names:?}");
            let f = avx2 && std::arch::is_x86_feature_detected!("avx512f");
            assert_eq!(names.contains(&"avx512"), f, "{names:?}");
            let names: Vec<_> = unpack_impls().into_iter().map(|(n, _)| n).collect();
            assert_eq!(names.contains(&"avx2"), avx2, "{names:?}");
            assert_eq!(names.contains(&"avx512"), avx512::has_vbmi(), "{names:?}");
        }
    }

    #[test]
    #[should_panic(expected = "past the stream")]
    fn a_field_past_the_stream_panics() {
        unpack_uints(&[0u8; 4], 13, 3, &mut [0u32; 1]);
    }
}
