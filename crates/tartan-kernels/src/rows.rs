//! Running maxima over gathered rows of a byte table: the inner loop of PLAID's approximate
//! scoring, where a document's score for each query token is the best score among the
//! centroids of its tokens. The scores are quantised to one byte per (centroid, query token)
//! so that a 32-token query's row is one 32-byte AVX2 register: a document token costs one
//! load and one `vpmaxub`, against eight float maxima and four times the cache footprint for
//! `f32` rows. AVX-512 would need two rows merged into one register (an insert per row),
//! which costs what the second `vpmaxub` saves, so AVX2 is the widest kernel.

use std::sync::OnceLock;

type MaxRowsFn = fn(&[u8], &[u32], &mut [u8]) -> bool;

fn best() -> MaxRowsFn {
    static BEST: OnceLock<MaxRowsFn> = OnceLock::new();
    *BEST.get_or_init(|| {
        *max_rows_impls().last().map(|(_, f)| f).unwrap_or(&(crate::rows::max_rows_u8_ref as _))
    })
}

/// Every implementation this CPU can run, the scalar reference first, by name. Each behaves
/// as [`max_rows_u8`].
pub fn max_rows_impls() -> Vec<(&'static str, MaxRowsFn)> {
    let mut v: Vec<(&'static str, MaxRowsFn)> = vec![("scalar", crate::rows::max_rows_u8_ref)];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        v.push(("avx2", avx2::max_rows_u8));
    }
    v
}

/// For each `id` of `ids`, `acc[i] = max(acc[i], table[id·w + i])` where `w = acc.len()` is
/// the row width. Returns `false`, with `acc` unchanged, if an id names a row past the table.
///
/// # Panics
/// If `acc` is empty or `table.len()` is not a multiple of `acc.len()`.
#[inline]
pub fn max_rows_u8(table: &[u8], ids: &[u32], acc: &mut [u8]) -> bool {
    best()(table, ids, acc)
}

/// Rows in `table` for rows of `w` bytes; `None` if an id is past them.
///
/// # Panics
/// As [`max_rows_u8`].
pub(crate) fn checked_rows(table: &[u8], ids: &[u32], w: usize) -> Option<usize> {
    assert!(
        w > 0 && table.len().is_multiple_of(w),
        "max_rows_u8: table of {} bytes, rows of {w}",
        table.len()
    );
    let rows = table.len() / w;
    ids.iter().all(|&id| (id as usize) < rows).then_some(rows)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Safe entry point; handed out by `max_rows_impls` only after AVX2 was detected.
    pub(super) fn max_rows_u8(table: &[u8], ids: &[u32], acc: &mut [u8]) -> bool {
        let w = acc.len();
        if w < 32 {
            // No whole register per row; the scalar loop is as good.
            return crate::rows::max_rows_u8_ref(table, ids, acc);
        }
        assert!(
            table.len().is_multiple_of(w),
            "max_rows_u8: table of {} bytes, rows of {w}",
            table.len()
        );
        // SAFETY: the CPU has AVX2 (see `max_rows_impls`); the table is made of rows of
        // `w` ≥ 32 bytes, and the kernel checks every id against their count before it reads
        // the id's row.
        unsafe { max_rows_avx2(table, ids, acc) }
    }

    /// Returns `false`, with `acc` unchanged, if an id is past the table. The ids are checked
    /// in the first column block, before its maximum is stored, instead of in a pass of their
    /// own (which cost a quarter of this function).
    ///
    /// # Safety
    /// The CPU must support AVX2, `acc.len()` must be at least 32 and `table.len()` a
    /// multiple of it.
    #[target_feature(enable = "avx2")]
    unsafe fn max_rows_avx2(table: &[u8], ids: &[u32], acc: &mut [u8]) -> bool {
        let w = acc.len();
        let rows = table.len() / w;
        let t = table.as_ptr();
        let whole = w / 32 * 32;
        // Column blocks outer, ids inner: each block's running maximum stays in a register.
        let mut col = 0;
        while col < whole {
            // SAFETY: col + 32 <= whole <= w = acc.len().
            let mut m = unsafe { _mm256_loadu_si256(acc.as_ptr().add(col).cast()) };
            for &id in ids {
                // The first block checks each id before reading its row; later blocks read
                // only ids it has passed.
                if col == 0 && id as usize >= rows {
                    return false;
                }
                // SAFETY: id < rows, so id·w + col + 32 <= id·w + w <= table.len().
                let r = unsafe { _mm256_loadu_si256(t.add(id as usize * w + col).cast()) };
                m = _mm256_max_epu8(m, r);
            }
            // SAFETY: col + 32 <= w = acc.len().
            unsafe { _mm256_storeu_si256(acc.as_mut_ptr().add(col).cast(), m) };
            col += 32;
        }
        if whole < w {
            let tail = &mut acc[whole..];
            for &id in ids {
                let start = id as usize * w + whole;
                for (a, &r) in tail.iter_mut().zip(&table[start..start + (w - whole)]) {
                    *a = (*a).max(r);
                }
            }
        }
        true
    }
}

