//! What the server serves: a searcher over the index or collection as last published, swapped
//! when a new generation appears, with the recent ones kept for the second round of searches
//! split over servers.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tartan::{Searcher, ShardPolicy};

/// Snapshots kept after a newer one is served, for `/search/score` of a search whose first
/// round saw them.
const RECENT: usize = 4;

/// One opened generation, with the number the server gave it.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every reopen (not the index's generation: a collection's shards can move
    /// on while its manifest does not).
    pub id: u64,
    /// The searcher.
    pub searcher: Searcher,
}

impl Snapshot {
    fn new(id: u64, searcher: Searcher) -> Self {
        Self { id, searcher }
    }
}

/// The served searcher. Readers take the current snapshot (an `Arc`, never waiting on a
/// reload); a reload opens the new generation beside it and swaps.
#[derive(Debug)]
pub struct Served {
    path: PathBuf,
    policy: ShardPolicy,
    current: ArcSwap<Snapshot>,
    recent: Mutex<VecDeque<Arc<Snapshot>>>,
    next_id: AtomicU64,
    reloading: Mutex<()>,
}

impl Served {
    /// Opens the index or collection at `path`.
    pub fn open(path: &Path, policy: ShardPolicy) -> tartan::Result<Self> {
        let searcher = Searcher::open_with(path, policy)?;
        Ok(Self {
            path: path.to_path_buf(),
            policy,
            current: ArcSwap::from_pointee(Snapshot::new(1, searcher)),
            recent: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(2),
            reloading: Mutex::new(()),
        })
    }

    /// The snapshot to answer from.
    pub fn get(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The snapshot `id`, if it is current or recent.
    pub fn at(&self, id: u64) -> Option<Arc<Snapshot>> {
        let cur = self.get();
        if cur.id == id {
            return Some(cur);
        }
        self.recent.lock().expect("recent lock").iter().find(|s| s.id == id).cloned()
    }

    /// The served path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The policy for remote shards.
    pub fn policy(&self) -> ShardPolicy {
        self.policy
    }

    /// Opens what is on disk if it moved on; `Ok(true)` when a new snapshot is served. One
    /// reload at a time; a caller that finds one running returns at once.
    pub fn refresh(&self, force: bool) -> tartan::Result<bool> {
        let Ok(_guard) = self.reloading.try_lock() else { return Ok(false) };
        let cur = self.get();
        if !force && !cur.searcher.is_stale() {
            return Ok(false);
        }
        let searcher = cur.searcher.reopen()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let old = self.current.swap(Arc::new(Snapshot::new(id, searcher)));
        let mut recent = self.recent.lock().expect("recent lock");
        recent.push_front(old);
        recent.truncate(RECENT);
        Ok(true)
    }
}
