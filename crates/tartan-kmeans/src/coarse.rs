//! Coarse-to-fine nearest-centroid search: the centroids are themselves clustered into groups,
//! and each point is compared only with the centroids of its `probes` nearest groups.
//!
//! With K = 16,384 centroids in 128 groups and 8 probes a point meets 128 group centres and
//! about 1,024 centroids instead of 16,384: some 14× less arithmetic. A block of points is
//! scored against the group centres in one matrix product; then, group by group, the points
//! that probe a group are gathered and matched against that group's centroids, laid out once
//! for `tartan_kernels::nearest_in_panels`, which keeps each product in registers until its
//! distance has been compared.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tartan_kernels::CentroidPanels;

use crate::lloyd::update_centroids;
use crate::nearest::nearest_centroids;
use crate::point::{per_row_f32, Point};

/// Points per group's matrix product that [`CentroidSearch::nearest`] aims for: with fewer,
/// the products are too small to run near peak (at 1M documents, 512 groups and blocks of
/// 2,048 points left 32 points per product and k-means at ~20 GFLOP/s).
const ROWS_PER_GROUP: usize = 256;
/// Bounds on the points per rayon task (the group-score buffer is points × groups floats).
const MIN_ROW_BLOCK: usize = 2048;
const MAX_ROW_BLOCK: usize = 16_384;
/// Lloyd passes when grouping the centroids (cheap: K points, √K groups).
const GROUP_ITERS: usize = 10;

/// How nearest centroids are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// Every point against every centroid.
    Exact,
    /// Centroids clustered into `groups` groups; each point is compared with the centroids of
    /// its `probes` nearest groups. Nearly always finds the nearest centroid (the miss rate is
    /// measured in `docs/benchmarks.md`); a miss picks a close second.
    Grouped {
        /// Number of groups (at most the number of centroids).
        groups: usize,
        /// Groups searched per point (at least 1).
        probes: usize,
    },
}

/// Below this many centroids [`Assignment::auto`] stays exact: the saving is small.
pub const GROUPED_MIN_CENTROIDS: usize = 4096;

impl Assignment {
    /// The default for `k` centroids and `n_points` points to assign: exact below
    /// [`GROUPED_MIN_CENTROIDS`] centroids or when there are too few points to repay grouping
    /// the centroids (fewer than 16 per group), otherwise `2^ceil(log2(k)/2)` groups (128 for
    /// 16,384) and 8 probes.
    pub fn auto(k: usize, n_points: usize) -> Self {
        if k < GROUPED_MIN_CENTROIDS {
            return Self::Exact;
        }
        let bits = (usize::BITS - (k - 1).leading_zeros()).div_ceil(2);
        let groups = 1 << bits;
        if n_points < 16 * groups {
            return Self::Exact;
        }
        Self::Grouped { groups, probes: 8 }
    }
}

/// A reusable nearest-centroid search over fixed centroids.
#[derive(Debug, Clone)]
pub struct CentroidSearch {
    dim: usize,
    centroids: Vec<f32>,
    groups: Option<Groups>,
}

#[derive(Debug, Clone)]
struct Groups {
    probes: usize,
    centres: Vec<f32>,
    centre_norms: Vec<f32>,
    /// `offsets[g]..offsets[g + 1]` are group g's entries in `members`.
    offsets: Vec<usize>,
    members: Vec<u32>,
    /// Group g's centroids (in `members` order) laid out for the fused product and scan.
    panels: Vec<CentroidPanels>,
}

