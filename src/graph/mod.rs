//! The HNSW algorithm (Malkov & Yashunin, 2018), generic over the graph it walks.
//!
//! It reaches nodes only through [`GraphRead`] and [`GraphWrite`], so the same code runs over
//! [`MemoryGraph`] in tests and fuzzing, over the cache, and over redb. Nothing here names redb or
//! rkyv.
//!
//! Vocabulary (the paper's): `m` neighbours per node on upper layers, `m0 = 2*m` on layer 0,
//! `ef` the size of the dynamic candidate list, `ml = 1/ln(m)` the level normaliser.

mod check;
mod insert;
mod level;
mod memory;
mod parallel;
mod remove;
mod scratch;
mod search;
mod select;

#[cfg(test)]
pub(crate) use check::check;
pub(crate) use check::check_each;
pub(crate) use insert::insert;
pub(crate) use level::level_for;
#[cfg(test)]
pub(crate) use memory::MemoryGraph;
#[cfg(test)]
pub(crate) use memory::Rng;
pub(crate) use parallel::{link_parallel, repair_parents, Frozen};
pub(crate) use remove::remove;
pub(crate) use scratch::Scratch;
pub(crate) use search::{search, search_on, EXACT_DESCENT_LEVEL};

use crate::error::Result;

/// Dense internal node id (recycled after removal).
pub(crate) type NodeId = u32;

/// Highest level a node can have. Persisted in link keys as a byte.
pub(crate) const MAX_LEVEL: u8 = 31;

/// The node where every search starts, on the top layer of the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryPoint {
    pub id: NodeId,
    pub level: u8,
}

/// Shape of the graph: list bounds and construction effort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    /// Neighbours per node on layers ≥ 1.
    pub m: usize,
    /// Neighbours per node on layer 0 (`2*m`).
    pub m0: usize,
    /// Candidate-list size while inserting.
    pub ef_construction: usize,
}

impl Params {
    /// The list bound on `layer`.
    pub fn max_neighbours(&self, layer: u8) -> usize {
        if layer == 0 {
            self.m0
        } else {
            self.m
        }
    }
}

/// Read access to a graph. Vectors are in *search form* (unit length under cosine).
///
/// Invariant: every id passed in is a live node of the graph, except where a method says otherwise.
pub(crate) trait GraphRead {
    /// The entry point, or `None` when the graph is empty.
    fn entry_point(&self) -> Option<EntryPoint>;
    /// The level of node `id` (it is present on layers `0..=level`).
    fn level(&self, id: NodeId) -> Result<u8>;
    /// Replaces `out` with the neighbours of `id` on `layer`.
    fn neighbours(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()>;
    /// The neighbours of `id` on `layer`: borrowed from the graph where it holds the list in
    /// memory, else read into `buf` (which then holds them). Saves searches a copy per expansion.
    #[inline]
    fn neighbours_ref<'a>(
        &'a self,
        id: NodeId,
        layer: u8,
        buf: &'a mut Vec<NodeId>,
    ) -> Result<&'a [NodeId]> {
        self.neighbours(id, layer, buf)?;
        Ok(buf)
    }
    /// Distance from `query` (search form) to node `id`.
    fn distance_to(&self, query: &[f32], id: NodeId) -> Result<f32>;
    /// A hint that `distance_to` will read node `id`'s vector soon: a graph that holds it in
    /// memory may start loading it into the CPU cache. `id` need not be valid.
    #[inline]
    fn prefetch_vector(&self, _id: NodeId) {}
    /// A hint that node `id`'s layer-0 list may be read soon (it became a candidate to expand).
    #[inline]
    fn prefetch_list(&self, _id: NodeId) {}
    /// Distance between two nodes.
    fn distance_between(&self, a: NodeId, b: NodeId) -> Result<f32>;
}

/// Distances from one query to nodes, as a layer-0 walk compares them: exact ([`Exact`]) or
/// estimated on compact codes.
pub(crate) trait Distances {
    /// The distance from the query to live node `id`.
    fn distance(&self, id: NodeId) -> Result<f32>;
    /// A hint that [`distance`](Distances::distance) will read node `id` soon. `id` need not be
    /// valid.
    #[inline]
    fn prefetch(&self, _id: NodeId) {}
}

/// The exact distances of a graph from `query` (search form).
pub(crate) struct Exact<'a, G> {
    pub graph: &'a G,
    pub query: &'a [f32],
}

impl<G: GraphRead> Distances for Exact<'_, G> {
    #[inline]
    fn distance(&self, id: NodeId) -> Result<f32> {
        self.graph.distance_to(self.query, id)
    }
    #[inline]
    fn prefetch(&self, id: NodeId) {
        self.graph.prefetch_vector(id);
    }
}

/// Reverse links: who links to a node. Deletes need them exactly, and `check` compares them with
/// the forward lists.
pub(crate) trait GraphReverse: GraphRead {
    /// Replaces `out` with the nodes whose list on `layer` contains `id` (any order, no duplicates).
    fn linked_from(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()>;
}

/// Write access, for insert and remove. Implementations keep reverse links exactly in step with
/// every [`set_neighbours`](GraphWrite::set_neighbours).
pub(crate) trait GraphWrite: GraphReverse {
    /// Replaces the list of `id` on `layer` with `list` (no duplicates, no `id`, within bounds).
    fn set_neighbours(&mut self, id: NodeId, layer: u8, list: &[NodeId]) -> Result<()>;
    /// Read-modify-write of one list, atomic under concurrent writers: `buf` receives the list
    /// of `id` on `layer`, `update` edits it in place and returns whether the list is to be
    /// replaced by it (as by [`set_neighbours`](GraphWrite::set_neighbours)). A concurrent
    /// graph may run `update` more than once, each time on the list as it then is.
    ///
    /// Invariant: `update` reads distances, levels and `linked_from`, but no list (a concurrent
    /// graph refuses that with an error), and starts from a clean slate on each run.
    fn update_neighbours<F>(
        &mut self,
        id: NodeId,
        layer: u8,
        buf: &mut Vec<NodeId>,
        mut update: F,
    ) -> Result<()>
    where
        Self: Sized,
        F: FnMut(&Self, &mut Vec<NodeId>) -> Result<bool>,
    {
        self.neighbours(id, layer, buf)?;
        if update(self, buf)? {
            self.set_neighbours(id, layer, buf)?;
        }
        Ok(())
    }
    /// Sets the entry point.
    fn set_entry_point(&mut self, entry: Option<EntryPoint>);
    /// A live node other than `except` of the highest level, ties to the smallest id; `None`
    /// when `except` is the only node.
    fn highest_node(&self, except: NodeId) -> Result<Option<EntryPoint>>;
}
