//! Fuzz target `request`: see crates/tartan/tests/fuzz_harness.rs.
#![no_main]

#[path = "../../crates/tartan/tests/fuzz_harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::request(data));
