//! Reusable per-search state: the visited set, the two heaps of `search_layer`, and buffers.
//!
//! One [`Scratch`] serves any number of searches, inserts and removes in turn, so a query
//! allocates nothing once the buffers have grown (hnswlib's `visited_list_pool`).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::NodeId;

/// A node and its distance to the query, ordered by distance, then id (a total order, so heaps
/// and sorts are deterministic even with ties).
#[derive(Clone, Copy, Debug)]
pub(super) struct Near {
    pub dist: f32,
    pub id: NodeId,
}

impl Near {
    pub(super) fn new(dist: f32, id: NodeId) -> Near {
        Near { dist, id }
    }

    /// `(dist, id)` as one integer ordered as `f32::total_cmp`, then id: one comparison
    /// instead of two in the heaps' hot loops.
    #[inline]
    fn key(self) -> u64 {
        let bits = self.dist.to_bits();
        // As integers, negative floats order backwards: flip all their bits; flip only the
        // sign bit of the others, so that they order above every negative one.
        let ordered = bits ^ ((((bits as i32) >> 31) as u32) | 0x8000_0000);
        (u64::from(ordered) << 32) | u64::from(self.id)
    }

    /// This node as its order key, for the heaps.
    #[inline]
    pub(super) fn packed(self) -> Packed {
        Packed(self.key())
    }
}

/// A [`Near`] as its order key: the heaps of `search_layer` compare one integer instead of
/// computing two keys per comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Packed(u64);

impl Packed {
    /// The distance, back from the key.
    #[inline]
    pub(super) fn dist(self) -> f32 {
        let ordered = (self.0 >> 32) as u32;
        // Undoes `Near::key`: an ordered value with the top bit set was a non-negative float.
        let bits = if ordered & 0x8000_0000 != 0 {
            ordered ^ 0x8000_0000
        } else {
            !ordered
        };
        f32::from_bits(bits)
    }

    /// The node and distance it packs.
    #[inline]
    pub(super) fn near(self) -> Near {
        Near::new(self.dist(), self.0 as NodeId)
    }
}

impl Ord for Near {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Near {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Near {}

/// A set of node ids that empties in O(1): a slot holds the generation that last marked it.
/// Stamps are 16 bits, as in hnswlib: half the cache footprint of 32 (measured +2–9% queries/s),
/// for a full reset once every 65,535 searches.
#[derive(Default)]
pub(super) struct Visited {
    stamps: Vec<u16>,
    generation: u16,
}

impl Visited {
    /// Empties the set.
    pub(super) fn clear(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped: stale stamps could equal the new generation.
            self.stamps.fill(0);
            self.generation = 1;
        }
    }

    /// Whether `id` has a slot. Callers check that an id is a real node before [`grow`]ing to it,
    /// so a damaged id cannot make the set allocate gigabytes.
    ///
    /// [`grow`]: Visited::grow
    #[inline]
    pub(super) fn fits(&self, id: NodeId) -> bool {
        (id as usize) < self.stamps.len()
    }

    /// Makes room for ids up to `id`.
    pub(super) fn grow(&mut self, id: NodeId) {
        let len = (id as usize + 1).max(self.stamps.len() * 2);
        self.stamps.resize(len, 0);
    }

