//! Token matrices as they travel: nested arrays of numbers, or base64 little-endian floats
//! with a shape. One decoder for queries and documents, tartan's API and next-plaid's.

use base64::Engine as _;
use half::f16;
use ndarray::Array2;
use serde_json::Value;

use super::body::{Limits, WireError};

/// Decodes a query's token vectors (`field` names it in errors) into an `n × dim` matrix,
/// checking the shape against `dim` and `limits`, and every value finite. Two forms: nested
/// arrays of numbers, or `{"dtype": "float16"|"float32", "shape": [n, dim], "data": base64}`.
pub fn decode_query(
    v: &Value,
    field: &str,
    dim: usize,
    limits: &Limits,
) -> Result<Array2<f32>, WireError> {
    let max = limits.max_query_tokens;
    let m = match v {
        Value::Array(rows) => {
            if rows.len() > max {
                return bad(field, format!("{} tokens, the limit is {max}", rows.len()));
            }
            nested(rows, field, Some(dim))?
        }
        Value::Object(o) => {
            for key in o.keys() {
                if !matches!(key.as_str(), "dtype" | "shape" | "data") {
                    return bad(
                        &format!("{field}.{key}"),
                        "unknown field; expected dtype, shape, data".into(),
                    );
                }
            }
            let dtype = o.get("dtype").and_then(Value::as_str).unwrap_or("float32");
            let width = match dtype {
                "float32" | "f32" => 4,
                "float16" | "f16" => 2,
                other => {
                    return bad(
                        &format!("{field}.dtype"),
                        format!("{other:?} is not float16 or float32"),
                    )
                }
            };
            let shape_field = format!("{field}.shape");
            let Some([n, d]) = shape(o.get("shape")) else {
                return bad(&shape_field, "expected [n_tokens, dim]".into());
            };
            if d != dim as u64 {
                return bad(&shape_field, format!("dimension {d}, the index's is {dim}"));
            }
            if n > max as u64 {
                return bad(&shape_field, format!("{n} tokens, the limit is {max}"));
            }
            packed(o.get("data"), &format!("{field}.data"), n as usize, dim, width, dtype)?
        }
        _ => {
            return bad(field, "expected an array of token vectors or {dtype, shape, data}".into())
        }
    };
    if m.nrows() == 0 {
        return bad(field, "the query has no tokens".into());
    }
    finite(m, field)
}

/// Decodes a token matrix as next-plaid sends it (`field` names it in errors): `{"embeddings":
/// [[…], …]}`, `{"embeddings_b64": base64 little-endian float32, "shape": [n, dim]}`, or the
/// bare nested array; 1 to `max_rows` rows, the dimension taken from the matrix.
pub fn decode_matrix(v: &Value, field: &str, max_rows: usize) -> Result<Array2<f32>, WireError> {
    let m = match v {
        Value::Object(o) if o.contains_key("embeddings_b64") => {
            let Some([n, d]) = shape(o.get("shape")) else {
                return bad(&format!("{field}.shape"), "expected [num_tokens, dim]".into());
            };
            if n == 0 || d == 0 || n > max_rows as u64 {
                return bad(
                    &format!("{field}.shape"),
                    format!("[{n}, {d}]: need 1 to {max_rows} tokens and dim ≥ 1"),
                );
            }
            let data_field = format!("{field}.embeddings_b64");
            packed(o.get("embeddings_b64"), &data_field, n as usize, d as usize, 4, "float32")?
        }
        Value::Object(o) => match o.get("embeddings") {
            Some(e) => return decode_matrix(e, &format!("{field}.embeddings"), max_rows),
            None => return bad(field, "expected embeddings or embeddings_b64 and shape".into()),
        },
        Value::Array(rows) => {
            if rows.is_empty() || rows.len() > max_rows {
                return bad(field, format!("{} tokens: need 1 to {max_rows}", rows.len()));
            }
            nested(rows, field, None)?
        }
        _ => return bad(field, "expected token embeddings".into()),
    };
    finite(m, field)
}

fn bad<T>(field: &str, message: String) -> Result<T, WireError> {
    Err(WireError::new(field, message))
}

/// `[n, d]` from a JSON shape.
fn shape(v: Option<&Value>) -> Option<[u64; 2]> {
    let dims: Vec<u64> = v?.as_array()?.iter().map(Value::as_u64).collect::<Option<_>>()?;
    <[u64; 2]>::try_from(dims.as_slice()).ok()
}