impl CentroidSearch {
    /// Prepares a search over `centroids` (`k × dim`, row-major). Grouping runs a small
    /// seeded k-means over the centroids themselves.
    ///
    /// # Panics
    /// If `dim` is 0 or `centroids` is empty or not whole rows.
    pub fn new(centroids: Vec<f32>, dim: usize, assignment: Assignment, seed: u64) -> Self {
        assert!(dim > 0 && !centroids.is_empty() && centroids.len().is_multiple_of(dim));
        let k = centroids.len() / dim;
        let groups = match assignment {
            Assignment::Grouped { groups, probes } if groups > 1 && probes < groups.min(k) => {
                Some(Groups::new(&centroids, dim, groups.min(k), probes.max(1), seed))
            }
            _ => None,
        };
        Self { dim, centroids, groups }
    }
    /// The centroids searched.
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }
    /// Gives the centroids back.
    pub fn into_centroids(self) -> Vec<f32> {
        self.centroids
    }
    /// For each row of `points` (`n × dim`), the index of its nearest centroid and the squared
    /// distance to it. Runs on the current rayon pool.
    ///
    /// # Panics
    /// If `points` is not whole rows.
    pub fn nearest(&self, points: &[f32]) -> (Vec<u32>, Vec<f32>) {
        self.nearest_f32(points)
    }
    /// [`CentroidSearch::nearest`] for points of any [`Point`] type (float16 rows are widened
    /// a block at a time; the results are the same as for the widened rows).
    ///
    /// # Panics
    /// If `points` is not whole rows.
    pub fn nearest_of<T: Point>(&self, points: &[T]) -> (Vec<u32>, Vec<f32>) {
        self.nearest_observed(points, &|_| {})
    }
    /// [`CentroidSearch::nearest_of`], calling `on_rows(n)` as each block of `n` rows is done.
    ///
    /// # Panics
    /// If `points` is not whole rows.
    pub fn nearest_observed<T: Point>(
        &self,
        points: &[T],
        on_rows: &(dyn Fn(usize) + Sync),
    ) -> (Vec<u32>, Vec<f32>) {
        assert!(points.len().is_multiple_of(self.dim));
        per_row_f32(points, self.dim, |p| {
            let out = self.nearest_f32(p);
            on_rows(p.len() / self.dim);
            out
        })
    }
    fn nearest_f32(&self, points: &[f32]) -> (Vec<u32>, Vec<f32>) {
        let dim = self.dim;
        assert!(points.len().is_multiple_of(dim));
        let Some(g) = &self.groups else {
            return nearest_centroids(points, &self.centroids, dim);
        };
        let n = points.len() / dim;
        let mut labels = vec![0u32; n];
        let mut dists = vec![0f32; n];
        let block =
            (ROWS_PER_GROUP * g.centre_norms.len() / g.probes).clamp(MIN_ROW_BLOCK, MAX_ROW_BLOCK);
        labels
            .par_chunks_mut(block)
            .zip(dists.par_chunks_mut(block))
            .zip(points.par_chunks(block * dim))
            .for_each_init(Scratch::default, |scratch, ((lab, dist), block)| {
                g.nearest_block(block, dim, lab, dist, scratch)
            });
        (labels, dists)
    }
}

impl Groups {
    fn new(centroids: &[f32], dim: usize, n_groups: usize, probes: usize, seed: u64) -> Self {
        let k = centroids.len() / dim;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut idx = rand::seq::index::sample(&mut rng, k, n_groups).into_vec();
        idx.sort_unstable();
        let mut centres: Vec<f32> =
            idx.iter().flat_map(|&i| centroids[i * dim..(i + 1) * dim].iter().copied()).collect();
        let mut labels = Vec::new();
        for pass in 0..=GROUP_ITERS {
            labels = nearest_centroids(centroids, &centres, dim).0;
            if pass < GROUP_ITERS {
                update_centroids(centroids, &labels, dim, &mut centres, &mut rng);
            }
        }
        let (offsets, members) = bucket_by(&labels, n_groups);
        let panels = (0..n_groups)
            .into_par_iter()
            .map(|g| {
                let rows: Vec<f32> = members[offsets[g]..offsets[g + 1]]
                    .iter()
                    .flat_map(|&c| centroids[c as usize * dim..][..dim].iter().copied())
                    .collect();
                let norms: Vec<f32> =
                    rows.chunks_exact(dim).map(|c| tartan_kernels::dot(c, c)).collect();
                CentroidPanels::new(&rows, &norms, dim)
            })
            .collect();
        // An empty group (possible after the last pass) is never probed.
        let centre_norms = centres
            .chunks_exact(dim)
            .enumerate()
            .map(|(g, c)| {
                if offsets[g] == offsets[g + 1] {
                    f32::INFINITY
                } else {
                    tartan_kernels::dot(c, c)
                }
            })
            .collect();
        Self { probes, centres, centre_norms, offsets, members, panels }
    }

