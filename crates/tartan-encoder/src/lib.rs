//! Text to token vectors for tartan, with candle (BERT from candle-transformers) and
//! Hugging Face tokenizers, in float32 on the CPU; and cross-encoders ([`CrossEncoder`]) that
//! score a query and a passage read together, for reranking.
//!
//! [`Encoder::load`] reads a model directory and picks a [`Mode`]:
//!
//! * **ColBERT** when the checkpoint has a projection (`linear.weight` in
//!   `model.safetensors`, as Stanford ColBERT saves it, or `1_Dense/model.safetensors`, as
//!   PyLate does): `[Q]`/`[D]` markers after `[CLS]` (ColBERT's `[unused0]`/`[unused1]`, or the
//!   checkpoint's prefixes), queries padded with `[MASK]` to `query_maxlen` and every vector
//!   kept, documents truncated at `doc_maxlen` with punctuation dropped, vectors projected and
//!   L2-normalised. Settings come from the checkpoint's own files when present.
//! * **Raw** for plain BERT models: every token's last hidden state, `[CLS]` and `[SEP]`
//!   included, L2-normalised.
//!
//! ```no_run
//! use tartan_encoder::{Encoder, EncoderParams};
//!
//! let enc = Encoder::load("models/all-MiniLM-L6-v2".as_ref(), &EncoderParams::new())?;
//! let docs = enc.encode_docs(&["Late interaction keeps one vector per token."], &mut |_| {})?;
//! assert_eq!(docs[0].len() % enc.dim(), 0);
//! # Ok::<(), tartan_encoder::EncoderError>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod checkpoint;
mod cross;
mod encoder;
mod error;

pub use checkpoint::Mode;
pub use cross::{CrossEncoder, CrossEncoderParams, PairIds};
pub use encoder::{Encoder, EncoderParams, IdsAndMask};
pub use error::EncoderError;
