//! Segment files: an immutable batch of documents encoded with the index's codebook.

use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use rayon::prelude::*;
use tartan_codec::{bits_for, pack_uints, packed_len, UintReader};
use tartan_embeddings::Embeddings;
use tartan_ivf::{Ivf, IvfRef};
use tartan_kmeans::{Assignment, CentroidSearch};

use crate::codebook::Codebook;
use crate::container::{Container, ContainerWriter, FileKind};
use crate::deletes::{self, Bitmap};
use crate::error::{IndexError, Result};
use crate::filter::Filter;
use crate::manifest::SegmentMeta;
use crate::{Extras, Progress};

const INFO: &[u8; 8] = b"SEGINFO ";
const DOC_OFFSETS: &[u8; 8] = b"DOCOFFS ";
const ID_OFFSETS: &[u8; 8] = b"IDOFFS  ";
const ID_BYTES: &[u8; 8] = b"IDBYTES ";
const RESIDUALS: &[u8; 8] = b"RESIDUAL";
/// Codes as u16/u32 (format 1 and 2).
const CODES: &[u8; 8] = b"CODES   ";
/// Codes bit-packed at `bits_for(K)` bits (format 3).
const CODE_PACK: &[u8; 8] = b"CODEPACK";
/// Plain inverted file (format 1 and 2): posting offsets and u32 ids.
const IVF_OFFSETS: &[u8; 8] = b"IVFOFFS ";
const IVF_DOCS: &[u8; 8] = b"IVFDOCS ";
/// Packed inverted file (format 3): byte offsets and packed lists.
const IVF_LIST_OFFSETS: &[u8; 8] = b"IVFLOFFS";
const IVF_LISTS: &[u8; 8] = b"IVFLISTS";
const TEXT_OFFSETS: &[u8; 8] = b"TEXTOFFS";
const TEXT_BYTES: &[u8; 8] = b"TEXTDATA";
const META_OFFSETS: &[u8; 8] = b"METAOFFS";
const META_BYTES: &[u8; 8] = b"METADATA";

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

/// Tokens encoded per parallel batch while writing.
const ENCODE_BATCH: usize = 1 << 16;

/// What writing a segment measured.
pub(crate) struct Written {
    pub bytes: u64,
    pub crc32: u32,
    pub sum_sq_residual: f64,
}

impl Written {
    /// The manifest entry of this newly written segment (no deletions yet).
    pub(crate) fn meta(&self, id: u64, file: String, n_docs: u64, n_tokens: u64) -> SegmentMeta {
        SegmentMeta {
            id,
            file: crate::manifest::FileRef { file, bytes: self.bytes, crc32: self.crc32 },
            n_docs,
            n_tokens,
            n_deleted: 0,
            deletions: None,
            mean_sq_residual: Some(self.sum_sq_residual / n_tokens.max(1) as f64),
        }
    }
}

/// Everything of a segment's documents except their residuals and codes.
pub(crate) struct SegmentDocs<'a> {
    /// `n_docs + 1` token offsets.
    pub offsets: Cow<'a, [u64]>,
    pub ids: Vec<&'a str>,
    pub texts: Option<Vec<&'a str>>,
    /// Compact JSON objects, `""` for a document without metadata.
    pub metadata: Option<Vec<&'a str>>,
}

