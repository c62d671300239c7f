//! The in-memory side of an index: an immutable [`Snapshot`] per commit.
//!
//! Upper layers (nodes of level ≥ 1: lists, and the vector unless the index is quantized) and
//! the node slots (key, level) are held once loaded. Layer 0 is held within the byte budget,
//! vectors first: with the budget exceeded, the layer-0 lists are read from the file instead
//! (zero-copy), and of the vectors only those of the lowest ids that fit are held
//! ([`Chunked::within`]), the others read from the file too;
//! all through the snapshot's own read transaction, so cache and file always show the same
//! committed state. On a 100k × 128 index at ef 64, holding 50% of the vectors gave 1.9× the
//! queries/s of none, 75% 3.0×, 90% 4.4×, all of them 6.4×, and vectors and lists 11×.
//!
//! Every cached part may be absent, and then is read from that same transaction: a node slot
//! from the nodes table (no row: not live), an upper node's vector and lists from the vectors
//! and links tables. This is what makes an open fast: `Index::open` publishes a snapshot with
//! no part loaded (the header and the free ids only) and loads the parts in the background
//! (`crate::load`), in the order they pay off ([`stages`]): node slots and upper layers, then
//! layer-0 vectors, then layer-0 lists; with quantization, codes and lists before vectors.
//! Invariant: the parts present are a prefix of that order, so a write transaction on a
//! snapshot without upper layers keeps every layer-0 change in its overlay too.
//!
//! A part is loaded at one commit and installed at a later one: [`Snapshot::install`] re-reads
//! from the file whatever the commits in between changed ([`Changes`]), so nothing is lost.
//!
//! Arrays are [`Chunked`]: a writer clones the snapshot (a refcount per group of chunks),
//! changes only the chunks it touches (copy-on-write), and publishes the result; searches on the
//! old snapshot are not disturbed and never wait.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use redb::ReadableTable;

use crate::chunked::Chunked;
use crate::error::{Error, Result};
use crate::graph::{EntryPoint, NodeId, EXACT_DESCENT_LEVEL, MAX_LEVEL};
use crate::quant::Codec;
use crate::store::{split_link_key, Db, ReadTables, Tables};

/// What the cache knows of every node id below `next_id`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NodeSlot {
    pub key: u64,
    pub level: u8,
    pub live: bool,
}

/// A node of level ≥ 1: its lists on layers `1..=level` and, where [`keeps_upper_vector`], its
/// vector (search form).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct UpperNode {
    /// `None` with quantization below [`EXACT_DESCENT_LEVEL`]: searches descend on the codes
    /// there, and the vector is read as any layer-0 one (the vector cache, else the file). All of
    /// level ≥ 1 were 6.0 MiB on minilm50k, 19.9 MiB on 50,000 × 1,536, 119 MiB at 1,000,000 ×
    /// 384: memory beyond the budget; level ≥ 2 is a sixteenth of that.
    pub vector: Option<Box<[f32]>>,
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
    /// Node slots, once loaded (else read from `tables`).
    pub nodes: Option<Chunked<NodeSlot>>,
    /// Upper-layer nodes, once loaded (else read from `tables`).
    pub upper: Option<Chunked<Option<Arc<UpperNode>>>>,
    /// Layer-0 vectors in search form, when loaded and within the budget.
    pub vectors: Option<Chunked<f32>>,
    /// Layer-0 lists, `m0 + 1` wide (count, then ids), when loaded and within the budget.
    pub links0: Option<Chunked<u32>>,
    /// Code rows of every node, with quantization, when loaded and within the budget.
    pub codes: Option<Chunked<u64>>,
    /// The index's quantizer; `None` without quantization.
    pub codec: Option<Arc<Codec>>,
    pub free: Arc<BTreeSet<NodeId>>,
    /// The file at exactly this state, for what the cache does not hold.
    pub tables: Arc<ReadTables>,
    /// The database `tables` read: kept open while this snapshot lives, so that a search on
    /// it finishes even when `compact` has moved the index to a new file meanwhile.
    pub file: Arc<Db>,
}

