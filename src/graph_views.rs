//! The graph as the algorithm sees it: [`SnapshotGraph`] over a committed snapshot (searches),
//! [`WorkGraph`] over a write transaction's working state (inserts and removes).
//!
//! Reads go to the cache first and to the file for what the cache does not hold; writes change
//! the working snapshot copy-on-write and record what the commit must write back. A part the
//! snapshot does not hold (not loaded yet, or over the budget) is changed in an [`Overlay`]
//! instead, and read from it before the file.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use redb::ReadableTable;

use crate::error::{Error, Result};
use crate::graph::{Distances, EntryPoint, Frozen, GraphRead, GraphReverse, GraphWrite, NodeId};
use crate::options::Metric;
use crate::quant::{Codec, Prepared};
use crate::snapshot::{file_slot, keeps_upper_vector, NodeSlot, Snapshot, UpperNode};
use crate::store::{link_key, ReadTables, Tables, WriteTables};

/// Data a write transaction changed that the cache does not hold.
#[derive(Default)]
pub(crate) struct Overlay {
    /// Node slots added or removed, when the snapshot has no node slots.
    pub nodes: HashMap<NodeId, NodeSlot>,
    /// Lists on layers ≥ 1 (by `link_key`), when the snapshot has no upper layers.
    pub upper_lists: HashMap<u64, Vec<NodeId>>,
    /// Layer-0 lists, when the snapshot has no layer-0 list cache.
    pub links0: HashMap<NodeId, Vec<NodeId>>,
    /// Layer-0 vectors (search form) of new nodes, when the snapshot has no vector cache.
    pub vectors: HashMap<NodeId, Box<[f32]>>,
}

/// Reads shared by both views: `tables` is the file at the state the snapshot started from.
struct Reader<'a, K, B> {
    snap: &'a Snapshot,
    overlay: Option<&'a Overlay>,
    tables: &'a crate::store::Tables<K, B>,
    metric: Metric,
}

