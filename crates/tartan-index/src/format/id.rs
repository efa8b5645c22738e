//! A codebook's identity, as files name it: manifests and collection files record the id of
//! the codebook their codes need.

use std::fmt;

/// A codebook's identity: SHA-256 of its content in a canonical form (docs/format.md,
/// "Codebook identity"), independent of file layout. Two codebooks with the same id decode
/// every code to the same vector.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodebookId(pub [u8; 32]);

impl CodebookId {
    /// The id as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(out))
    }
    /// The first 12 hex digits, for display.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_string()
    }
}

impl fmt::Display for CodebookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for CodebookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodebookId({})", self.short())
    }
}
