use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A scored document: `doc` is an index into the searched collection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Document index.
    pub doc: u32,
    /// Its score (higher is better).
    pub score: f32,
}

impl Hit {
    /// Ranking order: higher score first, then lower document index (so ties are stable).
    pub fn rank_cmp(&self, other: &Self) -> Ordering {
        other.score.total_cmp(&self.score).then(self.doc.cmp(&other.doc))
    }
}

/// Heap entry ordered so that the *worst* hit is the heap's maximum.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Worst(Hit);
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Worst {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.rank_cmp(&o.0)
    }
}

/// Keeps the `k` best hits seen (by [`Hit::rank_cmp`]).
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
}

impl TopK {
    /// A collector for the best `k` hits.
    pub fn new(k: usize) -> Self {
        Self { k, heap: BinaryHeap::with_capacity(k + 1) }
    }
    /// Offers a hit.
    #[inline]
    pub fn push(&mut self, hit: Hit) {
        if self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Worst(hit));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if hit.rank_cmp(&worst.0) == Ordering::Less {
                *worst = Worst(hit);
            }
        }
    }
    /// The score a hit must beat to enter, once `k` hits are held.
    pub fn threshold(&self) -> Option<f32> {
        (self.heap.len() == self.k).then(|| self.heap.peek().map(|w| w.0.score)).flatten()
    }
    /// Adds every hit of another collector.
    pub fn merge(&mut self, other: TopK) {
        for w in other.heap {
            self.push(w.0);
        }
    }
    /// The hits, best first.
    pub fn into_sorted(self) -> Vec<Hit> {
        let mut v: Vec<Hit> = self.heap.into_iter().map(|w| w.0).collect();
        v.sort_by(Hit::rank_cmp);
        v
    }
}

/// The best `k` of `hits` in rank order (score descending, then document ascending): what a
/// [`TopK`] fed every hit returns, by selection instead of a heap. For a pass that scores
/// every candidate anyway and keeps most of them (a heap of `k` over a few times `k` hits
/// replaces nearly every root), this is linear.
pub fn top_sorted(mut hits: Vec<Hit>, k: usize) -> Vec<Hit> {
    if k == 0 {
        return Vec::new();
    }
    if hits.len() > k {
        hits.select_nth_unstable_by(k - 1, Hit::rank_cmp);
        hits.truncate(k);
    }
    hits.sort_unstable_by(Hit::rank_cmp);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn equals_sort_and_truncate(scores in prop::collection::vec(-100i32..100, 0..200), k in 0usize..20) {
            let hits: Vec<Hit> = scores.iter().enumerate().map(|(i, &s)| Hit { doc: i as u32, score: s as f32 }).collect();
            let mut top = TopK::new(k);
            let mut other = TopK::new(k);
            for (i, h) in hits.iter().enumerate() {
                if i % 2 == 0 { top.push(*h) } else { other.push(*h) }
            }
            top.merge(other);
            let mut want = hits.clone();
            want.sort_by(Hit::rank_cmp);
            want.truncate(k);
            prop_assert_eq!(&top_sorted(hits, k), &want);
            prop_assert_eq!(top.into_sorted(), want);
        }
    }
}