impl<'a, K, B> Reader<'a, K, B>
where
    K: ReadableTable<u64, u64>,
    B: ReadableTable<u64, &'static [u8]>,
{
    /// The slot of `id`: cache, overlay, file.
    #[inline]
    fn slot(&self, id: NodeId) -> Result<NodeSlot> {
        if self.snap.nodes.is_some() {
            return self.snap.node(id);
        }
        match self.overlay.and_then(|o| o.nodes.get(&id)) {
            Some(slot) => Ok(*slot),
            None => file_slot(self.tables, id, self.snap.counters.next_id),
        }
    }

    fn live(&self, id: NodeId) -> Result<NodeSlot> {
        let slot = self.slot(id)?;
        if slot.live {
            Ok(slot)
        } else {
            Err(Error::corrupt(
                format!("node {id} is referenced but does not exist"),
                "graph",
            ))
        }
    }

    /// The list of `id` on `layer` ≥ 1: cache, overlay, file.
    #[inline(never)]
    fn upper_neighbours(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()> {
        if let Some(list) = self.cached_upper(id, layer)? {
            out.clear();
            out.extend_from_slice(list);
            return Ok(());
        }
        if let Some(list) = self
            .overlay
            .and_then(|o| o.upper_lists.get(&link_key(id, layer)))
        {
            out.clear();
            out.extend_from_slice(list);
            return Ok(());
        }
        if self.live(id)?.level < layer {
            return Err(Error::corrupt(
                format!("node {id} has no list on layer {layer}"),
                "graph",
            ));
        }
        self.tables.links_into(id, layer, out)
    }

    /// The list of `id` on `layer` ≥ 1, if the upper layers are loaded.
    #[inline]
    fn cached_upper(&self, id: NodeId, layer: u8) -> Result<Option<&'a [NodeId]>> {
        if self.snap.upper.is_none() {
            return Ok(None);
        }
        let upper = self.snap.upper(id).ok_or_else(|| {
            Error::corrupt(format!("node {id} has no lists on layer {layer}"), "graph")
        })?;
        match upper.lists.get(usize::from(layer) - 1) {
            Some(list) => Ok(Some(list)),
            None => Err(Error::corrupt(
                format!("node {id} has no list on layer {layer}"),
                "graph",
            )),
        }
    }

    /// The layer-0 list of `id`, if the layer-0 cache holds it.
    #[inline]
    fn cached_links0(&self, id: NodeId) -> Result<Option<&'a [NodeId]>> {
        let Some(row) = self.snap.links0.as_ref().and_then(|links| links.get(id)) else {
            return Ok(None);
        };
        let count = row[0] as usize;
        match row.get(1..1 + count) {
            Some(ids) => Ok(Some(ids)),
            None => Err(Error::corrupt(
                format!("node {id} has an oversized list"),
                "graph",
            )),
        }
    }

    #[inline]
    fn neighbours_ref<'s>(
        &self,
        id: NodeId,
        layer: u8,
        buf: &'s mut Vec<NodeId>,
    ) -> Result<&'s [NodeId]>
    where
        'a: 's,
    {
        let cached = match layer {
            0 => self.cached_links0(id)?,
            _ => self.cached_upper(id, layer)?,
        };
        if let Some(ids) = cached {
            return Ok(ids);
        }
        self.neighbours(id, layer, buf)?;
        Ok(buf)
    }

    #[inline]
    fn neighbours(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()> {
        if layer > 0 {
            return self.upper_neighbours(id, layer, out);
        }
        if let Some(ids) = self.cached_links0(id)? {
            out.clear();
            out.extend_from_slice(ids);
            return Ok(());
        }
        if self.snap.links0.is_none() {
            if let Some(list) = self.overlay.and_then(|o| o.links0.get(&id)) {
                out.clear();
                out.extend_from_slice(list);
                return Ok(());
            }
        }
        self.tables.links_into(id, 0, out)
    }

    /// The search form of `id`'s vector, when it is in memory.
    #[inline]
    fn cached_vector(&self, id: NodeId) -> Option<&[f32]> {
        if let Some(vectors) = &self.snap.vectors {
            if let Some(v) = vectors.get(id) {
                return Some(v);
            }
        }
        if let Some(v) = self.snap.upper(id).and_then(|u| u.vector.as_deref()) {
            return Some(v);
        }
        self.overlay
            .and_then(|o| o.vectors.get(&id))
            .map(|v| &v[..])
    }

    #[inline]
    fn distance_to(&self, query: &[f32], id: NodeId) -> Result<f32> {
        match self.cached_vector(id) {
            Some(v) => Ok(self.metric.search_distance(query, v)),
            None => self.file_distance_to(query, id),
        }
    }

    /// `distance_to` a vector read from the file: kept out of line so that the cached path
    /// inlines into the search loop.
    #[inline(never)]
    fn file_distance_to(&self, query: &[f32], id: NodeId) -> Result<f32> {
        self.tables
            .vector_with(id, |v| self.metric.stored_distance(query, v))
    }

    fn distance_between(&self, a: NodeId, b: NodeId) -> Result<f32> {
        match self.cached_vector(a) {
            Some(v) => self.distance_to(v, b),
            None => {
                let va = self.tables.vector_with(a, |v| self.metric.search_form(v))?;
                self.distance_to(&va, b)
            }
        }
    }
}

macro_rules! delegate_graph_read {
    () => {
        fn entry_point(&self) -> Option<EntryPoint> {
            self.reader().snap.counters.entry
        }
        fn level(&self, id: NodeId) -> Result<u8> {
            Ok(self.reader().live(id)?.level)
        }
        fn neighbours(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()> {
            self.reader().neighbours(id, layer, out)
        }
        #[inline]
        fn neighbours_ref<'s>(
            &'s self,
            id: NodeId,
            layer: u8,
            buf: &'s mut Vec<NodeId>,
        ) -> Result<&'s [NodeId]> {
            self.reader().neighbours_ref(id, layer, buf)
        }
        #[inline]
        fn distance_to(&self, query: &[f32], id: NodeId) -> Result<f32> {
            self.reader().distance_to(query, id)
        }
        #[inline]
        fn prefetch_vector(&self, id: NodeId) {
            if let Some(v) = self.reader().snap.vectors.as_ref().and_then(|v| v.get(id)) {
                crate::distance::prefetch(v);
            }
        }
        #[inline]
        fn prefetch_list(&self, id: NodeId) {
            if let Some(row) = self.reader().snap.links0.as_ref().and_then(|l| l.get(id)) {
                crate::distance::prefetch(row);
            }
        }
        fn distance_between(&self, a: NodeId, b: NodeId) -> Result<f32> {
            self.reader().distance_between(a, b)
        }
    };
}

