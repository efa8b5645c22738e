//! The inverted file: for every centroid, the sorted, de-duplicated ids of the documents that
//! have at least one token assigned to it.
//!
//! [`Ivf::build`] makes one from token codes; [`IvfRef`] is a validated view over the two
//! arrays as they lie on disk (`offsets`, `K + 1` values, and `docs`), and
//! [`IvfRef::candidates`] unions the lists of the probed cells.
//!
//! ```
//! use tartan_ivf::{Ivf, IvfRef};
//!
//! // Two documents: doc 0 has tokens in cells 2, 0, 2; doc 1 in cells 1, 2.
//! let codes = [2u32, 0, 2, 1, 2];
//! let doc_offsets = [0u64, 3, 5];
//! let ivf = Ivf::build(&doc_offsets, |t| codes[t], 3)?;
//! let view = IvfRef::new(&ivf.offsets, &ivf.docs, 3, 2)?;
//! assert_eq!(view.list(2), &[0, 1]);
//! let mut cands = Vec::new();
//! view.candidates(&[0, 1], &mut cands);
//! assert_eq!(cands, vec![0, 1]);
//! # Ok::<(), tartan_ivf::IvfError>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// What can be wrong with inverted-file arrays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IvfError {
    /// `offsets` does not hold `n_lists + 1` values.
    #[error("IVF offsets hold {got} values, expected {expected}")]
    OffsetsLen {
        /// `n_lists + 1`.
        expected: usize,
        /// Values present.
        got: usize,
    },
    /// Offsets decrease, do not start at 0 or do not end at the number of postings.
    #[error("IVF offsets are inconsistent at list {list}")]
    BadOffsets {
        /// First list whose offsets are wrong.
        list: usize,
    },
    /// A token's centroid id is out of range.
    #[error("token {token} has centroid id {code}, but there are only {n_lists} centroids")]
    CodeOutOfRange {
        /// Token index.
        token: usize,
        /// Its code.
        code: u32,
        /// Number of centroids.
        n_lists: usize,
    },
    /// More than `u32::MAX` documents.
    #[error("an IVF holds at most 2^32 - 1 documents")]
    TooManyDocs,
}

/// An owned inverted file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ivf {
    /// `n_lists + 1` offsets into `docs`; list `c` is `docs[offsets[c]..offsets[c + 1]]`.
    pub offsets: Vec<u64>,
    /// All lists, concatenated; each list ascending and without repeats.
    pub docs: Vec<u32>,
}

impl Ivf {
    /// Builds the inverted file of documents whose tokens are `doc_offsets[d]..doc_offsets[d+1]`
    /// and whose token `t` has centroid `code(t)` (below `n_lists`). A counting sort: two passes
    /// over the tokens, memory proportional to the postings.
    pub fn build(
        doc_offsets: &[u64],
        code: impl Fn(usize) -> u32,
        n_lists: usize,
    ) -> Result<Self, IvfError> {
        let n_docs = doc_offsets.len().saturating_sub(1);
        if n_docs > u32::MAX as usize {
            return Err(IvfError::TooManyDocs);
        }
        let mut counts = vec![0u64; n_lists + 1];
        let mut doc_codes = Vec::new();
        let unique_codes = |d: usize, buf: &mut Vec<u32>| -> Result<(), IvfError> {
            buf.clear();
            for t in doc_offsets[d] as usize..doc_offsets[d + 1] as usize {
                let c = code(t);
                if c as usize >= n_lists {
                    return Err(IvfError::CodeOutOfRange { token: t, code: c, n_lists });
                }
                buf.push(c);
            }
            buf.sort_unstable();
            buf.dedup();
            Ok(())
        };
        for d in 0..n_docs {
            unique_codes(d, &mut doc_codes)?;
            for &c in &doc_codes {
                counts[c as usize + 1] += 1;
            }
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let offsets = counts;
        let mut fill = offsets.clone();
        let mut docs = vec![0u32; offsets[n_lists] as usize];
        // Documents are visited in order, so every list comes out ascending.
        for d in 0..n_docs {
            unique_codes(d, &mut doc_codes)?;
            for &c in &doc_codes {
                docs[fill[c as usize] as usize] = d as u32;
                fill[c as usize] += 1;
            }
        }
        Ok(Self { offsets, docs })
    }
}

/// A checked view of inverted-file arrays (typically memory-mapped).
#[derive(Debug, Clone, Copy)]
pub struct IvfRef<'a> {
    offsets: &'a [u64],
    docs: &'a [u32],
    n_docs: usize,
}