/// For each id, `acc[i] = max(acc[i], table[id·w + i])` with `w = acc.len()`, one byte at a
/// time; `false`, with `acc` unchanged, if an id is past the table.
///
/// # Panics
/// If `acc` is empty or `table.len()` is not a multiple of `acc.len()`.
pub fn max_rows_u8_ref(table: &[u8], ids: &[u32], acc: &mut [u8]) -> bool {
    let w = acc.len();
    if checked_rows(table, ids, w).is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_impl_matches_scalar(
            w in 1usize..100,
            rows in 1usize..20,
            seed in any::<u64>(),
            n_ids in 0usize..40,
        ) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let table: Vec<u8> = (0..w * rows).map(|_| rng.gen()).collect();
            let ids: Vec<u32> = (0..n_ids).map(|_| rng.gen_range(0..rows as u32)).collect();
            let start: Vec<u8> = (0..w).map(|_| rng.gen_range(0..64)).collect();
            let mut want = start.clone();
            prop_assert!(crate::rows::max_rows_u8_ref(&table, &ids, &mut want));
            for (name, f) in max_rows_impls() {
                let mut got = start.clone();
                prop_assert!(f(&table, &ids, &mut got));
                prop_assert_eq!(&got, &want, "{}", name);
                // One id past the table: refused, nothing written.
                let mut bad = ids.clone();
                bad.push(rows as u32);
                let mut got = start.clone();
                prop_assert!(!f(&table, &bad, &mut got), "{}", name);
                prop_assert_eq!(&got, &start, "{}", name);
            }
            let mut got = start.clone();
            prop_assert!(max_rows_u8(&table, &ids, &mut got));
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn scalar_reference_is_the_columnwise_max() {
        let table = [1u8, 9, 4, 7, 3, 8];
        let mut acc = [2u8, 2];
        assert!(crate::rows::max_rows_u8_ref(&table, &[0, 2], &mut acc));
        assert_eq!(acc, [3, 9]);
    }

    #[test]
    fn an_id_past_the_table_is_refused_and_changes_nothing() {
        let table = [5u8; 64];
        let mut acc = [1u8; 32];
        assert!(!max_rows_u8(&table, &[0, 1, 2], &mut acc));
        assert_eq!(acc, [1u8; 32]);
    }

    #[test]
    fn the_avx2_kernel_is_under_test_where_the_cpu_has_it() {
        let names: Vec<&str> = max_rows_impls().iter().map(|(n, _)| *n).collect();
        assert_eq!(names[0], "scalar");
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            assert!(names.contains(&"avx2"), "{names:?}");
        }
    }

    #[test]
    #[should_panic(expected = "rows of 3")]
    fn a_table_not_made_of_rows_panics() {
        max_rows_u8(&[0u8; 10], &[], &mut [0u8; 3]);
    }
}
