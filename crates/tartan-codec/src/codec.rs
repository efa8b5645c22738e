use crate::bitpack::pack_into;
use crate::buckets::{self, Buckets};
use crate::CodecError;

/// Codec settings. [`CodecParams::new`] takes `nbits` (bits per dimension) because it has no
/// sensible default independent of the storage budget (the CLI defaults to 2, as ColBERT
/// does); bucket placement defaults to [`Buckets::LloydMax`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecParams {
    nbits: u8,
    buckets: Buckets,
}

impl CodecParams {
    /// Settings for `nbits` bits per dimension (1, 2, 4 or 8; checked by `train`).
    pub fn new(nbits: u8) -> Self {
        Self { nbits, buckets: Buckets::default() }
    }
    /// How the buckets are placed.
    pub fn buckets(mut self, buckets: Buckets) -> Self {
        self.buckets = buckets;
        self
    }
}

/// A trained residual quantiser: bucket cutoffs and weights. Immutable; cheap to share between
/// threads.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidualCodec {
    nbits: u8,
    dim: usize,
    cutoffs: Vec<f32>,
    weights: Vec<f32>,
}

fn check_shape(nbits: u8, dim: usize) -> Result<(), CodecError> {
    if !matches!(nbits, 1 | 2 | 4 | 8) {
        return Err(CodecError::BadNbits(nbits));
    }
    if dim == 0 || !(dim * nbits as usize).is_multiple_of(8) {
        return Err(CodecError::DimNotByteAligned { dim, nbits });
    }
    Ok(())
}

impl ResidualCodec {
    /// Learns cutoffs and weights from `residuals`, a whole number of `dim`-dimensional
    /// residual vectors (token minus its centroid), pooled over dimensions, placed as
    /// `params` says.
    pub fn train(params: CodecParams, residuals: &[f32], dim: usize) -> Result<Self, CodecError> {
        check_shape(params.nbits, dim)?;
        if residuals.is_empty() || !residuals.len().is_multiple_of(dim) {
            return Err(CodecError::BadSample { len: residuals.len(), dim });
        }
        if let Some(i) = residuals.iter().position(|v| !v.is_finite()) {
            return Err(CodecError::NonFinite(i));
        }
        let mut sorted = residuals.to_vec();
        sorted.sort_unstable_by(f32::total_cmp);
        let (cutoffs, weights) = buckets::fit(&sorted, 1usize << params.nbits, params.buckets);
        Self::from_parts(params.nbits, dim, cutoffs, weights)
    }

    /// Rebuilds a codec from stored tables (validated: counts, finite, sorted).
    pub fn from_parts(
        nbits: u8,
        dim: usize,
        cutoffs: Vec<f32>,
        weights: Vec<f32>,
    ) -> Result<Self, CodecError> {
        check_shape(nbits, dim)?;
        let n = 1usize << nbits;
        if cutoffs.len() != n - 1 || weights.len() != n {
            return Err(CodecError::BadTables("wrong number of cutoffs or weights"));
        }
        if cutoffs.iter().chain(&weights).any(|v| !v.is_finite()) {
            return Err(CodecError::BadTables("non-finite cutoff or weight"));
        }
        if cutoffs.windows(2).any(|w| w[0] > w[1]) || weights.windows(2).any(|w| w[0] > w[1]) {
            return Err(CodecError::BadTables("cutoffs or weights are not sorted"));
        }
        Ok(Self { nbits, dim, cutoffs, weights })
    }

    /// Bits per dimension.
    pub fn nbits(&self) -> u8 {
        self.nbits
    }
    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The `2^nbits − 1` bucket cutoffs, ascending.
    pub fn cutoffs(&self) -> &[f32] {
        &self.cutoffs
    }
    /// The `2^nbits` bucket weights (decoded values), ascending.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }
    /// Packed residual bytes per token: `dim · nbits / 8`.
    pub fn bytes_per_token(&self) -> usize {
        self.dim * self.nbits as usize / 8
    }

