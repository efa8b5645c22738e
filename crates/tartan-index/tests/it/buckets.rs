//! Bucket placement: Lloyd–Max tables decode the corpus closer to the original vectors than
//! ColBERT's quantiles, from the same centroids and codes layout, at the same size.

use tartan_index::{Buckets, IndexParams};

use crate::common::*;

#[test]
fn lloyd_max_decodes_closer_than_quantiles() {
    let c = corpus();
    let tmp = tempfile::tempdir().unwrap();
    let dim = c.docs.dim();
    for nbits in [2u8, 4] {
        let p = IndexParams::new().seed(3).nbits(nbits);
        let lm = build(&c, &tmp.path().join(format!("lm{nbits}")), p.clone());
        let q = build(&c, &tmp.path().join(format!("q{nbits}")), p.buckets(Buckets::Quantiles));
        assert_eq!(lm.centroids(), q.centroids());
        assert_ne!(lm.codebook().id(), q.codebook().id());
        assert_eq!(lm.stats().total_bytes, q.stats().total_bytes);
        lm.verify().unwrap();
        let err = |ix: &tartan_index::Index| {
            let mut sum = 0f64;
            for d in 0..c.docs.n_docs() {
                let dec = ix.decompress(d as u64).unwrap().unwrap();
                let orig = c.docs.doc(d);
                sum += dec.iter().zip(&orig).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>();
            }
            sum / (c.docs.n_tokens() * dim) as f64
        };
        let (e_lm, e_q) = (err(&lm), err(&q));
        assert!(e_lm < 0.95 * e_q, "{nbits} bits: Lloyd–Max error {e_lm:.3e}, quantiles {e_q:.3e}");
    }
}
