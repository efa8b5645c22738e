/// Checks the slice shapes of `C = A · Bᵀ` and returns `(m, n)`.
pub(crate) fn shape(a: &[f32], b: &[f32], k: usize, c: &[f32]) -> (usize, usize) {
    assert!(k > 0, "matmul_nt with k = 0");
    assert!(
        a.len().is_multiple_of(k) && b.len().is_multiple_of(k),
        "matmul_nt: inputs are not multiples of k"
    );
    let (m, n) = (a.len() / k, b.len() / k);
    assert_eq!(c.len(), m * n, "matmul_nt: output has the wrong length");
    (m, n)
}

/// `C = A · Bᵀ`: `a` is `m × k` row-major, `b` is `n × k` row-major, `c` (`m × n`, row-major)
/// is overwritten. Single-threaded: callers parallelise over blocks with rayon, which keeps
/// memory bounded and the thread count under their control.
///
/// # Panics
/// If `k` is 0 or the slice lengths are not `m·k`, `n·k` and `m·n`.
pub fn matmul_nt(a: &[f32], b: &[f32], k: usize, c: &mut [f32]) {
    let (m, n) = shape(a, b, k, c);
    if m == 0 || n == 0 {
        return;
    }
    let (k_i, n_i) = (k as isize, n as isize);
    // SAFETY: `shape` checked that `a` holds m·k, `b` n·k and `c` m·n elements. The strides
    // describe exactly those row-major layouts (Bᵀ is read with row stride 1 and column stride
    // k), so every element sgemm touches is in bounds, and `c` is a unique borrow.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k_i,
            1,
            b.as_ptr(),
            1,
            k_i,
            0.0,
            c.as_mut_ptr(),
            n_i,
            1,
        );
    }
}

/// `C = A · Bᵀ` with three nested loops. `a` is `m × k`, `b` is `n × k`, `c` is `m × n`.
///
/// # Panics
/// If the slice lengths do not fit `k`.
pub fn matmul_nt_ref(a: &[f32], b: &[f32], k: usize, c: &mut [f32]) {
    let (m, n) = shape(a, b, k, c);
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = crate::dot::dot_ref(&a[i * k..(i + 1) * k], &b[j * k..(j + 1) * k]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn matches_scalar_reference_on_odd_shapes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for &(m, n, k) in &[(1, 1, 1), (3, 5, 7), (33, 17, 128), (64, 100, 96), (5, 0, 3)] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..n * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut got = vec![f32::NAN; m * n];
            let mut want = vec![0.0; m * n];
            matmul_nt(&a, &b, k, &mut got);
            crate::matmul::matmul_nt_ref(&a, &b, k, &mut want);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4, "{m}x{n}x{k}: {g} vs {w}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "wrong length")]
    fn rejects_bad_output_length() {
        matmul_nt(&[1.0; 4], &[1.0; 4], 2, &mut [0.0; 3]);
    }
}
