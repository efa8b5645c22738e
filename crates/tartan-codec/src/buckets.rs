//! Where the bucket cutoffs and weights go, given a sample of residual values.

/// How [`crate::ResidualCodec::train`] places the `2^nbits` buckets over the pooled residual
/// values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Buckets {
    /// ColBERT's: cutoffs at the quantiles `i / 2^nbits`, so every bucket holds as many
    /// values, and weights at the quantiles `(i + 0.5) / 2^nbits`, each bucket's median.
    Quantiles,
    /// The Lloyd–Max quantiser: starting from [`Buckets::Quantiles`], weights move to their
    /// bucket's mean and cutoffs to the midpoints between weights until neither changes. It
    /// minimises the squared error of the decoded residual, which is what a dot product with
    /// it inherits: on Gaussian values the error is 0.80× the quantiles' at 2 bits and 0.40×
    /// at 4; on heavier tails (Laplace) 0.62× and 0.21×. The default.
    #[default]
    LloydMax,
}

impl Buckets {
    /// The name front ends use: `lloyd-max` or `quantiles`.
    pub fn name(self) -> &'static str {
        match self {
            Buckets::LloydMax => "lloyd-max",
            Buckets::Quantiles => "quantiles",
        }
    }
}

impl std::fmt::Display for Buckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Buckets {
    type Err = crate::CodecError;
    /// Parses [`Buckets::name`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Buckets::LloydMax, Buckets::Quantiles]
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| crate::CodecError::UnknownBuckets(s.to_string()))
    }
}

/// Iterations of Lloyd's update at most; each costs `2^nbits` binary searches.
const MAX_ITERS: usize = 200;

/// Quantile `q` of sorted values with linear interpolation (torch.quantile's default).
pub(crate) fn quantile(sorted: &[f32], q: f64) -> f32 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let t = (pos - lo as f64) as f32;
    sorted[lo] + (sorted[hi] - sorted[lo]) * t
}

/// Cutoffs (`n − 1`) and weights (`n`), both ascending, for `n` buckets over `sorted`
/// (non-empty, ascending, finite).
pub(crate) fn fit(sorted: &[f32], n: usize, how: Buckets) -> (Vec<f32>, Vec<f32>) {
    let cutoffs: Vec<f32> = (1..n).map(|i| quantile(sorted, i as f64 / n as f64)).collect();
    let weights: Vec<f32> = (0..n).map(|i| quantile(sorted, (i as f64 + 0.5) / n as f64)).collect();
    match how {
        Buckets::Quantiles => (cutoffs, weights),
        Buckets::LloydMax => lloyd_max(sorted, weights),
    }
}

