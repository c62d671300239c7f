//! The in-memory side of an index: an immutable [`Snapshot`] per commit.
//!
//! Upper layers (nodes of level ≥ 1: vector and lists) are always held. Layer 0 is held within
//! the byte budget, vectors first: with the budget exceeded, the layer-0 lists and then the
//! layer-0 vectors are read from the file instead (zero-copy), through the snapshot's own read
//! transaction, so cache and file always show the same committed state.
//!
//! Arrays are split into chunks of [`CHUNK`] ids behind `Arc`s: a writer clones the snapshot
//! (one refcount per chunk), changes only the chunks it touches (copy-on-write), and publishes
//! the result; searches on the old snapshot are not disturbed and never wait.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::graph::{EntryPoint, NodeId};
use crate::store::ReadTables;

/// log2 of the ids per chunk.
const CHUNK_BITS: u32 = 6;
/// Ids per chunk: small enough that copy-on-write of a touched chunk stays cheap.
const CHUNK: usize = 1 << CHUNK_BITS;

/// A growable array of `stride`-wide rows indexed by node id, in shared chunks.
#[derive(Clone)]
pub(crate) struct Chunked<T> {
    stride: usize,
    chunks: Vec<Arc<Vec<T>>>,
}

impl<T: Clone + Default> Chunked<T> {
    pub(crate) fn new(stride: usize) -> Self {
        Chunked {
            stride,
            chunks: Vec::new(),
        }
    }

    /// The row of `id`, or `None` beyond the end.
    #[inline]
    pub(crate) fn get(&self, id: NodeId) -> Option<&[T]> {
        let chunk = self.chunks.get((id >> CHUNK_BITS) as usize)?;
        let start = (id as usize & (CHUNK - 1)) * self.stride;
        Some(&chunk[start..start + self.stride])
    }

    /// The row of `id`, for writing: grows the array and unshares the chunk as needed.
    pub(crate) fn get_mut(&mut self, id: NodeId) -> &mut [T] {
        let index = (id >> CHUNK_BITS) as usize;
        while self.chunks.len() <= index {
            self.chunks
                .push(Arc::new(vec![T::default(); CHUNK * self.stride]));
        }
        let start = (id as usize & (CHUNK - 1)) * self.stride;
        &mut Arc::make_mut(&mut self.chunks[index])[start..start + self.stride]
    }

    /// Bytes held (shared chunks counted once per snapshot).
    pub(crate) fn bytes(&self) -> u64 {
        (self.chunks.len() * CHUNK * self.stride * std::mem::size_of::<T>()) as u64
    }
}

/// What the cache knows of every node id below `next_id`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NodeSlot {
    pub key: u64,
    pub level: u8,
    pub live: bool,
}

/// A node of level ≥ 1: its vector (search form) and its lists on layers `1..=level`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct UpperNode {
    pub vector: Box<[f32]>,
    /// `lists[l - 1]` is the list on layer `l`.
    pub lists: Vec<Vec<NodeId>>,
}

/// The graph-wide counters, mirrored in the file's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Counters {
    pub entry: Option<EntryPoint>,
    pub len: u64,
    pub next_id: u32,
    pub inserts: u64,
}

/// One committed state of the index, as searches see it.
#[derive(Clone)]
pub(crate) struct Snapshot {
    pub counters: Counters,
    pub nodes: Chunked<NodeSlot>,
    pub upper: Chunked<Option<Arc<UpperNode>>>,
    /// Layer-0 vectors in search form, when within the budget.
    pub vectors: Option<Chunked<f32>>,
    /// Layer-0 lists, `m0 + 1` wide (count, then ids), when within the budget.
    pub links0: Option<Chunked<u32>>,
    pub free: Arc<BTreeSet<NodeId>>,
    /// The file at exactly this state, for what the cache does not hold.
    pub tables: Arc<ReadTables>,
}

impl Snapshot {
    /// The slot of `id` (a dead default beyond the end).
    #[inline]
    pub(crate) fn node(&self, id: NodeId) -> NodeSlot {
        self.nodes.get(id).map_or(NodeSlot::default(), |s| s[0])
    }

    /// The upper-layer record of `id`, if it has level ≥ 1.
    #[inline]
    pub(crate) fn upper(&self, id: NodeId) -> Option<&UpperNode> {
        self.upper.get(id).and_then(|s| s[0].as_deref())
    }

    /// Bytes held by the layer-0 cache.
    pub(crate) fn layer0_bytes(&self) -> u64 {
        self.vectors.as_ref().map_or(0, Chunked::bytes)
            + self.links0.as_ref().map_or(0, Chunked::bytes)
    }

    /// Bytes held in memory in all.
    pub(crate) fn bytes(&self) -> u64 {
        let upper: u64 = (0..self.counters.next_id)
            .filter_map(|id| self.upper(id))
            .map(|u| {
                (u.vector.len() * 4 + u.lists.iter().map(|l| l.len() * 4 + 24).sum::<usize>())
                    as u64
            })
            .sum();
        self.nodes.bytes() + self.upper.bytes() + upper + self.layer0_bytes()
    }

    /// Drops the parts of the layer-0 cache that do not fit in `budget` bytes: lists first,
    /// then vectors (vectors are read about ten times as often).
    pub(crate) fn fit_budget(&mut self, budget: u64) {
        if self.layer0_bytes() > budget {
            self.links0 = None;
        }
        if self.layer0_bytes() > budget {
            self.vectors = None;
        }
    }