/// The slot of `id` as `tables` store it: a dead default without a row or beyond `next_id`.
pub(crate) fn file_slot<K, B>(tables: &Tables<K, B>, id: NodeId, next_id: u32) -> Result<NodeSlot>
where
    K: ReadableTable<u64, u64>,
    B: ReadableTable<u64, &'static [u8]>,
{
    if id >= next_id {
        return Ok(NodeSlot::default());
    }
    match tables.node_record(id)? {
        None => Ok(NodeSlot::default()),
        Some(record) if record.level > MAX_LEVEL => Err(Error::corrupt(
            format!("level {} too high", record.level),
            format!("nodes[{id}]"),
        )),
        Some(record) => Ok(NodeSlot {
            key: record.key,
            level: record.level,
            live: true,
        }),
    }
}

impl Snapshot {
    /// The slot of `id` (a dead default beyond the end), from the file while the node slots
    /// are not loaded.
    #[inline]
    pub(crate) fn node(&self, id: NodeId) -> Result<NodeSlot> {
        match &self.nodes {
            Some(nodes) => Ok(nodes.get(id).map_or(NodeSlot::default(), |s| s[0])),
            None => file_slot(&self.tables, id, self.counters.next_id),
        }
    }

    /// The upper-layer record of `id`, if it has level ≥ 1 and the upper layers are loaded.
    #[inline]
    pub(crate) fn upper(&self, id: NodeId) -> Option<&UpperNode> {
        self.upper.as_ref()?.get(id).and_then(|s| s[0].as_deref())
    }

    /// Whether the node slots and upper layers are in memory.
    pub(crate) fn upper_loaded(&self) -> bool {
        self.nodes.is_some() && self.upper.is_some()
    }

    /// Bytes held by the layer-0 cache: codes, lists and vectors.
    pub(crate) fn layer0_bytes(&self) -> u64 {
        self.vectors.as_ref().map_or(0, Chunked::bytes)
            + self.links0.as_ref().map_or(0, Chunked::bytes)
            + self.codes.as_ref().map_or(0, Chunked::bytes)
    }

    /// Whether `stage` is in memory.
    pub(crate) fn has(&self, stage: Stage) -> bool {
        match stage {
            Stage::Upper => self.upper_loaded(),
            Stage::Codes => self.codes.is_some(),
            Stage::Vectors => self.vectors.is_some(),
            Stage::Links0 => self.links0.is_some(),
        }
    }

    /// The parts of this index, in the order they are loaded (and kept: the budget drops them
    /// from the end).
    pub(crate) fn stages(&self) -> &'static [Stage] {
        stages(self.codec.is_some())
    }

    /// The code row of node `id`: borrowed from the cache, else read from the file into `buf`.
    /// Invariant: the index has a codec and `id` is a live node.
    #[inline]
    pub(crate) fn code_row<'a>(&'a self, id: NodeId, buf: &'a mut Vec<u64>) -> Result<&'a [u64]> {
        if let Some(row) = self.codes.as_ref().and_then(|c| c.get(id)) {
            return Ok(row);
        }
        self.file_code_row(id, buf)?;
        Ok(buf)
    }

    /// [`code_row`](Self::code_row) from the file: out of line, so that the cached path
    /// inlines into the search loop.
    #[inline(never)]
    fn file_code_row(&self, id: NodeId, buf: &mut Vec<u64>) -> Result<()> {
        let codec = self
            .codec
            .as_deref()
            .ok_or_else(|| Error::corrupt("a code read without quantization", "codes"))?;
        self.tables.code_into(codec, id, buf)
    }

    /// Bytes held in memory in all.
    pub(crate) fn bytes(&self) -> u64 {
        self.upper_bytes() + self.layer0_bytes()
    }

    /// Bytes of the node slots and the upper layers.
    pub(crate) fn upper_bytes(&self) -> u64 {
        let upper: u64 = (0..self.counters.next_id)
            .filter_map(|id| self.upper(id))
            .map(|u| {
                (u.vector.as_ref().map_or(0, |v| v.len() * 4)
                    + u.lists.iter().map(|l| l.len() * 4 + 24).sum::<usize>())
                    as u64
            })
            .sum();
        self.nodes.as_ref().map_or(0, Chunked::bytes)
            + self.upper.as_ref().map_or(0, Chunked::bytes)
            + upper
    }

    /// Drops the parts of the layer-0 cache that do not fit in `budget` bytes, the last loaded
    /// first: without quantization lists, then vectors (vectors are read about ten times as
    /// often; they were loaded within the budget, so they stay unless the budget shrank); with
    /// it vectors (loaded within what codes and lists left, so dropped once those grow past
    /// it), then lists, then codes.
    pub(crate) fn fit_budget(&mut self, budget: u64) {
        for &stage in self.stages().iter().rev() {
            if self.layer0_bytes() <= budget {
                return;
            }
            match stage {
                Stage::Upper => {}
                Stage::Codes => self.codes = None,
                Stage::Vectors => self.vectors = None,
                Stage::Links0 => self.links0 = None,
            }
        }
    }

    /// Live node ids, ascending (a scan of the nodes table while the slots are not loaded).
    /// The list grows as ids are found, never sized by the header's count.
    pub(crate) fn live_ids(&self) -> Result<Vec<NodeId>> {
        match &self.nodes {
            Some(_) => {
                let mut ids = Vec::new();
                for id in 0..self.counters.next_id {
                    if self.node(id)?.live {
                        ids.push(id);
                    }
                }
                Ok(ids)
            }
            None => {
                let mut ids = Vec::new();
                let next_id = self.counters.next_id;
                self.tables.scan_nodes(|id, _| {
                    ids.push(in_range(id, next_id, "nodes")?);
                    Ok(())
                })?;
                Ok(ids)
            }
        }
    }
}

