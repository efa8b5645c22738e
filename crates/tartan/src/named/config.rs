//! A named index's settings and its id counter, in `<data dir>/<name>/named.json`, written to
//! a temporary file and renamed (a crash leaves the old file or the new one).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The file beside a named index's `index/` directory.
pub(crate) const STATE_FILE: &str = "named.json";

/// next-plaid's index settings, as `POST /indices` declares them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedConfig {
    /// Residual bits per dimension (next-plaid: 2 or 4; tartan also takes 1 and 8).
    pub nbits: u8,
    /// next-plaid's batch size of its build; accepted and kept, not used (tartan's build
    /// bounds its memory with its own budget).
    pub batch_size: usize,
    /// Seed of k-means sampling (0 when not given).
    pub seed: Option<u64>,
    /// While the index holds at most this many documents, every update rebuilds it from the
    /// documents' original vectors (kept until then), so that a codebook is not trained on a
    /// first handful of documents and kept forever.
    pub start_from_scratch: usize,
    /// Documents kept at most; beyond, the oldest (lowest ids) are deleted after an update.
    pub max_documents: Option<usize>,
}

impl Default for NamedConfig {
    /// next-plaid's defaults: 4 bits, batches of 50,000, rebuilt up to 999 documents.
    fn default() -> Self {
        Self {
            nbits: 4,
            batch_size: 50_000,
            seed: None,
            start_from_scratch: 999,
            max_documents: None,
        }
    }
}

impl NamedConfig {
    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, reason: &str| Err(Error::Param { name, reason: reason.into() });
        if !matches!(self.nbits, 1 | 2 | 4 | 8) {
            return bad("nbits", "must be 1, 2, 4 or 8");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.max_documents == Some(0) {
            return bad("max_documents", "must be at least 1 (or null for no limit)");
        }
        Ok(())
    }
}

/// What `named.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    pub config: NamedConfig,
    /// The next document number to give: numbers are never reused, whatever is deleted.
    pub next_id: u64,
}

impl State {
    pub(crate) fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(STATE_FILE);
        let bytes =
            std::fs::read(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Param {
            name: "named.json",
            reason: format!("{}: {e}", path.display()),
        })
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(STATE_FILE);
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let io = |source| Error::Io { path: tmp.clone(), source };
        let text = serde_json::to_vec_pretty(self).expect("plain data serialises");
        let f = std::fs::File::create(&tmp).map_err(io)?;
        std::io::Write::write_all(&mut &f, &text).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(|source| Error::Io { path: path.clone(), source })
    }
}