/// Writes a segment file. `residuals` streams every token's packed residual into the open
/// RESIDUAL section (document order) and returns the tokens' codes and the sum of their
/// squared distances to their centroids.
pub(crate) fn write_segment(
    path: &Path,
    docs: &SegmentDocs<'_>,
    codebook: &Codebook,
    progress: &dyn Progress,
    residuals: impl FnOnce(&mut ContainerWriter) -> Result<(Vec<u32>, f64)>,
) -> Result<Written> {
    let n_docs = docs.ids.len();
    let n_tokens = docs.offsets[n_docs] as usize;
    let k = codebook.n_centroids;
    let n_sections = 8 + 2 * (docs.texts.is_some() as usize + docs.metadata.is_some() as usize);
    let mut w = ContainerWriter::create(path, FileKind::Segment, n_sections)?;
    let code_bits = bits_for(k as u64);
    let info = [
        n_docs as u64,
        n_tokens as u64,
        codebook.codec.dim() as u64,
        codebook.codec.nbits() as u64,
        k as u64,
        0,
        code_bits as u64,
        0,
    ];
    w.section(INFO, &info)?;
    w.section(DOC_OFFSETS, &docs.offsets)?;
    write_strings(&mut w, ID_OFFSETS, ID_BYTES, &docs.ids)?;
    w.begin(RESIDUALS, 1)?;
    let (codes, sum_sq) = residuals(&mut w)?;
    w.end()?;
    assert_eq!(codes.len(), n_tokens, "one code per token");
    let mut packed = Vec::new();
    pack_uints(&codes, code_bits, &mut packed);
    w.section(CODE_PACK, &packed)?;
    drop(packed);
    progress.stage("inverted file", 0);
    let ivf = Ivf::build(&docs.offsets, |t| codes[t], k)
        .map_err(|e| IndexError::Corrupt { path: path.to_path_buf(), reason: e.to_string() })?
        .pack();
    w.section(IVF_LIST_OFFSETS, &ivf.offsets)?;
    w.section(IVF_LISTS, &ivf.bytes)?;
    if let Some(texts) = &docs.texts {
        write_strings(&mut w, TEXT_OFFSETS, TEXT_BYTES, texts)?;
    }
    if let Some(meta) = &docs.metadata {
        write_strings(&mut w, META_OFFSETS, META_BYTES, meta)?;
    }
    let (bytes, crc32) = w.finish()?;
    Ok(Written { bytes, crc32, sum_sq_residual: sum_sq })
}

/// Encodes every document of `docs` with `codebook` into a new segment file at `path`.
pub(crate) fn encode(
    path: &Path,
    docs: &Embeddings,
    extras: &Extras,
    codebook: &Codebook,
    assignment: Option<Assignment>,
    progress: &dyn Progress,
) -> Result<Written> {
    let codec = &codebook.codec;
    let dim = codec.dim();
    let n_tokens = docs.n_tokens();
    let bpt = codec.bytes_per_token();
    let parts = SegmentDocs {
        offsets: Cow::Borrowed(docs.offsets()),
        ids: docs.ids().iter().map(String::as_str).collect(),
        texts: extras.texts.as_ref().map(|t| t.iter().map(String::as_str).collect()),
        metadata: extras.metadata.as_ref().map(|m| m.iter().map(String::as_str).collect()),
    };
    write_segment(path, &parts, codebook, progress, |w| {
        progress.stage("encoding", n_tokens as u64);
        let centroids = codebook.centroids();
        let assignment =
            assignment.unwrap_or_else(|| Assignment::auto(codebook.n_centroids, n_tokens));
        let search = CentroidSearch::new(centroids.to_vec(), dim, assignment, 0);
        let mut codes: Vec<u32> = Vec::with_capacity(n_tokens);
        let mut sum_sq = 0f64;
        let mut toks = vec![0f32; ENCODE_BATCH * dim];
        let mut packed = vec![0u8; ENCODE_BATCH * bpt];
        for start in (0..n_tokens).step_by(ENCODE_BATCH) {
            let n = ENCODE_BATCH.min(n_tokens - start);
            let toks = &mut toks[..n * dim];
            docs.read_tokens(start, toks);
            let (batch_codes, dists) = search.nearest(toks);
            sum_sq += dists.iter().map(|&d| d as f64).sum::<f64>();
            let packed = &mut packed[..n * bpt];
            packed.par_chunks_mut(bpt).zip(toks.par_chunks(dim)).zip(&batch_codes).for_each_init(
                || vec![0f32; dim],
                |scratch, ((out, tok), &c)| {
                    codec.encode(tok, &centroids[c as usize * dim..][..dim], scratch, out);
                },
            );
            w.write(packed)?;
            codes.extend(batch_codes);
            progress.advance(n as u64);
        }
        Ok((codes, sum_sq))
    })
}

