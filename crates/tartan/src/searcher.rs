//! One searcher over an index or a collection of shards, local or remote: the query is
//! scored against the shared codebook's centroids once, every shard probes and scores its
//! documents (local shards in parallel, remote ones over HTTP at the same time, each within a
//! deadline), and the per-shard top-k lists are merged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ndarray::ArrayView2;

use tartan_index::{
    select_finalists, Candidate, Codebook, CodebookId, CollectionManifest, Index, Manifest,
    PreparedQuery, Scorer, SearchParams, ShardLocation, ShardSet,
};

use crate::error::{Error, Result};
use crate::remote::{RemoteShard, REMOTE_BATCH};
use crate::settings::ShardPolicy;
use crate::wire::{CandidatesResponse, HitJson, SearchRequest};

/// Per search: the policy (default: the searcher's) and whether hits carry their texts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchOptions {
    /// Overrides the searcher's policy.
    pub policy: Option<ShardPolicy>,
    /// Fill [`Hit::text`] where the index stores texts.
    pub with_text: bool,
}

/// One result of a searcher.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// External document id.
    pub id: String,
    /// MaxSim of the query and the decompressed document.
    pub score: f32,
    /// Position of the shard in [`Searcher::shards`].
    pub shard: usize,
    /// The document's position in the local shard's opened generation (for
    /// [`Searcher::text`]); `None` for remote shards.
    pub doc: Option<u64>,
    /// Its stored text, when asked for and stored.
    pub text: Option<String>,
}

/// Which part of the data an answer covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Shards searched.
    pub shards: usize,
    /// Shards that answered.
    pub answered: usize,
    /// Live documents over all shards (as last known for remote shards).
    pub docs: u64,
    /// Live documents of the shards that answered.
    pub docs_answered: u64,
    /// `(shard name, reason)` of each shard that did not answer.
    pub failed: Vec<(String, String)>,
}

impl Coverage {
    /// Whether every shard answered.
    pub fn complete(&self) -> bool {
        self.answered == self.shards
    }
    /// "3 of 4 shards, 75.0% of documents".
    pub fn describe(&self) -> String {
        let pct = 100.0 * self.docs_answered as f64 / self.docs.max(1) as f64;
        format!("{} of {} shards, {pct:.1}% of documents", self.answered, self.shards)
    }
}

/// A search's answer: hits best first, and what they cover.
#[derive(Debug, Clone, PartialEq)]
pub struct Results {
    /// Hits, best first (score descending; ties by shard order, then document order).
    pub hits: Vec<Hit>,
    /// What was searched.
    pub coverage: Coverage,
}

/// A shard of the searcher.
#[derive(Debug)]
pub struct Shard {
    name: String,
    backend: Backend,
    n_docs: u64,
}

#[derive(Debug)]
enum Backend {
    Local(Box<Index>),
    Remote(RemoteShard),
}

impl Shard {
    /// Its name (the index's directory name for a lone index).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The opened index of a local shard.
    pub fn index(&self) -> Option<&Index> {
        match &self.backend {
            Backend::Local(i) => Some(i),
            Backend::Remote(_) => None,
        }
    }
    /// The URL of a remote shard.
    pub fn url(&self) -> Option<&str> {
        match &self.backend {
            Backend::Remote(r) => Some(r.url()),
            Backend::Local(_) => None,
        }
    }
    /// Live documents (as last known, for a remote shard).
    pub fn n_docs(&self) -> u64 {
        self.n_docs
    }
}

/// Searches an index, or a collection of shards as one.
///
/// ```
/// # use tartan::{Searcher, IndexParams, Index, NoProgress, SearchParams};
/// let corpus = tartan_synth::SynthParams::new(200).dim(32).n_queries(1).seed(3).generate();
/// let dir = tempfile::tempdir()?;
/// Index::build(&corpus.docs, &dir.path().join("idx"), &IndexParams::new(), &NoProgress)?;
/// let searcher = Searcher::open(&dir.path().join("idx"))?;
/// let q = corpus.queries.doc(0);
/// let results = searcher.search(ndarray::ArrayView2::from_shape((q.len() / 32, 32), &q)?, &SearchParams::new(3))?;
/// assert_eq!(results.hits.len(), 3);
/// assert!(results.coverage.complete());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Searcher {
    path: PathBuf,
    collection: Option<CollectionManifest>,
    /// The local shards' codebook with its search tables (`None` when every shard is remote).
    scorer: Option<Scorer>,
    codebook_id: CodebookId,
    dim: usize,
    shards: Vec<Shard>,
    policy: ShardPolicy,
    /// The local shards' metadata fields, read on the first filtered search.
    fields: OnceLock<Vec<String>>,
}

