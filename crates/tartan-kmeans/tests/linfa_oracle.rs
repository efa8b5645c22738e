//! linfa-clustering's own KMeans as the oracle: same initial centroids, same number of Lloyd
//! passes, inertia within 1%. linfa's update counts the old centroid as one more member of
//! its cluster ("m_k-means"), so the two only agree when clusters hold many points: the data
//! here has about a thousand points per centroid.

use linfa::prelude::*;
use linfa_clustering::KMeans as LinfaKMeans;
use ndarray::{Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tartan_kmeans::{Assignment, KMeansError, KMeansInit, KMeansParams};

fn blobs(n: usize, dim: usize, centers: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let c: Vec<Vec<f32>> =
        (0..centers).map(|_| (0..dim).map(|_| rng.gen_range(-3.0..3.0)).collect()).collect();
    Array2::from_shape_fn((n, dim), |(i, j)| c[i % centers][j] + rng.gen_range(-0.7..0.7))
}

#[test]
fn inertia_matches_linfa_with_same_init() {
    let x = blobs(16000, 16, 12, 1);
    let k = 16;
    let init = x.select(Axis(0), &(0..k).map(|i| i * 7).collect::<Vec<_>>());
    for iters in [1u64, 3, 8] {
        let ours = KMeansParams::new(k)
            .max_iters(iters as usize)
            .normalize(false)
            .init(KMeansInit::Precomputed(init.clone()))
            .fit(&DatasetBase::from(x.clone()))
            .unwrap();
        let theirs = LinfaKMeans::params_with_rng(k, ChaCha8Rng::seed_from_u64(0))
            .init_method(linfa_clustering::KMeansInit::Precomputed(init.clone()))
            .max_n_iterations(iters)
            .tolerance(1e-12)
            .n_runs(1)
            .fit(&DatasetBase::from(x.clone()))
            .unwrap();
        let ours_inertia = ours.inertia_of(x.view());
        let theirs_model = tartan_kmeans::KMeans::from_centroids(theirs.centroids().clone());
        let theirs_inertia = theirs_model.inertia_of(x.view());
        let rel = (ours_inertia - theirs_inertia).abs() / theirs_inertia;
        assert!(rel < 0.01, "iters {iters}: ours {ours_inertia} linfa {theirs_inertia}");
    }
}

#[test]
fn deterministic_for_a_seed_and_normalised() {
    let x = blobs(2000, 8, 10, 2);
    let fit = |seed| KMeansParams::new(16).seed(seed).fit(&DatasetBase::from(x.clone())).unwrap();
    let (a, b, c) = (fit(5), fit(5), fit(6));
    assert_eq!(a.centroids(), b.centroids());
    assert_ne!(a.centroids(), c.centroids());
    for row in a.centroids().rows() {
        assert!((row.dot(&row) - 1.0).abs() < 1e-4);
    }
}

#[test]
fn training_reduces_inertia() {
    let x = blobs(4000, 8, 20, 3);
    let fit = |iters| {
        KMeansParams::new(20)
            .max_iters(iters)
            .normalize(false)
            .seed(1)
            .fit(&DatasetBase::from(x.clone()))
            .unwrap()
            .inertia_of(x.view())
    };
    assert!(fit(6) < fit(0) * 0.9);
}

#[test]
fn grouped_training_matches_exact_training() {
    // 4,096 centroids and enough points: the default assignment is grouped.
    let x = blobs(12_000, 8, 512, 6);
    let fit = |a: Option<Assignment>| {
        let p = KMeansParams::new(4096).normalize(false).seed(2);
        let p = match a {
            Some(a) => p.assignment(a),
            None => p,
        };
        p.fit(&DatasetBase::from(x.clone())).unwrap().inertia_of(x.view())
    };
    let (grouped, exact) = (fit(None), fit(Some(Assignment::Exact)));
    let untrained = KMeansParams::new(4096)
        .max_iters(0)
        .normalize(false)
        .seed(2)
        .fit(&DatasetBase::from(x.clone()))
        .unwrap()
        .inertia_of(x.view());
    assert!(grouped <= exact * 1.03, "grouped {grouped} vs exact {exact}");
    assert!(grouped < untrained * 0.9, "grouped {grouped} vs untrained {untrained}");
}

#[test]
fn subsamples_to_the_cap() {
    let x = blobs(5000, 4, 5, 4);
    let m = KMeansParams::new(8)
        .max_points_per_centroid(10)
        .fit(&DatasetBase::from(x.clone()))
        .unwrap();
    assert_eq!(m.n_train_points(), 80);
    let pred: ndarray::Array1<usize> = m.predict(&x);
    assert_eq!(pred.len(), 5000);
    assert!(pred.iter().all(|&l| l < 8));
}

#[test]
fn bad_parameters_and_inputs_are_errors() {
    let x = blobs(10, 4, 2, 5);
    let ds = DatasetBase::from(x.clone());
    assert!(matches!(KMeansParams::new(0).fit(&ds), Err(KMeansError::ZeroCentroids)));
    assert!(matches!(
        KMeansParams::new(11).fit(&ds),
        Err(KMeansError::TooFewPoints { n_points: 10, n_centroids: 11 })
    ));
    assert!(matches!(
        KMeansParams::new(2).max_points_per_centroid(0).fit(&ds),
        Err(KMeansError::ZeroPointsPerCentroid)
    ));
    let mut bad = x.clone();
    bad[[7, 2]] = f32::NAN;
    assert!(matches!(
        KMeansParams::new(2).fit(&DatasetBase::from(bad)),
        Err(KMeansError::NonFinite { row: 7 })
    ));
    for (groups, probes) in [(0, 1), (4, 0)] {
        assert!(matches!(
            KMeansParams::new(2).assignment(Assignment::Grouped { groups, probes }).fit(&ds),
            Err(KMeansError::BadAssignment { .. })
        ));
    }
    let init = Array2::zeros((3, 4));
    assert!(matches!(
        KMeansParams::new(2).init(KMeansInit::Precomputed(init)).fit(&ds),
        Err(KMeansError::InitShape { .. })
    ));
}

#[test]
fn empty_clusters_are_refilled() {
    // Many identical points and far more centroids than distinct values: several clusters
    // empty on the first pass must be re-seeded, and every centroid must stay finite.
    let mut x = Array2::<f32>::zeros((64, 2));
    for i in 0..64 {
        x[[i, 0]] = (i % 4) as f32;
        x[[i, 1]] = 1.0;
    }
    let init = Array2::from_shape_fn((8, 2), |(i, j)| if j == 0 { 100.0 + i as f32 } else { 1.0 });
    let m = KMeansParams::new(8)
        .normalize(false)
        .max_iters(3)
        .init(KMeansInit::Precomputed(init))
        .fit(&DatasetBase::from(x.clone()))
        .unwrap();
    assert!(m.centroids().iter().all(|v| v.is_finite()));
    assert!(m.inertia_of(x.view()) < 1.0);
}

#[test]
fn linfa_algorithm_option_trains_comparable_centroids() {
    let x = blobs(8000, 8, 8, 6);
    let fit = |alg| {
        KMeansParams::new(8)
            .algorithm(alg)
            .max_iters(5)
            .normalize(false)
            .seed(2)
            .fit(&DatasetBase::from(x.clone()))
            .unwrap()
            .inertia_of(x.view())
    };
    let (ours, theirs) =
        (fit(tartan_kmeans::Algorithm::Blocked), fit(tartan_kmeans::Algorithm::Linfa));
    assert!((ours - theirs).abs() / theirs < 0.01, "blocked {ours} vs linfa {theirs}");
}

#[test]
fn float16_points_train_the_same_centroids_as_their_f32_values() {
    // 40,000 points span several widening chunks, and 4,096 centroids use the grouped
    // search: the float16 path must give exactly what the widened f32 points give.
    let x = blobs(40_000, 8, 512, 9).mapv(|v| half::f16::from_f32(v).to_f32());
    let x16 = x.mapv(half::f16::from_f32);
    let p = KMeansParams::new(4096).seed(3);
    let a = p.clone().fit(&DatasetBase::from(x.clone())).unwrap();
    let b = p.fit(&DatasetBase::from(x16)).unwrap();
    assert_eq!(a.centroids(), b.centroids());
    assert_eq!(a.inertia().to_bits(), b.inertia().to_bits());
}
