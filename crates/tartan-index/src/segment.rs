//! An open segment: an immutable batch of documents encoded with the index's codebook,
//! memory-mapped read-only. Its layout is in `segment/layout.rs`, writing in
//! `segment/write.rs`.

pub(crate) mod deletes;
mod layout;
mod spill;
mod write;

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use tartan_codec::{bits_for, packed_len, UintReader};
use tartan_ivf::IvfRef;

use self::deletes::Bitmap;

use crate::error::{IndexError, Result};
use crate::filter::Filter;
use crate::format::container::{Container, FileKind};
use crate::format::manifest::SegmentMeta;
use layout::*;
pub(crate) use layout::{Codes, COMPONENTS};
pub(crate) use spill::CodeSpill;
pub(crate) use write::{write_segment, SegmentDocs, Written};

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
    /// With a normalising codebook: each token's inverse decoded norm, computed on first use
    /// by exact scoring (4 bytes per token in memory, nothing on disk).
    pub(crate) inv_norms: OnceLock<Vec<f32>>,
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
            inv_norms: OnceLock::new(),
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
    pub(crate) fn parsed_metadata(&self) -> Result<&[serde_json::Map<String, serde_json::Value>]> {
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
        // The inverted file must be the one the codes give: rebuilt, list by list.
        let mut codes = Vec::with_capacity(n_tokens);
        Codes::for_each(self.all_codes(n_tokens), |c| codes.push(c));
        let rebuilt = tartan_ivf::Ivf::build(self.doc_offsets(), |t| codes[t], self.n_centroids)
            .map_err(|e| corrupt(format!("inverted file: {e}")))?;
        let (stored, mut list) = (self.ivf(), Vec::new());
        for c in 0..self.n_centroids {
            list.clear();
            stored.list_into(c, &mut list);
            let want = &rebuilt.docs[rebuilt.offsets[c] as usize..rebuilt.offsets[c + 1] as usize];
            if list != want {
                return Err(corrupt(format!(
                    "inverted list {c} disagrees with the codes ({} documents listed, {} coded)",
                    list.len(),
                    want.len()
                )));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::container::ContainerWriter;
    use crate::{Index, IndexParams, NoProgress};

    /// A segment whose inverted file lists other documents than its codes say, with every
    /// checksum right (a buggy writer): `verify` must catch it.
    #[test]
    fn verify_checks_the_inverted_file_against_the_codes() {
        let c = tartan_synth::SynthParams::new(30).dim(16).mean_doc_len(8.0).seed(2).generate();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("idx");
        let index =
            Index::build(&c.docs, &p, &IndexParams::new().n_centroids(8), &NoProgress).unwrap();
        let meta = index.manifest().segments[0].clone();
        let (dim, nbits, k) = (index.dim(), index.manifest().nbits, index.manifest().n_centroids);
        drop(index);
        let path = p.join(&meta.file.file);
        let good = Container::open(&path, FileKind::Segment).unwrap();
        // The same sections, but the inverted file of codes shifted by one centroid.
        let seg = Segment::open(&p, &meta, dim, nbits, k).unwrap();
        let n_tokens = meta.n_tokens as usize;
        let mut codes = Vec::new();
        Codes::for_each(seg.all_codes(n_tokens), |c| codes.push((c + 1) % k as u32));
        let wrong = tartan_ivf::Ivf::build(seg.doc_offsets(), |t| codes[t], k).unwrap().pack();
        drop(seg);
        let forged = dir.path().join("forged.tseg");
        let mut w =
            ContainerWriter::create(&forged, FileKind::Segment, good.sections.len()).unwrap();
        for (tag, range, elem) in &good.sections {
            w.begin(tag, *elem).unwrap();
            match tag {
                IVF_LIST_OFFSETS => w.write(bytemuck::cast_slice(&wrong.offsets)).unwrap(),
                IVF_LISTS => w.write(&wrong.bytes).unwrap(),
                _ => w.write(&good.map[range.clone()]).unwrap(),
            }
            w.end().unwrap();
        }
        let (bytes, crc32) = w.finish().unwrap();
        drop(good);
        std::fs::rename(&forged, &path).unwrap();
        let meta = SegmentMeta {
            file: crate::format::manifest::FileRef { bytes, crc32, ..meta.file },
            ..meta
        };
        let seg = Segment::open(&p, &meta, dim, nbits, k).unwrap();
        let err = seg.verify().unwrap_err().to_string();
        assert!(err.contains("disagrees with the codes"), "{err}");
    }
}
