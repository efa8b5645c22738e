//! A statistical profile of real token embeddings, for generating corpora that look like them.
//!
//! Fitting takes four steps, all seeded:
//! 1. the principal directions of the real tokens' second moment `E[x xᵀ]` (uncentred, so
//!    that the projection keeps dot products, the quantity MaxSim sums);
//! 2. every token projected onto the first `dim` of them, turned by a random rotation and
//!    renormalised. The rotation changes no dot product; it spreads the variance over the
//!    coordinates as an encoder's output layer does (MiniLM's 384 coordinates on SciFact
//!    differ in variance by ~2×, principal coordinates by ~10×), rather than sorting it,
//!    which would hand a per-coordinate codec a problem no real encoder poses;
//! 3. k-means on a sample of projected tokens: the clusters stand for the vocabulary's
//!    senses, and each keeps a pool of its members' residuals (token − cluster mean);
//! 4. every real document and query as its sequence of cluster ids (a template), and each
//!    document's nearest documents by mean vector (so that mixed templates stay on topic).

use linfa::prelude::*;
use linfa_linalg::eigh::{EigSort, EighInto};
use ndarray::Array2;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::Path;
use tartan_embeddings::{Embeddings, Precision};
use tartan_kmeans::KMeansParams;

use crate::{DirSink, Sink, SynthError, SynthStats};

/// Settings for [`ProfileParams::fit`]. Defaults (from [`ProfileParams::new`]): output
/// dimension 128, 1,024 clusters, a sample of 131,072 tokens for the principal directions and
/// the clusters, up to 256 residuals kept per cluster, at most 20,000 document templates, seed 0.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileParams {
    dim: usize,
    n_clusters: usize,
    sample_tokens: usize,
    residuals_per_cluster: usize,
    max_templates: usize,
    seed: u64,
}

impl Default for ProfileParams {
    fn default() -> Self {
        Self::new()
    }
}

/// Nearest documents kept per template.
const NEIGHBOURS: usize = 16;
/// Tokens projected per step of the streaming passes.
const CHUNK: usize = 8192;

/// A fitted profile: what [`crate::RealisticParams`] draws from.
#[derive(Debug, Clone)]
pub struct Profile {
    pub(crate) dim: usize,
    source_dim: usize,
    eigenvalues: Vec<f64>,
    basis: Vec<f32>,
    pub(crate) centroids: Vec<f32>,
    /// Per cluster, member residuals (`n × dim`, row-major).
    pub(crate) residuals: Vec<Vec<f32>>,
    /// Per cluster, the RMS norm of its members' residuals.
    pub(crate) spread: Vec<f32>,
    pub(crate) docs: Vec<Vec<u32>>,
    pub(crate) neighbours: Vec<Vec<u32>>,
    pub(crate) queries: Vec<Vec<u32>>,
}

