//! Numeric kernels and memory maps: every `unsafe` line in tartan lives here.
//!
//! The other crates are `#![forbid(unsafe_code)]`; they call these safe wrappers:
//!
//! * [`dot`]: dot product, AVX2+FMA when the CPU has it (detected once), scalar otherwise.
//! * [`matmul_nt`]: `C = A · Bᵀ` for row-major `A` and `B` (the shape of "queries × centroids"
//!   and "points × centroids"), through `matrixmultiply`'s packed, vectorised `sgemm`.
//! * [`skinny_matmul`]: the same product when B has few rows (a query's tokens against
//!   centroids or decompressed documents), streaming A without packing it.
//! * [`fixed_matmul`]: the skinny product in 16-bit fixed point ([`FixedRows`] against
//!   [`FixedB`]), twice the multiply-adds per instruction, within a stated bound of `f32`
//!   (a query's tokens against every centroid).
//! * [`skinny_max`]: the skinny product folded straight into running MaxSim maxima, each row
//!   shifted and scaled first (exact scoring's tile of decoded tokens).
//! * [`fixed_max`]: `skinny_max` in 16-bit fixed point, for residuals decoded to integers
//!   ([`FixedWeights`], [`FixedTile`]).
//! * [`lut_max`]: the same for tokens left packed at 1, 2 or 4 bits, their products with the
//!   query summed from a [`NibbleTable`] instead of decoded and multiplied.
//! * [`max_assign`]: element-wise running maximum, the inner step of MaxSim.
//! * [`prefetch`]: a cache hint for rows about to be read (exact scoring's centroid scores).
//! * [`max_rows_u8`]: the running maximum over gathered rows of a byte table (approximate
//!   scoring from centroid ids), AVX2 when the CPU has it.
//! * [`quantize_rows`]: rows of scores onto a byte [`Grid`] (the table [`max_rows_u8`]
//!   reads), with each row's maximum; [`min_max`]: the range a grid spans.
//! * [`argmin_shifted`]: the nearest centroid from a row of products (assignment's scan).
//! * [`nearest_in_panels`]: the nearest of a block of centroids for each point, product and
//!   scan fused over centroids laid out once ([`CentroidPanels`]); the same bits on every CPU.
//! * [`unpack_uints`], [`decode_residual`]: packed centroid ids and residual bucket indices
//!   read back, AVX-512 (VBMI for the ids) when the CPU has it; the residuals with AVX2
//!   otherwise.
//! * [`decode_residual_i16`]: the same residuals as 16-bit integers, for [`fixed_max`].
//! * [`ReadOnlyMap`]: a read-only memory map of a file.
//!
//! Each vectorised kernel has a scalar reference in [`scalar`] and tests that run every
//! implementation available on this CPU against it.
//!
//! ```
//! let a = [1.0f32, 2.0, 3.0];
//! let b = [4.0f32, 5.0, 6.0];
//! assert_eq!(tartan_kernels::dot(&a, &b), 32.0);
//!
//! // Two rows of A against three rows of B.
//! let a = [1.0f32, 0.0, 0.0, 1.0];
//! let b = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let mut c = [0.0f32; 6];
//! tartan_kernels::matmul_nt(&a, &b, 2, &mut c);
//! assert_eq!(c, [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
//! ```

#![deny(missing_docs)]

mod argmin;
mod codes;
mod decode16;
mod dot;
mod fixed;
mod fixedmax;
mod lut;
mod matmul;
mod maxsim;
mod mmap;
mod nearest;
mod quant;
mod rows;
pub mod scalar;
mod skinny;

pub use argmin::{argmin_impls, argmin_shifted};
pub use codes::{decode_impls, decode_residual, unpack_impls, unpack_uints};
pub use decode16::{decode_i16_impls, decode_residual_i16};
pub use dot::{dot, dot_impls, max_assign, prefetch};
pub use fixed::{fixed_impls, fixed_matmul, FixedB, FixedRows, FixedWeights};
pub use fixedmax::{fixed_max, fixed_max_impls, FixedTile};
pub use lut::{lut_max, lut_max_impls, NibbleTable};
pub use matmul::matmul_nt;
pub use maxsim::{skinny_max, skinny_max_impls, Shifts};
pub use mmap::ReadOnlyMap;
pub use nearest::{nearest_impls, nearest_in_panels, CentroidPanels};
pub use quant::{min_max, min_max_impls, quantize_impls, quantize_rows, Grid};
pub use rows::{max_rows_impls, max_rows_u8};
pub use skinny::{skinny_impls, skinny_matmul, SkinnyB};

/// What the kernels' tests share.
#[cfg(test)]
mod test_support {
    /// Asserts that a kernel family's implementations are the scalar reference first, then
    /// "avx2" exactly where the CPU has AVX2 and FMA and "avx512" exactly where it also has
    /// AVX-512F: every kernel this CPU can run is under test.
    pub(crate) fn assert_wide_kernels_listed(names: &[&str]) {
        assert_eq!(names[0], "scalar");
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma");
            assert_eq!(names.contains(&"avx2"), avx2, "{names:?}");
            let avx512 = avx2 && std::arch::is_x86_feature_detected!("avx512f");
            assert_eq!(names.contains(&"avx512"), avx512, "{names:?}");
        }
    }

    /// The same for a family with no AVX-512 version: the scalar reference, then "avx2"
    /// exactly where the CPU has AVX2.
    pub(crate) fn assert_avx2_kernel_listed(names: &[&str]) {
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        assert_eq!(names, if avx2 { &["scalar", "avx2"][..] } else { &["scalar"][..] });
    }
}
