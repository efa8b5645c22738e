//! The inverted file: for every centroid, the sorted, de-duplicated ids of the documents that
//! have at least one token assigned to it.
//!
//! [`Ivf::build`] makes one from token codes, and [`Ivf::pack`] compresses it (each list's
//! gaps bit-packed at the width its largest gap needs, about a third of plain `u32` ids).
//! [`IvfRef`] is a validated view over either form as it lies on disk (plain: `K + 1` posting
//! offsets and the `u32` ids; packed: `K + 1` byte offsets and the list bytes), and
//! [`IvfRef::candidates`] unions the lists of the probed cells.
//!
//! ```
//! use tartan_ivf::{Ivf, IvfRef};
//!
//! // Two documents: doc 0 has tokens in cells 2, 0, 2; doc 1 in cells 1, 2.
//! let codes = [2u32, 0, 2, 1, 2];
//! let doc_offsets = [0u64, 3, 5];
//! let ivf = Ivf::build(&doc_offsets, |t| codes[t], 3)?;
//! let packed = ivf.pack();
//! let view = IvfRef::packed(&packed.offsets, &packed.bytes, 3, 2)?;
//! let mut list = Vec::new();
//! view.list_into(2, &mut list);
//! assert_eq!(list, [0, 1]);
//! let mut cands = Vec::new();
//! view.candidates(&[0, 1], &mut cands);
//! assert_eq!(cands, vec![0, 1]);
//! # Ok::<(), tartan_ivf::IvfError>(())
//! ```
//!
//! A packed list is empty (no bytes) or: LEB128 varint `n` (≥ 1), varint first id, and when
//! `n ≥ 2` one byte `w` (1..=32) followed by the `n − 1` gaps `id[i] − id[i−1] − 1` as `w`-bit
//! fields ([`tartan_codec::pack_uints`]), zero-padded to a whole byte.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use tartan_codec::{bits_for, pack_uints, UintReader};

mod stream;
pub use stream::build_packed_in_passes;

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
    /// A packed list's header or length is malformed.
    #[error("packed IVF list {list} is malformed: {reason}")]
    BadList {
        /// The list.
        list: usize,
        /// What is wrong.
        reason: &'static str,
    },
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

    /// The packed form (see the crate docs for the layout).
    pub fn pack(&self) -> PackedIvf {
        let mut offsets = Vec::with_capacity(self.offsets.len());
        let mut bytes = Vec::new();
        let mut gaps = Vec::new();
        offsets.push(0);
        for w in self.offsets.windows(2) {
            pack_list(&self.docs[w[0] as usize..w[1] as usize], &mut gaps, &mut bytes);
            offsets.push(bytes.len() as u64);
        }
        PackedIvf { offsets, bytes }
    }
}

/// Appends one list (ascending, no repeats) in its packed form; `gaps` is scratch.
fn pack_list(list: &[u32], gaps: &mut Vec<u32>, bytes: &mut Vec<u8>) {
    if let Some((&first, rest)) = list.split_first() {
        put_varint(bytes, list.len() as u64);
        put_varint(bytes, first as u64);
        if !rest.is_empty() {
            gaps.clear();
            gaps.extend(list.windows(2).map(|p| p[1] - p[0] - 1));
            let width = bits_for(*gaps.iter().max().expect("non-empty") as u64 + 1);
            bytes.push(width as u8);
            pack_uints(gaps, width, bytes);
        }
    }
}

/// An owned packed inverted file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedIvf {
    /// `n_lists + 1` byte offsets into `bytes`; list `c` is `bytes[offsets[c]..offsets[c + 1]]`.
    pub offsets: Vec<u64>,
    /// All packed lists, concatenated.
    pub bytes: Vec<u8>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A LEB128 varint at the start of `b` and the bytes it took; `None` if cut short or over 64
/// bits.
fn get_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        let bits = (byte & 0x7f) as u64;
        if i == 9 && bits > 1 {
            return None;
        }
        v |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// A packed list's header: `(n, first id, gap reader)`, checked against the list's bytes.
