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