/// What [`Snapshot::load`] needs to know of the index.
#[derive(Clone)]
pub(crate) struct Shape {
    pub metric: crate::options::Metric,
    pub dim: usize,
    pub m0: usize,
    /// Layer-0 cache budget in bytes.
    pub budget: u64,
    /// The quantizer; `None` without quantization.
    pub codec: Option<Arc<Codec>>,
}

impl Shape {
    /// The shape of an index with `options`.
    pub(crate) fn of(options: &crate::options::Options) -> Shape {
        Shape {
            metric: options.metric,
            dim: options.dim,
            m0: options.get_m0(),
            budget: crate::options::layer0_budget(options.cache_bytes),
            codec: Codec::new(options.quantization, options.metric, options.dim).map(Arc::new),
        }
    }

    /// Bytes of the code rows of `next_id` ids (0 without quantization).
    pub(crate) fn code_bytes(&self, next_id: u32) -> u64 {
        self.codec
            .as_ref()
            .map_or(0, |c| u64::from(next_id) * c.row_bytes() as u64)
    }

    /// Bytes of the layer-0 vectors of `next_id` ids.
    pub(crate) fn vector_bytes(&self, next_id: u32) -> u64 {
        u64::from(next_id) * self.dim as u64 * 4
    }

    /// Bytes of the layer-0 lists of `next_id` ids.
    pub(crate) fn list_bytes(&self, next_id: u32) -> u64 {
        u64::from(next_id) * (self.m0 as u64 + 1) * 4
    }
}

/// A part of a snapshot, loaded from one committed state.
pub(crate) enum Part {
    /// Node slots and upper-layer nodes.
    Upper(Chunked<NodeSlot>, Chunked<Option<Arc<UpperNode>>>),
    /// Layer-0 vectors.
    Vectors(Chunked<f32>),
    /// Layer-0 lists.
    Links0(Chunked<u32>),
    /// Code rows.
    Codes(Chunked<u64>),
}

/// What commits changed since a part was loaded: nodes added or removed, and lists by
/// [`link_key`](crate::store::link_key).
#[derive(Clone, Debug, Default)]
pub(crate) struct Changes {
    pub nodes: BTreeSet<NodeId>,
    pub lists: BTreeSet<u64>,
}

/// Bails out of a load when `cancel` is set; checked every 1024 rows.
fn check_cancel(row: u64, cancel: &AtomicBool) -> Result<()> {
    if row & 1023 == 0 && cancel.load(Ordering::Relaxed) {
        return Err(cancelled());
    }
    Ok(())
}

/// The error of a load stopped by its cancel flag.
pub(crate) fn cancelled() -> Error {
    Error::LoadStopped
}

/// Checks the header's `counters` against the tables, in O(log n): redb keeps each table's
/// row count, and the last node id is one B-tree descent. Every id below `next_id` is live (a
/// node row and a key row each) or free (`free` of them), so sizes taken from the counters are
/// bounded by rows the file holds, never by a damaged or crafted header alone.
fn check_counters(tables: &ReadTables, free: u64, counters: &Counters) -> Result<()> {
    let (keys, nodes) = tables.row_counts()?;
    if keys != counters.len || nodes != counters.len {
        return Err(Error::corrupt(
            format!(
                "the header counts {} live nodes, the tables hold {nodes} nodes and {keys} keys",
                counters.len
            ),
            "meta.header",
        ));
    }
    if counters.len.checked_add(free) != Some(u64::from(counters.next_id)) {
        return Err(Error::corrupt(
            format!(
                "{} live and {free} free ids, but next_id is {}",
                counters.len, counters.next_id
            ),
            "meta.header",
        ));
    }
    if let Some(last) = tables.last_node_id()? {
        in_range(last, counters.next_id, "nodes")?;
    }
    Ok(())
}

