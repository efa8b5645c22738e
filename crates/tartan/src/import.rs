//! Importing a next-plaid index (1.8.x; fast-plaid writes the same layout) without re-encoding
//! the corpus: its centroids, bucket weights, codes and packed residuals become a tartan index
//! that decodes every token to the vector next-plaid decodes. docs/import.md has the mapping.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tartan_codec::ResidualCodec;
use tartan_embeddings::{parse_npy_header, DType};
use tartan_index::{Codebook, EncodedDocs, Extras, Index, Progress};

use crate::error::{Error, Result};

/// What an import read and wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// Documents (ids `"0"`, `"1"`, … : next-plaid's document numbers).
    pub n_docs: usize,
    /// Tokens.
    pub n_tokens: u64,
    /// next-plaid chunks read.
    pub n_chunks: usize,
    /// Vector dimension.
    pub dim: usize,
    /// Residual bits.
    pub nbits: u8,
    /// Centroids.
    pub n_centroids: usize,
    /// What was not carried over, and why.
    pub notes: Vec<String>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Import { path: path.to_path_buf(), reason: reason.into() }
}

/// A `.npy` file read whole: its shape, element type (one of `dtype`) and data bytes.
fn npy(path: &Path, dtype: &[DType]) -> Result<(Vec<usize>, DType, Vec<u8>)> {
    let mut bytes =
        std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let h = parse_npy_header(path, &bytes)?;
    if !dtype.contains(&h.dtype) {
        return Err(bad(path, format!("dtype {:?}, expected one of {dtype:?}", h.dtype)));
    }
    bytes.drain(..h.data_offset);
    Ok((h.shape, h.dtype, bytes))
}

fn f32s(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect()
}

fn json(path: &Path) -> Result<Value> {
    let bytes =
        std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    serde_json::from_slice(&bytes).map_err(|e| bad(path, format!("not JSON: {e}")))
}

/// A 1-D float32 array of exactly `n` values.
fn vector(path: &Path, n: usize) -> Result<Vec<f32>> {
    let (shape, _, data) = npy(path, &[DType::F32])?;
    if shape.iter().product::<usize>() != n || shape.len() != 1 {
        return Err(bad(path, format!("shape {shape:?}, expected [{n}]")));
    }
    Ok(f32s(&data))
}

/// The codec: next-plaid's bucket weights, sorted (tartan's codec wants them ascending; the
/// permutation from next-plaid's bucket numbers to tartan's is returned), and its cutoffs,
/// which only encode documents added later.
fn codec(
    dir: &Path,
    nbits: u8,
    dim: usize,
    notes: &mut Vec<String>,
) -> Result<(ResidualCodec, Vec<u8>)> {
    let n = 1usize << nbits;
    let wpath = dir.join("bucket_weights.npy");
    let weights = vector(&wpath, n)?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| weights[a].total_cmp(&weights[b]));
    let mut to_tartan = vec![0u8; n];
    for (t, &np) in order.iter().enumerate() {
        to_tartan[np] = t as u8;
    }
    let sorted: Vec<f32> = order.iter().map(|&i| weights[i]).collect();
    let cpath = dir.join("bucket_cutoffs.npy");
    let cutoffs = if cpath.exists() {
        let mut c = vector(&cpath, n - 1)?;
        c.sort_by(f32::total_cmp);
        c
    } else {
        notes.push(
            "bucket_cutoffs.npy is absent: documents added later are bucketed at the midpoints \
             of the bucket weights"
                .into(),
        );
        sorted.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect()
    };
    let codec = ResidualCodec::from_parts(nbits, dim, cutoffs, sorted)
        .map_err(|e| bad(&wpath, format!("bucket tables: {e}")))?;
    Ok((codec, to_tartan))
}

/// One chunk's files.
struct Chunk {
    lens: Vec<u64>,
    codes: PathBuf,
    residuals: PathBuf,
}