impl ProfileParams {
    /// The defaults above.
    pub fn new() -> Self {
        Self {
            dim: 128,
            n_clusters: 1024,
            sample_tokens: 131_072,
            residuals_per_cluster: 256,
            max_templates: 20_000,
            seed: 0,
        }
    }
    /// Output dimension (at most the real vectors').
    pub fn dim(mut self, dim: usize) -> Self {
        self.dim = dim;
        self
    }
    /// Clusters (token senses).
    pub fn n_clusters(mut self, n: usize) -> Self {
        self.n_clusters = n;
        self
    }
    /// Tokens sampled for the principal directions and the clustering.
    pub fn sample_tokens(mut self, n: usize) -> Self {
        self.sample_tokens = n;
        self
    }
    /// Residuals kept per cluster.
    pub fn residuals_per_cluster(mut self, n: usize) -> Self {
        self.residuals_per_cluster = n;
        self
    }
    /// Real documents kept as templates (a seeded sample when there are more).
    pub fn max_templates(mut self, n: usize) -> Self {
        self.max_templates = n;
        self
    }
    /// Seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn check(&self, docs: &Embeddings, queries: &Embeddings) -> Result<(), SynthError> {
        let bad = |name, expected, got: usize| SynthError::BadSetting {
            name,
            expected,
            got: got.to_string(),
        };
        if docs.dim() != queries.dim() {
            return Err(SynthError::DimMismatch { docs: docs.dim(), queries: queries.dim() });
        }
        if self.dim == 0 || self.dim > docs.dim() {
            return Err(SynthError::BadDim { dim: self.dim, source_dim: docs.dim() });
        }
        if self.n_clusters == 0 {
            return Err(bad("n_clusters", "at least 1", 0));
        }
        if self.residuals_per_cluster == 0 {
            return Err(bad("residuals_per_cluster", "at least 1", 0));
        }
        if self.max_templates < 2 {
            return Err(bad("max_templates", "at least 2", self.max_templates));
        }
        if self.sample_tokens < self.n_clusters {
            return Err(bad("sample_tokens", "at least n_clusters", self.sample_tokens));
        }
        let nonempty = (0..docs.n_docs()).filter(|&d| docs.doc_len(d) > 0).count();
        if nonempty < 2 {
            return Err(SynthError::TooFew {
                what: "non-empty documents",
                need: 2,
                have: nonempty,
            });
        }
        if queries.n_tokens() == 0 {
            return Err(SynthError::TooFew { what: "query tokens", need: 1, have: 0 });
        }
        if docs.n_tokens() < self.n_clusters {
            let have = docs.n_tokens();
            return Err(SynthError::TooFew {
                what: "document tokens",
                need: self.n_clusters,
                have,
            });
        }
        Ok(())
    }

    /// Fits a profile to real document and query embeddings (e.g. a BEIR corpus encoded
    /// with `tartan encode`). Streams the documents; memory is the sample plus the templates.
    ///
    /// # Errors
    /// [`SynthError`] naming the setting, the size or the token that is wrong.
    pub fn fit(&self, docs: &Embeddings, queries: &Embeddings) -> Result<Profile, SynthError> {
        self.check(docs, queries)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let src = docs.dim();
        // The sample: document tokens at random, and every query token up to a quarter of it,
        // so that query-only tokens (question words, the query marker) get clusters of their own.
        let n_doc_sample = self.sample_tokens.min(docs.n_tokens());
        let mut picks = sample(&mut rng, docs.n_tokens(), n_doc_sample).into_vec();
        picks.sort_unstable();
        let n_q = queries.n_tokens().min(self.sample_tokens / 4).max(1);
        let mut q_picks = sample(&mut rng, queries.n_tokens(), n_q).into_vec();
        q_picks.sort_unstable();
        let mut raw = vec![0f32; (picks.len() + q_picks.len()) * src];
        // Embeddings are validated (finite values) when opened. The picks are in file order,
        // so the mapped pages read are released behind the reader, as the later passes do.
        let (doc_rows, query_rows) = raw.split_at_mut(picks.len() * src);
        let mut released = 0;
        for (&t, out) in picks.iter().zip(doc_rows.chunks_exact_mut(src)) {
            docs.read_tokens(t, out);
            if t >= released + CHUNK {
                docs.release_tokens(released..t);
                released = t;
            }
        }
        docs.release_tokens(released..docs.n_tokens());
        for (&t, out) in q_picks.iter().zip(query_rows.chunks_exact_mut(src)) {
            queries.read_tokens(t, out);
        }
        let (eigenvalues, basis) = principal_directions(&raw, src, self.dim)?;
        let basis = rotate(&basis, src, self.dim, &mut rng);
        let sample_proj = project(&raw, &basis, src, self.dim);
        drop(raw);

        let n_train = sample_proj.len() / self.dim;
        let k = self.n_clusters.min(n_train);
        let train = Array2::from_shape_vec((n_train, self.dim), sample_proj)
            .expect("the projection has n_train rows");
        let model = KMeansParams::new(k)
            .seed(rng.gen())
            .normalize(false)
            .max_points_per_centroid(n_train.div_ceil(k))
            .fit(&DatasetBase::from(train.view()))?;
        let centroids = model.centroids().as_slice().expect("standard layout").to_vec();
        let sample_proj = train.into_raw_vec_and_offset().0;
        let labels = tartan_kmeans::nearest_centroids(&sample_proj, &centroids, self.dim).0;
        let (residuals, spread) = self.residual_pools(&sample_proj, &labels, &centroids, k);

        let mut doc_picks: Vec<usize> =
            (0..docs.n_docs()).filter(|&d| docs.doc_len(d) > 0).collect();
        if doc_picks.len() > self.max_templates {
            let keep = sample(&mut rng, doc_picks.len(), self.max_templates).into_vec();
            let mut kept: Vec<usize> = keep.into_iter().map(|i| doc_picks[i]).collect();
            kept.sort_unstable();
            doc_picks = kept;
        }
        let (doc_templates, means) = templates(docs, &doc_picks, &basis, &centroids, self.dim);
        let q_picks: Vec<usize> = (0..queries.n_docs())
            .filter(|&q| queries.doc_len(q) > 0)
            .take(self.max_templates)
            .collect();
        let (query_templates, _) = templates(queries, &q_picks, &basis, &centroids, self.dim);
        let neighbours = nearest_docs(&means, self.dim);
        Ok(Profile {
            dim: self.dim,
            source_dim: src,
            eigenvalues,
            basis,
            centroids,
            residuals,
            spread,
            docs: doc_templates,
            neighbours,
            queries: query_templates,
        })
    }

    fn residual_pools(
        &self,
        points: &[f32],
        labels: &[u32],
        centroids: &[f32],
        k: usize,
    ) -> (Vec<Vec<f32>>, Vec<f32>) {
        let dim = self.dim;
        let mut pools = vec![Vec::new(); k];
        let (mut sq, mut count) = (vec![0f64; k], vec![0usize; k]);
        for (p, &l) in points.chunks_exact(dim).zip(labels) {
            let l = l as usize;
            let c = &centroids[l * dim..(l + 1) * dim];
            let r: Vec<f32> = p.iter().zip(c).map(|(x, m)| x - m).collect();
            sq[l] += r.iter().map(|x| f64::from(x * x)).sum::<f64>();
            count[l] += 1;
            // The first members in file order: for a cluster with more sample members than
            // the cap, the pool leans to the corpus's first documents.
            if pools[l].len() < self.residuals_per_cluster * dim {
                pools[l].extend(r);
            }
        }
        let total = sq.iter().sum::<f64>() / points.len().max(1) as f64 * dim as f64;
        let spread = (0..k)
            .map(|l| if count[l] > 0 { (sq[l] / count[l] as f64).sqrt() } else { total.sqrt() })
            .map(|s| s as f32)
            .collect();
        (pools, spread)
    }
}

