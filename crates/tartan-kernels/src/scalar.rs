//! Scalar reference implementations; the vectorised kernels are tested against these.

/// Dot product of two equal-length slices, summed left to right.
///
/// # Panics
/// If the lengths differ.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot of slices with different lengths");
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `C = A · Bᵀ` with three nested loops. `a` is `m × k`, `b` is `n × k`, `c` is `m × n`.
///
/// # Panics
/// If the slice lengths do not fit `k`.
pub fn matmul_nt(a: &[f32], b: &[f32], k: usize, c: &mut [f32]) {
    let (m, n) = super::matmul::shape(a, b, k, c);
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = dot(&a[i * k..(i + 1) * k], &b[j * k..(j + 1) * k]);
        }
    }
}

/// The smallest `norms[j] − 2·dots[j]` and the first `j` with that value, one element at a
/// time; `(∞, usize::MAX)` for empty input.
///
/// # Panics
/// If the lengths differ.
pub fn argmin_shifted(dots: &[f32], norms: &[f32]) -> (f32, usize) {
    assert_eq!(dots.len(), norms.len(), "argmin_shifted of slices with different lengths");
    let (mut best, mut pos) = (f32::INFINITY, usize::MAX);
    for (j, (&d, &c)) in dots.iter().zip(norms).enumerate() {
        let v = c - 2.0 * d;
        if v < best {
            best = v;
            pos = j;
        }
    }
    (best, pos)
}

/// For each id, `acc[i] = max(acc[i], table[id·w + i])` with `w = acc.len()`, one byte at a
/// time; `false`, with `acc` unchanged, if an id is past the table.
///
/// # Panics
/// If `acc` is empty or `table.len()` is not a multiple of `acc.len()`.
pub fn max_rows_u8(table: &[u8], ids: &[u32], acc: &mut [u8]) -> bool {
    let w = acc.len();
    if super::rows::checked_rows(table, ids, w).is_none() {
        return false;
    }
    for &id in ids {
        let row = &table[id as usize * w..(id as usize + 1) * w];
        for (a, &r) in acc.iter_mut().zip(row) {
            *a = (*a).max(r);
        }
    }
    true
}

/// Fields `first ..` of a stream of `width`-bit fields (least significant bit first), one
/// 8-byte load, shift and mask per field; bits past the end of `bytes` read as zero.
///
/// # Panics
/// As [`crate::unpack_uints`].
pub fn unpack_uints(bytes: &[u8], width: u32, first: usize, out: &mut [u32]) {
    super::codes::check_unpack(bytes, width, first, out.len());
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
pub fn decode_residual(packed: &[u8], nbits: u8, weights: &[f32], out: &mut [f32]) {
    super::codes::check_decode(packed, nbits, weights, out);
    let nb = nbits as usize;
    let mask = ((1u16 << nb) - 1) as u8;
    for (j, o) in out.iter_mut().enumerate() {
        let bit = j * nb;
        *o = weights[((packed[bit / 8] >> (bit % 8)) & mask) as usize];
    }
}

/// The smallest and largest value, one comparison at a time.
pub fn min_max(values: &[f32]) -> (f32, f32) {
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
pub fn quantize_rows(
    scores: &[f32],
    n: usize,
    grid: crate::Grid,
    out: &mut [u8],
    maxes: &mut [f32],
) {
    let w = super::quant::check(scores, n, out, maxes);
    for ((row, o), m) in scores.chunks_exact(n).zip(out.chunks_exact_mut(w)).zip(maxes) {
        *m = super::quant::finish_row(row, &mut o[..n], grid, f32::NEG_INFINITY);
    }
}

/// The fused MaxSim tile, one step at a time: each row's products in the summation order of
/// [`crate::skinny_matmul`] (one fused multiply-add chain over the dimensions), then shift,
/// scale and maximum.
///
/// # Panics
/// As [`crate::skinny_max`].
pub fn skinny_max(
    a: &[f32],
    b: &crate::SkinnyB,
    shifts: crate::Shifts<'_>,
    scale: Option<&[f32]>,
    best: &mut [f32],
) {
    let rows = super::maxsim::check(a, b, shifts, scale, best);
    let mut prod = vec![0f32; rows * b.n];
    super::skinny::scalar(a, b, &mut prod);
    super::maxsim::fold_rows(&mut prod, b.n, shifts, scale, best);
}
