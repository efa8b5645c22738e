use std::borrow::Cow;

use linfa::dataset::{DatasetBase, Records};
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, Array2, ArrayBase, ArrayView2, Data, Ix2};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::coarse::{Assignment, CentroidSearch};
use crate::lloyd::update_centroids;
use crate::nearest::nearest_centroids;
use crate::params::{Algorithm, KMeansInit, KMeansValidParams};
use crate::point::Point;
use crate::KMeansError;

/// A trained k-means model: the centroids and what training measured.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    centroids: Array2<f32>,
    inertia: f64,
    n_train_points: usize,
}

impl KMeans {
    /// Wraps given centroids (`n_centroids × dim`) as a model, e.g. a codebook read from disk.
    pub fn from_centroids(centroids: Array2<f32>) -> Self {
        Self { centroids, inertia: f64::NAN, n_train_points: 0 }
    }
    /// The centroids, `n_centroids × dim`.
    pub fn centroids(&self) -> &Array2<f32> {
        &self.centroids
    }
    /// Sum of squared distances of the training points to their nearest centroid, measured
    /// in the last pass (before the final update and normalisation). NaN for
    /// [`KMeans::from_centroids`].
    pub fn inertia(&self) -> f64 {
        self.inertia
    }
    /// Training points actually used (after subsampling).
    pub fn n_train_points(&self) -> usize {
        self.n_train_points
    }
    /// Nearest centroid of every row of `points`.
    ///
    /// # Panics
    /// If `points` does not have the centroids' dimension.
    pub fn assign(&self, points: ArrayView2<'_, f32>) -> Vec<u32> {
        assert_eq!(points.ncols(), self.centroids.ncols(), "points have the wrong dimension");
        let owned;
        let flat = match points.as_slice() {
            Some(s) => s,
            None => {
                owned = points.as_standard_layout().into_owned();
                owned.as_slice().expect("standard layout")
            }
        };
        let cents = self.centroids.as_slice().expect("centroids are kept in standard layout");
        nearest_centroids(flat, cents, self.centroids.ncols()).0
    }
    /// Sum of squared distances from every row of `points` to its nearest centroid.
    pub fn inertia_of(&self, points: ArrayView2<'_, f32>) -> f64 {
        let p = points.as_standard_layout();
        let cents = self.centroids.as_slice().expect("standard layout");
        let (_, d) = nearest_centroids(p.as_slice().expect("standard"), cents, p.ncols());
        d.iter().map(|&x| x as f64).sum()
    }
}

/// Trains on f32 or float16 points ([`Point`]); float16 points take half the memory and are
/// widened to f32 for the arithmetic. See [`KMeansValidParams::fit_observed`] for progress.
impl<P: Point, D: Data<Elem = P>, T> Fit<ArrayBase<D, Ix2>, T, KMeansError> for KMeansValidParams {
    type Object = KMeans;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<KMeans, KMeansError> {
        self.fit_observed(dataset.records().view(), &|_| {})
    }
}