/// Rows of numbers, each `dim` long (`None`: as long as the first, at least one).
fn nested(rows: &[Value], field: &str, dim: Option<usize>) -> Result<Array2<f32>, WireError> {
    let width = match (dim, rows.first().and_then(Value::as_array)) {
        (Some(d), _) => d,
        (None, Some(first)) => first.len(),
        (None, None) => 0,
    };
    let mut data = Vec::with_capacity(rows.len() * width);
    for (i, row) in rows.iter().enumerate() {
        let Some(row) = row.as_array() else {
            return bad(&format!("{field}[{i}]"), "expected an array of numbers".into());
        };
        if row.len() != width || row.is_empty() {
            let want = match dim {
                Some(d) => format!("the index's dimension is {d}"),
                None => format!("token 0 has {width}"),
            };
            return bad(&format!("{field}[{i}]"), format!("has {} values, {want}", row.len()));
        }
        for (j, x) in row.iter().enumerate() {
            match x.as_f64() {
                Some(x) => data.push(x as f32),
                None => return bad(&format!("{field}[{i}][{j}]"), "not a number".into()),
            }
        }
    }
    Ok(Array2::from_shape_vec((rows.len(), width), data).expect("rows·width values"))
}

/// `n × d` little-endian floats of `width` bytes (4: float32, 2: float16) from the base64
/// string `v`.
fn packed(
    v: Option<&Value>,
    field: &str,
    n: usize,
    d: usize,
    width: usize,
    dtype: &str,
) -> Result<Array2<f32>, WireError> {
    let Some(b64) = v.and_then(Value::as_str) else {
        return bad(field, "expected a base64 string".into());
    };
    // The shape comes from the request: its product may not fit, and must not size anything
    // before the data is seen to match it.
    let Some(want) = n.checked_mul(d).and_then(|x| x.checked_mul(width)) else {
        return bad(field, format!("shape {n}×{d} is too large"));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| WireError::new(field, format!("not base64: {e}")))?;
    if bytes.len() != want {
        return bad(field, format!("{} bytes, shape {n}×{d} of {dtype} needs {want}", bytes.len()));
    }
    let data: Vec<f32> = if width == 4 {
        bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4"))).collect()
    } else {
        bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
    };
    Ok(Array2::from_shape_vec((n, d), data).expect("n·d values"))
}

/// `m` if every value is finite; otherwise the first one that is not, named.
fn finite(m: Array2<f32>, field: &str) -> Result<Array2<f32>, WireError> {
    if let Some(i) = m.iter().position(|x| !x.is_finite()) {
        let d = m.ncols();
        return bad(
            &format!("{field}[{}][{}]", i / d, i % d),
            "not a finite number (NaN, infinity, or beyond float32)".into(),
        );
    }
    Ok(m)
}

/// Encodes token vectors as the packed float32 form of a query.
pub fn encode_query(q: &ndarray::ArrayView2<'_, f32>) -> Value {
    let mut bytes = Vec::with_capacity(q.len() * 4);
    for x in q.iter() {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    serde_json::json!({
        "dtype": "float32",
        "shape": [q.nrows(), q.ncols()],
        "data": base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_query_forms_decode_alike() {
        let l = Limits::default();
        let nested = json!([[1.0, 0.0], [0.0, -1.0]]);
        let a = decode_query(&nested, "query", 2, &l).unwrap();
        let packed = encode_query(&a.view());
        assert_eq!(decode_query(&packed, "query", 2, &l).unwrap(), a);
        let halves: Vec<u8> =
            [1.0f32, 0.0, 0.0, -1.0].iter().flat_map(|&x| f16::from_f32(x).to_le_bytes()).collect();
        let f16q = json!({"dtype": "float16", "shape": [2, 2],
            "data": base64::engine::general_purpose::STANDARD.encode(halves)});
        assert_eq!(decode_query(&f16q, "query", 2, &l).unwrap(), a);
    }

    #[test]
    fn bad_queries_name_the_field() {
        let l = Limits { max_query_tokens: 3, ..Limits::default() };
        for (v, field, msg) in [
            (json!([[1.0, 0.0], [0.0]]), "query[1]", "has 1 values"),
            (json!([[1.0, "x"]]), "query[0][1]", "not a number"),
            (json!([]), "query", "no tokens"),
            (json!([[1, 0], [1, 0], [1, 0], [1, 0]]), "query", "limit is 3"),
            (json!({"dtype": "int8", "shape": [1, 2], "data": ""}), "query.dtype", "not float16"),
            (json!({"shape": [1, 3], "data": ""}), "query.shape", "dimension 3"),
            (json!({"shape": [1, 2], "data": "!!"}), "query.data", "not base64"),
            (json!({"shape": [1, 2], "data": "AAAA"}), "query.data", "needs 8"),
            (json!({"shape": [1, 2], "data": "AAAA", "x": 1}), "query.x", "unknown field"),
            (json!("text"), "query", "expected an array"),
            (json!([[1e39, 0.0]]), "query[0][0]", "finite"),
        ] {
            let e = decode_query(&v, "query", 2, &l).unwrap_err();
            assert_eq!(e.field, field, "{v}");
            assert!(e.message.contains(msg), "{v}: {}", e.message);
        }
    }
}