impl<'a> IvfRef<'a> {
    /// Checks that `offsets` has `n_lists + 1` non-decreasing values from 0 to `docs.len()`
    /// (O(n_lists)). Document ids are checked lazily: [`IvfRef::candidates`] drops ids
    /// `≥ n_docs`, and [`IvfRef::check_docs`] scans them all.
    pub fn new(
        offsets: &'a [u64],
        docs: &'a [u32],
        n_lists: usize,
        n_docs: usize,
    ) -> Result<Self, IvfError> {
        if offsets.len() != n_lists + 1 {
            return Err(IvfError::OffsetsLen { expected: n_lists + 1, got: offsets.len() });
        }
        if offsets[0] != 0 {
            return Err(IvfError::BadOffsets { list: 0 });
        }
        if let Some(i) = offsets.windows(2).position(|w| w[0] > w[1]) {
            return Err(IvfError::BadOffsets { list: i });
        }
        if offsets[n_lists] != docs.len() as u64 {
            return Err(IvfError::BadOffsets { list: n_lists });
        }
        Ok(Self { offsets, docs, n_docs })
    }

    /// Number of lists (centroids).
    pub fn n_lists(&self) -> usize {
        self.offsets.len() - 1
    }
    /// Total postings.
    pub fn n_postings(&self) -> usize {
        self.docs.len()
    }
    /// Documents of list `c`.
    ///
    /// # Panics
    /// If `c ≥ n_lists`.
    pub fn list(&self, c: usize) -> &'a [u32] {
        &self.docs[self.offsets[c] as usize..self.offsets[c + 1] as usize]
    }
    /// Length of every list, for statistics.
    pub fn list_lens(&self) -> impl Iterator<Item = usize> + '_ {
        self.offsets.windows(2).map(|w| (w[1] - w[0]) as usize)
    }

    /// Replaces `out` with the sorted union of the lists of `cells` (ids ≥ n_lists are
    /// ignored, as are document ids ≥ n_docs, which only a corrupt file holds).
    pub fn candidates(&self, cells: &[u32], out: &mut Vec<u32>) {
        out.clear();
        for &c in cells {
            if (c as usize) < self.n_lists() {
                out.extend_from_slice(self.list(c as usize));
            }
        }
        out.sort_unstable();
        out.dedup();
        while out.last().is_some_and(|&d| d as usize >= self.n_docs) {
            out.pop();
        }
    }

    /// Full check that every list is strictly ascending and below `n_docs`; returns the first
    /// bad list.
    pub fn check_docs(&self) -> Result<(), IvfError> {
        for c in 0..self.n_lists() {
            let l = self.list(c);
            if l.windows(2).any(|w| w[0] >= w[1])
                || l.last().is_some_and(|&d| d as usize >= self.n_docs)
            {
                return Err(IvfError::BadOffsets { list: c });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn build_matches_naive(lens in prop::collection::vec(1usize..20, 0..30), seed in any::<u64>(), k in 1usize..12) {
            let mut offsets = vec![0u64];
            for l in &lens { offsets.push(offsets.last().unwrap() + *l as u64); }
            let n_tokens = *offsets.last().unwrap() as usize;
            let codes: Vec<u32> = (0..n_tokens).map(|t| (((t as u64 * 2654435761) ^ seed) % k as u64) as u32).collect();
            let ivf = Ivf::build(&offsets, |t| codes[t], k).unwrap();
            let view = IvfRef::new(&ivf.offsets, &ivf.docs, k, lens.len()).unwrap();
            view.check_docs().unwrap();
            for c in 0..k {
                let want: Vec<u32> = (0..lens.len() as u32)
                    .filter(|&d| codes[offsets[d as usize] as usize..offsets[d as usize + 1] as usize].contains(&(c as u32)))
                    .collect();
                prop_assert_eq!(view.list(c), &want[..]);
            }
        }
    }

    #[test]
    fn rejects_bad_arrays() {
        assert!(matches!(
            Ivf::build(&[0, 1], |_| 5, 3),
            Err(IvfError::CodeOutOfRange { code: 5, .. })
        ));
        assert_eq!(
            IvfRef::new(&[0, 1], &[0], 2, 1).unwrap_err(),
            IvfError::OffsetsLen { expected: 3, got: 2 }
        );
        assert_eq!(
            IvfRef::new(&[0, 2, 1], &[0], 2, 1).unwrap_err(),
            IvfError::BadOffsets { list: 1 }
        );
        assert_eq!(
            IvfRef::new(&[0, 1, 1], &[0, 0], 2, 1).unwrap_err(),
            IvfError::BadOffsets { list: 2 }
        );
        let v = IvfRef::new(&[0, 2], &[1, 0], 1, 2).unwrap();
        assert!(v.check_docs().is_err());
        let v = IvfRef::new(&[0, 2], &[0, 7], 1, 2).unwrap();
        assert!(v.check_docs().is_err());
        let mut out = vec![];
        v.candidates(&[0, 9], &mut out);
        assert_eq!(out, vec![0]);
    }
}