/// The inverted file of a segment, in its stored form.
fn ivf_ref<'a>(
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
fn write_strings(
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
fn string_sections(
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
}

/// Where a segment's codes lie and how they are stored.
#[derive(Debug)]
enum CodeStore {
    U16(Range<usize>),
    U32(Range<usize>),
    Packed { bytes: Range<usize>, bits: u32 },
}

/// Where a segment's inverted file lies and in which form.
#[derive(Debug)]
enum IvfStore {
    Plain { offsets: Range<usize>, docs: Range<usize> },
    Packed { offsets: Range<usize>, lists: Range<usize> },
}

/// An open segment.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) file: Container,
    pub(crate) n_docs: usize,
    n_centroids: usize,
    bpt: usize,
    doc_offsets: Range<usize>,
    id_offsets: Range<usize>,
    id_bytes: Range<usize>,
    residuals: Range<usize>,
    codes: CodeStore,
    ivf: IvfStore,
    /// Offsets and bytes of the documents' texts, when stored.
    texts: Option<(Range<usize>, Range<usize>)>,
    /// Offsets and bytes of the documents' metadata, when stored.
    metadata: Option<(Range<usize>, Range<usize>)>,
    /// Metadata parsed on first use by a filter.
    parsed: OnceLock<Vec<serde_json::Map<String, serde_json::Value>>>,
    /// The generation's deletion bitmap file and its contents.
    pub(crate) deleted: Option<(Container, Bitmap)>,
}