/// The name a lone index's shard goes by: its directory name.
fn dir_name(p: &Path) -> String {
    p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned())
}

impl Searcher {
    /// Opens an index directory or a collection directory with the default [`ShardPolicy`].
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, ShardPolicy::default())
    }

    /// Opens an index or a collection. A collection's local shards share one codebook in
    /// memory and must have the collection's codebook id; each remote shard is asked for its
    /// health within the deadline, and refused if it serves another codebook (one that does
    /// not answer is kept and reported in each answer's coverage until it does).
    pub fn open_with(path: &Path, policy: ShardPolicy) -> Result<Self> {
        match crate::detect(path) {
            crate::Found::Collection => return Self::open_collection(path, policy, None),
            crate::Found::Index => {}
            _ => return Err(Error::NotFound { path: path.to_path_buf() }),
        }
        let index = Index::open(path)?;
        let scorer = index.scorer().clone();
        let codebook = scorer.codebook().clone();
        let shard = Shard {
            name: dir_name(path),
            n_docs: index.n_docs(),
            backend: Backend::Local(Box::new(index)),
        };
        Ok(Self {
            path: path.to_path_buf(),
            collection: None,
            codebook_id: codebook.id(),
            dim: codebook.dim(),
            scorer: Some(scorer),
            shards: vec![shard],
            policy,
            fields: OnceLock::new(),
        })
    }

    fn open_collection(path: &Path, policy: ShardPolicy, reuse: Option<&Self>) -> Result<Self> {
        let manifest = CollectionManifest::load(path)?;
        let want = manifest.codebook();
        let mut scorer: Option<Scorer> =
            reuse.and_then(|r| r.scorer.clone()).filter(|sc| sc.codebook().id() == want);
        let mut shards = Vec::with_capacity(manifest.shards.len());
        for entry in &manifest.shards {
            let shard_err = |reason: String| Error::Shard { shard: entry.name.clone(), reason };
            match entry.resolve(path) {
                ShardLocation::Local(dir) => {
                    let index = match &scorer {
                        Some(sc) => Index::open_with_scorer(&dir, sc.clone())?,
                        None => Index::open(&dir)?,
                    };
                    if index.codebook().id() != want {
                        return Err(shard_err(format!(
                            "encoded with codebook {}, the collection's is {}",
                            index.codebook().id().short(),
                            want.short()
                        )));
                    }
                    scorer.get_or_insert_with(|| index.scorer().clone());
                    shards.push(Shard {
                        name: entry.name.clone(),
                        n_docs: index.n_docs(),
                        backend: Backend::Local(Box::new(index)),
                    });
                }
                ShardLocation::Remote(url) => {
                    let client = RemoteShard::new(&entry.name, &url);
                    let n_docs = match client.health(policy.deadline) {
                        Ok(h) if h.codebook_id != manifest.codebook_id => {
                            return Err(shard_err(format!(
                                "{url} serves codebook {}, the collection's is {}",
                                &h.codebook_id[..12.min(h.codebook_id.len())],
                                want.short()
                            )))
                        }
                        Ok(h) if h.dim != manifest.dim => {
                            return Err(shard_err(format!("{url} serves dimension {}", h.dim)))
                        }
                        Ok(h) => h.n_docs,
                        // Down for now: searched (and reported) with every query.
                        Err(_) => entry.n_docs,
                    };
                    shards.push(Shard {
                        name: entry.name.clone(),
                        n_docs,
                        backend: Backend::Remote(client),
                    });
                }
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            codebook_id: want,
            dim: manifest.dim,
            collection: Some(manifest),
            scorer,
            shards,
            policy,
            fields: OnceLock::new(),
        })
    }

    /// Whether what is on disk moved on since this searcher opened: a local shard (or the
    /// index) published a new generation, or the collection's manifest changed.
    pub fn is_stale(&self) -> bool {
        if let Some(m) = &self.collection {
            if CollectionManifest::load(&self.path)
                .map_or(true, |now| now.generation != m.generation)
            {
                return true;
            }
        }
        self.shards.iter().any(|s| match &s.backend {
            Backend::Local(i) => {
                Manifest::load(i.dir()).map_or(true, |m| m.generation != i.generation())
            }
            Backend::Remote(_) => false,
        })
    }

    /// Opens what is on disk now, as [`Searcher::open_with`] with this searcher's policy,
    /// keeping the codebook in memory when it did not change. This searcher stays valid
    /// (readers keep their generation).
    pub fn reopen(&self) -> Result<Self> {
        if self.collection.is_some() {
            return Self::open_collection(&self.path, self.policy, Some(self));
        }
        let sc = self.scorer.clone().expect("an index has its codebook");
        let index = match Index::open_with_scorer(&self.path, sc) {
            Err(tartan_index::IndexError::CodebookMismatch { .. }) => Index::open(&self.path)?,
            other => other?,
        };
        let scorer = index.scorer().clone();
        let codebook = scorer.codebook().clone();
        let shard = Shard {
            name: dir_name(&self.path),
            n_docs: index.n_docs(),
            backend: Backend::Local(Box::new(index)),
        };
        Ok(Self {
            codebook_id: codebook.id(),
            dim: codebook.dim(),
            scorer: Some(scorer),
            shards: vec![shard],
            collection: None,
            path: self.path.clone(),
            policy: self.policy,
            fields: OnceLock::new(),
        })
    }

    /// The directory opened.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The collection's manifest, if a collection was opened.
    pub fn collection(&self) -> Option<&CollectionManifest> {
        self.collection.as_ref()
    }
    /// The shards, in order (one for an index).
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }
    /// The codebook shared by the local shards (`None` when every shard is remote).
    pub fn codebook(&self) -> Option<&Arc<Codebook>> {
        self.scorer.as_ref().map(Scorer::codebook)
    }
    /// The local shards' codebook with its search tables, to prepare queries with.
    pub fn scorer(&self) -> Option<&Scorer> {
        self.scorer.as_ref()
    }
    /// The codebook id every shard shares.
    pub fn codebook_id(&self) -> CodebookId {
        self.codebook_id
    }
    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Residual bits per dimension and centroids K of the codebook.
    pub fn shape(&self) -> (u8, usize) {
        match (&self.collection, self.codebook()) {
            (Some(m), _) => (m.nbits, m.n_centroids),
            (None, Some(cb)) => (cb.nbits(), cb.n_centroids()),
            (None, None) => (0, 0),
        }
    }
    /// Live documents over all shards (as last known for remote shards).
    pub fn n_docs(&self) -> u64 {
        self.shards.iter().map(|s| s.n_docs).sum()
    }
    /// The generation: an index's, or the collection manifest's.
    pub fn generation(&self) -> u64 {
        match (&self.collection, self.shards.first().and_then(Shard::index)) {
            (Some(m), _) => m.generation,
            (None, Some(i)) => i.generation(),
            (None, None) => 0,
        }
    }
    /// The policy for remote shards.
    pub fn policy(&self) -> ShardPolicy {
        self.policy
    }

    /// Every top-level metadata field of the local shards' documents, sorted: what a filter
    /// can match on. Read once per opened generation.
    pub fn metadata_fields(&self) -> Result<&[String]> {
        if let Some(f) = self.fields.get() {
            return Ok(f);
        }
        let mut all = std::collections::BTreeSet::new();
        for i in self.shards.iter().filter_map(Shard::index) {
            all.extend(i.metadata_fields()?);
        }
        Ok(self.fields.get_or_init(|| all.into_iter().collect()))
    }

    /// Refuses a filter that names a metadata field no document has: a typo would otherwise
    /// match nothing, silently. With a remote shard the fields are not all known here, so any
    /// filter passes.
    pub fn check_filter(&self, params: &SearchParams) -> Result<()> {
        let Some(f) = params.filter_expr() else { return Ok(()) };
        if self.shards.iter().any(|s| s.index().is_none()) {
            return Ok(());
        }
        let known = self.metadata_fields()?;
        for field in f.fields() {
            if known.binary_search_by(|k| k.as_str().cmp(field)).is_err() {
                let list = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                return Err(Error::Param {
                    name: "filter",
                    reason: format!(
                        "no document has the metadata field {field:?} (fields: {list})"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The stored text of a hit from a local shard, if its index stores texts.
    pub fn text(&self, hit: &Hit) -> Option<Result<&str>> {
        let index = self.shards.get(hit.shard)?.index()?;
        index.text(hit.doc?).map(|r| r.map_err(Error::from))
    }

    /// Searches one query (`n_tokens × dim`).
    pub fn search(&self, query: ArrayView2<'_, f32>, params: &SearchParams) -> Result<Results> {
        self.search_with(query, params, &SearchOptions::default())
    }

    /// [`Searcher::search`] with options.
    pub fn search_with(
        &self,
        query: ArrayView2<'_, f32>,
        params: &SearchParams,
        opts: &SearchOptions,
    ) -> Result<Results> {
        Ok(self.search_batch(&[query], params, opts)?.remove(0))
    }

    /// Searches a batch of queries: every query is checked and scored against the centroids
    /// once. Local shards are searched as one pool of segments ([`ShardSet`]): exactly what one
    /// index of their documents would return. Remote shards take part in two rounds (the
    /// candidates that survive the approximate passes, then exact scores of the documents
    /// chosen over all shards), so that they too are chosen as one index would choose them.
    /// A shard that fails (a remote one down or late, a local one unreadable) is left out of
    /// the coverage, unless the policy requires all; the search fails when no shard answered.
    pub fn search_batch(
        &self,
        queries: &[ArrayView2<'_, f32>],
        params: &SearchParams,
        opts: &SearchOptions,
    ) -> Result<Vec<Results>> {
        let r = params.resolve()?;
        self.check_filter(params)?;
        let policy = opts.policy.unwrap_or(self.policy);
        let local: Vec<(usize, &Index)> = self
            .shards
            .iter()
            .enumerate()
            .filter_map(|(si, s)| s.index().map(|i| (si, i)))
            .collect();
        let pool = match local.is_empty() {
            true => None,
            false => Some(ShardSet::new(&local.iter().map(|&(_, i)| i).collect::<Vec<_>>())?),
        };
        let remote: Vec<(usize, &RemoteShard)> = self
            .shards
            .iter()
            .enumerate()
            .filter_map(|(si, s)| match &s.backend {
                Backend::Remote(r) => Some((si, r)),
                Backend::Local(_) => None,
            })
            .collect();
        // Per shard, per query: its hits; or why the shard failed.
        let mut per_shard: Vec<Option<Result<Vec<Vec<Hit>>>>> =
            (0..self.shards.len()).map(|_| None).collect();
        if remote.is_empty() {
            // Each query is prepared as it is searched: its centroid scores are not held for
            // the whole batch.
            let pool = pool.as_ref().expect("a collection has a shard");
            let lists = pool.search_queries(queries, params)?;
            per_shard = self
                .by_shard(lists, &local, queries.len(), opts.with_text)?
                .into_iter()
                .map(|l| Some(Ok(l)))
                .collect();
        } else {
            // Both rounds need the prepared queries, so they are held from the first round to
            // the second: a chunk of them at a time, not the whole batch (a MiB per query at
            // 8,192 centroids). A shard that fails on one chunk is left out of the batch.
            self.check_queries(queries)?;
            for (ci, chunk) in queries.chunks(REMOTE_BATCH).enumerate() {
                let prepared = self.prepare(chunk, ci * REMOTE_BATCH)?;
                let mut part: Vec<Option<Result<Vec<Vec<Hit>>>>> =
                    (0..self.shards.len()).map(|_| None).collect();
                self.two_rounds(
                    chunk,
                    params,
                    opts,
                    policy,
                    prepared.as_deref(),
                    pool.as_ref(),
                    &local,
                    &remote,
                    &r,
                    &mut part,
                )?;
                for (slot, got) in per_shard.iter_mut().zip(part) {
                    match (slot.as_mut(), got.expect("every shard searched")) {
                        (Some(Err(_)), _) => {}
                        (Some(Ok(lists)), Ok(more)) => lists.extend(more),
                        (_, got) => *slot = Some(got),
                    }
                }
            }
        }
        self.merge(
            per_shard.into_iter().map(|p| p.expect("every shard searched")).collect(),
            queries.len(),
            r.k,
            policy,
        )
    }

    /// Scores the queries against the local codebook (`None` without one). `first` is the
    /// position of `queries[0]` in the batch, for errors.
    fn prepare(
        &self,
        queries: &[ArrayView2<'_, f32>],
        first: usize,
    ) -> Result<Option<Vec<PreparedQuery>>> {
        let Some(sc) = &self.scorer else { return Ok(None) };
        let prepared = queries.iter().enumerate().map(|(i, q)| sc.prepare(q.view(), first + i));
        Ok(Some(prepared.collect::<tartan_index::Result<_>>()?))
    }

    /// Checks every query's shape and values, as preparing them would, before any is sent.
    fn check_queries(&self, queries: &[ArrayView2<'_, f32>]) -> Result<()> {
        for (i, q) in queries.iter().enumerate() {
            tartan_index::check_query(q.view(), self.dim, i)?;
        }
        Ok(())
    }

    /// A pool's hits per query, split by the collection's shard positions.
    fn by_shard(
        &self,
        lists: Vec<Vec<tartan_index::ShardHit>>,
        local: &[(usize, &Index)],
        n_queries: usize,
        with_text: bool,
    ) -> Result<Vec<Vec<Vec<Hit>>>> {
        let mut by_shard: Vec<Vec<Vec<Hit>>> = vec![vec![Vec::new(); n_queries]; self.shards.len()];
        for (qi, hits) in lists.into_iter().enumerate() {
            for h in hits {
                let si = local[h.shard].0;
                by_shard[si][qi].push(self.local_hit(si, h.hit, with_text)?);
            }
        }
        Ok(by_shard)
    }

    fn local_hit(&self, si: usize, h: tartan_index::SearchHit, with_text: bool) -> Result<Hit> {
        let text = if with_text { self.stored_text(si, h.doc)? } else { None };
        Ok(Hit { id: h.id, score: h.score, shard: si, doc: Some(h.doc), text })
    }

    /// The stored text of document `doc` of local shard `si`, if its index stores texts.
    pub(crate) fn stored_text(&self, si: usize, doc: u64) -> Result<Option<String>> {
        let text = self.shards[si].index().and_then(|i| i.text(doc)).transpose()?;
        Ok(text.map(str::to_string))
    }

    /// Round 1 everywhere (local pool and remote shards at once), the choice of finalists over
    /// all lists, round 2 everywhere.
    #[allow(clippy::too_many_arguments)]
    fn two_rounds(
        &self,
        queries: &[ArrayView2<'_, f32>],
        params: &SearchParams,
        opts: &SearchOptions,
        policy: ShardPolicy,
        prepared: Option<&[PreparedQuery]>,
        pool: Option<&ShardSet<'_>>,
        local: &[(usize, &Index)],
        remote: &[(usize, &RemoteShard)],
        r: &tartan_index::ResolvedSearch,
        per_shard: &mut [Option<Result<Vec<Vec<Hit>>>>],
    ) -> Result<()> {
        let req = SearchRequest::from_params(params, opts.with_text);
        let (local_cands, remote_cands) = std::thread::scope(|s| {
            let handles: Vec<_> = remote
                .iter()
                .map(|&(_, client)| s.spawn(|| client.candidates(queries, &req, policy.deadline)))
                .collect();
            let local_cands = pool.map(|p| p.candidates_batch(prepared.expect("codebook"), params));
            let remote_cands: Vec<Result<CandidatesResponse>> = handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::NoText("a request thread panicked".into())))
                })
                .collect();
            (local_cands, remote_cands)
        });
        // A local shard that cannot be read fails the search: it is not a network fault.
        let local_cands = local_cands.transpose()?;
        // Lists in shard order: each local shard's candidates, each remote shard's.
        let mut n_stored: u64 = 0;
        let mut lists: Vec<Vec<Vec<Candidate>>> =
            vec![vec![Vec::new(); queries.len()]; self.shards.len()];
        if let (Some(cands), Some(pool)) = (&local_cands, pool) {
            n_stored += pool.n_docs();
            for (qi, list) in cands.iter().enumerate() {
                for c in list {
                    lists[local[pool.shard_of(c.doc)].0][qi].push(*c);
                }
            }
        }
        let mut snapshots = vec![0u64; self.shards.len()];
        for (&(si, _), res) in remote.iter().zip(remote_cands) {
            match res {
                Ok(c) => {
                    n_stored += c.n_stored;
                    snapshots[si] = c.snapshot;
                    for (qi, list) in c.lists.into_iter().enumerate() {
                        lists[si][qi] = list
                            .into_iter()
                            .map(|(doc, pruned, full)| Candidate { doc, pruned, full })
                            .collect();
                    }
                }
                Err(e) => per_shard[si] = Some(Err(e)),
            }
        }
        // The finalists of each query, per shard, as one index would choose them.
        let mut finalists: Vec<Vec<Vec<u32>>> =
            vec![vec![Vec::new(); queries.len()]; self.shards.len()];
        for qi in 0..queries.len() {
            let refs: Vec<&[Candidate]> = lists.iter().map(|l| l[qi].as_slice()).collect();
            for (si, doc) in select_finalists(&refs, r, n_stored) {
                finalists[si][qi].push(doc);
            }
        }
        // Round 2: each request to a shard again within the deadline (round 1 waited for the
        // slowest shard, so a budget shared by both rounds would be spent by a late one).
        let (local_hits, remote_hits) = std::thread::scope(|s| {
            let handles: Vec<_> = remote
                .iter()
                .filter(|&&(si, _)| per_shard[si].is_none())
                .map(|&(si, client)| {
                    let docs = std::mem::take(&mut finalists[si]);
                    let snapshot = snapshots[si];
                    (
                        si,
                        s.spawn(move || {
                            client.score(queries, docs, snapshot, opts.with_text, policy.deadline)
                        }),
                    )
                })
                .collect::<Vec<_>>();
            let local_hits = match (&local_cands, pool) {
                (Some(_), Some(pool)) => {
                    // Pool numbers of every local shard's finalists, per query.
                    let docs: Vec<Vec<u32>> = (0..queries.len())
                        .map(|qi| {
                            local
                                .iter()
                                .flat_map(|&(si, _)| finalists[si][qi].iter().copied())
                                .collect()
                        })
                        .collect();
                    Some(pool.score_batch(prepared.expect("codebook"), &docs))
                }
                _ => None,
            };
            let remote_hits: Vec<(usize, Result<Vec<Vec<HitJson>>>)> = handles
                .into_iter()
                .map(|(si, h)| {
                    (
                        si,
                        h.join().unwrap_or_else(|_| {
                            Err(Error::NoText("a request thread panicked".into()))
                        }),
                    )
                })
                .collect();
            (local_hits, remote_hits)
        });
        if let Some(lists) = local_hits.transpose()? {
            let mut by_shard = self.by_shard(lists, local, queries.len(), opts.with_text)?;
            for &(si, _) in local {
                per_shard[si] = Some(Ok(std::mem::take(&mut by_shard[si])));
            }
        }
        for (si, res) in remote_hits {
            per_shard[si] = Some(res.map(|lists| {
                lists
                    .into_iter()
                    .map(|hits| {
                        hits.into_iter()
                            .map(|h| Hit {
                                id: h.id,
                                score: h.score,
                                shard: si,
                                doc: h.doc,
                                text: h.text,
                            })
                            .collect()
                    })
                    .collect()
            }));
        }
        Ok(())
    }

    /// Coverage, the policy, and each query's hits merged: score descending, then shard
    /// order, then document order.
    fn merge(
        &self,
        per_shard: Vec<Result<Vec<Vec<Hit>>>>,
        n_queries: usize,
        k: usize,
        policy: ShardPolicy,
    ) -> Result<Vec<Results>> {
        let mut coverage = Coverage { shards: self.shards.len(), ..Coverage::default() };
        let mut answered: Vec<Vec<Vec<Hit>>> = Vec::new();
        let mut first_err = None;
        for (sh, res) in self.shards.iter().zip(per_shard) {
            coverage.docs += sh.n_docs;
            match res {
                Ok(lists) => {
                    coverage.answered += 1;
                    coverage.docs_answered += sh.n_docs;
                    answered.push(lists);
                }
                Err(e) => {
                    let reason = match &e {
                        Error::Remote { reason, .. } => reason.clone(),
                        other => other.to_string(),
                    };
                    coverage.failed.push((sh.name.clone(), reason));
                    first_err.get_or_insert(e);
                }
            }
        }
        if coverage.answered == 0 || (policy.require_all && !coverage.complete()) {
            if self.collection.is_none() {
                return Err(first_err.expect("the one shard failed"));
            }
            return Err(Error::Incomplete {
                answered: coverage.answered,
                shards: coverage.shards,
                failures: coverage
                    .failed
                    .iter()
                    .map(|(s, r)| format!("{s}: {r}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        Ok((0..n_queries)
            .map(|qi| {
                let mut hits: Vec<Hit> =
                    answered.iter_mut().flat_map(|lists| std::mem::take(&mut lists[qi])).collect();
                hits.sort_by(|a, b| {
                    b.score.total_cmp(&a.score).then(a.shard.cmp(&b.shard)).then(a.doc.cmp(&b.doc))
                });
                hits.truncate(k);
                Results { hits, coverage: coverage.clone() }
            })
            .collect())
    }
}