/// A committed snapshot as a graph, for searches.
pub(crate) struct SnapshotGraph<'a> {
    snap: &'a Snapshot,
    metric: Metric,
}

impl<'a> SnapshotGraph<'a> {
    pub(crate) fn new(snap: &'a Snapshot, metric: Metric) -> Self {
        SnapshotGraph { snap, metric }
    }

    /// The snapshot this graph reads.
    pub(crate) fn snapshot(&self) -> &'a Snapshot {
        self.snap
    }

    #[inline]
    fn reader(
        &self,
    ) -> Reader<'a, redb::ReadOnlyTable<u64, u64>, redb::ReadOnlyTable<u64, &'static [u8]>> {
        let tables: &'a ReadTables = &self.snap.tables;
        Reader {
            snap: self.snap,
            overlay: None,
            tables,
            metric: self.metric,
        }
    }
}

impl GraphRead for SnapshotGraph<'_> {
    delegate_graph_read!();
}

/// Estimated distances from one prepared query to the codes of a snapshot: what a search on a
/// quantized index walks layer 0 on. Codes come from the cache, else from the snapshot's file.
pub(crate) struct SnapshotCodes<'a> {
    snap: &'a Snapshot,
    codec: &'a Codec,
    query: &'a Prepared,
    /// A code read from the file.
    buf: RefCell<Vec<u64>>,
}

impl<'a> SnapshotCodes<'a> {
    pub(crate) fn new(snap: &'a Snapshot, codec: &'a Codec, query: &'a Prepared) -> Self {
        SnapshotCodes {
            snap,
            codec,
            query,
            buf: RefCell::new(Vec::new()),
        }
    }
}

impl Distances for SnapshotCodes<'_> {
    #[inline]
    fn distance(&self, id: NodeId) -> Result<f32> {
        if let Some(row) = self.snap.codes.as_ref().and_then(|c| c.get(id)) {
            return Ok(self.codec.estimate(self.query, row));
        }
        let mut buf = self.buf.borrow_mut();
        let row = self.snap.code_row(id, &mut buf)?;
        Ok(self.codec.estimate(self.query, row))
    }
    #[inline]
    fn prefetch(&self, id: NodeId) {
        if let Some(row) = self.snap.codes.as_ref().and_then(|c| c.get(id)) {
            crate::distance::prefetch(row);
        }
    }
}

/// The working state of a write transaction: the snapshot it will publish, and what its commit
/// must write to the file.
pub(crate) struct Work {
    pub snap: Snapshot,
    pub overlay: Overlay,
    /// Every reverse list touched, in full (loaded from the file on first touch).
    pub reverse: HashMap<u64, Vec<NodeId>>,
    /// Lists changed, as `link_key`s.
    pub dirty_lists: HashSet<u64>,
    /// Nodes added or removed.
    pub dirty_nodes: BTreeSet<NodeId>,
    /// Stored form of the vectors of nodes added.
    pub new_vectors: HashMap<NodeId, Vec<f32>>,
    /// User keys mapped (`Some`) or unmapped (`None`).
    pub keys: HashMap<u64, Option<NodeId>>,
    /// Ids whose free-list membership may have changed.
    pub free_changed: BTreeSet<NodeId>,
}

impl Work {
    pub(crate) fn new(snap: Snapshot) -> Work {
        Work {
            snap,
            overlay: Overlay::default(),
            reverse: HashMap::new(),
            dirty_lists: HashSet::new(),
            dirty_nodes: BTreeSet::new(),
            new_vectors: HashMap::new(),
            keys: HashMap::new(),
            free_changed: BTreeSet::new(),
        }
    }