fn parse_list(
    b: &[u8],
    list: usize,
) -> Result<Option<(usize, u64, Option<UintReader<'_>>)>, IvfError> {
    let bad = |reason| IvfError::BadList { list, reason };
    if b.is_empty() {
        return Ok(None);
    }
    let (n, a) = get_varint(b).ok_or(bad("bad length varint"))?;
    if n == 0 {
        return Err(bad("a stored list is empty"));
    }
    let (first, c) = get_varint(&b[a..]).ok_or(bad("bad first-id varint"))?;
    let rest = &b[a + c..];
    if n == 1 {
        return if rest.is_empty() {
            Ok(Some((1, first, None)))
        } else {
            Err(bad("trailing bytes"))
        };
    }
    let (&width, gaps) = rest.split_first().ok_or(bad("gap width missing"))?;
    if !(1..=32).contains(&width) {
        return Err(bad("gap width outside 1..=32"));
    }
    let n_gaps = usize::try_from(n - 1).map_err(|_| bad("length overflows"))?;
    if n_gaps.checked_mul(width as usize).map(|b| b.div_ceil(8)) != Some(gaps.len()) {
        return Err(bad("gap bytes do not match the length"));
    }
    Ok(Some((n as usize, first, Some(UintReader::new(gaps, width as u32)))))
}

/// A checked view of inverted-file arrays (typically memory-mapped), plain or packed.
#[derive(Debug, Clone, Copy)]
pub struct IvfRef<'a> {
    repr: Repr<'a>,
    n_docs: usize,
}

#[derive(Debug, Clone, Copy)]
enum Repr<'a> {
    Plain { offsets: &'a [u64], docs: &'a [u32] },
    Packed { offsets: &'a [u64], bytes: &'a [u8] },
}

/// Checks that `offsets` has `n_lists + 1` non-decreasing values from 0 to `total`.
fn check_offsets(offsets: &[u64], n_lists: usize, total: usize) -> Result<(), IvfError> {
    if offsets.len() != n_lists + 1 {
        return Err(IvfError::OffsetsLen { expected: n_lists + 1, got: offsets.len() });
    }
    if offsets[0] != 0 {
        return Err(IvfError::BadOffsets { list: 0 });
    }
    if let Some(i) = offsets.windows(2).position(|w| w[0] > w[1]) {
        return Err(IvfError::BadOffsets { list: i });
    }
    if offsets[n_lists] != total as u64 {
        return Err(IvfError::BadOffsets { list: n_lists });
    }
    Ok(())
}

impl<'a> IvfRef<'a> {
    /// A plain inverted file: checks that `offsets` has `n_lists + 1` non-decreasing values
    /// from 0 to `docs.len()` (O(n_lists)). Document ids are checked lazily:
    /// [`IvfRef::candidates`] drops ids `≥ n_docs`, and [`IvfRef::check_docs`] scans them all.
    pub fn new(
        offsets: &'a [u64],
        docs: &'a [u32],
        n_lists: usize,
        n_docs: usize,
    ) -> Result<Self, IvfError> {
        check_offsets(offsets, n_lists, docs.len())?;
        Ok(Self { repr: Repr::Plain { offsets, docs }, n_docs })
    }

    /// A packed inverted file ([`Ivf::pack`]): checks the byte offsets as [`IvfRef::new`] does
    /// and every list's header against its length (O(n_lists)), so decoding stays in bounds.
    pub fn packed(
        offsets: &'a [u64],
        bytes: &'a [u8],
        n_lists: usize,
        n_docs: usize,
    ) -> Result<Self, IvfError> {
        check_offsets(offsets, n_lists, bytes.len())?;
        let me = Self { repr: Repr::Packed { offsets, bytes }, n_docs };
        for c in 0..n_lists {
            parse_list(me.packed_bytes(c), c)?;
        }
        Ok(me)
    }

