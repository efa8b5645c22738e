//! An open index: manifest, codebook and segments, memory-mapped read-only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::codebook::Codebook;
use crate::error::{IndexError, Result};
use crate::filter::Filter;
use crate::format::container::{Container, FileKind};
use crate::format::manifest::Manifest;
use crate::format::CodebookId;
use crate::scorer::Scorer;
use crate::segment::Segment;

/// How often `open` follows a generation that moved on while it was opening.
const OPEN_ATTEMPTS: usize = 100;

/// A published generation of an index, opened read-only. Cheap to share across threads.
#[derive(Debug)]
pub struct Index {
    pub(crate) dir: PathBuf,
    pub(crate) manifest: Manifest,
    pub(crate) scorer: Scorer,
    pub(crate) segments: Vec<Segment>,
    /// First global document number of each segment, plus the total at the end.
    pub(crate) doc_bases: Vec<u64>,
}

/// Sizes and shape of an index, for `tartan inspect`.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexStats {
    /// Generation number.
    pub generation: u64,
    /// Documents.
    pub n_docs: u64,
    /// Tokens.
    pub n_tokens: u64,
    /// Dimension.
    pub dim: usize,
    /// Residual bits per dimension.
    pub nbits: u8,
    /// Centroids.
    pub n_centroids: usize,
    /// Segments.
    pub n_segments: usize,
    /// Bytes of the codebook file.
    pub codebook_bytes: u64,
    /// Deleted documents still stored (until compaction).
    pub n_deleted: u64,
    /// Per segment: (id, documents, deleted, tokens, mean squared residual when written).
    pub segments: Vec<(u64, u64, u64, u64, Option<f64>)>,
    /// Bytes per component over all segments: (name, bytes).
    pub components: Vec<(&'static str, u64)>,
    /// Bytes of all files.
    pub total_bytes: u64,
    /// IVF list lengths: min, median, mean, max, empty lists.
    pub ivf_lists: (usize, usize, f64, usize, usize),
    /// Mean squared token-to-centroid distance at build.
    pub mean_sq_residual: f64,
}

impl IndexStats {
    /// How much farther from their centroids the tokens of segments are than the tokens the
    /// codebook was built on (token-weighted mean squared residual ratio; 1 right after a
    /// build). Well above 1 (say 1.25) means added documents drift from the training data and
    /// `retrain` would restore the compression's accuracy.
    pub fn codebook_drift(&self) -> f64 {
        let (mut sum, mut toks) = (0.0, 0u64);
        for &(_, _, _, n_tokens, msr) in &self.segments {
            if let Some(m) = msr {
                sum += m * n_tokens as f64;
                toks += n_tokens;
            }
        }
        if toks == 0 || self.mean_sq_residual <= 0.0 {
            return 1.0;
        }
        sum / toks as f64 / self.mean_sq_residual
    }

    /// Bytes of the index per token: every file except the stored texts (which are a copy of
    /// the corpus, not part of the index's cost).
    pub fn bytes_per_token(&self) -> f64 {
        let texts = self.components.iter().find(|c| c.0 == "texts").map_or(0, |c| c.1);
        (self.total_bytes - texts) as f64 / self.n_tokens.max(1) as f64
    }
}

