//! The residual codec: how tartan stores a token vector in `dim · nbits / 8` bytes.
//!
//! A token `x` is stored as the id of its nearest centroid `c` (by the index) plus its residual
//! `r = x − c`, quantised per dimension into one of `2^nbits` buckets. [`ResidualCodec::train`]
//! learns the buckets from a held-out sample of residuals, pooled over dimensions: by default
//! the Lloyd–Max quantiser (weights at their bucket's mean, cutoffs midway between weights),
//! or ColBERT's quantiles ([`Buckets::Quantiles`]: cutoffs at the quantiles `i / 2^nbits`,
//! weights at `(i + 0.5) / 2^nbits`). Bucket indices are bit-packed little-end first ([`pack`] / [`unpack`]);
//! decoding goes a byte at a time through a 256-entry lookup table, as ColBERT's does.
//! Centroid ids and other small integers are packed at any width from 1 to 32 bits
//! ([`pack_uints`], [`UintReader`], [`bits_for`]).
//!
//! ```
//! use tartan_codec::{CodecParams, ResidualCodec};
//!
//! // Residuals of four 8-dimensional tokens (a real sample holds thousands).
//! let sample: Vec<f32> = (0..32).map(|i| (i as f32 - 16.0) / 64.0).collect();
//! let codec = ResidualCodec::train(CodecParams::new(2), &sample, 8)?;
//! assert_eq!(codec.bytes_per_token(), 2);
//!
//! let centroid = [0.5f32; 8];
//! let token: Vec<f32> = sample[..8].iter().map(|r| r + 0.5).collect();
//! let mut packed = [0u8; 2];
//! codec.encode_residual(&sample[..8], &mut packed);
//! let mut decoded = [0f32; 8];
//! codec.decode(&packed, &centroid, &mut decoded);
//! let err: f32 = token.iter().zip(&decoded).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
//! assert!(err < 0.1);
//! # Ok::<(), tartan_codec::CodecError>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bitpack;
mod buckets;
mod codec;
mod error;

pub use bitpack::{bits_for, pack, pack_uints, packed_len, unpack, UintReader};
pub use buckets::Buckets;
pub use codec::{CodecParams, ResidualCodec};
pub use error::CodecError;