    /// A view over packed arrays that [`IvfRef::packed`] accepted before, without repeating
    /// its O(n_lists) checks: an index checks a segment once at open and then takes a view
    /// per search. Should the arrays be malformed after all, a bad list reads as empty
    /// rather than panicking.
    pub fn packed_prechecked(offsets: &'a [u64], bytes: &'a [u8], n_docs: usize) -> Self {
        Self { repr: Repr::Packed { offsets, bytes }, n_docs }
    }

    fn packed_bytes(&self, c: usize) -> &'a [u8] {
        match self.repr {
            Repr::Packed { offsets, bytes } => offsets
                .get(c..c + 2)
                .and_then(|o| bytes.get(o[0] as usize..o[1] as usize))
                .unwrap_or(&[]),
            Repr::Plain { .. } => unreachable!("packed lists only"),
        }
    }

    /// Number of lists (centroids).
    pub fn n_lists(&self) -> usize {
        match self.repr {
            Repr::Plain { offsets, .. } | Repr::Packed { offsets, .. } => offsets.len() - 1,
        }
    }

    /// Appends the documents of list `c` to `out`, ascending. In a packed list, decoding stops
    /// at the first id `≥ n_docs` (only a corrupt file holds one; [`IvfRef::check_docs`]
    /// reports it).
    ///
    /// # Panics
    /// If `c ≥ n_lists`.
    pub fn list_into(&self, c: usize, out: &mut Vec<u32>) {
        match self.repr {
            Repr::Plain { offsets, docs } => {
                out.extend_from_slice(&docs[offsets[c] as usize..offsets[c + 1] as usize])
            }
            Repr::Packed { .. } => {
                let Some((n, first, gaps)) = parse_list(self.packed_bytes(c), c).ok().flatten()
                else {
                    return;
                };
                let n_docs = self.n_docs as u64;
                let mut d = first;
                if d >= n_docs {
                    return;
                }
                out.push(d as u32);
                for g in gaps.into_iter().flat_map(|r| r.iter(0..n - 1)) {
                    d += g as u64 + 1;
                    if d >= n_docs {
                        return;
                    }
                    out.push(d as u32);
                }
            }
        }
    }

    /// Length of every list, for statistics.
    pub fn list_lens(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.n_lists()).map(move |c| match self.repr {
            Repr::Plain { offsets, .. } => (offsets[c + 1] - offsets[c]) as usize,
            Repr::Packed { .. } => {
                parse_list(self.packed_bytes(c), c).ok().flatten().map_or(0, |l| l.0)
            }
        })
    }

    /// Replaces `out` with the sorted union of the lists of `cells` (ids ≥ n_lists are
    /// ignored, as are document ids ≥ n_docs, which only a corrupt file holds).
    pub fn candidates(&self, cells: &[u32], out: &mut Vec<u32>) {
        out.clear();
        for &c in cells {
            if (c as usize) < self.n_lists() {
                self.list_into(c as usize, out);
            }
        }
        out.sort_unstable();
        out.dedup();
        while out.last().is_some_and(|&d| d as usize >= self.n_docs) {
            out.pop();
        }
    }

    /// Full check that every list is strictly ascending, complete and below `n_docs`;
    /// returns the first bad list.
    pub fn check_docs(&self) -> Result<(), IvfError> {
        let mut l = Vec::new();
        for c in 0..self.n_lists() {
            l.clear();
            self.list_into(c, &mut l);
            let complete = match self.repr {
                Repr::Plain { .. } => true,
                Repr::Packed { .. } => {
                    parse_list(self.packed_bytes(c), c)?.map_or(0, |h| h.0) == l.len()
                }
            };
            if !complete
                || l.windows(2).any(|w| w[0] >= w[1])
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
            let packed = ivf.pack();
            let plain = IvfRef::new(&ivf.offsets, &ivf.docs, k, lens.len()).unwrap();
            let packed = IvfRef::packed(&packed.offsets, &packed.bytes, k, lens.len()).unwrap();
            for view in [plain, packed] {
                view.check_docs().unwrap();
                for (c, len) in view.list_lens().enumerate() {
                    let want: Vec<u32> = (0..lens.len() as u32)
                        .filter(|&d| codes[offsets[d as usize] as usize..offsets[d as usize + 1] as usize].contains(&(c as u32)))
                        .collect();
                    let mut got = Vec::new();
                    view.list_into(c, &mut got);
                    prop_assert_eq!(&got, &want);
                    prop_assert_eq!(len, want.len());
                }
            }
        }

        /// Packing round-trips any ascending lists, including ids near `u32::MAX` and wide gaps.
        #[test]
        fn pack_roundtrip(lists in prop::collection::vec(prop::collection::btree_set(any::<u32>(), 0..40), 1..8)) {
            let mut offsets = vec![0u64];
            let mut docs = Vec::new();
            for l in &lists {
                docs.extend(l.iter().copied());
                offsets.push(docs.len() as u64);
            }
            let ivf = Ivf { offsets, docs };
            let p = ivf.pack();
            let view = IvfRef::packed(&p.offsets, &p.bytes, lists.len(), u32::MAX as usize + 1).unwrap();
            view.check_docs().unwrap();
            for (c, l) in lists.iter().enumerate() {
                let mut got = Vec::new();
                view.list_into(c, &mut got);
                prop_assert_eq!(got, l.iter().copied().collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn packed_lists_are_small_and_checked() {
        // 1,000 postings with gaps below 64 take 7 bits each instead of 32.
        let docs: Vec<u32> = (0..1000u32).map(|i| i * 50 + i % 7).collect();
        let ivf = Ivf { offsets: vec![0, 0, 1000], docs };
        let p = ivf.pack();
        assert_eq!(p.offsets[1], 0, "an empty list takes no bytes");
        assert!(p.bytes.len() < 1000 * 7 / 8 + 8, "{} bytes", p.bytes.len());
        let view = IvfRef::packed(&p.offsets, &p.bytes, 2, 50_000).unwrap();
        let mut cands = vec![];
        view.candidates(&[1, 0], &mut cands);
        assert_eq!(cands, ivf.docs);
        IvfRef::packed_prechecked(&p.offsets, &p.bytes, 50_000).candidates(&[1, 0], &mut cands);
        assert_eq!(cands, ivf.docs);
        // A malformed list seen through a prechecked view reads as empty, without panicking.
        let junk = IvfRef::packed_prechecked(&[0, 2, 9], &[0x80, 0x80], 10);
        junk.candidates(&[0, 1, 5], &mut cands);
        assert!(cands.is_empty());
        assert_eq!(junk.list_lens().collect::<Vec<_>>(), [0, 0]);
        // Ids at or beyond n_docs are dropped and make check_docs fail.
        let short = IvfRef::packed(&p.offsets, &p.bytes, 2, 40_000).unwrap();
        short.candidates(&[1], &mut cands);
        assert_eq!(cands.len(), 800);
        assert!(short.check_docs().is_err());
        // Malformed headers and lengths are errors at open.
        let bad =
            |bytes: &[u8]| IvfRef::packed(&[0, bytes.len() as u64], bytes, 1, 10).unwrap_err();
        assert!(matches!(
            bad(&[0]),
            IvfError::BadList { list: 0, reason: "a stored list is empty" }
        ));
        assert!(matches!(bad(&[0x80]), IvfError::BadList { reason: "bad length varint", .. }));
        assert!(matches!(bad(&[1, 3, 0]), IvfError::BadList { reason: "trailing bytes", .. }));
        assert!(matches!(bad(&[2, 3]), IvfError::BadList { reason: "gap width missing", .. }));
        assert!(matches!(
            bad(&[2, 3, 33, 0, 0, 0, 0, 0]),
            IvfError::BadList { reason: "gap width outside 1..=32", .. }
        ));
        assert!(matches!(
            bad(&[3, 3, 5, 0]),
            IvfError::BadList { reason: "gap bytes do not match the length", .. }
        ));
        let ok = [3u8, 3, 4, 0x21];
        let v = IvfRef::packed(&[0, 4], &ok, 1, 10).unwrap();
        let mut l = vec![];
        v.list_into(0, &mut l);
        assert_eq!(l, [3, 5, 8]);
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
