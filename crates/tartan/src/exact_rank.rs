//! Exact MaxSim of one query against a handful of given documents (reranking what another
//! system retrieved), for the front ends that offer it.

use ndarray::ArrayView2;

use crate::error::{Error, Result};

/// Each document's exact MaxSim score against `query` (every matrix `n × dim`), as
/// `(position, score)` sorted by descending score (ties by position).
///
/// # Errors
/// [`Error::Param`] naming the document if a dimension differs from the query's, or a matrix
/// has no rows or a value that is not finite.
pub fn maxsim_rank(
    query: ArrayView2<'_, f32>,
    docs: &[ArrayView2<'_, f32>],
) -> Result<Vec<(usize, f32)>> {
    let dim = query.ncols();
    let check = |m: &ArrayView2<'_, f32>, what: String| -> Result<Vec<f32>> {
        check_matrix(*m, dim, "documents", &what)?;
        Ok(m.iter().copied().collect())
    };
    let q = check(&query, "the query".into())?;
    let mut scratch = tartan_maxsim::MaxSimScratch::default();
    let mut out = Vec::with_capacity(docs.len());
    for (i, d) in docs.iter().enumerate() {
        let d = check(d, format!("document {i}"))?;
        out.push((i, tartan_maxsim::maxsim(&q, &d, dim, &mut scratch)));
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(out)
}

/// A token matrix must have `dim` columns, at least one row and only finite values;
/// [`Error::Param`] named `name`, its reason starting with `what`.
pub(crate) fn check_matrix(
    m: ArrayView2<'_, f32>,
    dim: usize,
    name: &'static str,
    what: &str,
) -> Result<()> {
    let bad = |reason: String| Error::Param { name, reason: format!("{what}: {reason}") };
    if m.ncols() != dim {
        return Err(bad(format!("dimension {}, expected {dim}", m.ncols())));
    }
    if m.nrows() == 0 {
        return Err(bad("no tokens".into()));
    }
    if m.iter().any(|v| !v.is_finite()) {
        return Err(bad("a value is not finite".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ranks_by_maxsim_and_names_bad_documents() {
        let q = array![[1.0f32, 0.0], [0.0, 1.0]];
        let a = array![[1.0f32, 0.0]];
        let b = array![[0.6f32, 0.8], [1.0, 0.0]];
        let got = maxsim_rank(q.view(), &[a.view(), b.view()]).unwrap();
        assert_eq!(got[0].0, 1);
        assert!((got[0].1 - 1.8).abs() < 1e-6 && (got[1].1 - 1.0).abs() < 1e-6, "{got:?}");
        let wrong = array![[1.0f32, 0.0, 0.0]];
        let err = maxsim_rank(q.view(), &[a.view(), wrong.view()]).unwrap_err().to_string();
        assert!(err.contains("document 1") && err.contains("dimension 3"), "{err}");
    }
}
