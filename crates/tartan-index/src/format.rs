//! The bottom layer: what is on disk and how it is read and written safely. The container
//! every binary file shares (magic, version, checksums), the manifest that names a published
//! generation, a collection's shard list, the writer's lock, and the codebook identity files
//! refer to. Nothing here knows about vectors or search. `docs/format.md` is normative.

pub(crate) mod collection;
pub(crate) mod container;
mod id;
pub(crate) mod lock;
pub(crate) mod manifest;

pub use id::CodebookId;