    /// Live node ids, ascending.
    pub(crate) fn live_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.counters.next_id).filter(|&id| self.node(id).live)
    }
}

/// What [`Snapshot::load`] needs to know of the index.
pub(crate) struct Shape {
    pub metric: crate::options::Metric,
    pub dim: usize,
    pub m0: usize,
    /// Layer-0 cache budget in bytes.
    pub budget: u64,
}

impl Snapshot {
    /// Loads the state committed in `txn`: node slots and upper layers always, layer 0 within
    /// the budget. Everything read is validated; damage is `Error::Corrupt`.
    pub(crate) fn load(
        txn: &redb::ReadTransaction,
        counters: Counters,
        shape: &Shape,
    ) -> crate::error::Result<Snapshot> {
        use crate::error::Error;
        use crate::graph::MAX_LEVEL;

        let tables = crate::store::ReadTables::open(txn)?;
        let next_id = counters.next_id;
        let in_range = |id: u64, what: &str| -> crate::error::Result<NodeId> {
            NodeId::try_from(id)
                .ok()
                .filter(|&id| id < next_id)
                .ok_or_else(|| {
                    Error::corrupt(
                        format!("node id {id} is not below next_id {next_id}"),
                        what.to_string(),
                    )
                })
        };

        let mut nodes = Chunked::<NodeSlot>::new(1);
        let mut upper_ids = Vec::new();
        tables.scan_nodes(|id, record| {
            let id = in_range(id, "nodes")?;
            if record.level > MAX_LEVEL {
                return Err(Error::corrupt(
                    format!("level {} too high", record.level),
                    format!("nodes[{id}]"),
                ));
            }
            nodes.get_mut(id)[0] = NodeSlot {
                key: record.key,
                level: record.level,
                live: true,
            };
            if record.level > 0 {
                upper_ids.push((id, record.level));
            }
            Ok(())
        })?;
        if next_id > 0 {
            nodes.get_mut(next_id - 1);
        }

        let mut upper = Chunked::<Option<Arc<UpperNode>>>::new(1);
        let mut search = Vec::new();
        for &(id, level) in &upper_ids {
            tables.vector_with(id, |v| shape.metric.search_form_into(v, &mut search))?;
            check_dim(&search, shape.dim, id)?;
            let mut lists = Vec::with_capacity(usize::from(level));
            for layer in 1..=level {
                let mut list = Vec::new();
                tables.links_into(id, layer, &mut list)?;
                lists.push(list);
            }
            upper.get_mut(id)[0] = Some(Arc::new(UpperNode {
                vector: search.clone().into_boxed_slice(),
                lists,
            }));
        }

        let rows = u64::from(next_id);
        let vector_bytes = rows * shape.dim as u64 * 4;
        let list_bytes = rows * (shape.m0 as u64 + 1) * 4;
        let vectors = if vector_bytes <= shape.budget {
            let mut vectors = Chunked::<f32>::new(shape.dim);
            tables.scan_vectors(|id, v| {
                let id = in_range(id, "vectors")?;
                shape.metric.search_form_into(v, &mut search);
                check_dim(&search, shape.dim, id)?;
                vectors.get_mut(id).copy_from_slice(&search);
                Ok(())
            })?;
            Some(vectors)
        } else {
            None
        };
        let links0 = if vectors.is_some() && vector_bytes + list_bytes <= shape.budget {
            let mut links = Chunked::<u32>::new(shape.m0 + 1);
            if next_id > 0 {
                links.get_mut(next_id - 1);
            }
            tables.scan_lists(false, |id, layer, list| {
                let id = in_range(id, "links")?;
                if layer == 0 {
                    if list.len() > shape.m0 {
                        return Err(Error::corrupt(
                            "layer-0 list longer than m0",
                            format!("links[{id}, 0]"),
                        ));
                    }
                    let row = links.get_mut(id);
                    row[0] = list.len() as u32;
                    row[1..=list.len()].copy_from_slice(list);
                }
                Ok(())
            })?;
            Some(links)
        } else {
            None
        };

        let free = crate::store::read_free_ids(txn)?
            .into_iter()
            .map(|id| in_range(id, "free_ids"))
            .collect::<crate::error::Result<BTreeSet<_>>>()?;
        Ok(Snapshot {
            counters,
            nodes,
            upper,
            vectors,
            links0,
            free: Arc::new(free),
            tables: Arc::new(tables),
        })
    }
}

fn check_dim(v: &[f32], dim: usize, id: NodeId) -> crate::error::Result<()> {
    if v.len() != dim {
        return Err(crate::error::Error::corrupt(
            format!("vector has {} dimensions, the index {dim}", v.len()),
            format!("vectors[{id}]"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_rows_copy_on_write() {
        let mut a = Chunked::<u32>::new(3);
        a.get_mut(70).copy_from_slice(&[1, 2, 3]);
        let b = a.clone();
        a.get_mut(70)[0] = 9;
        assert_eq!(a.get(70).unwrap(), &[9, 2, 3]);
        assert_eq!(b.get(70).unwrap(), &[1, 2, 3]);
        assert_eq!(a.get(0).unwrap(), &[0, 0, 0]);
        assert!(a.get(128).is_none());
    }
}
