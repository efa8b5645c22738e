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