    /// A fresh id: the smallest free one, else the next unused.
    pub(crate) fn allocate_id(&mut self) -> Result<NodeId> {
        let free = Arc::make_mut(&mut self.snap.free);
        if let Some(id) = free.pop_first() {
            self.free_changed.insert(id);
            return Ok(id);
        }
        let id = self.snap.counters.next_id;
        self.snap.counters.next_id =
            id.checked_add(1)
                .filter(|&n| n < u32::MAX)
                .ok_or(Error::Full {
                    capacity: u64::from(u32::MAX - 1),
                })?;
        Ok(id)
    }

    /// Adds node `id` for `key` at `level` with `vector` (stored form), unlinked. The counters
    /// come from the file: one that would overflow is `Error::Corrupt`, and nothing changes.
    pub(crate) fn add_node(
        &mut self,
        id: NodeId,
        key: u64,
        level: u8,
        vector: &[f32],
        metric: Metric,
        m0: usize,
    ) -> Result<()> {
        let counters = &self.snap.counters;
        let len = counters
            .len
            .checked_add(1)
            .ok_or_else(|| counter_overflow("len"))?;
        let inserts = counters
            .inserts
            .checked_add(1)
            .ok_or_else(|| counter_overflow("inserts"))?;
        let search = metric.search_form(vector);
        let slot = NodeSlot {
            key,
            level,
            live: true,
        };
        match &mut self.snap.nodes {
            Some(nodes) => nodes.get_mut(id)[0] = slot,
            None => {
                self.overlay.nodes.insert(id, slot);
            }
        }
        if level > 0 {
            match &mut self.snap.upper {
                Some(upper) => {
                    upper.get_mut(id)[0] = Some(Arc::new(UpperNode {
                        vector: keeps_upper_vector(self.snap.codec.is_some(), level)
                            .then(|| search.clone().into_boxed_slice()),
                        lists: vec![Vec::new(); usize::from(level)],
                    }));
                }
                None => {
                    for layer in 1..=level {
                        self.overlay
                            .upper_lists
                            .insert(link_key(id, layer), Vec::new());
                    }
                }
            }
        }
        if let (Some(codes), Some(codec)) = (&mut self.snap.codes, &self.snap.codec) {
            codec.encode(&search, codes.get_mut(id));
        }
        match &mut self.snap.vectors {
            Some(vectors) if vectors.holds(id) => vectors.get_mut(id).copy_from_slice(&search),
            _ => {
                self.overlay.vectors.insert(id, search.into_boxed_slice());
            }
        }
        match &mut self.snap.links0 {
            Some(links) => links.get_mut(id)[..=m0].fill(0),
            None => {
                self.overlay.links0.insert(id, Vec::new());
            }
        }
        // Nothing links to a new node yet (a recycled id was unlinked when it was freed), so
        // its reverse lists start empty here instead of being read from the file on first use.
        for layer in 0..=level {
            self.reverse.entry(link_key(id, layer)).or_default();
        }
        self.new_vectors.insert(id, vector.to_vec());
        self.dirty_nodes.insert(id);
        self.keys.insert(key, Some(id));
        self.snap.counters.len = len;
        self.snap.counters.inserts = inserts;
        Ok(())
    }

    /// Replaces `out` with the nodes that link to `id` on `layer`: this transaction's reverse
    /// list if it touched it, else the file's (`tables`: the write transaction's, or the
    /// snapshot's, which hold the same until the commit flushes).
    pub(crate) fn linked_from<K, B>(
        &self,
        tables: &Tables<K, B>,
        id: NodeId,
        layer: u8,
        out: &mut Vec<NodeId>,
    ) -> Result<()>
    where
        K: redb::ReadableTable<u64, u64>,
        B: redb::ReadableTable<u64, &'static [u8]>,
    {
        match self.reverse.get(&link_key(id, layer)) {
            Some(list) => {
                out.clear();
                out.extend_from_slice(list);
                Ok(())
            }
            None => tables.reverse_into(id, layer, out),
        }
    }