    fn nearest_block(
        &self,
        block: &[f32],
        dim: usize,
        labels: &mut [u32],
        dists: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let rows = block.len() / dim;
        let n_groups = self.centre_norms.len();
        let Scratch { scores, gathered, nearest } = scratch;
        // 1. The `probes` nearest group centres of every row. (The buffers are reused from
        // block to block: the product overwrites every element it is given.)
        grow(scores, rows * n_groups);
        let scores = &mut scores[..rows * n_groups];
        tartan_kernels::matmul_nt(block, &self.centres, dim, scores);
        let p = self.probes;
        let mut probe = vec![0u32; rows * p];
        let (mut top, mut dist, mut minima) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..rows {
            let row = &scores[r * n_groups..][..n_groups];
            top_groups(row, &self.centre_norms, p, (&mut dist, &mut minima), &mut top);
            for (slot, &(_, g)) in probe[r * p..][..p].iter_mut().zip(&top) {
                *slot = g;
            }
        }
        // 2. Probe slots bucketed by group; slot i belongs to row i / p.
        let (starts, bucket) = bucket_by(&probe, n_groups);
        // 3. Per group: gather its rows, then the nearest of its centroids for each (product
        // and scan fused), keeping the best over the groups a row probes.
        let mut best = vec![(f32::INFINITY, u32::MAX); rows];
        for g in 0..n_groups {
            let slots = &bucket[starts[g]..starts[g + 1]];
            let lo = self.offsets[g];
            if slots.is_empty() || self.panels[g].is_empty() {
                continue;
            }
            gathered.clear();
            for &slot in slots {
                gathered.extend_from_slice(&block[slot as usize / p * dim..][..dim]);
            }
            nearest.clear();
            nearest.resize(slots.len(), (f32::INFINITY, u32::MAX));
            tartan_kernels::nearest_in_panels(gathered, &self.panels[g], nearest);
            for (&(d, j), &slot) in nearest.iter().zip(slots) {
                // The group's members ascend, so the first minimum is the lowest centroid
                // index among equals; across groups ties also go to the lower index, as in
                // the exact search.
                if j == u32::MAX {
                    continue;
                }
                let c = self.members[lo + j as usize];
                let b = &mut best[slot as usize / p];
                if d < b.0 || (d == b.0 && c < b.1) {
                    *b = (d, c);
                }
            }
        }
        for (r, &(d, c)) in best.iter().enumerate() {
            let x = &block[r * dim..][..dim];
            labels[r] = c;
            dists[r] = (d + tartan_kernels::dot(x, x)).max(0.0);
        }
    }
}

