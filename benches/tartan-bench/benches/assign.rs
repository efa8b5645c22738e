//! Nearest-centroid assignment, the arithmetic of a large build (criterion): grouped at the
//! 1M-document codebook size (131,072 centroids in 512 groups, 8 probes) against exact at a
//! small one, each reported in multiply-adds per second so their efficiency compares. Run
//! with `cargo bench -p tartan-bench --bench assign`.

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tartan_kmeans::{Assignment, CentroidSearch};

const DIM: usize = 128;
const TOPICS: usize = 4096;

/// `n` points around `TOPICS` shared centres, the shape of token vectors.
fn clustered(n: usize, centres: &[f32], rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..n)
        .flat_map(|_| {
            let t = rng.gen_range(0..TOPICS);
            centres[t * DIM..(t + 1) * DIM]
                .iter()
                .map(|&c| c + rng.gen_range(-0.3f32..0.3))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn assign(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let centres: Vec<f32> = (0..TOPICS * DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let points = clustered(16_384, &centres, &mut rng);
    let n = (points.len() / DIM) as u64;
    let mut g = c.benchmark_group("assign_16384_points");
    g.sample_size(10);
    for (name, k, assignment) in [
        ("exact_8192", 8192, Assignment::Exact),
        ("grouped_131072_512x8", 131_072, Assignment::Grouped { groups: 512, probes: 8 }),
    ] {
        let cents = clustered(k, &centres, &mut rng);
        let macs = match assignment {
            Assignment::Exact => n * k as u64,
            Assignment::Grouped { groups, probes } => n * (groups + probes * k / groups) as u64,
        } * DIM as u64;
        let search = CentroidSearch::new(cents, DIM, assignment, 3);
        g.throughput(Throughput::Elements(macs));
        g.bench_function(name, |b| b.iter(|| search.nearest(&points)));
    }
    g.finish();
}

criterion_group!(benches, assign);
criterion_main!(benches);
