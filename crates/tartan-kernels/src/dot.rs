use std::sync::OnceLock;

type DotFn = fn(&[f32], &[f32]) -> f32;

/// The best dot kernel for this CPU, chosen once.
fn best() -> DotFn {
    static BEST: OnceLock<DotFn> = OnceLock::new();
    *BEST.get_or_init(|| {
        *dot_impls().last().map(|(_, f)| f).unwrap_or(&(crate::dot::dot_ref as DotFn))
    })
}

/// Every dot implementation this CPU can run, scalar first, by name. Tests and benches use it
/// to compare each kernel with the scalar reference.
pub fn dot_impls() -> Vec<(&'static str, DotFn)> {
    let mut v: Vec<(&'static str, DotFn)> = vec![("scalar", crate::dot::dot_ref)];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        v.push(("avx2", avx2::dot));
    }
    v
}

/// Dot product of two equal-length slices.
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot of slices with different lengths");
    best()(a, b)
}

/// `acc[i] = max(acc[i], row[i])`. Plain code: the compiler vectorises it at any opt-level ≥ 1.
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn max_assign(acc: &mut [f32], row: &[f32]) {
    assert_eq!(acc.len(), row.len(), "max_assign of slices with different lengths");
    for (a, &r) in acc.iter_mut().zip(row) {
        *a = a.max(r);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Safe entry point; only handed out by `dot_impls` after AVX2 and FMA were detected.
    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        // SAFETY: `dot_impls` returns this function only when the CPU reports AVX2 and FMA, and
        // the lengths were checked equal above.
        unsafe { dot_avx2(a, b) }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA, and `a.len() == b.len()`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: i + 16 <= n, so both 8-lane loads at i and i + 8 are in bounds.
            unsafe {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
                acc1 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                    acc1,
                );
            }
            i += 16;
        }
        if i + 8 <= n {
            // SAFETY: i + 8 <= n.
            unsafe {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            }
            i += 8;
        }
        let acc = _mm256_add_ps(acc0, acc1);
        let hi = _mm256_extractf128_ps(acc, 1);
        let lo = _mm256_castps256_ps128(acc);
        let s = _mm_add_ps(hi, lo);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        let mut total = _mm_cvtss_f32(s);
        while i < n {
            total += a[i] * b[i];
            i += 1;
        }
        total
    }
}

/// Asks the CPU to bring `data` into cache ahead of use (a hint: it changes no value and
/// never faults). Exact scoring reads one row of the query × centroid scores per document
/// token, scattered over a table larger than L2; fetching a document's rows before its
/// arithmetic overlaps those misses instead of meeting them one tile at a time.
#[inline]
pub fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = std::mem::size_of_val(data);
        let start = data.as_ptr().cast::<i8>();
        let mut off = 0;
        while off < bytes {
            // SAFETY: prefetch is a hint that never faults; the address is inside `data`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(off)) };
            off += 64;
        }
        if bytes > 0 {
            // The last line, when the slice does not start on a line boundary.
            // SAFETY: as above.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(bytes - 1)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// Dot product of two equal-length slices, summed left to right.
///
/// # Panics
/// If the lengths differ.
pub fn dot_ref(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot of slices with different lengths");
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_impl_matches_scalar(v in proptest::collection::vec((-1.0f32..1.0, -1.0f32..1.0), 0..300)) {
            let (a, b): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            let want = crate::dot::dot_ref(&a, &b);
            for (name, f) in dot_impls() {
                let got = f(&a, &b);
                prop_assert!((got - want).abs() <= 1e-4 * (1.0 + want.abs()), "{name}: {got} vs {want}");
            }
            prop_assert!((dot(&a, &b) - want).abs() <= 1e-4 * (1.0 + want.abs()));
        }

        #[test]
        fn max_assign_is_elementwise_max(v in proptest::collection::vec((-5.0f32..5.0, -5.0f32..5.0), 0..100)) {
            let (mut a, b): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x.max(*y)).collect();
            max_assign(&mut a, &b);
            prop_assert_eq!(a, want);
        }
    }

    /// The proptest above compares each vectorised kernel with the scalar one; on a CPU
    /// without AVX2+FMA the only kernel is the scalar one and that comparison is empty. Say
    /// which it was, so a green run is not mistaken for a tested SIMD path.
    #[test]
    #[allow(clippy::print_stderr)] // the note is the point
    fn kernels_under_test_are_named() {
        let names: Vec<&str> = dot_impls().iter().map(|(n, _)| *n).collect();
        assert_eq!(names[0], "scalar");
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            assert!(names.contains(&"avx2"), "{names:?}");
        }
        if names.len() == 1 {
            eprintln!("NOTE: this CPU runs only the scalar dot product; no SIMD kernel was tested");
        }
    }

    #[test]
    #[should_panic(expected = "different lengths")]
    fn dot_rejects_mismatched_lengths() {
        dot(&[1.0, 2.0], &[1.0]);
    }

    #[test]
    fn prefetch_takes_any_slice() {
        // Empty, shorter than a line, and unaligned slices: a hint has nothing to observe but
        // that it neither panics (the empty slice's last-line arithmetic) nor faults.
        let v = [1u8; 200];
        prefetch::<u8>(&[]);
        prefetch(&v[3..4]);
        prefetch(&v[1..199]);
    }
}
