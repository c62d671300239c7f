//! [`Index::verify`] and [`Index::stats`]: the full integrity check and the counts behind it.

use std::collections::HashMap;

use crate::cache::{Shape, Snapshot};
use crate::error::{Error, Result};
use crate::graph::{self, NodeId, MAX_LEVEL};
use crate::index::Index;
use crate::store;
use crate::view::SnapshotGraph;

/// Sizes and counts of an index, from [`Index::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Live vectors.
    pub len: u64,
    /// `nodes_per_level[l]`: live nodes whose top level is exactly `l`.
    pub nodes_per_level: Vec<u64>,
    /// Node ids freed by removals and not yet reused.
    pub free_ids: u64,
    /// Size of the index file in bytes.
    pub file_bytes: u64,
    /// Bytes of memory held by the cache (upper layers, node table, layer-0 cache).
    pub cache_bytes: u64,
    /// Whether the layer-0 vectors are cached (else read from the file).
    pub layer0_vectors_cached: bool,
    /// Whether the layer-0 neighbour lists are cached (else read from the file).
    pub layer0_links_cached: bool,
    /// Level of the entry point; `None` when empty.
    pub max_level: Option<u8>,
}

impl Index {
    /// Counts per level, free ids, file and cache bytes.
    pub fn stats(&self) -> Result<Stats> {
        let snap = self.snapshot();
        let mut nodes_per_level = Vec::new();
        for id in snap.live_ids() {
            let level = usize::from(snap.node(id).level);
            if nodes_per_level.len() <= level {
                nodes_per_level.resize(level + 1, 0);
            }
            nodes_per_level[level] += 1;
        }
        Ok(Stats {
            len: snap.counters.len,
            nodes_per_level,
            free_ids: snap.free.len() as u64,
            file_bytes: std::fs::metadata(self.path())?.len(),
            cache_bytes: snap.bytes(),
            layer0_vectors_cached: snap.vectors.is_some(),
            layer0_links_cached: snap.links0.is_some(),
            max_level: snap.counters.entry.map(|e| e.level),
        })
    }

    /// Checks the whole file: every record decodes; keys and nodes map to each other one to one;
    /// every live node has a vector of the right dimension with finite values; no list points to
    /// a missing node or holds duplicates or itself; list sizes are within `m` (`2*m` on layer 0);
    /// a node has lists only on its layers and its neighbours reach that layer; reverse links
    /// match forward links exactly; the entry point is at the highest level; every live node is
    /// reachable from the entry point on layer 0; and the counters agree with all that.
    ///
    /// Reads everything from the file (not the cache), so it takes time proportional to the file.
    /// Returns `Error::Corrupt` naming the first problems found.
    pub fn verify(&self) -> Result<()> {
        let problems = store::guarded("verify", || self.problems())?;
        if problems.is_empty() {
            return Ok(());
        }
        let shown = problems
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        let more = problems.len().saturating_sub(20);
        Err(Error::corrupt(
            if more > 0 {
                format!("{shown}; and {more} more")
            } else {
                shown
            },
            "verify",
        ))
    }

