//! Integration tests of the index: end-to-end quality, bad input, corruption, format compat.
#![allow(clippy::print_stderr)] // tests report what they measured

mod buckets;
mod budget;
mod common;
mod compat;
mod corruption;
mod e2e;
mod errors;
mod filters;
mod live;
mod normalized;
mod shards;