/// Lloyd's algorithm in one dimension, on sorted values with prefix sums: each pass is a
/// binary search per cutoff.
fn lloyd_max(sorted: &[f32], start: Vec<f32>) -> (Vec<f32>, Vec<f32>) {
    let mut prefix = Vec::with_capacity(sorted.len() + 1);
    prefix.push(0f64);
    for &v in sorted {
        prefix.push(prefix.last().expect("non-empty") + f64::from(v));
    }
    let spread = f64::from(sorted[sorted.len() - 1] - sorted[0]);
    let mut w: Vec<f64> = start.iter().map(|&v| f64::from(v)).collect();
    let midpoints = |w: &[f64]| -> Vec<f64> { w.windows(2).map(|p| (p[0] + p[1]) / 2.0).collect() };
    for _ in 0..MAX_ITERS {
        // A value equal to a cutoff decodes to the lower bucket (the encoder counts cutoffs
        // strictly below it), so each bucket ends after the last value ≤ its cutoff.
        let cuts = midpoints(&w);
        let mut bounds = Vec::with_capacity(w.len() + 1);
        bounds.push(0);
        bounds.extend(cuts.iter().map(|&c| sorted.partition_point(|&v| f64::from(v) <= c)));
        bounds.push(sorted.len());
        let mut moved = 0f64;
        for (j, wj) in w.iter_mut().enumerate() {
            let (lo, hi) = (bounds[j], bounds[j + 1]);
            // An empty bucket keeps its weight: it lies between its neighbours' already.
            if hi > lo {
                let mean = (prefix[hi] - prefix[lo]) / (hi - lo) as f64;
                moved = moved.max((mean - *wj).abs());
                *wj = mean;
            }
        }
        if moved <= 1e-7 * spread {
            break;
        }
    }
    let cuts = midpoints(&w);
    (cuts.iter().map(|&c| c as f32).collect(), w.iter().map(|&v| v as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    /// Mean squared error of decoding `sorted` through the tables, as the codec does.
    fn mse(sorted: &[f32], (cuts, weights): &(Vec<f32>, Vec<f32>)) -> f64 {
        let err = |&v: &f32| {
            let w = weights[cuts.partition_point(|&c| c < v)];
            f64::from(v - w).powi(2)
        };
        sorted.iter().map(err).sum::<f64>() / sorted.len() as f64
    }

    fn gaussian(n: usize) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let mut v: Vec<f32> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
        v.sort_unstable_by(f32::total_cmp);
        v
    }

    /// The textbook Lloyd–Max quantiser of a unit Gaussian at 2 bits: levels ±0.4528, ±1.510,
    /// error 0.1175; ColBERT's quantiles give 0.147.
    #[test]
    fn gaussian_two_bits_matches_the_textbook() {
        let s = gaussian(200_000);
        let lm = fit(&s, 4, Buckets::LloydMax);
        let q = fit(&s, 4, Buckets::Quantiles);
        for (got, want) in lm.1.iter().zip([-1.510, -0.4528, 0.4528, 1.510]) {
            assert!((got - want).abs() < 0.02, "weights {:?}", lm.1);
        }
        assert!((lm.0[1]).abs() < 0.01 && (lm.0[2] - 0.9816).abs() < 0.02, "cutoffs {:?}", lm.0);
        let (e_lm, e_q) = (mse(&s, &lm), mse(&s, &q));
        assert!((e_lm - 0.1175).abs() < 0.003, "Lloyd–Max error {e_lm}");
        assert!((e_q - 0.147).abs() < 0.004, "quantile error {e_q}");
    }

    /// At the fixed point each weight is its bucket's mean and each cutoff the midpoint.
    #[test]
    fn converges_to_a_fixed_point() {
        let s = gaussian(20_000);
        let (cuts, w) = fit(&s, 16, Buckets::LloydMax);
        for (j, &wj) in w.iter().enumerate() {
            let lo = if j == 0 { 0 } else { s.partition_point(|&v| v <= cuts[j - 1]) };
            let hi = if j == 15 { s.len() } else { s.partition_point(|&v| v <= cuts[j]) };
            let mean = s[lo..hi].iter().map(|&v| f64::from(v)).sum::<f64>() / (hi - lo) as f64;
            assert!((f64::from(wj) - mean).abs() < 1e-4, "bucket {j}: {wj} vs mean {mean}");
        }
        for (c, p) in cuts.iter().zip(w.windows(2)) {
            assert!((c - (p[0] + p[1]) / 2.0).abs() < 1e-6);
        }
    }

    #[test]
    fn names_round_trip() {
        for b in [Buckets::LloydMax, Buckets::Quantiles] {
            assert_eq!(b.name().parse::<Buckets>().unwrap(), b);
        }
        let e = "median".parse::<Buckets>().unwrap_err();
        assert!(e.to_string().contains("median") && e.to_string().contains("lloyd-max"), "{e}");
    }

    #[test]
    fn degenerate_samples() {
        let same = vec![0.25f32; 100];
        for how in [Buckets::LloydMax, Buckets::Quantiles] {
            let (cuts, w) = fit(&same, 4, how);
            assert!(cuts.iter().chain(&w).all(|&v| v == 0.25), "{cuts:?} {w:?}");
        }
        let two: Vec<f32> = [vec![-1.0f32; 50], vec![1.0f32; 50]].concat();
        let t = fit(&two, 4, Buckets::LloydMax);
        assert_eq!(mse(&two, &t), 0.0, "{t:?}");
    }

    proptest! {
        /// Sorted, finite tables that never decode worse than the quantiles they start from.
        #[test]
        fn never_worse_than_quantiles(
            mut v in prop::collection::vec(-4.0f32..4.0, 1..400),
            nbits in prop::sample::select(vec![1u32, 2, 4, 8]),
        ) {
            v.sort_unstable_by(f32::total_cmp);
            let n = 1usize << nbits;
            let lm = fit(&v, n, Buckets::LloydMax);
            let q = fit(&v, n, Buckets::Quantiles);
            prop_assert_eq!((lm.0.len(), lm.1.len()), (n - 1, n));
            prop_assert!(lm.0.windows(2).all(|p| p[0] <= p[1]));
            prop_assert!(lm.1.windows(2).all(|p| p[0] <= p[1]));
            prop_assert!(lm.0.iter().chain(&lm.1).all(|x| x.is_finite()));
            prop_assert!(mse(&v, &lm) <= mse(&v, &q) * (1.0 + 1e-5) + 1e-12);
        }
    }
}
