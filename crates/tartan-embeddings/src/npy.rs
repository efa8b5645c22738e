//! A minimal `.npy` reader and writer: little-endian f16/f32/i32/i64 and u8, C order, format
//! 1.0–3.0.

use std::io::Write;
use std::path::Path;

use crate::EmbError;

/// Element types tartan reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// `<f2`
    F16,
    /// `<f4`
    F32,
    /// `<i4`
    I32,
    /// `<i8`
    I64,
    /// `|u1` (bytes: packed residuals of other engines' indexes)
    U8,
}

impl DType {
    pub(crate) fn size(self) -> usize {
        match self {
            DType::F16 => 2,
            DType::F32 | DType::I32 => 4,
            DType::I64 => 8,
            DType::U8 => 1,
        }
    }
    fn descr(self) -> &'static str {
        match self {
            DType::F16 => "<f2",
            DType::F32 => "<f4",
            DType::I32 => "<i4",
            DType::I64 => "<i8",
            DType::U8 => "|u1",
        }
    }
}

/// A parsed `.npy` header: element type, shape and where the data starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: DType,
    /// Shape (C order).
    pub shape: Vec<usize>,
    /// Byte offset of the data.
    pub data_offset: usize,
}

type Header = NpyHeader;

fn bad(path: &Path, reason: impl Into<String>) -> EmbError {
    EmbError::Npy { path: path.to_path_buf(), reason: reason.into() }
}

/// Value of `'key': …` in the header dict, up to the next top-level comma or brace.
fn dict_value<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let at = dict.find(&format!("'{key}'")).or_else(|| dict.find(&format!("\"{key}\"")))?;
    let rest = dict[at + key.len() + 2..].trim_start().strip_prefix(':')?.trim_start();
    if rest.starts_with('(') {
        return rest.find(')').map(|e| &rest[..=e]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// Parses and checks the header of a whole `.npy` file's bytes (`path` names it in errors):
/// magic, version, a little-endian float16/float32/int32/int64 dtype, C order, and a shape
/// whose size (checked for overflow) the file holds exactly.
pub fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header, EmbError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad(path, "not a .npy file (bad magic)"));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => {
            (u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize, 12)
        }
        v => return Err(bad(path, format!("unsupported .npy format version {v}"))),
    };
    let dict = bytes
        .get(start..start + hlen)
        .ok_or_else(|| bad(path, "header is truncated"))
        .and_then(|h| std::str::from_utf8(h).map_err(|_| bad(path, "header is not text")))?;
    let descr = dict_value(dict, "descr").ok_or_else(|| bad(path, "header has no 'descr'"))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let dtype = match descr {
        "<f2" => DType::F16,
        "<f4" => DType::F32,
        "<i4" => DType::I32,
        "<i8" => DType::I64,
        "|u1" | "<u1" => DType::U8,
        d => {
            return Err(bad(
                path,
                format!("dtype {d} is not supported (expected little-endian float16/float32 or int32/int64)"),
            ))
        }
    };
    let fortran =
        dict_value(dict, "fortran_order").ok_or_else(|| bad(path, "no 'fortran_order'"))?;
    let shape_s = dict_value(dict, "shape").ok_or_else(|| bad(path, "header has no 'shape'"))?;
    let shape: Vec<usize> = shape_s
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad(path, format!("bad shape {shape_s}"))))
        .collect::<Result<_, _>>()?;
    if fortran == "True" && shape.len() > 1 {
        return Err(bad(path, "Fortran-ordered arrays are not supported; save with C order"));
    }
    let data_offset = start + hlen;
    // Checked: a hostile header can name dimensions whose product wraps.
    let need = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_mul(dtype.size()))
        .and_then(|b| b.checked_add(data_offset))
        .ok_or_else(|| bad(path, "shape overflows"))?;
    if bytes.len() != need {
        return Err(bad(
            path,
            format!(
                "file holds {} bytes but its header describes {need} (truncated or padded)",
                bytes.len()
            ),
        ));
    }
    Ok(Header { dtype, shape, data_offset })
}

/// Writes an `.npy` (format 1.0) with its data 64-byte aligned, as numpy does.
pub(crate) fn write(
    path: &Path,
    dtype: DType,
    shape: &[usize],
    data: &[u8],
) -> Result<(), EmbError> {
    let io = |source| EmbError::Io { path: path.to_path_buf(), source };
    let shape_s = match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut dict =
        format!("{{'descr': '{}', 'fortran_order': False, 'shape': {shape_s}, }}", dtype.descr());
    let total = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat(total.next_multiple_of(64) - total));
    dict.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    f.write_all(b"\x93NUMPY\x01\x00").map_err(io)?;
    f.write_all(&(dict.len() as u16).to_le_bytes()).map_err(io)?;
    f.write_all(dict.as_bytes()).map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)
}

/// Header length of streamed files: fixed, so the shape can be patched in when the row count
/// is known. 128 bytes keeps the data 64-byte aligned.
const STREAM_HEADER: usize = 128;

/// The 128-byte header of a streamed 2-D array.
pub(crate) fn stream_header(dtype: DType, rows: usize, cols: usize) -> Vec<u8> {
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}",
        dtype.descr()
    );
    dict.push_str(&" ".repeat(STREAM_HEADER - 10 - 1 - dict.len()));
    dict.push('\n');
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend((dict.len() as u16).to_le_bytes());
    h.extend(dict.as_bytes());
    debug_assert_eq!(h.len(), STREAM_HEADER);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numpy_style_headers() {
        let p = Path::new("x.npy");
        let mk = |dict: &str, body: usize| {
            let mut b = b"\x93NUMPY\x01\x00".to_vec();
            b.extend((dict.len() as u16).to_le_bytes());
            b.extend(dict.as_bytes());
            b.extend(vec![0u8; body]);
            b
        };
        let h =
            parse_header(p, &mk("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 24))
                .unwrap();
        assert_eq!((h.dtype, h.shape.clone()), (DType::F32, vec![3, 2]));
        let h =
            parse_header(p, &mk("{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }", 40))
                .unwrap();
        assert_eq!(h.shape, vec![5]);
        let e =
            parse_header(p, &mk("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 20));
        assert!(e.unwrap_err().to_string().contains("truncated"));
        let e =
            parse_header(p, &mk("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", 4));
        assert!(e.unwrap_err().to_string().contains(">f4"));
        let e =
            parse_header(p, &mk("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16));
        assert!(e.unwrap_err().to_string().contains("Fortran"));
        assert!(parse_header(p, b"PK\x03\x04 not npy").is_err());
        // Dimensions whose product wraps are an error, not a panic or a tiny size.
        let e = parse_header(
            p,
            &mk("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 8),
        );
        assert!(e.unwrap_err().to_string().contains("overflows"));
        let e = parse_header(
            p,
            &mk("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", 8),
        );
        assert!(e.unwrap_err().to_string().contains("overflows"));
    }
}