    fn problems(&self) -> Result<Vec<String>> {
        let path = self.path();
        let txn = store::begin_read(self.database())?;
        let header = store::read_header(&txn, path)?;
        let options = self.options();
        let counters = self.snapshot().counters;
        let mut problems = Vec::new();
        if header != crate::index::header_of(options, &counters) {
            problems.push("the file's header differs from the open index's state".to_string());
        }
        // A file-only view: layer 0 is read from the file, not the cache.
        let shape = Shape {
            budget: 0,
            ..crate::index::shape_of(options)
        };
        let snap = Snapshot::load(&txn, counters, &shape)?;
        let tables = &snap.tables;

        let live: Vec<NodeId> = snap.live_ids().collect();
        if live.len() as u64 != counters.len {
            problems.push(format!(
                "{} nodes stored, header says {}",
                live.len(),
                counters.len
            ));
        }
        if live.len() + snap.free.len() != counters.next_id as usize {
            problems.push(format!(
                "{} live and {} free ids, but {} ids handed out",
                live.len(),
                snap.free.len(),
                counters.next_id
            ));
        }
        for &id in snap.free.iter() {
            if snap.node(id).live {
                problems.push(format!("node {id} is both live and free"));
            }
        }
        let mut keys = HashMap::new();
        tables.scan_keys(|key, id| {
            let slot = NodeId::try_from(id)
                .map(|id| snap.node(id))
                .unwrap_or_default();
            if !slot.live || slot.key != key {
                problems.push(format!(
                    "key {key} maps to node {id}, which does not map back"
                ));
            }
            keys.insert(key, id);
            Ok(())
        })?;
        for &id in &live {
            let key = snap.node(id).key;
            if keys.get(&key) != Some(&u64::from(id)) {
                problems.push(format!("node {id} (key {key}) is not mapped from its key"));
            }
        }
        let mut vectors = 0u64;
        tables.scan_vectors(|id, v| {
            vectors += 1;
            let live = NodeId::try_from(id).is_ok_and(|id| snap.node(id).live);
            if !live {
                problems.push(format!("vector {id} belongs to no live node"));
            } else if v.len() != options.dim {
                problems.push(format!(
                    "vector {id} has {} dimensions, not {}",
                    v.len(),
                    options.dim
                ));
            } else if v.iter().any(|x| !x.is_finite()) {
                problems.push(format!("vector {id} holds NaN or infinity"));
            }
            Ok(())
        })?;
        if vectors != live.len() as u64 {
            problems.push(format!(
                "{vectors} vectors stored for {} live nodes",
                live.len()
            ));
        }
        for reverse in [false, true] {
            tables.scan_lists(reverse, |id, layer, _| {
                let slot = NodeId::try_from(id)
                    .map(|id| snap.node(id))
                    .unwrap_or_default();
                if !slot.live || layer > slot.level || layer > MAX_LEVEL {
                    let table = if reverse { "reverse" } else { "links" };
                    problems.push(format!(
                        "{table} row for node {id} layer {layer}, which it does not have"
                    ));
                }
                Ok(())
            })?;
        }
        if !problems.is_empty() {
            return Ok(problems);
        }
        let graph = FileGraph {
            view: SnapshotGraph::new(&snap, options.metric),
            snap: &snap,
        };
        problems.extend(graph::check(&graph, &live, &self.params())?);
        Ok(problems)
    }
}

/// A read-only snapshot with reverse lists from the file, for [`graph::check`].
struct FileGraph<'a> {
    view: SnapshotGraph<'a>,
    snap: &'a Snapshot,
}

impl graph::GraphRead for FileGraph<'_> {
    fn entry_point(&self) -> Option<graph::EntryPoint> {
        self.view.entry_point()
    }
    fn level(&self, id: NodeId) -> Result<u8> {
        self.view.level(id)
    }
    fn neighbours(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()> {
        self.view.neighbours(id, layer, out)
    }
    fn distance_to(&self, query: &[f32], id: NodeId) -> Result<f32> {
        self.view.distance_to(query, id)
    }
    fn distance_between(&self, a: NodeId, b: NodeId) -> Result<f32> {
        self.view.distance_between(a, b)
    }
}

impl graph::GraphWrite for FileGraph<'_> {
    fn linked_from(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()> {
        self.snap.tables.reverse_into(id, layer, out)
    }
    fn set_neighbours(&mut self, _: NodeId, _: u8, _: &[NodeId]) -> Result<()> {
        Err(Error::corrupt("verify does not write", "verify"))
    }
    fn set_entry_point(&mut self, _: Option<graph::EntryPoint>) {}
    fn highest_node(&self, _: NodeId) -> Result<Option<graph::EntryPoint>> {
        Ok(None)
    }
}