    /// Adds `id`; returns whether it was new. Invariant: `fits(id)`.
    #[inline]
    pub(super) fn insert(&mut self, id: NodeId) -> bool {
        let slot = &mut self.stamps[id as usize];
        let new = *slot != self.generation;
        *slot = self.generation;
        new
    }
}

/// Reusable state for searches, inserts and removes. Not shared: one per thread.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Nodes whose distance has been computed in the current search.
    pub(super) visited: Visited,
    /// C of the paper: nodes still to expand, nearest on top.
    pub(super) candidates: BinaryHeap<Reverse<Packed>>,
    /// W of the paper: the `ef` nearest nodes found (that pass the filter), farthest on top.
    pub(super) results: BinaryHeap<Packed>,
    /// The neighbour list being expanded.
    pub(super) links: Vec<NodeId>,
    /// The neighbours of the node being expanded not visited before, in list order.
    pub(super) fresh: Vec<NodeId>,
    /// W of a descent's layer, nearest first, each with whether it was expanded.
    pub(super) beam: Vec<(Near, bool)>,
    /// Buffers of insert and remove, kept to save allocations.
    pub(super) found: Vec<Near>,
    pub(super) seeds: Vec<Near>,
    pub(super) cands: Vec<Near>,
    pub(super) chosen: Vec<Near>,
    pub(super) kept: Vec<Near>,
    pub(super) list: Vec<NodeId>,
    pub(super) ids: Vec<NodeId>,
    /// The id buffers of a removal.
    pub(super) removal: super::remove::Buffers,
    /// `Index::search_with`'s query in search form and its `(distance, id)` results, kept so
    /// that a query allocates nothing but its answer.
    pub(crate) query: Vec<f32>,
    pub(crate) found_ids: Vec<(f32, NodeId)>,
}

impl Scratch {
    /// Empty scratch; its buffers grow to the largest graph and `ef` they meet.
    pub(crate) fn new() -> Scratch {
        Scratch::default()
    }

    /// Starts a search: empties the visited set and both heaps.
    pub(super) fn begin(&mut self) {
        self.visited.clear();
        self.candidates.clear();
        self.results.clear();
    }

    /// Moves W into `out`, nearest first.
    pub(super) fn drain_results(&mut self, out: &mut Vec<Near>) {
        out.clear();
        out.extend(self.results.drain().map(Packed::near));
        out.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visited_empties_per_generation_and_survives_wrap() {
        let mut v = Visited::default();
        v.clear();
        v.grow(9);
        assert!(v.fits(9) && !v.fits(1 << 20));
        assert!(v.insert(3));
        assert!(!v.insert(3));
        v.clear();
        assert!(v.insert(3));
        v.generation = u16::MAX;
        v.insert(5);
        v.clear();
        assert_eq!(v.generation, 1);
        assert!(v.insert(5), "a stamp from before the wrap must not count");
    }

    proptest::proptest! {
        /// The integer key orders exactly as `f32::total_cmp`, then id: negative distances
        /// (cosine and dot can give slightly negative ones), ±0 and infinities included.
        #[test]
        fn near_key_orders_as_total_cmp_then_id(
            a in proptest::num::f32::ANY,
            b in proptest::num::f32::ANY,
            ia in 0u32..4,
            ib in 0u32..4,
        ) {
            let expected = a.total_cmp(&b).then(ia.cmp(&ib));
            proptest::prop_assert_eq!(Near::new(a, ia).cmp(&Near::new(b, ib)), expected);
        }
    }

    proptest::proptest! {
        /// A packed node gives back its distance bit for bit (NaN, ±0 and infinities included)
        /// and its id, and packed nodes order as the nodes do.
        #[test]
        fn packed_round_trips_and_keeps_the_order(
            a in proptest::num::f32::ANY,
            b in proptest::num::f32::ANY,
            ia in proptest::prelude::any::<u32>(),
            ib in 0u32..4,
        ) {
            let (x, y) = (Near::new(a, ia), Near::new(b, ib));
            let back = x.packed().near();
            proptest::prop_assert_eq!(back.dist.to_bits(), a.to_bits());
            proptest::prop_assert_eq!(back.id, ia);
            proptest::prop_assert_eq!(x.packed().dist().to_bits(), a.to_bits());
            proptest::prop_assert_eq!(x.packed().cmp(&y.packed()), x.cmp(&y));
        }
    }

    #[test]
    fn near_orders_by_distance_then_id() {
        let mut xs = [
            Near::new(1.0, 2),
            Near::new(0.5, 9),
            Near::new(1.0, 1),
            Near::new(-0.0, 4),
            Near::new(0.0, 3),
            Near::new(-1e-7, 8),
        ];
        xs.sort_unstable();
        let ids: Vec<_> = xs.iter().map(|n| n.id).collect();
        assert_eq!(ids, [8, 4, 3, 9, 1, 2]);
    }
}