    /// Replaces `out` with the final list of `id` on `layer`: empty for a removed node, and for a
    /// layer above its level (a recycled id may come back lower than it was).
    pub(crate) fn list_into(
        &self,
        tables: &WriteTables<'_>,
        id: NodeId,
        layer: u8,
        metric: Metric,
        out: &mut Vec<NodeId>,
    ) -> Result<()> {
        let reader = Reader {
            snap: &self.snap,
            overlay: Some(&self.overlay),
            tables,
            metric,
        };
        let slot = reader.slot(id)?;
        if !slot.live || layer > slot.level {
            out.clear();
            return Ok(());
        }
        reader.neighbours(id, layer, out)
    }

    /// The slot of `id` as this transaction sees it (`tables` are its own).
    pub(crate) fn slot(&self, tables: &WriteTables<'_>, id: NodeId) -> Result<NodeSlot> {
        Reader {
            snap: &self.snap,
            overlay: Some(&self.overlay),
            tables,
            metric: Metric::L2,
        }
        .slot(id)
    }

    /// Deletes node `id` (already unlinked by `graph::remove`) and frees its id.
    /// The node count comes from the file: one that would go below zero is `Error::Corrupt`,
    /// and nothing changes.
    pub(crate) fn delete_node(&mut self, tables: &WriteTables<'_>, id: NodeId) -> Result<()> {
        let len = self.snap.counters.len.checked_sub(1).ok_or_else(|| {
            Error::corrupt(
                format!("node {id} is live, but the header counts no live node"),
                "meta.header",
            )
        })?;
        let old = self.slot(tables, id)?;
        let key = old.key;
        match &mut self.snap.nodes {
            Some(nodes) => nodes.get_mut(id)[0] = NodeSlot::default(),
            None => {
                self.overlay.nodes.insert(id, NodeSlot::default());
            }
        }
        match &mut self.snap.upper {
            Some(upper) => {
                if upper.get(id).is_some_and(|s| s[0].is_some()) {
                    upper.get_mut(id)[0] = None;
                }
            }
            None => {
                for layer in 1..=old.level {
                    self.overlay.upper_lists.remove(&link_key(id, layer));
                }
            }
        }
        self.overlay.vectors.remove(&id);
        self.overlay.links0.remove(&id);
        self.new_vectors.remove(&id);
        self.dirty_nodes.insert(id);
        self.keys.insert(key, None);
        Arc::make_mut(&mut self.snap.free).insert(id);
        self.free_changed.insert(id);
        self.snap.counters.len = len;
        Ok(())
    }
}

/// The error for header counter `name` that cannot count one more.
fn counter_overflow(name: &str) -> Error {
    Error::corrupt(
        format!("the header's {name} counter is at its maximum"),
        "meta.header",
    )
}

/// A write transaction's working state as a graph, for inserts and removes.
pub(crate) struct WorkGraph<'a, 't> {
    pub work: &'a mut Work,
    pub tables: &'a WriteTables<'t>,
    pub metric: Metric,
    pub m0: usize,
}

impl<'a, 't> WorkGraph<'a, 't> {
    #[inline]
    fn reader(&self) -> Reader<'_, redb::Table<'t, u64, u64>, redb::Table<'t, u64, &'static [u8]>> {
        Reader {
            snap: &self.work.snap,
            overlay: Some(&self.work.overlay),
            tables: self.tables,
            metric: self.metric,
        }
    }

    /// The reverse list of `id` on `layer`, loaded from the file on first touch.
    fn reverse_mut(&mut self, id: NodeId, layer: u8) -> Result<&mut Vec<NodeId>> {
        let key = link_key(id, layer);
        if !self.work.reverse.contains_key(&key) {
            let mut list = Vec::new();
            self.tables.reverse_into(id, layer, &mut list)?;
            self.work.reverse.insert(key, list);
        }
        Ok(self.work.reverse.get_mut(&key).expect("inserted above"))
    }
}

impl GraphRead for WorkGraph<'_, '_> {
    delegate_graph_read!();
}