fn in_range(id: u64, next_id: u32, what: &str) -> Result<NodeId> {
    NodeId::try_from(id)
        .ok()
        .filter(|&id| id < next_id)
        .ok_or_else(|| {
            Error::corrupt(
                format!("node id {id} is not below next_id {next_id}"),
                what.to_string(),
            )
        })
}

impl Snapshot {
    /// The state committed in `txn` with no part loaded: the free ids only, and `counters`
    /// checked against the tables ([`check_counters`]).
    pub(crate) fn unloaded(
        file: &Arc<Db>,
        txn: &redb::ReadTransaction,
        counters: Counters,
        shape: &Shape,
    ) -> Result<Snapshot> {
        let tables = ReadTables::open(txn, file.names(), shape.dim)?;
        let free = crate::store::read_free_ids(txn, file.names())?
            .into_iter()
            .map(|id| in_range(id, counters.next_id, "free_ids"))
            .collect::<Result<BTreeSet<_>>>()?;
        check_counters(&tables, free.len() as u64, &counters)?;
        Ok(Snapshot {
            counters,
            nodes: None,
            upper: None,
            vectors: None,
            links0: None,
            codes: None,
            codec: shape.codec.clone(),
            free: Arc::new(free),
            tables: Arc::new(tables),
            file: Arc::clone(file),
        })
    }

    /// Loads the state committed in `txn` at once: node slots and upper layers, layer 0 within
    /// the budget. Everything read is validated; damage is `Error::Corrupt`.
    pub(crate) fn load(
        file: &Arc<Db>,
        txn: &redb::ReadTransaction,
        counters: Counters,
        shape: &Shape,
    ) -> Result<Snapshot> {
        let mut snap = Snapshot::unloaded(file, txn, counters, shape)?;
        let never = AtomicBool::new(false);
        for &part in snap.stages() {
            match snap.load_part(part, shape, shape.budget, &never)? {
                Some(part) => snap.install(part, &Changes::default(), shape)?,
                None => break,
            }
        }
        Ok(snap)
    }

