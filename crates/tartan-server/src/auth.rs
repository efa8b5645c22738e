//! Access control: API keys with scopes, sent as `Authorization: Bearer KEY`.
//!
//! A key has one [`Scope`]; each scope allows what the ones before it do. Every route names the
//! scope it needs ([`crate::ROUTES`]; next-plaid's routes have their own table), and a route
//! that names none is refused, so a new route cannot be left open by omission. No key, or an
//! unknown one, is 401 with `WWW-Authenticate: Bearer`; a known key without the scope is 403.
//!
//! Keys are stored hashed: a key file holds one `NAME SCOPE sha256:HEX` line per key (`#`
//! starts a comment), which `tartan keys new` appends to. A presented key is hashed and its
//! digest compared with every stored one in constant time. A server started with a key file
//! reads it again when it changes or on SIGHUP; a file that no longer parses keeps the keys
//! it had.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// What a key may do; each scope allows what the ones before it allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Search, explain, stats, ids, health details.
    Read,
    /// Add, upsert and delete documents, compact; next-plaid's index management.
    Write,
    /// Everything, and what only operators do (snapshots).
    Admin,
}

impl Scope {
    /// Every scope, least first.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    /// The name in key files and messages.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scope {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Scope::ALL
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| KeyError::Scope(s.to_string()))
    }
}

/// A key file or key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading the key file failed.
    #[error("reading the key file {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line of a key file is not `NAME SCOPE sha256:HEX`.
    #[error("{}:{line}: {reason}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Not a scope name.
    #[error("{0:?} is not a scope: read, write or admin")]
    Scope(String),
    /// A key too short to resist guessing, or with characters a header cannot carry.
    #[error("a key needs at least 16 characters, printable ASCII without spaces")]
    WeakKey,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    scope: Scope,
    digest: [u8; 32],
}

/// The keys a server accepts.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    entries: Vec<Entry>,
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Equal digests, compared without an early exit.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_key(key: &str) -> Result<(), KeyError> {
    if key.len() < 16 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(KeyError::WeakKey);
    }
    Ok(())
}

impl Keys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds a key given in plain text (from the environment), kept only as its digest.
    pub fn with_plain(mut self, name: &str, scope: Scope, key: &str) -> Result<Self, KeyError> {
        check_key(key)?;
        self.entries.push(Entry { name: name.to_string(), scope, digest: digest(key) });
        Ok(self)
    }

    /// Parses a key file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, KeyError> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |reason: String| KeyError::Line { path: path.into(), line: i + 1, reason };
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [name, scope, hash] = parts[..] else {
                return Err(bad("expected NAME SCOPE sha256:HEX".into()));
            };
            let scope: Scope = scope.parse().map_err(|e: KeyError| bad(e.to_string()))?;
            let hex = hash
                .strip_prefix("sha256:")
                .ok_or_else(|| bad("the hash must start with sha256:".into()))?;
            let digest = from_hex(hex).ok_or_else(|| bad("sha256: takes 64 hex digits".into()))?;
            if entries.iter().any(|e: &Entry| e.name == name) {
                return Err(bad(format!("the name {name:?} is used twice")));
            }
            entries.push(Entry { name: name.to_string(), scope, digest });
        }
        Ok(Self { entries })
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| KeyError::Io { path: path.into(), source })?;
        Self::parse(&text, path)
    }

    /// The name and scope of the key `presented`, if it is one of these. Every stored digest
    /// is compared, each without an early exit.
    pub fn check(&self, presented: &str) -> Option<(&str, Scope)> {
        let d = digest(presented);
        let mut found = None;
        for e in &self.entries {
            if same(&e.digest, &d) && found.is_none() {
                found = Some((e.name.as_str(), e.scope));
            }
        }
        found
    }

    /// Whether a key is named `name`.
    pub fn has_name(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.name == name)
    }

    /// Adds `other`'s keys.
    pub(crate) fn extend(&mut self, other: Keys) {
        self.entries.extend(other.entries);
    }

    /// The key-file line of a key: `NAME SCOPE sha256:HEX`.
    pub fn line(name: &str, scope: Scope, key: &str) -> Result<String, KeyError> {
        check_key(key)?;
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('#') {
            return Err(KeyError::Line {
                path: PathBuf::new(),
                line: 0,
                reason: format!("the name {name:?} must be one word"),
            });
        }
        let hex: String = digest(key).iter().map(|b| format!("{b:02x}")).collect();
        Ok(format!("{name} {scope} sha256:{hex}"))
    }
}

fn from_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_keys_check_in_scope() {
        let a = Keys::line("ops", Scope::Admin, "a-very-secret-key-1").unwrap();
        let r = Keys::line("ui", Scope::Read, "another-secret-key-2").unwrap();
        let keys =
            Keys::parse(&format!("# keys\n{a}\n\n{r}  # the page\n"), Path::new("k")).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.check("a-very-secret-key-1"), Some(("ops", Scope::Admin)));
        assert_eq!(keys.check("another-secret-key-2"), Some(("ui", Scope::Read)));
        assert_eq!(keys.check("a-very-secret-key-2"), None);
        assert_eq!(keys.check(""), None);
        assert!(Scope::Admin > Scope::Write && Scope::Write > Scope::Read);
    }

    #[test]
    fn bad_lines_and_weak_keys_are_named() {
        let p = Path::new("keys.txt");
        let err = |t: &str| Keys::parse(t, p).unwrap_err().to_string();
        assert!(err("ops admin").contains("keys.txt:1: expected NAME SCOPE"));
        assert!(err("\nops root sha256:00").contains("keys.txt:2: \"root\" is not a scope"));
        assert!(err("ops read md5:00").contains("start with sha256:"));
        assert!(err("ops read sha256:zz").contains("64 hex digits"));
        let line = Keys::line("ops", Scope::Read, "0123456789abcdef").unwrap();
        assert!(err(&format!("{line}\n{line}")).contains("used twice"));
        assert!(Keys::line("ops", Scope::Read, "short").is_err());
        assert!(Keys::line("two words", Scope::Read, "0123456789abcdef").is_err());
        assert!(Keys::new().with_plain("env", Scope::Admin, "has a space in it!").is_err());
    }
}