impl GraphReverse for WorkGraph<'_, '_> {
    fn linked_from(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()> {
        self.work.linked_from(self.tables, id, layer, out)
    }
}

impl GraphWrite for WorkGraph<'_, '_> {
    fn set_neighbours(&mut self, id: NodeId, layer: u8, list: &[NodeId]) -> Result<()> {
        let mut old = Vec::new();
        self.reader().neighbours(id, layer, &mut old)?;
        for &t in old.iter().filter(|t| !list.contains(t)) {
            self.reverse_mut(t, layer)?.retain(|&x| x != id);
        }
        for &t in list.iter().filter(|t| !old.contains(t)) {
            self.reverse_mut(t, layer)?.push(id);
        }
        if layer > 0 && self.work.snap.upper.is_none() {
            self.work
                .overlay
                .upper_lists
                .insert(link_key(id, layer), list.to_vec());
        } else if layer > 0 {
            let slot = self
                .work
                .snap
                .upper
                .as_mut()
                .expect("checked above")
                .get_mut(id);
            let upper = slot[0].as_mut().ok_or_else(|| {
                Error::corrupt(format!("node {id} has no lists on layer {layer}"), "graph")
            })?;
            let lists = &mut Arc::make_mut(upper).lists;
            let target = lists.get_mut(usize::from(layer) - 1).ok_or_else(|| {
                Error::corrupt(format!("node {id} has no list on layer {layer}"), "graph")
            })?;
            target.clear();
            target.extend_from_slice(list);
        } else {
            match &mut self.work.snap.links0 {
                Some(links) => {
                    if list.len() > self.m0 {
                        return Err(Error::corrupt(
                            format!("list of node {id} exceeds m0"),
                            "graph",
                        ));
                    }
                    let row = links.get_mut(id);
                    row[0] = list.len() as u32;
                    row[1..=list.len()].copy_from_slice(list);
                }
                None => {
                    self.work.overlay.links0.insert(id, list.to_vec());
                }
            }
        }
        self.work.dirty_lists.insert(link_key(id, layer));
        Ok(())
    }

    fn set_entry_point(&mut self, entry: Option<EntryPoint>) {
        self.work.snap.counters.entry = entry;
    }

    fn highest_node(&self, except: NodeId) -> Result<Option<EntryPoint>> {
        let snap = &self.work.snap;
        let mut best: Option<EntryPoint> = None;
        let mut consider = |id: NodeId, slot: NodeSlot| {
            if id != except && slot.live && best.is_none_or(|b| slot.level > b.level) {
                best = Some(EntryPoint {
                    id,
                    level: slot.level,
                });
            }
        };
        if snap.nodes.is_some() {
            for id in 0..snap.counters.next_id {
                consider(id, snap.node(id)?);
            }
            return Ok(best);
        }
        // Node slots not loaded: the file's rows, as this transaction changed them.
        let next_id = snap.counters.next_id;
        let mut slots = BTreeMap::new();
        self.tables.scan_nodes(|id, record| {
            let id = NodeId::try_from(id)
                .ok()
                .filter(|&id| id < next_id)
                .ok_or_else(|| Error::corrupt(format!("node id {id} out of range"), "nodes"))?;
            slots.insert(
                id,
                NodeSlot {
                    key: record.key,
                    level: record.level,
                    live: true,
                },
            );
            Ok(())
        })?;
        slots.extend(
            self.work
                .overlay
                .nodes
                .iter()
                .map(|(&id, &slot)| (id, slot)),
        );
        for (id, slot) in slots {
            consider(id, slot);
        }
        Ok(best)
    }
}

/// A write transaction's working state, read-only and shared by the threads of a parallel
/// build (the [`Frozen`] base of `graph::link_parallel`).
///
/// What the cache and the overlay do not hold is read through the snapshot's own read
/// transaction instead of the write transaction (whose tables cannot be shared between
/// threads). Invariant: the two hold the same rows, because a write transaction changes only
/// the [`Work`] until its commit's flush, and its snapshot is the last committed state.
pub(crate) struct WorkView<'a> {
    pub work: &'a Work,
    pub metric: Metric,
}

impl WorkView<'_> {
    #[inline]
    fn reader(
        &self,
    ) -> Reader<'_, redb::ReadOnlyTable<u64, u64>, redb::ReadOnlyTable<u64, &'static [u8]>> {
        Reader {
            snap: &self.work.snap,
            overlay: Some(&self.work.overlay),
            tables: &self.work.snap.tables,
            metric: self.metric,
        }
    }
}

impl GraphRead for WorkView<'_> {
    delegate_graph_read!();
}