impl KMeansValidParams {
    /// [`Fit::fit`] on the rows of `x`, calling `on_points(n)` as each pass assigns `n` more
    /// points (a pass assigns [`KMeans::n_train_points`] in all; float16 points are reported a
    /// block at a time), so that a long training can show progress.
    pub fn fit_observed<P: Point>(
        &self,
        x: ArrayView2<'_, P>,
        on_points: &(dyn Fn(usize) + Sync),
    ) -> Result<KMeans, KMeansError> {
        let (n, dim) = (x.nsamples(), x.ncols());
        if dim == 0 {
            return Err(KMeansError::ZeroDim);
        }
        let k = self.n_centroids;
        if n < k {
            return Err(KMeansError::TooFewPoints { n_points: n, n_centroids: k });
        }
        if let Some(row) =
            x.rows().into_iter().position(|r| r.iter().any(|v| !v.to_f32().is_finite()))
        {
            return Err(KMeansError::NonFinite { row });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        // Subsample to at most max_points_per_centroid · k points (faiss does the same).
        let cap = self.max_points_per_centroid.saturating_mul(k);
        let rows: Option<Vec<usize>> = (n > cap).then(|| {
            let mut r = sample(&mut rng, n, cap).into_vec();
            r.sort_unstable();
            r
        });
        // The points are used in place when nothing is subsampled: a copy would double the
        // peak memory of training (the sample is most of a large build's resident set).
        let pts: Cow<'_, [P]> = match (&rows, x.as_slice()) {
            (None, Some(all)) => Cow::Borrowed(all),
            (None, None) => Cow::Owned(x.iter().copied().collect()),
            (Some(rows), _) => {
                let mut pts = Vec::with_capacity(rows.len() * dim);
                for &r in rows {
                    pts.extend(x.row(r).iter());
                }
                Cow::Owned(pts)
            }
        };
        let n_pts = pts.len() / dim;

        let mut cents: Vec<f32> = match &self.init {
            KMeansInit::Precomputed(c) => {
                if c.ncols() != dim {
                    return Err(KMeansError::InitShape { expected: (k, dim), got: c.dim() });
                }
                c.as_standard_layout().iter().copied().collect()
            }
            KMeansInit::RandomPoints => {
                let mut idx = sample(&mut rng, n_pts, k).into_vec();
                idx.sort_unstable();
                idx.iter()
                    .flat_map(|&i| pts[i * dim..(i + 1) * dim].iter().map(|v| v.to_f32()))
                    .collect()
            }
        };

        let mut inertia = f64::NAN;
        match self.algorithm {
            Algorithm::Blocked => {
                let assignment = self.assignment.unwrap_or_else(|| Assignment::auto(k, n_pts));
                for pass in 0..self.max_iters {
                    let search =
                        CentroidSearch::new(cents, dim, assignment, self.seed ^ pass as u64);
                    let (labels, dists) = search.nearest_observed(&pts, on_points);
                    cents = search.into_centroids();
                    inertia = dists.iter().map(|&d| d as f64).sum();
                    update_centroids(&pts, &labels, dim, &mut cents, &mut rng);
                }
            }
            Algorithm::Linfa if self.max_iters > 0 => {
                let init = Array2::from_shape_vec((k, dim), cents).expect("k·dim values");
                let pts = pts.iter().map(|v| v.to_f32()).collect();
                let data = Array2::from_shape_vec((n_pts, dim), pts).expect("whole rows");
                let model = linfa_clustering::KMeans::params_with_rng(k, rng.clone())
                    .init_method(linfa_clustering::KMeansInit::Precomputed(init))
                    .max_n_iterations(self.max_iters as u64)
                    // linfa requires a positive tolerance; this one never stops a pass early.
                    .tolerance(f32::MIN_POSITIVE)
                    .n_runs(1)
                    .fit(&DatasetBase::from(data))
                    .map_err(KMeansError::LinfaClustering)?;
                // linfa reports the mean; keep the sum like the blocked path.
                inertia = model.inertia() as f64 * n_pts as f64;
                cents = model.centroids().iter().copied().collect();
            }
            Algorithm::Linfa => {}
        }
        if self.normalize {
            for c in cents.chunks_exact_mut(dim) {
                let norm = tartan_kernels::dot(c, c).sqrt();
                if norm > 0.0 {
                    c.iter_mut().for_each(|v| *v /= norm);
                }
            }
        }
        let centroids = Array2::from_shape_vec((k, dim), cents).expect("k·dim values");
        Ok(KMeans { centroids, inertia, n_train_points: n_pts })
    }
}

impl<D: Data<Elem = f32>> PredictInplace<ArrayBase<D, Ix2>, Array1<usize>> for KMeans {
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<usize>) {
        assert_eq!(x.nrows(), y.len(), "targets and records have different lengths");
        for (t, l) in y.iter_mut().zip(self.assign(x.view())) {
            *t = l as usize;
        }
    }
    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<usize> {
        Array1::zeros(x.nrows())
    }
}
