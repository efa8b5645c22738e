//! The segment file's layout (docs/format.md, "Segment file"): section tags, what each
//! component spans, and the stored forms of codes and of the inverted file.

use std::ops::Range;

use tartan_codec::UintReader;
use tartan_ivf::IvfRef;

use crate::error::{IndexError, Result};
use crate::format::container::{Container, ContainerWriter};

pub(crate) const INFO: &[u8; 8] = b"SEGINFO ";
pub(crate) const DOC_OFFSETS: &[u8; 8] = b"DOCOFFS ";
pub(crate) const ID_OFFSETS: &[u8; 8] = b"IDOFFS  ";
pub(crate) const ID_BYTES: &[u8; 8] = b"IDBYTES ";
pub(crate) const RESIDUALS: &[u8; 8] = b"RESIDUAL";
/// Codes as u16/u32 (format 1 and 2).
pub(crate) const CODES: &[u8; 8] = b"CODES   ";
/// Codes bit-packed at `bits_for(K)` bits (format 3).
pub(crate) const CODE_PACK: &[u8; 8] = b"CODEPACK";
/// Plain inverted file (format 1 and 2): posting offsets and u32 ids.
pub(crate) const IVF_OFFSETS: &[u8; 8] = b"IVFOFFS ";
pub(crate) const IVF_DOCS: &[u8; 8] = b"IVFDOCS ";
/// Packed inverted file (format 3): byte offsets and packed lists.
pub(crate) const IVF_LIST_OFFSETS: &[u8; 8] = b"IVFLOFFS";
pub(crate) const IVF_LISTS: &[u8; 8] = b"IVFLISTS";
pub(crate) const TEXT_OFFSETS: &[u8; 8] = b"TEXTOFFS";
pub(crate) const TEXT_BYTES: &[u8; 8] = b"TEXTDATA";
pub(crate) const META_OFFSETS: &[u8; 8] = b"METAOFFS";
pub(crate) const META_BYTES: &[u8; 8] = b"METADATA";

/// Components of a segment for size accounting, with the sections each spans.
pub(crate) const COMPONENTS: [(&str, &[&[u8; 8]]); 7] = [
    ("doc offsets", &[DOC_OFFSETS]),
    ("ids", &[ID_OFFSETS, ID_BYTES]),
    ("codes", &[CODES, CODE_PACK]),
    ("residuals", &[RESIDUALS]),
    ("ivf", &[IVF_OFFSETS, IVF_DOCS, IVF_LIST_OFFSETS, IVF_LISTS]),
    ("texts", &[TEXT_OFFSETS, TEXT_BYTES]),
    ("metadata", &[META_OFFSETS, META_BYTES]),
];

/// The centroid ids of one document's tokens, as stored.
#[derive(Debug, Clone)]
pub(crate) enum Codes<'a> {
    U16(&'a [u16]),
    U32(&'a [u32]),
    /// Fields `.1` of a bit-packed stream.
    Packed(UintReader<'a>, Range<usize>),
}

impl Codes<'_> {
    /// Calls `f` with each code, in token order.
    #[inline]
    pub(crate) fn for_each(self, mut f: impl FnMut(u32)) {
        match self {
            Codes::U16(c) => c.iter().for_each(|&c| f(c as u32)),
            Codes::U32(c) => c.iter().for_each(|&c| f(c)),
            Codes::Packed(r, range) => r.iter(range).for_each(f),
        }
    }

    /// Hints the CPU to bring the codes into cache (see [`UintReader::prefetch`]).
    #[inline]
    pub(crate) fn prefetch(&self) {
        match self {
            Codes::U16(c) => tartan_kernels::prefetch(c),
            Codes::U32(c) => tartan_kernels::prefetch(c),
            Codes::Packed(r, range) => r.prefetch(range.clone()),
        }
    }

    /// Replaces `out`'s contents with the codes, in token order.
    #[inline]
    pub(crate) fn read_into(self, out: &mut Vec<u32>) {
        out.clear();
        match self {
            Codes::U16(c) => out.extend(c.iter().map(|&c| c as u32)),
            Codes::U32(c) => out.extend_from_slice(c),
            Codes::Packed(r, range) => r.read_into(range, out),
        }
    }
}

/// Where a segment's codes lie and how they are stored.
#[derive(Debug)]
pub(crate) enum CodeStore {
    U16(Range<usize>),
    U32(Range<usize>),
    Packed { bytes: Range<usize>, bits: u32 },
}

/// Where a segment's inverted file lies and in which form.
#[derive(Debug)]
pub(crate) enum IvfStore {
    Plain { offsets: Range<usize>, docs: Range<usize> },
    Packed { offsets: Range<usize>, lists: Range<usize> },
}

/// The inverted file of a segment, in its stored form.
pub(crate) fn ivf_ref<'a>(
    file: &'a Container,
    ivf: &IvfStore,
    n_centroids: usize,
    n_docs: usize,
) -> std::result::Result<IvfRef<'a>, tartan_ivf::IvfError> {
    match ivf {
        IvfStore::Plain { offsets, docs } => {
            IvfRef::new(file.slice(offsets), file.slice(docs), n_centroids, n_docs)
        }
        IvfStore::Packed { offsets, lists } => {
            IvfRef::packed(file.slice(offsets), &file.map[lists.clone()], n_centroids, n_docs)
        }
    }
}

/// Writes strings as an offsets section (`n + 1` u64) and a bytes section.
pub(crate) fn write_strings(
    w: &mut ContainerWriter,
    offsets_tag: &[u8; 8],
    bytes_tag: &[u8; 8],
    strings: &[&str],
) -> Result<()> {
    let mut offsets = vec![0u64];
    for s in strings {
        offsets.push(offsets.last().expect("non-empty") + s.len() as u64);
    }
    w.section(offsets_tag, &offsets)?;
    w.begin(bytes_tag, 1)?;
    for s in strings {
        w.write(s.as_bytes())?;
    }
    w.end()
}

/// Locates and checks an offsets + bytes pair of sections holding `n` strings.
pub(crate) fn string_sections(
    file: &Container,
    offsets_tag: &[u8; 8],
    bytes_tag: &[u8; 8],
    n: usize,
) -> Result<(Range<usize>, Range<usize>)> {
    let offsets = file.typed::<u64>(offsets_tag, Some(n + 1))?;
    let bytes = file.range(bytes_tag, 1)?;
    let o: &[u64] = file.slice(&offsets);
    if o[0] != 0 || o[n] != bytes.len() as u64 || o.windows(2).any(|w| w[0] > w[1]) {
        return Err(IndexError::Corrupt {
            path: file.path.clone(),
            reason: format!(
                "{} offsets are inconsistent",
                String::from_utf8_lossy(offsets_tag).trim()
            ),
        });
    }
    Ok((offsets, bytes))
}