/// Into `top`, the `p` smallest `norms[g] − 2·scores[g]` with their groups: the first `p` of
/// a stable sort by [`f32::total_cmp`] (an earlier group first among equals, NaN last).
/// `dist` and `minima` are scratch.
fn top_groups(
    scores: &[f32],
    norms: &[f32],
    p: usize,
    (dist, minima): (&mut Vec<f32>, &mut Vec<f32>),
    top: &mut Vec<(f32, u32)>,
) {
    dist.clear();
    dist.extend(norms.iter().zip(scores).map(|(&n, &s)| n - 2.0 * s));
    top.clear();
    // The p-th smallest of the minima of runs of 8 bounds the p-th smallest value (p runs
    // each hold a value at or below it), so only values at or below it are sorted. A
    // branchy insertion of every value into a sorted list was a sixth of encoding.
    minima.clear();
    minima.extend(dist.chunks(8).map(|run| run.iter().fold(f32::INFINITY, |m, &d| m.min(d))));
    let bound = if minima.len() >= p {
        *minima.select_nth_unstable_by(p - 1, f32::total_cmp).1
    } else {
        f32::NAN
    };
    if bound.is_finite() {
        top.extend(
            dist.iter().enumerate().filter(|(_, &d)| d <= bound).map(|(g, &d)| (d, g as u32)),
        );
    } else {
        // Too few groups, or infinities and NaN among the minima: sort them all.
        top.extend(dist.iter().enumerate().map(|(g, &d)| (d, g as u32)));
    }
    top.sort_by(|a, b| a.0.total_cmp(&b.0));
    top.truncate(p);
}

/// Buffers one rayon task reuses across its blocks (allocating and zeroing the group scores
/// of every block took 6% of a build).
#[derive(Default)]
struct Scratch {
    scores: Vec<f32>,
    gathered: Vec<f32>,
    nearest: Vec<(f32, u32)>,
}

