//! Byte sizes as people write them (`2GiB`, `512M`, `1.5 GB`), for memory budgets.

use crate::error::{Error, Result};

/// Parses a byte size: a number (fractions allowed) and an optional unit, case-insensitive:
/// `K`/`KiB`, `M`/`MiB`, `G`/`GiB`, `T`/`TiB` are powers of 1024; `KB`, `MB`, `GB`, `TB` powers
/// of 1000; `B` or nothing is bytes.
///
/// ```
/// assert_eq!(tartan::parse_bytes("2GiB")?, 2 << 30);
/// assert_eq!(tartan::parse_bytes("512m")?, 512 << 20);
/// assert_eq!(tartan::parse_bytes("1.5 GB")?, 1_500_000_000);
/// # Ok::<(), tartan::Error>(())
/// ```
///
/// # Errors
/// [`Error::Param`] naming the text if it is not a size or does not fit in 64 bits.
pub fn parse_bytes(text: &str) -> Result<u64> {
    let bad = |why: &str| Error::Param {
        name: "size",
        reason: format!("{text:?}: {why} (e.g. 2GiB, 512MiB, 1.5GB, 1048576)"),
    };
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad("not a number"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024f64.powi(2),
        "g" | "gib" => 1024f64.powi(3),
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return Err(bad("unknown unit")),
    };
    let bytes = (value * scale).round();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad("too large"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_refusals() {
        assert_eq!(parse_bytes("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_bytes(" 4 GiB ").unwrap(), 4 << 30);
        assert_eq!(parse_bytes("3g").unwrap(), 3 << 30);
        assert_eq!(parse_bytes("1.5KiB").unwrap(), 1536);
        assert_eq!(parse_bytes("2TB").unwrap(), 2_000_000_000_000);
        for bad in ["", "GiB", "2 parsecs", "-1G", "1e3", "99999999999TiB", "1.2.3M"] {
            let err = parse_bytes(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }
}