impl Profile {
    /// Output dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The real vectors' dimension.
    pub fn source_dim(&self) -> usize {
        self.source_dim
    }
    /// Clusters.
    pub fn n_clusters(&self) -> usize {
        self.spread.len()
    }
    /// Document templates (real documents kept).
    pub fn n_doc_templates(&self) -> usize {
        self.docs.len()
    }
    /// Query templates.
    pub fn n_query_templates(&self) -> usize {
        self.queries.len()
    }
    /// Mean real document length in tokens.
    pub fn mean_doc_len(&self) -> f64 {
        self.docs.iter().map(Vec::len).sum::<usize>() as f64 / self.docs.len() as f64
    }
    /// Share of the real tokens' second moment that the kept directions hold (1 when
    /// nothing was cut).
    pub fn kept_energy(&self) -> f64 {
        let total: f64 = self.eigenvalues.iter().map(|v| v.max(0.0)).sum();
        self.eigenvalues[..self.dim].iter().map(|v| v.max(0.0)).sum::<f64>() / total
    }
    /// The real tokens' second-moment eigenvalues, largest first (`source_dim` of them).
    pub fn eigenvalues(&self) -> &[f64] {
        &self.eigenvalues
    }
    /// Projects real vectors (rows of `source_dim` values) onto the profile's directions and
    /// renormalises them: the real corpus as the generator sees it, to compare against.
    ///
    /// # Panics
    /// If `tokens.len()` is not a multiple of `source_dim`.
    pub fn project(&self, tokens: &[f32]) -> Vec<f32> {
        assert!(tokens.len().is_multiple_of(self.source_dim), "rows of source_dim values");
        project(tokens, &self.basis, self.source_dim, self.dim)
    }
    /// Writes `docs` and `queries` (real embeddings of `source_dim`, e.g. those the profile
    /// was fitted to) to an embeddings directory through [`Profile::project`], with their
    /// ids: the reference a drawn corpus is compared with. Streams, releasing the mapped pages
    /// behind itself. qrels are the caller's to copy.
    ///
    /// # Errors
    /// [`SynthError::BadDim`] if the embeddings are not of `source_dim`; I/O errors writing
    /// `dir`.
    pub fn write_projected(
        &self,
        docs: &Embeddings,
        queries: &Embeddings,
        dir: &Path,
        precision: Precision,
    ) -> Result<SynthStats, SynthError> {
        for e in [docs, queries] {
            if e.dim() != self.source_dim {
                return Err(SynthError::BadDim { dim: self.dim, source_dim: e.dim() });
            }
        }
        let mut sink = DirSink::create(dir, self.dim, precision)?;
        let mut raw = Vec::new();
        for (e, is_doc) in [(docs, true), (queries, false)] {
            for d in 0..e.n_docs() {
                let (start, len) = (e.offsets()[d] as usize, e.doc_len(d));
                raw.resize(len * e.dim(), 0.0);
                e.read_tokens(start, &mut raw);
                let projected = self.project(&raw);
                if is_doc {
                    sink.doc(e.id(d), &projected)?;
                } else {
                    sink.query(e.id(d), &projected)?;
                }
                e.release_tokens(start..start + len);
            }
        }
        Ok(sink.close()?)
    }
    /// Mean RMS residual norm over clusters: how far tokens sit from their sense.
    pub fn mean_spread(&self) -> f32 {
        self.spread.iter().sum::<f32>() / self.spread.len() as f32
    }
}