/// Makes `v` at least `n` long (new elements are overwritten before they are read).
fn grow(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

/// Counting sort of positions by key: `order[offsets[key]..offsets[key + 1]]` are the
/// positions holding `key`, ascending. Keys must be below `n_keys`.
fn bucket_by(keys: &[u32], n_keys: usize) -> (Vec<usize>, Vec<u32>) {
    let mut offsets = vec![0usize; n_keys + 1];
    for &key in keys {
        offsets[key as usize + 1] += 1;
    }
    for i in 0..n_keys {
        offsets[i + 1] += offsets[i];
    }
    let mut fill = offsets.clone();
    let mut order = vec![0u32; keys.len()];
    for (i, &key) in keys.iter().enumerate() {
        order[fill[key as usize]] = i as u32;
        fill[key as usize] += 1;
    }
    (offsets, order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::Rng;

    fn clustered(n: usize, dim: usize, topics: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let centres: Vec<f32> = (0..topics * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
        (0..n)
            .flat_map(|_| {
                let t = rng.gen_range(0..topics);
                let c = centres[t * dim..(t + 1) * dim].to_vec();
                c.into_iter().map(|v| v + rng.gen_range(-0.2f32..0.2)).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn auto_groups() {
        let n = 1 << 20;
        assert_eq!(Assignment::auto(4095, n), Assignment::Exact);
        assert_eq!(Assignment::auto(4096, n), Assignment::Grouped { groups: 64, probes: 8 });
        assert_eq!(Assignment::auto(16_384, n), Assignment::Grouped { groups: 128, probes: 8 });
        assert_eq!(Assignment::auto(20_000, n), Assignment::Grouped { groups: 256, probes: 8 });
        assert_eq!(Assignment::auto(16_384, 2047), Assignment::Exact);
    }

    #[test]
    fn all_probes_equal_exact() {
        let dim = 16;
        let cents = clustered(300, dim, 20, 1);
        let pts = clustered(1000, dim, 20, 2);
        // probes = groups is exhaustive, so it must agree with the exact search exactly.
        let s = CentroidSearch::new(
            cents.clone(),
            dim,
            Assignment::Grouped { groups: 17, probes: 16 },
            3,
        );
        let full = CentroidSearch::new(cents.clone(), dim, Assignment::Exact, 3);
        let (la, da) = s.nearest(&pts);
        let (lb, db) = full.nearest(&pts);
        for i in 0..la.len() {
            // Same distance; the label can differ only on an exact tie.
            assert!((da[i] - db[i]).abs() < 1e-4, "row {i}: {} vs {}", da[i], db[i]);
        }
        let agree = la.iter().zip(&lb).filter(|(a, b)| a == b).count();
        assert!(agree >= la.len() - 2, "{agree} of {}", la.len());
    }

    #[test]
    fn few_probes_rarely_miss_on_clustered_data() {
        // Topics → subtopics → points, like token vectors; the centroids are the subtopics.
        let dim = 32;
        let topics = clustered(64, dim, 64, 4);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let jitter = |c: &[f32], s: f32, rng: &mut ChaCha8Rng| -> Vec<f32> {
            c.iter().map(|v| v + rng.gen_range(-s..s)).collect()
        };
        let cents: Vec<f32> = (0..1024)
            .flat_map(|i| jitter(&topics[(i % 64) * dim..][..dim], 0.3, &mut rng))
            .collect();
        let pts: Vec<f32> = (0..4000)
            .flat_map(|_| {
                let c = rng.gen_range(0..1024);
                jitter(&cents[c * dim..][..dim], 0.1, &mut rng)
            })
            .collect();
        let s = CentroidSearch::new(
            cents.clone(),
            dim,
            Assignment::Grouped { groups: 32, probes: 4 },
            0,
        );
        let (la, da) = s.nearest(&pts);
        let (lb, db) = nearest_centroids(&pts, &cents, dim);
        let hits = la.iter().zip(&lb).filter(|(a, b)| a == b).count();
        assert!(hits as f64 >= 0.97 * la.len() as f64, "{hits} of {}", la.len());
        let (sa, sb) = (da.iter().sum::<f32>(), db.iter().sum::<f32>());
        assert!(sa <= 1.01 * sb, "inertia {sa} vs exact {sb}");
        for i in 0..la.len() {
            assert!(da[i] + 1e-4 >= db[i], "grouped found a closer centroid than exact");
            let c = &cents[la[i] as usize * dim..][..dim];
            let x = &pts[i * dim..][..dim];
            let d2: f32 = x.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum();
            assert!((d2 - da[i]).abs() < 1e-3, "reported distance is not the label's");
        }
    }

    proptest! {
        #[test]
        fn top_groups_are_the_first_p_of_a_stable_sort(
            scores in proptest::collection::vec(-2.0f32..2.0, 1..100),
            coarse in proptest::bool::ANY,
            p in 1usize..10,
        ) {
            // Coarse scores make ties common; the earlier group must come first among equals.
            let scores: Vec<f32> =
                scores.iter().map(|&s| if coarse { (s * 2.0).round() / 2.0 } else { s }).collect();
            let norms: Vec<f32> = (0..scores.len()).map(|g| (g % 3) as f32 * 0.5).collect();
            let p = p.min(scores.len());
            let mut all: Vec<(f32, u32)> =
                (0..scores.len()).map(|g| (norms[g] - 2.0 * scores[g], g as u32)).collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut top = Vec::new();
            top_groups(&scores, &norms, p, (&mut Vec::new(), &mut Vec::new()), &mut top);
            prop_assert_eq!(&top[..], &all[..p]);
        }

        #[test]
        fn grouped_labels_carry_their_distance(
            dim in 1usize..6,
            pts in proptest::collection::vec(-1.0f32..1.0, 0..300),
            cs in proptest::collection::vec(-1.0f32..1.0, 24..160),
            groups in 2usize..8,
            probes in 1usize..4,
        ) {
            let pts = &pts[..pts.len() / dim * dim];
            let cs = &cs[..cs.len() / dim * dim];
            let s = CentroidSearch::new(cs.to_vec(), dim, Assignment::Grouped { groups, probes }, 9);
            let (labels, dists) = s.nearest(pts);
            let exact = nearest_centroids(pts, cs, dim).1;
            for (i, x) in pts.chunks_exact(dim).enumerate() {
                let c = &cs[labels[i] as usize * dim..][..dim];
                let d2: f32 = x.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum();
                prop_assert!((d2 - dists[i]).abs() < 1e-4);
                prop_assert!(dists[i] + 1e-4 >= exact[i]);
            }
        }
    }
}