impl Index {
    /// Opens the index in `dir`: reads the manifest, maps every file and checks headers and
    /// structure (O(documents + centroids)); data checksums are left to [`Index::verify`].
    /// Never writes to `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_inner(dir, None)
    }

    /// Opens the index in `dir` with a codebook already in memory (a collection's shards share
    /// one), which must be the one the index was encoded with: [`IndexError::CodebookMismatch`]
    /// otherwise. Saves reading and widening the index's own copy.
    pub fn open_with_codebook(dir: &Path, codebook: Arc<Codebook>) -> Result<Self> {
        Self::open_inner(dir, Some(Scorer::new(codebook)))
    }

    /// [`Index::open_with_codebook`] with the codebook's search tables too: indexes opened
    /// with one [`Scorer`] (another index's, [`Index::scorer`]) make its tables once.
    pub fn open_with_scorer(dir: &Path, scorer: Scorer) -> Result<Self> {
        Self::open_inner(dir, Some(scorer))
    }

    fn open_inner(dir: &Path, shared: Option<Scorer>) -> Result<Self> {
        // A writer may publish a new generation and remove the old one's files between our
        // reading the manifest and opening them: then a file is missing and the manifest has
        // moved on, and we open the newer generation instead.
        let mut attempts = 0;
        loop {
            let manifest = Manifest::load(dir)?;
            let generation = manifest.generation;
            match Self::open_generation(dir, manifest, shared.clone()) {
                Err(IndexError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound
                        && attempts < OPEN_ATTEMPTS
                        && Manifest::load(dir).is_ok_and(|m| m.generation != generation) =>
                {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    fn open_generation(dir: &Path, manifest: Manifest, shared: Option<Scorer>) -> Result<Self> {
        let stated = manifest.codebook_id.as_deref().and_then(CodebookId::from_hex);
        let scorer = match shared {
            Some(sc)
                if stated.is_some()
                    || sc.codebook().path() == Some(&dir.join(&manifest.codebook.file)) =>
            {
                let cb = sc.codebook();
                if stated.is_some_and(|id| id != cb.id()) {
                    return Err(IndexError::CodebookMismatch {
                        path: dir.to_path_buf(),
                        found: stated.map_or_else(String::new, |id| id.short()),
                        expected: cb.id().short(),
                    });
                }
                if (cb.dim(), cb.n_centroids(), cb.nbits())
                    != (manifest.dim, manifest.n_centroids, manifest.nbits)
                {
                    return Err(IndexError::Corrupt {
                        path: dir.join(crate::format::manifest::META_FILE),
                        reason: "shape disagrees with its codebook id".into(),
                    });
                }
                sc
            }
            // An index from before format 4 states no id: read its codebook to learn it.
            shared => {
                let own = Self::open_codebook(dir, &manifest)?;
                match shared {
                    Some(sc) if sc.codebook().id() != own.id() => {
                        return Err(IndexError::CodebookMismatch {
                            path: dir.to_path_buf(),
                            found: own.id().short(),
                            expected: sc.codebook().id().short(),
                        })
                    }
                    // The same codebook: its tables are shared too.
                    Some(sc) => sc,
                    None => Scorer::new(Arc::new(own)),
                }
            }
        };
        let segments = manifest
            .segments
            .iter()
            .map(|s| Segment::open(dir, s, manifest.dim, manifest.nbits, manifest.n_centroids))
            .collect::<Result<Vec<_>>>()?;
        let mut doc_bases = vec![0u64];
        for s in &segments {
            doc_bases.push(doc_bases.last().expect("non-empty") + s.n_docs as u64);
        }
        if *doc_bases.last().expect("non-empty") > u32::MAX as u64 {
            return Err(IndexError::Corrupt {
                path: dir.join(crate::format::manifest::META_FILE),
                reason: "more than 2^32 - 1 documents".into(),
            });
        }
        Ok(Self { dir: dir.to_path_buf(), manifest, scorer, segments, doc_bases })
    }

    /// Opens the codebook file the manifest names and checks it against the manifest.
    fn open_codebook(dir: &Path, manifest: &Manifest) -> Result<Codebook> {
        let cb_path = dir.join(&manifest.codebook.file);
        let shape = (manifest.dim, manifest.n_centroids, manifest.nbits);
        let codebook = Codebook::open_file(&cb_path, Some(shape))?;
        let len = std::fs::metadata(&cb_path)
            .map_err(|source| IndexError::Io { path: cb_path.clone(), source })?
            .len();
        if len != manifest.codebook.bytes {
            return Err(IndexError::Corrupt {
                path: cb_path,
                reason: format!(
                    "file has {len} bytes, the manifest says {}",
                    manifest.codebook.bytes
                ),
            });
        }
        if let Some(stated) = &manifest.codebook_id {
            if *stated != codebook.id().to_hex() {
                return Err(IndexError::Corrupt {
                    path: cb_path,
                    reason: "the codebook's id differs from the manifest's codebook_id".into(),
                });
            }
        }
        Ok(codebook)
    }

    /// Recomputes every checksum (each file's data checksum and the manifest's whole-file
    /// CRC) and checks every value that search relies on. O(index size).
    pub fn verify(&self) -> Result<()> {
        let check_whole = |c: &crate::format::container::Container, want: u32| {
            c.verify()?;
            if c.whole_crc() != want {
                return Err(IndexError::Corrupt {
                    path: c.path.clone(),
                    reason: "file checksum differs from the manifest".into(),
                });
            }
            Ok(())
        };
        let cb_path = self.dir.join(&self.manifest.codebook.file);
        let cb_file = Container::open(&cb_path, FileKind::Codebook)?;
        check_whole(&cb_file, self.manifest.codebook.crc32)?;
        // The codebook in use (perhaps a collection's shared one) has the id the file states,
        // and the file's content has that id.
        let own = Self::open_codebook(&self.dir, &self.manifest)?;
        own.verify_id(&cb_path)?;
        if own.id() != self.codebook().id() {
            return Err(IndexError::Corrupt {
                path: cb_path,
                reason: "the codebook file changed since the index was opened".into(),
            });
        }
        for (s, m) in self.segments.iter().zip(&self.manifest.segments) {
            check_whole(&s.file, m.file.crc32)?;
            if let (Some((file, _)), Some(fref)) = (&s.deleted, &m.deletions) {
                check_whole(file, fref.crc32)?;
            }
            s.verify()?;
        }
        Ok(())
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The published manifest (`meta.json`).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.manifest.dim
    }
    /// Number of live (not deleted) documents.
    pub fn n_docs(&self) -> u64 {
        self.manifest.n_live()
    }
    /// Generation number of this opened index.
    pub fn generation(&self) -> u64 {
        self.manifest.generation
    }
    /// External ids of the live documents, in document order.
    pub fn ids(&self) -> Result<Vec<&str>> {
        let mut out = Vec::with_capacity(self.n_docs() as usize);
        for seg in &self.segments {
            for d in seg.live_docs() {
                out.push(seg.id(d)?);
            }
        }
        Ok(out)
    }
    /// Centroids, `n_centroids × dim` (L2-normalised).
    pub fn centroids(&self) -> &[f32] {
        self.scorer.codebook().centroids()
    }
    /// The codebook every segment is encoded with (shareable: build another index or shard
    /// with it through [`IndexParams::codebook`](crate::IndexParams::codebook)).
    pub fn codebook(&self) -> &Arc<Codebook> {
        self.scorer.codebook()
    }
    /// The codebook with its search tables, to open other indexes of the same codebook with
    /// ([`Index::open_with_scorer`]) and to prepare queries ([`Scorer::prepare`]).
    pub fn scorer(&self) -> &Scorer {
        &self.scorer
    }

    /// Sizes and list statistics.
    pub fn stats(&self) -> IndexStats {
        let mut comps: Vec<(&'static str, u64)> =
            crate::segment::COMPONENTS.iter().map(|(name, _)| (*name, 0)).collect();
        let mut lens: Vec<usize> = vec![0; self.manifest.n_centroids];
        for s in &self.segments {
            for (c, bytes) in comps.iter_mut().zip(s.component_sizes()) {
                c.1 += bytes;
            }
            for (l, n) in lens.iter_mut().zip(s.ivf().list_lens()) {
                *l += n;
            }
        }
        let seg_bytes: u64 = self.manifest.segments.iter().map(|s| s.file.bytes).sum();
        let del_bytes: u64 = self
            .manifest
            .segments
            .iter()
            .filter_map(|s| s.deletions.as_ref())
            .map(|d| d.bytes)
            .sum();
        let data: u64 = comps.iter().map(|c| c.1).sum();
        comps.push(("headers", seg_bytes - data));
        comps.push(("deletions", del_bytes));
        let total_bytes = seg_bytes + del_bytes + self.manifest.codebook.bytes;
        let mut sorted = lens.clone();
        sorted.sort_unstable();
        let ivf_lists = if sorted.is_empty() {
            (0, 0, 0.0, 0, 0)
        } else {
            let sum: usize = sorted.iter().sum();
            (
                sorted[0],
                sorted[sorted.len() / 2],
                sum as f64 / sorted.len() as f64,
                sorted[sorted.len() - 1],
                sorted.iter().filter(|&&l| l == 0).count(),
            )
        };
        IndexStats {
            generation: self.manifest.generation,
            n_docs: self.manifest.n_live(),
            n_tokens: self.manifest.n_tokens,
            n_deleted: self.manifest.n_deleted,
            segments: self
                .manifest
                .segments
                .iter()
                .map(|s| (s.id, s.n_docs, s.n_deleted, s.n_tokens, s.mean_sq_residual))
                .collect(),
            dim: self.manifest.dim,
            nbits: self.manifest.nbits,
            n_centroids: self.manifest.n_centroids,
            n_segments: self.segments.len(),
            codebook_bytes: self.manifest.codebook.bytes,
            components: comps,
            total_bytes,
            ivf_lists,
            mean_sq_residual: self.manifest.build.mean_sq_residual,
        }
    }

    /// The top-level fields of every stored document's metadata (deleted documents'
    /// included), sorted: what a filter can match on.
    pub fn metadata_fields(&self) -> Result<Vec<String>> {
        let mut out = std::collections::BTreeSet::new();
        for s in &self.segments {
            for m in s.parsed_metadata()? {
                out.extend(m.keys().cloned());
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The stored text of the document at position `doc` (from [`SearchHit::doc`]), if its
    /// segment stores texts.
    ///
    /// [`SearchHit::doc`]: crate::SearchHit::doc
    pub fn text(&self, doc: u64) -> Option<Result<&str>> {
        if doc >= self.manifest.n_docs {
            return None;
        }
        let (s, d) = self.locate(doc as u32);
        self.segments[s].text(d)
    }

    /// The external id of the document at position `doc` (deleted or not).
    pub fn id(&self, doc: u64) -> Option<Result<&str>> {
        if doc >= self.manifest.n_docs {
            return None;
        }
        let (s, d) = self.locate(doc as u32);
        Some(self.segments[s].id(d))
    }

    /// Positions of the live documents whose metadata matches `filter` (every live document
    /// without one), ascending.
    pub fn matching(&self, filter: Option<&Filter>) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        for (seg, &base) in self.segments.iter().zip(&self.doc_bases) {
            out.extend(seg.allowed(filter)?.iter().map(|d| base + d as u64));
        }
        Ok(out)
    }

    /// The stored metadata object of the document at position `doc` (compact JSON, `""` when
    /// it has none), if its segment stores metadata.
    pub fn metadata(&self, doc: u64) -> Option<Result<&str>> {
        if doc >= self.manifest.n_docs {
            return None;
        }
        let (s, d) = self.locate(doc as u32);
        self.segments[s].metadata(d)
    }

    /// The decompressed token vectors (`n_tokens × dim`, row-major) of the document at
    /// position `doc`: what stage 4 of search scores.
    pub fn decompress(&self, doc: u64) -> Option<Result<Vec<f32>>> {
        if doc >= self.manifest.n_docs {
            return None;
        }
        let (s, d) = self.locate(doc as u32);
        let mut out = Vec::new();
        Some(self.decompress_into(s, d, &mut out).map(|()| out))
    }

    /// [`Index::decompress`] as an `n_tokens × dim` matrix.
    pub fn decompress_matrix(&self, doc: u64) -> Option<Result<ndarray::Array2<f32>>> {
        let dim = self.manifest.dim;
        self.decompress(doc).map(|r| {
            r.map(|v| {
                ndarray::Array2::from_shape_vec((v.len() / dim, dim), v).expect("whole tokens")
            })
        })
    }

    /// Segment and local document of a global document number.
    pub(crate) fn locate(&self, doc: u32) -> (usize, usize) {
        let s = self.doc_bases.partition_point(|&b| b <= doc as u64) - 1;
        (s, (doc as u64 - self.doc_bases[s]) as usize)
    }
}