impl Segment {
    /// Opens and structurally checks a segment: counts against the manifest, offsets
    /// monotone (O(n_docs + K)); data checksums are left to `verify`.
    pub(crate) fn open(
        dir: &Path,
        meta: &SegmentMeta,
        dim: usize,
        nbits: u8,
        n_centroids: usize,
    ) -> Result<Self> {
        let path = dir.join(&meta.file.file);
        let file = Container::open(&path, FileKind::Segment)?;
        let corrupt = |reason: String| IndexError::Corrupt { path: path.clone(), reason };
        if file.map.len() as u64 != meta.file.bytes {
            return Err(corrupt(format!(
                "file has {} bytes, the manifest says {}",
                file.map.len(),
                meta.file.bytes
            )));
        }
        let info: Vec<u64> = file.slice::<u64>(&file.typed::<u64>(INFO, Some(8))?).to_vec();
        let (n_docs, n_tokens) = (meta.n_docs as usize, meta.n_tokens as usize);
        let expect = [n_docs as u64, n_tokens as u64, dim as u64, nbits as u64, n_centroids as u64];
        if info[..5] != expect {
            return Err(corrupt(format!(
                "segment header {:?} disagrees with the manifest {expect:?}",
                &info[..5]
            )));
        }
        let bpt = dim * nbits as usize / 8;
        let doc_offsets = file.typed::<u64>(DOC_OFFSETS, Some(n_docs + 1))?;
        let offs: &[u64] = file.slice(&doc_offsets);
        if offs[0] != 0 || offs[n_docs] != n_tokens as u64 || offs.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(corrupt(
                "document offsets are not strictly increasing from 0 to the token count".into(),
            ));
        }
        let (id_offsets, id_bytes) = string_sections(&file, ID_OFFSETS, ID_BYTES, n_docs)?;
        let optional = |offs: &[u8; 8], bytes: &[u8; 8]| match file.elem_size(offs) {
            Some(_) => string_sections(&file, offs, bytes, n_docs).map(Some),
            None => Ok(None),
        };
        let texts = optional(TEXT_OFFSETS, TEXT_BYTES)?;
        let metadata = optional(META_OFFSETS, META_BYTES)?;
        let deleted = deletes::open(dir, meta)?;
        let residuals = file.range(RESIDUALS, 1)?;
        if residuals.len() != n_tokens * bpt {
            return Err(corrupt(format!(
                "residuals hold {} bytes, expected {}",
                residuals.len(),
                n_tokens * bpt
            )));
        }
        // Format 3 packs codes at bits_for(K) bits (code width 0); formats 1 and 2 store u16
        // up to 65,536 centroids and u32 beyond.
        let bits = bits_for(n_centroids as u64);
        let codes = match (info[5], info[6]) {
            (0, b) if b == bits as u64 => {
                let bytes = file.range(CODE_PACK, 1)?;
                if bytes.len() != packed_len(n_tokens, bits) {
                    return Err(corrupt(format!(
                        "packed codes hold {} bytes, expected {}",
                        bytes.len(),
                        packed_len(n_tokens, bits)
                    )));
                }
                CodeStore::Packed { bytes, bits }
            }
            (2, 0) if n_centroids <= 1 << 16 => {
                CodeStore::U16(file.typed::<u16>(CODES, Some(n_tokens))?)
            }
            (4, 0) if n_centroids > 1 << 16 => {
                CodeStore::U32(file.typed::<u32>(CODES, Some(n_tokens))?)
            }
            (w, b) => {
                return Err(corrupt(format!(
                    "code width {w} / {b} bits does not fit {n_centroids} centroids"
                )))
            }
        };
        let ivf = if file.elem_size(IVF_LISTS).is_some() {
            IvfStore::Packed {
                offsets: file.typed::<u64>(IVF_LIST_OFFSETS, Some(n_centroids + 1))?,
                lists: file.range(IVF_LISTS, 1)?,
            }
        } else {
            IvfStore::Plain {
                offsets: file.typed::<u64>(IVF_OFFSETS, Some(n_centroids + 1))?,
                docs: file.typed::<u32>(IVF_DOCS, None)?,
            }
        };
        ivf_ref(&file, &ivf, n_centroids, n_docs)
            .map_err(|e| corrupt(format!("inverted file: {e}")))?;
        Ok(Self {
            file,
            n_docs,
            n_centroids,
            bpt,
            doc_offsets,
            id_offsets,
            id_bytes,
            residuals,
            codes,
            ivf,
            texts,
            metadata,
            parsed: OnceLock::new(),
            deleted,
        })
    }

    /// The documents not deleted in this generation, in order.
    pub(crate) fn live_docs(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.n_docs).filter(|&d| self.is_live(d))
    }

    /// Whether `doc` is not deleted in this generation.
    #[inline]
    pub(crate) fn is_live(&self, doc: usize) -> bool {
        self.deleted.as_ref().is_none_or(|(_, b)| !b.contains(doc))
    }
    /// Live documents matching `filter` (all live documents without one).
    pub(crate) fn allowed(&self, filter: Option<&Filter>) -> Result<Bitmap> {
        let mut set = Bitmap::full(self.n_docs);
        if let Some((_, del)) = &self.deleted {
            set.subtract(del);
        }
        if let Some(f) = filter {
            let parsed = self.parsed_metadata()?;
            let empty = serde_json::Map::new();
            for d in 0..self.n_docs {
                if set.contains(d) && !f.matches(parsed.get(d).unwrap_or(&empty)) {
                    set.remove(d);
                }
            }
        }
        Ok(set)
    }
    fn parsed_metadata(&self) -> Result<&[serde_json::Map<String, serde_json::Value>]> {
        if self.metadata.is_none() {
            return Ok(&[]);
        }
        if let Some(p) = self.parsed.get() {
            return Ok(p);
        }
        let parsed = (0..self.n_docs)
            .map(|d| {
                let text = self.metadata(d).expect("metadata present")?;
                if text.is_empty() {
                    return Ok(serde_json::Map::new());
                }
                serde_json::from_str(text).map_err(|e| IndexError::Corrupt {
                    path: self.file.path.clone(),
                    reason: format!("metadata of document {d} is not a JSON object: {e}"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(self.parsed.get_or_init(|| parsed))
    }
    /// Stored metadata (compact JSON, `""` for none) of `doc`, if the segment holds metadata.
    pub(crate) fn metadata(&self, doc: usize) -> Option<Result<&str>> {
        self.metadata.as_ref().map(|(o, b)| self.string(o, b, doc, "metadata"))
    }
    /// Whether the segment stores texts / metadata.
    pub(crate) fn has_texts(&self) -> bool {
        self.texts.is_some()
    }
    pub(crate) fn has_metadata(&self) -> bool {
        self.metadata.is_some()
    }

    /// `n_docs + 1` token offsets.
    pub(crate) fn doc_offsets(&self) -> &[u64] {
        self.file.slice(&self.doc_offsets)
    }
    fn token_range(&self, doc: usize) -> Range<usize> {
        let o = self.doc_offsets();
        o[doc] as usize..o[doc + 1] as usize
    }
    /// Centroid ids of `doc`'s tokens.
    pub(crate) fn codes(&self, doc: usize) -> Codes<'_> {
        let r = self.token_range(doc);
        match &self.codes {
            CodeStore::U16(c) => Codes::U16(&self.file.slice::<u16>(c)[r]),
            CodeStore::U32(c) => Codes::U32(&self.file.slice::<u32>(c)[r]),
            CodeStore::Packed { bytes, bits } => {
                Codes::Packed(UintReader::new(&self.file.map[bytes.clone()], *bits), r)
            }
        }
    }
    /// Centroid ids of the segment's first `n_tokens` tokens.
    fn all_codes(&self, n_tokens: usize) -> Codes<'_> {
        match &self.codes {
            CodeStore::U16(c) => Codes::U16(&self.file.slice::<u16>(c)[..n_tokens]),
            CodeStore::U32(c) => Codes::U32(&self.file.slice::<u32>(c)[..n_tokens]),
            CodeStore::Packed { bytes, bits } => {
                Codes::Packed(UintReader::new(&self.file.map[bytes.clone()], *bits), 0..n_tokens)
            }
        }
    }
    /// Packed residuals of `doc`'s tokens.
    pub(crate) fn residuals(&self, doc: usize) -> &[u8] {
        let r = self.token_range(doc);
        &self.file.map
            [self.residuals.start + r.start * self.bpt..self.residuals.start + r.end * self.bpt]
    }
    /// The inverted file (offsets were checked at open).
    pub(crate) fn ivf(&self) -> IvfRef<'_> {
        match &self.ivf {
            // Every list header was checked at open; search takes a view per query and
            // must not parse K headers again each time.
            IvfStore::Packed { offsets, lists } => IvfRef::packed_prechecked(
                self.file.slice(offsets),
                &self.file.map[lists.clone()],
                self.n_docs,
            ),
            IvfStore::Plain { .. } => ivf_ref(&self.file, &self.ivf, self.n_centroids, self.n_docs)
                .expect("checked at open"),
        }
    }
    /// External id of `doc`.
    pub(crate) fn id(&self, doc: usize) -> Result<&str> {
        self.string(&self.id_offsets, &self.id_bytes, doc, "id")
    }
    /// Stored text of `doc`, if the segment holds texts.
    pub(crate) fn text(&self, doc: usize) -> Option<Result<&str>> {
        self.texts.as_ref().map(|(o, b)| self.string(o, b, doc, "text"))
    }
    fn string(
        &self,
        offsets: &Range<usize>,
        bytes: &Range<usize>,
        doc: usize,
        what: &str,
    ) -> Result<&str> {
        let o: &[u64] = self.file.slice(offsets);
        let b = &self.file.map[bytes.start + o[doc] as usize..bytes.start + o[doc + 1] as usize];
        std::str::from_utf8(b).map_err(|_| IndexError::Corrupt {
            path: self.file.path.clone(),
            reason: format!("{what} of document {doc} is not UTF-8"),
        })
    }

    /// Bytes of each of [`COMPONENTS`], in order (0 for absent optional sections).
    pub(crate) fn component_sizes(&self) -> impl Iterator<Item = u64> + '_ {
        let f = &self.file;
        COMPONENTS.iter().map(move |(_, tags)| {
            tags.iter()
                .map(|t| {
                    f.elem_size(t).and_then(|e| f.range(t, e).ok()).map_or(0, |r| r.len() as u64)
                })
                .sum()
        })
    }

    /// Full check: data checksum, every code below K, every IVF list sorted and in range,
    /// every id UTF-8.
    pub(crate) fn verify(&self) -> Result<()> {
        self.file.verify()?;
        let corrupt = |reason: String| IndexError::Corrupt { path: self.file.path.clone(), reason };
        let k = self.n_centroids as u32;
        let n_tokens = self.doc_offsets()[self.n_docs] as usize;
        let mut bad_code = None;
        let mut t = 0;
        Codes::for_each(self.all_codes(n_tokens), |c| {
            if c >= k && bad_code.is_none() {
                bad_code = Some(t);
            }
            t += 1;
        });
        if let Some(t) = bad_code {
            return Err(corrupt(format!("token {t} has a centroid id out of range")));
        }
        self.ivf().check_docs().map_err(|e| corrupt(format!("inverted file: {e}")))?;
        for d in 0..self.n_docs {
            self.id(d)?;
            self.text(d).transpose()?;
        }
        if let Some((file, _)) = &self.deleted {
            file.verify()?;
        }
        self.parsed_metadata()?;
        Ok(())
    }
}