/// The top `dim` eigenvectors (rows, `dim × src`) of `E[x xᵀ]` over the rows of `raw`, and
/// all eigenvalues, largest first.
fn principal_directions(
    raw: &[f32],
    src: usize,
    dim: usize,
) -> Result<(Vec<f64>, Vec<f32>), SynthError> {
    let n = raw.len() / src;
    // Accumulated in f64 over blocks: a single f32 sum over 10⁵ tokens loses digits.
    let blocks: Vec<Vec<f32>> = raw
        .par_chunks(CHUNK.min(n).max(1) * src)
        .map(|block| {
            let rows = block.len() / src;
            let mut t = vec![0f32; rows * src];
            for (r, row) in block.chunks_exact(src).enumerate() {
                for (j, &x) in row.iter().enumerate() {
                    t[j * rows + r] = x;
                }
            }
            let mut m = vec![0f32; src * src];
            tartan_kernels::matmul_nt(&t, &t, rows, &mut m);
            m
        })
        .collect();
    let mut moment = Array2::<f64>::zeros((src, src));
    for m in &blocks {
        for (acc, &x) in moment.iter_mut().zip(m) {
            *acc += f64::from(x) / n as f64;
        }
    }
    let (vals, vecs) = moment
        .eigh_into()
        .map_err(|e| SynthError::Eigen { reason: e.to_string() })?
        .sort_eig_desc();
    let mut basis = vec![0f32; dim * src];
    for (i, row) in basis.chunks_exact_mut(src).enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = vecs[[j, i]] as f32;
        }
    }
    Ok((vals.to_vec(), basis))
}

/// `Q · basis` for a random orthogonal `dim × dim` matrix `Q` (Gram–Schmidt on Gaussian
/// rows, which gives the Haar distribution up to signs).
fn rotate(basis: &[f32], src: usize, dim: usize, rng: &mut impl Rng) -> Vec<f32> {
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(dim);
    while q.len() < dim {
        let mut v: Vec<f64> = (0..dim).map(|_| rng.sample(rand_distr::StandardNormal)).collect();
        for u in &q {
            let d: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
        }
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        // A draw (numerically) inside the span of the rows so far is drawn again.
        if n > 1e-6 {
            q.push(v.into_iter().map(|a| a / n).collect());
        }
    }
    let mut out = vec![0f32; dim * src];
    for (row, qi) in out.chunks_exact_mut(src).zip(&q) {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..dim).map(|k| qi[k] * f64::from(basis[k * src + j])).sum::<f64>() as f32;
        }
    }
    out
}