    /// Reads `stage` from this snapshot's file state; `None` when it is over `budget`.
    pub(crate) fn load_part(
        &self,
        stage: Stage,
        shape: &Shape,
        budget: u64,
        cancel: &AtomicBool,
    ) -> Result<Option<Part>> {
        let tables = &self.tables;
        let next_id = self.counters.next_id;
        match stage {
            Stage::Upper => {
                // The arrays grow as rows are read, and only as far as the rows read and the
                // free ids allow: redb's own row counts, checked at open, come from the file too.
                let free = self.free.len() as u64;
                let mut nodes = Chunked::<NodeSlot>::new(1);
                let mut upper_ids = Vec::new();
                let mut row = 0u64;
                tables.scan_nodes(|id, record| {
                    // Ascending, the live id at `row` is `row` plus the free ids below it.
                    if id > row + free {
                        return Err(Error::corrupt(
                            format!("node {id} is row {row}, with only {free} free ids below it"),
                            "nodes",
                        ));
                    }
                    row += 1;
                    check_cancel(row, cancel)?;
                    let id = in_range(id, next_id, "nodes")?;
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
                if row != self.counters.len {
                    return Err(Error::corrupt(
                        format!("{row} node rows, the header counts {}", self.counters.len),
                        "nodes",
                    ));
                }
                if next_id > 0 {
                    nodes.get_mut(next_id - 1);
                }
                let mut upper = Chunked::<Option<Arc<UpperNode>>>::new(1);
                for (i, &(id, level)) in upper_ids.iter().enumerate() {
                    check_cancel(i as u64, cancel)?;
                    upper.get_mut(id)[0] = Some(Arc::new(read_upper(tables, shape, id, level)?));
                }
                Ok(Some(Part::Upper(nodes, upper)))
            }
            Stage::Vectors => {
                // As many as fit, from id 0: ids are spread evenly over the graph, so a search
                // finds a cached vector about as often as the budget covers the index. With
                // quantization, in what the codes and lists (loaded before) leave.
                let budget = match shape.codec {
                    None => budget,
                    Some(_) => {
                        budget.saturating_sub(shape.code_bytes(next_id) + shape.list_bytes(next_id))
                    }
                };
                let mut vectors = Chunked::<f32>::within(shape.dim, budget);
                if !vectors.holds(0) {
                    return Ok(None);
                }
                let mut search = Vec::new();
                let mut row = 0u64;
                let end = next_id.min(vectors.capacity());
                tables.scan_vectors(u64::from(end), |id, v| {
                    row += 1;
                    check_cancel(row, cancel)?;
                    let id = in_range(id, next_id, "vectors")?;
                    shape.metric.search_form_into(v, &mut search);
                    check_dim(&search, shape.dim, id)?;
                    vectors.get_mut(id).copy_from_slice(&search);
                    Ok(())
                })?;
                Ok(Some(Part::Vectors(vectors)))
            }
            Stage::Codes => {
                let Some(codec) = shape.codec.as_deref() else {
                    return Ok(None);
                };
                if shape.code_bytes(next_id) > budget {
                    return Ok(None);
                }
                let mut codes = Chunked::<u64>::new(codec.words());
                if next_id > 0 {
                    codes.get_mut(next_id - 1);
                }
                let mut row = 0u64;
                let mut words = Vec::new();
                tables.scan_codes(u64::from(next_id), |id, bytes| {
                    row += 1;
                    check_cancel(row, cancel)?;
                    let id = in_range(id, next_id, "codes")?;
                    codec.read_row(bytes, id, &mut words)?;
                    codes.get_mut(id).copy_from_slice(&words);
                    Ok(())
                })?;
                Ok(Some(Part::Codes(codes)))
            }
            Stage::Links0 => {
                // All lists, with all vectors (or, with quantization, all codes) only.
                let first = match shape.codec {
                    None => shape.vector_bytes(next_id),
                    Some(_) => shape.code_bytes(next_id),
                };
                if first + shape.list_bytes(next_id) > budget {
                    return Ok(None);
                }
                let mut links = Chunked::<u32>::new(shape.m0 + 1);
                if next_id > 0 {
                    links.get_mut(next_id - 1);
                }
                let mut row = 0u64;
                tables.scan_lists(false, |id, layer, list| {
                    row += 1;
                    check_cancel(row, cancel)?;
                    let id = in_range(id, next_id, "links")?;
                    if layer == 0 {
                        set_row(&mut links, shape.m0, id, list)?;
                    }
                    Ok(())
                })?;
                Ok(Some(Part::Links0(links)))
            }
        }
    }

    /// Installs `part`, loaded at an earlier committed state, into this one: first re-reads
    /// from this snapshot's file state every node and list `changes` names (what was committed
    /// since the part was read). Invariant: the parts before `part` (see the module docs) are
    /// present; a part out of order is dropped.
    pub(crate) fn install(&mut self, part: Part, changes: &Changes, shape: &Shape) -> Result<()> {
        let next_id = self.counters.next_id;
        let tables = Arc::clone(&self.tables);
        match part {
            Part::Upper(mut nodes, mut upper) => {
                let ids = changes.nodes.iter().copied().chain(
                    changes
                        .lists
                        .iter()
                        .map(|&key| split_link_key(key))
                        .filter(|&(_, layer)| layer != 0)
                        .map(|(id, _)| id as NodeId),
                );
                for id in ids {
                    let slot = file_slot(&tables, id, next_id)?;
                    nodes.get_mut(id)[0] = slot;
                    let node = if slot.live && slot.level > 0 {
                        Some(Arc::new(read_upper(&tables, shape, id, slot.level)?))
                    } else {
                        None
                    };
                    if node.is_some() || upper.get(id).is_some() {
                        upper.get_mut(id)[0] = node;
                    }
                }
                if next_id > 0 {
                    nodes.get_mut(next_id - 1);
                }
                self.nodes = Some(nodes);
                self.upper = Some(upper);
            }
            Part::Codes(mut codes) => {
                let Some(codec) = self.codec.clone() else {
                    return Ok(());
                };
                if !self.upper_loaded() {
                    return Ok(());
                }
                let mut words = Vec::new();
                for &id in &changes.nodes {
                    if self.node(id)?.live {
                        tables.code_into(&codec, id, &mut words)?;
                        codes.get_mut(id).copy_from_slice(&words);
                    }
                }
                if next_id > 0 {
                    codes.get_mut(next_id - 1);
                }
                self.codes = Some(codes);
            }
            Part::Vectors(mut vectors) => {
                let before = match self.codec {
                    None => self.upper_loaded(),
                    Some(_) => self.links0.is_some(),
                };
                if !before {
                    return Ok(());
                }
                let mut search = Vec::new();
                for &id in &changes.nodes {
                    if vectors.holds(id) && self.node(id)?.live {
                        tables
                            .vector_with(id, |v| shape.metric.search_form_into(v, &mut search))?;
                        vectors.get_mut(id).copy_from_slice(&search);
                    }
                }
                self.vectors = Some(vectors);
            }
            Part::Links0(mut links) => {
                let before = match self.codec {
                    None => self.vectors.is_some(),
                    Some(_) => self.codes.is_some(),
                };
                if !before {
                    return Ok(());
                }
                let ids = changes.nodes.iter().copied().chain(
                    changes
                        .lists
                        .iter()
                        .map(|&key| split_link_key(key))
                        .filter(|&(_, layer)| layer == 0)
                        .map(|(id, _)| id as NodeId),
                );
                let mut list = Vec::new();
                for id in ids {
                    tables.links_into(id, 0, &mut list)?;
                    set_row(&mut links, shape.m0, id, &list)?;
                }
                if next_id > 0 {
                    links.get_mut(next_id - 1);
                }
                self.links0 = Some(links);
            }
        }
        Ok(())
    }
}

/// The parts of a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    Upper,
    Codes,
    Vectors,
    Links0,
}

/// The parts of an index with (`quantized`) or without quantization, in the order they are
/// loaded: without it, vectors before lists (vectors are read about ten times as often); with
/// it, codes and lists (what the walk reads), then the vectors the re-ranking reads.
pub(crate) fn stages(quantized: bool) -> &'static [Stage] {
    if quantized {
        &[Stage::Upper, Stage::Codes, Stage::Links0, Stage::Vectors]
    } else {
        &[Stage::Upper, Stage::Vectors, Stage::Links0]
    }
}