impl GraphReverse for WorkView<'_> {
    fn linked_from(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()> {
        self.work
            .linked_from(&self.work.snap.tables, id, layer, out)
    }
}

impl Frozen for WorkView<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Index, Options};

    /// Counters that disagree with the tables (a damaged or crafted header) give
    /// `Error::Corrupt` instead of wrapping, and leave the counters as they were.
    #[test]
    fn counters_from_the_file_never_wrap() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::create(dir.path().join("w.hnsw"), Options::new(2)).unwrap();
        index.insert(7, &[1.0, 0.0]).unwrap();
        let db = index.engine().database();
        let txn = db.begin_write().unwrap();
        let tables = WriteTables::open(&txn, db.names(), 2).unwrap();
        let metric = index.options().metric;
        let m0 = index.options().get_m0();

        let mut work = Work::new((*index.engine().snapshot()).clone());
        work.snap.counters.len = 0;
        let removed = work.delete_node(&tables, 0);
        assert!(matches!(removed, Err(Error::Corrupt { .. })), "{removed:?}");
        assert_eq!(work.snap.counters.len, 0);

        let mut work = Work::new((*index.engine().snapshot()).clone());
        work.snap.counters.inserts = u64::MAX;
        let added = work.add_node(1, 8, 0, &[0.0, 1.0], metric, m0);
        assert!(matches!(added, Err(Error::Corrupt { .. })), "{added:?}");
        assert_eq!(work.snap.counters.len, 1);

        let mut work = Work::new((*index.engine().snapshot()).clone());
        work.snap.counters.len = u64::MAX;
        let added = work.add_node(1, 8, 0, &[0.0, 1.0], metric, m0);
        assert!(matches!(added, Err(Error::Corrupt { .. })), "{added:?}");
        assert_eq!(work.snap.counters.inserts, 1);
    }

    /// A quantized index's cached upper nodes hold their vectors from `EXACT_DESCENT_LEVEL` up
    /// (where searches descend on exact distances), an unquantized one's all of them: as the
    /// writer adds them, and as the loader reads them after a reopen.
    #[test]
    fn upper_nodes_keep_vectors_where_the_descent_is_exact() {
        use crate::graph::EXACT_DESCENT_LEVEL;
        use crate::Quantization;
        let dir = tempfile::tempdir().unwrap();
        for (i, quantization) in [Quantization::None, Quantization::Int8, Quantization::Binary]
            .into_iter()
            .enumerate()
        {
            let path = dir.path().join(format!("u{i}.hnsw"));
            let options = Options::new(8).m(4).quantization(quantization);
            let index = Index::create(&path, options).unwrap();
            let mut rng = crate::graph::Rng(5);
            let vectors = (0..1500u64).map(|k| (k, rng.vector(8)));
            index.insert_batch(vectors).unwrap();
            let check = |index: &Index, pass: &str| {
                let snap = index.engine().snapshot();
                let mut levels = [0usize; 3];
                for id in 0..snap.counters.next_id as NodeId {
                    let Some(upper) = snap.upper(id) else {
                        continue;
                    };
                    let level = upper.lists.len() as u8;
                    levels[usize::from(level.min(2))] += 1;
                    let kept = quantization == Quantization::None || level >= EXACT_DESCENT_LEVEL;
                    assert_eq!(
                        upper.vector.is_some(),
                        kept,
                        "{quantization:?}, {pass}: node {id} of level {level}"
                    );
                }
                assert!(levels[1] > 0 && levels[2] > 0, "{levels:?}");
            };
            check(&index, "written");
            drop(index);
            let index = Index::open(&path).unwrap();
            index.wait_loaded().unwrap();
            check(&index, "loaded");
        }
    }

    #[test]
    fn the_last_node_id_is_handed_out_once_then_the_index_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::create(dir.path().join("f.hnsw"), Options::new(2)).unwrap();
        let mut work = Work::new((*index.engine().snapshot()).clone());
        work.snap.counters.next_id = u32::MAX - 2;
        assert_eq!(work.allocate_id().unwrap(), u32::MAX - 2);
        assert!(matches!(
            work.allocate_id(),
            Err(Error::Full {
                capacity: 4_294_967_294
            })
        ));
    }
}
