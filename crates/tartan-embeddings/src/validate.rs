use rayon::prelude::*;
use tartan_maxsim::Corpus;

use crate::{EmbError, Embeddings, UNIT_TOLERANCE};

enum Problem {
    NonFinite,
    NotUnit(f32),
    Zero,
}

/// Scans every vector (in parallel, a block at a time) and reports the first bad one.
pub(crate) fn check_vectors(e: &Embeddings) -> Result<(), EmbError> {
    const BLOCK: usize = 4096;
    let n = e.n_tokens();
    let dim = e.dim;
    let first = (0..n.div_ceil(BLOCK)).into_par_iter().find_map_first(|b| {
        let start = b * BLOCK;
        let len = BLOCK.min(n - start);
        let mut buf = vec![0f32; len * dim];
        e.read_raw(start, &mut buf);
        // Validation reads every vector once: keep the file's pages out of the resident set.
        e.release_tokens(start..start + len);
        buf.chunks_exact(dim).enumerate().find_map(|(i, v)| {
            if v.iter().any(|x| !x.is_finite()) {
                return Some((start + i, Problem::NonFinite));
            }
            let norm = tartan_kernels::dot(v, v).sqrt();
            if e.normalize {
                (norm == 0.0).then_some((start + i, Problem::Zero))
            } else {
                ((norm - 1.0).abs() > UNIT_TOLERANCE).then_some((start + i, Problem::NotUnit(norm)))
            }
        })
    });
    let Some((token, problem)) = first else { return Ok(()) };
    let doc = e.doc_offsets().partition_point(|&o| o <= token as u64) - 1;
    let (path, id) = (e.source.clone(), e.ids[doc].clone());
    Err(match problem {
        Problem::NonFinite => EmbError::NonFinite { path, token, doc, id },
        Problem::NotUnit(norm) => EmbError::NotUnit { path, token, doc, id, norm },
        Problem::Zero => EmbError::ZeroVector { path, token, doc, id },
    })
}
