//! Named indices (next-plaid's API over tartan): what a change's answer promises is what the
//! next read sees.

use ndarray::Array2;
use serde_json::json;
use tartan::named::{NamedConfig, Registry};
use tartan::Filter;

fn docs(n: usize, dim: usize, seed: u64) -> Vec<Array2<f32>> {
    let c = tartan::synth::SynthParams::new(n).dim(dim).seed(seed).generate();
    (0..n).map(|d| c.docs.doc_matrix(d)).collect()
}

/// `update_metadata` answered before its generation was published: a read right after the
/// answer could still see the old metadata (seen as a flaky compat test under load). Every
/// round here reads straight after the answer.
#[test]
fn a_metadata_update_is_visible_to_the_next_read() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path()).unwrap();
    let idx = reg.create("i", NamedConfig { nbits: 2, ..NamedConfig::default() }).unwrap();
    let d = docs(40, 16, 3);
    let views: Vec<_> = d.iter().map(|m| m.view()).collect();
    let meta = (0..40).map(|i| json!({"n": i, "round": -1})).collect();
    idx.add(&views, Some(meta)).unwrap();
    idx.wait_idle();
    for round in 0..20 {
        let which = Filter::parse(&format!("n = {}", round % 40)).unwrap();
        let changed =
            idx.update_metadata(which, json!({"round": round}).as_object().unwrap().clone());
        assert_eq!(changed.unwrap(), 1, "round {round}");
        let seen = Filter::parse(&format!("round = {round}")).unwrap();
        let rows = idx.metadata(Some(&seen), None, None).unwrap();
        assert_eq!(rows.len(), 1, "round {round}: the update is not visible yet: {rows:?}");
    }
}