/// Reads `NP_DIR`, a next-plaid index, and writes a tartan index of the same documents to
/// `dest` (atomically; an existing index is replaced only with `overwrite`). `NP_DIR` is only
/// read. Every token decodes to what next-plaid decodes: the centroid plus the bucket weight
/// per dimension, L2-normalised, with the float32 centroids kept as they are.
///
/// # Errors
/// [`Error::Import`] naming the file for a missing or inconsistent part (a binary index, shapes
/// that disagree with `metadata.json`, a code out of range, lengths that do not add up).
pub fn import_next_plaid(
    src: &Path,
    dest: &Path,
    overwrite: bool,
    memory: u64,
    progress: &dyn Progress,
) -> Result<Imported> {
    let mpath = src.join("metadata.json");
    let meta = json(&mpath)?;
    let get = |k: &str| meta.get(k).and_then(Value::as_u64);
    if meta.get("binary").and_then(Value::as_bool) == Some(true) {
        return Err(bad(
            &mpath,
            "a binary index (1-bit signs scored asymmetrically) has no tartan equivalent",
        ));
    }
    let n_chunks = get("num_chunks").ok_or_else(|| bad(&mpath, "no num_chunks"))? as usize;
    let nbits = get("nbits").ok_or_else(|| bad(&mpath, "no nbits"))?;
    let nbits = match nbits {
        1 | 2 | 4 | 8 => nbits as u8,
        n => return Err(bad(&mpath, format!("nbits {n} (tartan stores 1, 2, 4 or 8)"))),
    };
    let cpath = src.join("centroids.npy");
    let (shape, _, data) = npy(&cpath, &[DType::F32])?;
    let [k, dim] = shape[..] else {
        return Err(bad(&cpath, format!("shape {shape:?}, expected [K, dim]")));
    };
    if k == 0 || dim == 0 || get("num_partitions").is_some_and(|p| p as usize != k) {
        return Err(bad(
            &cpath,
            format!("{k} centroids of dimension {dim}, metadata.json says otherwise"),
        ));
    }
    let mut notes = Vec::new();
    let (codec, to_tartan) = codec(src, nbits, dim, &mut notes)?;
    let codebook = Arc::new(Codebook::imported(f32s(&data), codec, true)?);
    drop(data);

    // Lengths first: ids and offsets are known before any token is read.
    let mut chunks = Vec::with_capacity(n_chunks);
    let mut lens = Vec::new();
    for c in 0..n_chunks {
        let lpath = src.join(format!("doclens.{c}.json"));
        let l = json(&lpath)?;
        let l: Vec<u64> = l
            .as_array()
            .and_then(|a| a.iter().map(Value::as_u64).collect())
            .ok_or_else(|| bad(&lpath, "expected an array of document lengths"))?;
        lens.extend_from_slice(&l);
        chunks.push(Chunk {
            lens: l,
            codes: src.join(format!("{c}.codes.npy")),
            residuals: src.join(format!("{c}.residuals.npy")),
        });
    }
    if let Some(n) = get("num_documents").filter(|&n| n > 0) {
        if n as usize != lens.len() {
            return Err(bad(&mpath, format!("num_documents {n}, the chunks hold {}", lens.len())));
        }
    }
    let ids: Vec<String> = (0..lens.len()).map(|i| i.to_string()).collect();
    let n_tokens: u64 = lens.iter().sum();
    if src.join("metadata.db").exists() {
        notes.push(
            "metadata.db (next-plaid's SQLite metadata) was not imported: tartan reads JSON \
             metadata (tartan add --metadata, or Writer::set_metadata)"
                .into(),
        );
    }
    let packed_np = dim * nbits as usize / 8;
    let mut stream = |emit: &mut tartan_index::TokenSink<'_>| {
        for ch in &chunks {
            let (codes, resid) = read_chunk(ch, k, packed_np).map_err(|e| {
                tartan_index::IndexError::Param { name: "next-plaid chunk", reason: e.to_string() }
            })?;
            let repacked = repack(&resid, nbits, dim, &to_tartan);
            emit(&codes, &repacked)?;
        }
        Ok(())
    };
    let docs = EncodedDocs { ids: &ids, lens: &lens, extras: &Extras::new() };
    Index::build_encoded(dest, codebook, docs, &mut stream, overwrite, memory, progress)?;
    Ok(Imported { n_docs: ids.len(), n_tokens, n_chunks, dim, nbits, n_centroids: k, notes })
}

/// A chunk's codes (checked below `k`) and packed residuals (checked against the lengths).
fn read_chunk(ch: &Chunk, k: usize, packed: usize) -> Result<(Vec<u32>, Vec<u8>)> {
    let n: u64 = ch.lens.iter().sum();
    let (shape, dtype, data) = npy(&ch.codes, &[DType::I64, DType::I32])?;
    if shape != [n as usize] {
        return Err(bad(&ch.codes, format!("shape {shape:?}, the lengths add up to {n}")));
    }
    let wide = dtype == DType::I64;
    let mut codes = Vec::with_capacity(n as usize);
    for (t, b) in data.chunks_exact(if wide { 8 } else { 4 }).enumerate() {
        let c = if wide {
            i64::from_le_bytes(b.try_into().expect("8 bytes"))
        } else {
            i64::from(i32::from_le_bytes(b.try_into().expect("4 bytes")))
        };
        if c < 0 || c as usize >= k {
            return Err(bad(&ch.codes, format!("token {t}: centroid {c}, the index has {k}")));
        }
        codes.push(c as u32);
    }
    let (shape, _, resid) = npy(&ch.residuals, &[DType::U8])?;
    if shape != [n as usize, packed] {
        return Err(bad(&ch.residuals, format!("shape {shape:?}, expected [{n}, {packed}]")));
    }
    Ok((codes, resid))
}

/// next-plaid's packing to tartan's. next-plaid writes dimension i's bucket at bits
/// `i·nbits …` of the token's bytes, most significant bit of a byte first and the bucket's
/// lowest bit first; tartan writes it at bit offset `(i·nbits) mod 8`, lowest bits first
/// (docs/format.md). Bucket numbers go through `to_tartan` (weights sorted).
fn repack(resid: &[u8], nbits: u8, dim: usize, to_tartan: &[u8]) -> Vec<u8> {
    let per_token = dim * nbits as usize / 8;
    let mut out = Vec::with_capacity(resid.len());
    let mut buckets = vec![0u8; dim];
    for tok in resid.chunks_exact(per_token) {
        for (i, b) in buckets.iter_mut().enumerate() {
            let mut v = 0u8;
            for j in 0..nbits as usize {
                let bit = i * nbits as usize + j;
                v |= ((tok[bit / 8] >> (7 - bit % 8)) & 1) << j;
            }
            *b = to_tartan[v as usize];
        }
        out.extend(tartan_codec::pack(&buckets, nbits));
    }
    out
}
