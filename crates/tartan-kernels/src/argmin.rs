//! The nearest centroid from a row of products: the smallest `norms[j] − 2·dots[j]` (squared
//! distance less the point's own norm) and the first `j` attaining it. After the matrix
//! product this scan is the largest cost of assigning points to centroids (a third of a
//! build's time as a branchy scalar loop); here it runs in 16 independent lanes that the
//! compiler vectorises, with AVX2 when the CPU has it.

use std::sync::OnceLock;

type ArgminFn = fn(&[f32], &[f32]) -> (f32, usize);

fn best() -> ArgminFn {
    static BEST: OnceLock<ArgminFn> = OnceLock::new();
    *BEST.get_or_init(|| *argmin_impls().last().map(|(_, f)| f).unwrap_or(&(lanes as ArgminFn)))
}

/// Every implementation this CPU can run, the scalar reference first, by name.
pub fn argmin_impls() -> Vec<(&'static str, ArgminFn)> {
    let mut v: Vec<(&'static str, ArgminFn)> =
        vec![("scalar", crate::argmin::argmin_shifted_ref), ("lanes", lanes)];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        v.push(("avx2", avx2::argmin_shifted));
    }
    v
}

/// The smallest `norms[j] − 2·dots[j]` and the first `j` with that value; `(∞, usize::MAX)`
/// when there is none (empty input). NaN values are never chosen.
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn argmin_shifted(dots: &[f32], norms: &[f32]) -> (f32, usize) {
    assert_eq!(dots.len(), norms.len(), "argmin_shifted of slices with different lengths");
    best()(dots, norms)
}

const L: usize = 16;

/// Sixteen running minima with their first positions, merged at the end. Plain code that
/// vectorises; `#[inline(always)]` so the AVX2 wrapper compiles its own copy.
#[inline(always)]
fn lanes(dots: &[f32], norms: &[f32]) -> (f32, usize) {
    assert_eq!(dots.len(), norms.len());
    let whole = dots.len() / L * L;
    let mut min = [f32::INFINITY; L];
    let mut at = [u32::MAX; L];
    for (k, (d, c)) in dots[..whole].chunks_exact(L).zip(norms[..whole].chunks_exact(L)).enumerate()
    {
        let base = (k * L) as u32;
        for l in 0..L {
            let v = c[l] - 2.0 * d[l];
            let better = v < min[l];
            min[l] = if better { v } else { min[l] };
            at[l] = if better { base + l as u32 } else { at[l] };
        }
    }
    // The lanes hold the first minimum of their own positions: the answer is the smallest
    // value, and among equal values the lowest position.
    let (mut best, mut pos) = (f32::INFINITY, usize::MAX);
    for l in 0..L {
        if at[l] != u32::MAX && (min[l] < best || (min[l] == best && (at[l] as usize) < pos)) {
            best = min[l];
            pos = at[l] as usize;
        }
    }
    // The tail's positions come after every lane's.
    for j in whole..dots.len() {
        let v = norms[j] - 2.0 * dots[j];
        if v < best {
            best = v;
            pos = j;
        }
    }
    (best, pos)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    /// Safe entry point; only handed out by `argmin_impls` after AVX2 was detected.
    pub(super) fn argmin_shifted(dots: &[f32], norms: &[f32]) -> (f32, usize) {
        // SAFETY: `argmin_impls` returns this function only when the CPU reports AVX2.
        unsafe { lanes_avx2(dots, norms) }
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn lanes_avx2(dots: &[f32], norms: &[f32]) -> (f32, usize) {
        super::lanes(dots, norms)
    }
}

/// The smallest `norms[j] − 2·dots[j]` and the first `j` with that value, one element at a
/// time; `(∞, usize::MAX)` for empty input.
///
/// # Panics
/// If the lengths differ.
pub fn argmin_shifted_ref(dots: &[f32], norms: &[f32]) -> (f32, usize) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_kernel_matches_the_scalar_one(
            v in proptest::collection::vec((-4.0f32..4.0, 0.0f32..3.0), 0..120),
            ties in 0usize..4,
        ) {
            let (mut dots, mut norms): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            // Repeat a value so that ties across lanes and the tail are exercised.
            if dots.len() > 40 && ties > 0 {
                for k in 1..=ties {
                    dots[k * 13] = dots[3];
                    norms[k * 13] = norms[3];
                }
            }
            let want = crate::argmin::argmin_shifted_ref(&dots, &norms);
            for (name, f) in argmin_impls() {
                let got = f(&dots, &norms);
                prop_assert_eq!(got.1, want.1, "{}", name);
                prop_assert_eq!(got.0.to_bits(), want.0.to_bits(), "{}", name);
            }
        }
    }

    #[test]
    fn empty_and_nan_inputs_choose_nothing_or_skip() {
        for (name, f) in argmin_impls() {
            assert_eq!(f(&[], &[]), (f32::INFINITY, usize::MAX), "{name}");
            let dots = [f32::NAN, 1.0, f32::NAN];
            assert_eq!(f(&dots, &[0.0, 0.0, 0.0]), (-2.0, 1), "{name}");
        }
        let names: Vec<_> = argmin_impls().iter().map(|(n, _)| *n).collect();
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            assert!(names.contains(&"avx2"), "{names:?}");
        }
        assert_eq!(names[..2], ["scalar", "lanes"]);
    }
}
