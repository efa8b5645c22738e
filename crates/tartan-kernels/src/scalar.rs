//! Scalar reference implementations; the vectorised kernels are tested against these. Each
//! lives beside its kernels, with the contract (shape checks) it shares with them, so that a
//! kernel module and its reference change together; here they are gathered under one name.

pub use crate::argmin::argmin_shifted_ref as argmin_shifted;
pub use crate::codes::{decode_residual_ref as decode_residual, unpack_uints_ref as unpack_uints};
pub use crate::dot::dot_ref as dot;
pub use crate::matmul::matmul_nt_ref as matmul_nt;
pub use crate::maxsim::skinny_max_ref as skinny_max;
pub use crate::quant::{min_max_ref as min_max, quantize_rows_ref as quantize_rows};
pub use crate::rows::max_rows_u8_ref as max_rows_u8;