/// Whether the cached upper node of a node of `level` ≥ 1 holds its vector: always without
/// quantization; with it, only from [`EXACT_DESCENT_LEVEL`] up, where searches descend on exact
/// distances (below, they walk the codes).
pub(crate) fn keeps_upper_vector(quantized: bool, level: u8) -> bool {
    !quantized || level >= EXACT_DESCENT_LEVEL
}

/// Reads upper node `id` of `level` ≥ 1 from `tables`: its lists, and its vector when
/// [`keeps_upper_vector`].
fn read_upper<K, B>(
    tables: &Tables<K, B>,
    shape: &Shape,
    id: NodeId,
    level: u8,
) -> Result<UpperNode>
where
    K: ReadableTable<u64, u64>,
    B: ReadableTable<u64, &'static [u8]>,
{
    let vector = match keeps_upper_vector(shape.codec.is_some(), level) {
        false => None,
        true => {
            let mut search = Vec::new();
            tables.vector_with(id, |v| shape.metric.search_form_into(v, &mut search))?;
            Some(search.into_boxed_slice())
        }
    };
    let mut lists = Vec::with_capacity(usize::from(level));
    for layer in 1..=level {
        let mut list = Vec::new();
        tables.links_into(id, layer, &mut list)?;
        lists.push(list);
    }
    Ok(UpperNode { vector, lists })
}

/// Stores `list` as the layer-0 row of `id`.
fn set_row(links: &mut Chunked<u32>, m0: usize, id: NodeId, list: &[NodeId]) -> Result<()> {
    if list.len() > m0 {
        return Err(Error::corrupt(
            "layer-0 list longer than m0",
            format!("links[{id}, 0]"),
        ));
    }
    let row = links.get_mut(id);
    row[0] = list.len() as u32;
    row[1..=list.len()].copy_from_slice(list);
    Ok(())
}

fn check_dim(v: &[f32], dim: usize, id: NodeId) -> Result<()> {
    if v.len() != dim {
        return Err(Error::corrupt(
            format!("vector has {} dimensions, the index {dim}", v.len()),
            format!("vectors[{id}]"),
        ));
    }
    Ok(())
}
