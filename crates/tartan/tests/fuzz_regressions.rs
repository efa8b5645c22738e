//! Replays every input under `fuzz/regressions/<target>/` (inputs that once crashed a fuzz
//! target, or that stand for a class of input the fuzzers explored) through the same harness
//! the fuzz targets run. CI runs these; the fuzzers themselves run by hand (fuzz/README.md).

mod fuzz_harness;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return 0 };
    let mut n = 0;
    for e in entries {
        let path = e.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        // A panic names the input: the message of the panic comes first, this after it.
        let ok = std::panic::catch_unwind(|| run(&data));
        assert!(ok.is_ok(), "{target}: {} panicked", path.display());
        n += 1;
    }
    n
}

#[test]
fn fuzz_regressions_replay() {
    let counts = [
        ("npy_header", replay("npy_header", fuzz_harness::npy_header)),
        ("filter", replay("filter", fuzz_harness::filter)),
        ("manifest", replay("manifest", fuzz_harness::manifest)),
        ("index_files", replay("index_files", fuzz_harness::index_files)),
        ("request", replay("request", fuzz_harness::request)),
    ];
    // Every target has inputs committed: an empty directory would make this test pass on
    // nothing.
    for (t, n) in counts {
        assert!(n > 0, "fuzz/regressions/{t} has no inputs");
    }
}

/// The index targets damage a template the harness builds; it must be the v5 fixture byte for
/// byte, so that the fixture's files (fuzz/seeds/) are valid inputs that reach deep.
#[test]
fn the_harness_template_is_the_v5_fixture() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tartan-index/tests/fixtures/v5/index");
    for e in std::fs::read_dir(&fixture).unwrap() {
        let name = e.unwrap().file_name();
        let want = std::fs::read(fixture.join(&name)).unwrap();
        let got = std::fs::read(fuzz_harness::template().join(&name)).unwrap();
        assert!(got == want, "{name:?} differs from the fixture's");
    }
}
