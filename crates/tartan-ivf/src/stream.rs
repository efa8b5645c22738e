//! The packed inverted file built in bounded memory: one counting pass, then the lists in
//! ranges whose postings fit a budget, each range packed and handed on before the next.

use crate::{pack_list, IvfError};

/// Builds the packed form of the inverted file that [`Ivf::build`](crate::Ivf::build) then
/// [`Ivf::pack`](crate::Ivf::pack) would give, byte for byte, without holding all postings.
///
/// `doc_codes(d, buf)` fills `buf` with the centroid ids of document `d`'s tokens (any order,
/// repeats allowed). It is called for every document in order, once to count and once per
/// range, so the codes can be streamed from disk. Lists are grouped into consecutive ranges of
/// at most `max_postings` postings (a longer list is a range of its own); each range's packed
/// bytes go to `sink` in list order, with the number of lists they hold. Returns the `n_lists + 1` byte offsets of the lists in the
/// concatenation of what `sink` received.
///
/// Memory: `8·(n_lists + 1)` bytes of counts and offsets plus the postings of one range.
pub fn build_packed_in_passes<E: From<IvfError>>(
    n_docs: usize,
    n_lists: usize,
    max_postings: usize,
    mut doc_codes: impl FnMut(usize, &mut Vec<u32>) -> Result<(), E>,
    mut sink: impl FnMut(&[u8], usize) -> Result<(), E>,
) -> Result<Vec<u64>, E> {
    if n_docs > u32::MAX as usize {
        return Err(IvfError::TooManyDocs.into());
    }
    let mut codes = Vec::new();
    // Each document's distinct codes, checked; `first_token` names a bad token as Ivf::build
    // does.
    let mut unique = |d: usize, first_token: &mut usize, codes: &mut Vec<u32>| {
        doc_codes(d, codes)?;
        if let Some(i) = codes.iter().position(|&c| c as usize >= n_lists) {
            let err = IvfError::CodeOutOfRange { token: *first_token + i, code: codes[i], n_lists };
            return Err(E::from(err));
        }
        *first_token += codes.len();
        codes.sort_unstable();
        codes.dedup();
        Ok(())
    };
    let mut counts = vec![0u64; n_lists];
    let mut token = 0;
    for d in 0..n_docs {
        unique(d, &mut token, &mut codes)?;
        for &c in &codes {
            counts[c as usize] += 1;
        }
    }
    let max_postings = max_postings.max(1) as u64;
    let mut offsets = Vec::with_capacity(n_lists + 1);
    offsets.push(0u64);
    let (mut bytes, mut gaps, mut postings) = (Vec::new(), Vec::new(), Vec::new());
    let mut start = 0;
    while start < n_lists {
        // The next range: as many lists as fit the budget, at least one.
        let mut end = start + 1;
        let mut total = counts[start];
        while end < n_lists && total + counts[end] <= max_postings {
            total += counts[end];
            end += 1;
        }
        // Local offsets of the range's lists in `postings`, then a fill in document order
        // (so every list comes out ascending).
        let mut fill: Vec<u64> = Vec::with_capacity(end - start);
        let mut acc = 0;
        for &n in &counts[start..end] {
            fill.push(acc);
            acc += n;
        }
        let begin = fill.clone();
        postings.clear();
        postings.resize(total as usize, 0u32);
        if total > 0 {
            let mut token = 0;
            for d in 0..n_docs {
                unique(d, &mut token, &mut codes)?;
                for &c in codes.iter().filter(|&&c| (start..end).contains(&(c as usize))) {
                    let slot = &mut fill[c as usize - start];
                    postings[*slot as usize] = d as u32;
                    *slot += 1;
                }
            }
        }
        bytes.clear();
        let base = *offsets.last().expect("starts with 0");
        for (i, &b) in begin.iter().enumerate() {
            let n = counts[start + i];
            pack_list(&postings[b as usize..(b + n) as usize], &mut gaps, &mut bytes);
            offsets.push(base + bytes.len() as u64);
        }
        sink(&bytes, end - start)?;
        start = end;
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ivf;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn equals_build_then_pack_at_any_budget(
            lens in proptest::collection::vec(0usize..12, 0..60),
            seed in any::<u64>(),
            n_lists in 1usize..20,
            max_postings in 0usize..40,
        ) {
            let mut offsets = vec![0u64];
            for l in &lens {
                offsets.push(offsets.last().unwrap() + *l as u64);
            }
            let n_tokens = *offsets.last().unwrap() as usize;
            let mut x = seed | 1;
            let codes: Vec<u32> = (0..n_tokens)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % n_lists as u64) as u32
                })
                .collect();
            let want = Ivf::build(&offsets, |t| codes[t], n_lists).unwrap().pack();
            let mut got = Vec::new();
            let mut calls = 0;
            let got_offsets = build_packed_in_passes::<IvfError>(
                lens.len(),
                n_lists,
                max_postings,
                |d, buf| {
                    buf.clear();
                    buf.extend(&codes[offsets[d] as usize..offsets[d + 1] as usize]);
                    Ok(())
                },
                |b, _| {
                    calls += 1;
                    got.extend_from_slice(b);
                    Ok(())
                },
            )
            .unwrap();
            prop_assert_eq!(&got_offsets, &want.offsets);
            prop_assert_eq!(&got, &want.bytes);
            prop_assert!(calls >= 1 && calls <= n_lists);
        }
    }

    #[test]
    fn a_tight_budget_takes_several_ranges_and_bad_codes_are_named() {
        let codes = [0u32, 1, 2, 3, 0, 1, 2, 3];
        let offsets = [0u64, 4, 8];
        let docs = |d: usize, buf: &mut Vec<u32>| -> Result<(), IvfError> {
            buf.clear();
            buf.extend(&codes[offsets[d] as usize..offsets[d + 1] as usize]);
            Ok(())
        };
        let mut ranges = 0;
        build_packed_in_passes(2, 4, 2, docs, |_, n| {
            assert_eq!(n, 1);
            ranges += 1;
            Ok::<(), IvfError>(())
        })
        .unwrap();
        assert_eq!(ranges, 4, "each list holds 2 postings: one range each");
        let err = build_packed_in_passes(2, 3, 100, docs, |_, _| Ok(())).unwrap_err();
        assert_eq!(err, IvfError::CodeOutOfRange { token: 3, code: 3, n_lists: 3 });
    }
}
