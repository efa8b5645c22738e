//! Writing, above the index: training a codebook ([`train`]), encoding documents with it
//! ([`encode`]), building an index ([`build`]) or importing one ([`import`]), and changing a
//! published one ([`writer`]). Every write goes to new files and publishes with an atomic
//! rename of the manifest (`docs/format.md`).

pub(crate) mod build;
pub(crate) mod encode;
pub(crate) mod import;
pub(crate) mod train;
pub(crate) mod writer;
