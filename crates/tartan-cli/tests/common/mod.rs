//! Running the `tartan` binary from the integration tests.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::process::{Command, Output};

pub fn tartan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tartan")).args(args).output().expect("tartan runs")
}

/// Runs `tartan args`, which must succeed; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = tartan(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tartan {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `tartan args`, which must fail cleanly (exit 1, no panic); returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = tartan(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "tartan {args:?} should fail");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}