/// Rows of `raw` (`n × src`) projected onto `basis` (`dim × src`) and renormalised.
fn project(raw: &[f32], basis: &[f32], src: usize, dim: usize) -> Vec<f32> {
    let n = raw.len() / src;
    let mut out = vec![0f32; n * dim];
    out.par_chunks_mut(CHUNK * dim).zip(raw.par_chunks(CHUNK * src)).for_each(|(o, r)| {
        tartan_kernels::matmul_nt(r, basis, src, o);
        for v in o.chunks_exact_mut(dim) {
            let norm = tartan_kernels::dot(v, v).sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|x| *x /= norm);
            }
        }
    });
    out
}

/// Cluster-id sequences of documents `picks`, and their unit mean vectors (`picks × dim`).
/// Streams the tokens in chunks and releases the mapped pages behind itself.
fn templates(
    e: &Embeddings,
    picks: &[usize],
    basis: &[f32],
    centroids: &[f32],
    dim: usize,
) -> (Vec<Vec<u32>>, Vec<f32>) {
    let src = e.dim();
    let offsets = e.offsets();
    let mut out = Vec::with_capacity(picks.len());
    let mut means = vec![0f32; picks.len() * dim];
    let mut i = 0;
    while i < picks.len() {
        // A run of documents of at most CHUNK tokens (or one longer document).
        let mut j = i + 1;
        let mut toks = e.doc_len(picks[i]);
        while j < picks.len() && toks + e.doc_len(picks[j]) <= CHUNK {
            toks += e.doc_len(picks[j]);
            j += 1;
        }
        let mut raw = vec![0f32; toks * src];
        let mut at = 0;
        for &d in &picks[i..j] {
            let (start, len) = (offsets[d] as usize, e.doc_len(d));
            let dst = &mut raw[at * src..(at + len) * src];
            e.read_tokens(start, dst);
            e.release_tokens(start..start + len);
            at += len;
        }
        let proj = project(&raw, basis, src, dim);
        let labels = tartan_kmeans::nearest_centroids(&proj, centroids, dim).0;
        let mut at = 0;
        for (n, &d) in picks[i..j].iter().enumerate() {
            let len = e.doc_len(d);
            out.push(labels[at..at + len].to_vec());
            let m = &mut means[(i + n) * dim..(i + n + 1) * dim];
            for v in proj[at * dim..(at + len) * dim].chunks_exact(dim) {
                m.iter_mut().zip(v).for_each(|(a, b)| *a += b);
            }
            let norm = tartan_kernels::dot(m, m).sqrt();
            if norm > 0.0 {
                m.iter_mut().for_each(|x| *x /= norm);
            }
            at += len;
        }
        i = j;
    }
    (out, means)
}

/// For each row of `means` (unit vectors), the `NEIGHBOURS` other rows with the largest dot
/// product, best first (fewer when there are fewer rows).
fn nearest_docs(means: &[f32], dim: usize) -> Vec<Vec<u32>> {
    let n = means.len() / dim;
    const BLOCK: usize = 256;
    means
        .par_chunks(BLOCK * dim)
        .enumerate()
        .flat_map_iter(|(b, block)| {
            let rows = block.len() / dim;
            let mut s = vec![0f32; rows * n];
            tartan_kernels::matmul_nt(block, means, dim, &mut s);
            (0..rows)
                .map(|r| {
                    let me = b * BLOCK + r;
                    let mut idx: Vec<u32> = (0..n as u32).filter(|&j| j as usize != me).collect();
                    let row = &s[r * n..(r + 1) * n];
                    let by = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]);
                    let keep = NEIGHBOURS.min(idx.len());
                    if keep < idx.len() {
                        idx.select_nth_unstable_by(keep, by);
                        idx.truncate(keep);
                    }
                    idx.sort_by(by);
                    idx
                })
                .collect::<Vec<_>>()
        })
        .collect()
}