    /// Bucket of one residual value: the number of cutoffs strictly below it
    /// (torch.bucketize with `right = False`).
    #[inline]
    fn bucket(&self, v: f32) -> u8 {
        self.cutoffs.partition_point(|&c| c < v) as u8
    }

    /// Quantises one residual vector (`dim` values) into `out` (`bytes_per_token` bytes).
    ///
    /// # Panics
    /// If the slice lengths are not `dim` and `bytes_per_token`.
    pub fn encode_residual(&self, residual: &[f32], out: &mut [u8]) {
        assert_eq!(residual.len(), self.dim, "residual has the wrong dimension");
        let mut buckets = [0u8; 64];
        let per_byte = 8 / self.nbits as usize;
        assert_eq!(out.len(), self.bytes_per_token(), "output has the wrong length");
        // Chunks of 64 values keep the bucket buffer on the stack for any dimension.
        for (vals, bytes) in residual.chunks(64).zip(out.chunks_mut(64 / per_byte)) {
            for (b, &v) in buckets.iter_mut().zip(vals) {
                *b = self.bucket(v);
            }
            pack_into(&buckets[..vals.len()], self.nbits, bytes);
        }
    }

    /// Quantises `token − centroid` into `out`; `scratch` holds the residual (`dim` values).
    pub fn encode(&self, token: &[f32], centroid: &[f32], scratch: &mut [f32], out: &mut [u8]) {
        for ((s, t), c) in scratch.iter_mut().zip(token).zip(centroid) {
            *s = t - c;
        }
        self.encode_residual(scratch, out);
    }

    /// Decodes one token: `centroid` plus the bucket weights of `packed`, into `out`.
    ///
    /// # Panics
    /// If the slice lengths are not `bytes_per_token`, `dim` and `dim`.
    #[inline]
    pub fn decode(&self, packed: &[u8], centroid: &[f32], out: &mut [f32]) {
        assert!(centroid.len() == self.dim, "wrong dimension");
        self.decode_with(packed, Some(centroid), out);
    }

    /// Decodes one token's residual alone (the bucket weights of `packed`) into `out`. A
    /// search that already holds the query's scores against every centroid adds those instead
    /// of reading the centroid: `q · (c + r) = q · c + q · r`.
    ///
    /// # Panics
    /// If the slice lengths are not `bytes_per_token` and `dim`.
    #[inline]
    pub fn decode_residual(&self, packed: &[u8], out: &mut [f32]) {
        self.decode_with(packed, None, out);
    }

    /// Decodes the residuals of consecutive tokens (`packed` holds whole tokens) into `out`
    /// (`dim` values per token), in one call: [`ResidualCodec::decode_residual`] per token.
    ///
    /// # Panics
    /// If `packed` is not whole tokens or `out` does not hold `dim` values for each.
    #[inline]
    pub fn decode_residuals(&self, packed: &[u8], out: &mut [f32]) {
        let bpt = self.bytes_per_token();
        assert!(packed.len().is_multiple_of(bpt), "packed residuals are not whole tokens");
        assert_eq!(out.len(), packed.len() / bpt * self.dim, "output has the wrong length");
        tartan_kernels::decode_residual(packed, self.nbits, &self.weights, out);
    }

    #[inline]
    fn decode_with(&self, packed: &[u8], centroid: Option<&[f32]>, out: &mut [f32]) {
        assert_eq!(packed.len(), self.bytes_per_token(), "packed residual has the wrong length");
        assert!(out.len() == self.dim, "wrong dimension");
        tartan_kernels::decode_residual(packed, self.nbits, &self.weights, out);
        if let Some(centroid) = centroid {
            for (o, c) in out.iter_mut().zip(centroid) {
                *o += c;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unpack;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    fn sample(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.gen_range(-0.2f32..0.2) * rng.gen_range(0.0f32..1.0)).collect()
    }

    /// Scalar reference decode: unpack bucket indices, look each weight up.
    fn decode_reference(codec: &ResidualCodec, packed: &[u8], centroid: &[f32]) -> Vec<f32> {
        unpack(packed, codec.nbits, codec.dim)
            .iter()
            .zip(centroid)
            .map(|(&b, c)| codec.weights[b as usize] + c)
            .collect()
    }

    #[test]
    fn cutoffs_are_quantiles() {
        let s: Vec<f32> = (0..=100).map(|i| i as f32).collect();
        let p = CodecParams::new(2).buckets(Buckets::Quantiles);
        let c = ResidualCodec::train(p, &s[..96], 8).unwrap();
        // 96 values 0..=95: quantile q sits at 95·q.
        assert_eq!(c.cutoffs(), &[23.75, 47.5, 71.25]);
        assert_eq!(c.weights(), &[11.875, 35.625, 59.375, 83.125]);
    }

    #[test]
    fn error_shrinks_with_nbits() {
        let dim = 64;
        let s = sample(dim * 500, 1);
        let mut last = f32::INFINITY;
        for nbits in [1u8, 2, 4, 8] {
            let codec = ResidualCodec::train(CodecParams::new(nbits), &s, dim).unwrap();
            let mut packed = vec![0u8; codec.bytes_per_token()];
            let mut out = vec![0f32; dim];
            let zero = vec![0f32; dim];
            let mut err = 0f32;
            for r in s.chunks_exact(dim) {
                codec.encode_residual(r, &mut packed);
                codec.decode(&packed, &zero, &mut out);
                err += r.iter().zip(&out).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
            }
            assert!(err < last * 0.7, "nbits {nbits}: {err} vs {last}");
            last = err;
        }
    }

    #[test]
    fn rejects_bad_settings_and_tables() {
        assert_eq!(
            ResidualCodec::train(CodecParams::new(3), &[0.0; 8], 8),
            Err(CodecError::BadNbits(3))
        );
        assert!(matches!(
            ResidualCodec::train(CodecParams::new(1), &[0.0; 6], 6),
            Err(CodecError::DimNotByteAligned { .. })
        ));
        assert!(matches!(
            ResidualCodec::train(CodecParams::new(2), &[], 8),
            Err(CodecError::BadSample { .. })
        ));
        let mut s = vec![0.0; 16];
        s[9] = f32::INFINITY;
        assert_eq!(ResidualCodec::train(CodecParams::new(2), &s, 8), Err(CodecError::NonFinite(9)));
        assert!(ResidualCodec::from_parts(1, 8, vec![0.0], vec![1.0, -1.0]).is_err());
        assert!(ResidualCodec::from_parts(1, 8, vec![0.0, 1.0], vec![-1.0, 1.0]).is_err());
        assert!(ResidualCodec::from_parts(1, 8, vec![f32::NAN], vec![-1.0, 1.0]).is_err());
    }

    proptest! {
        #[test]
        fn decode_matches_reference(
            nbits in prop::sample::select(vec![1u8, 2, 4, 8]),
            dim8 in 1usize..20,
            seed in any::<u64>(),
        ) {
            let dim = dim8 * 8;
            let s = sample(dim * 40, seed);
            let codec = ResidualCodec::train(CodecParams::new(nbits), &s, dim).unwrap();
            let centroid = sample(dim, seed ^ 1);
            let mut packed = vec![0u8; codec.bytes_per_token()];
            let mut scratch = vec![0f32; dim];
            let mut out = vec![0f32; dim];
            for tok in s.chunks_exact(dim).take(5) {
                codec.encode(tok, &centroid, &mut scratch, &mut packed);
                codec.decode(&packed, &centroid, &mut out);
                prop_assert_eq!(&out, &decode_reference(&codec, &packed, &centroid));
                codec.decode_residual(&packed, &mut out);
                prop_assert_eq!(&out, &decode_reference(&codec, &packed, &vec![0.0; dim]));
                // Each decoded residual lands in the bucket that holds the original value.
                for (i, (&r, &b)) in scratch.iter().zip(&unpack(&packed, nbits, dim)).enumerate() {
                    prop_assert_eq!(codec.bucket(r), b, "dim {}", i);
                }
            }
        }
    }
}
