//! [`Index::verify`], [`Index::verify_report`] and [`Index::stats`]: the full integrity check,
//! its list of problems, and the counts behind it.

use std::collections::HashMap;

use crate::chunked::Chunked;
use crate::error::{Error, Location, Result};
use crate::graph::{self, GraphRead, NodeId, MAX_LEVEL};
use crate::graph_views::SnapshotGraph;
use crate::index::Index;
use crate::snapshot::{Shape, Snapshot};
use crate::store;

/// Sizes and counts of an index, from [`Index::stats`].
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use hnswdb::{Index, Metric, Options};
/// let index = Index::create(dir.path().join("s.hnsw"), Options::new(2).metric(Metric::L2))?;
/// index.insert_batch((0..100u64).map(|k| (k, [k as f32, 1.0])))?;
/// let stats = index.stats()?;
/// assert_eq!(stats.nodes_per_level.iter().sum::<u64>(), 100);
/// // Every node is on layer 0, with between 1 and 2*m = 32 out-links.
/// assert_eq!(stats.degree_histogram[0].iter().sum::<u64>(), 100);
/// assert_eq!(stats.degree_histogram[0][0], 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Live vectors.
    pub len: u64,
    /// `nodes_per_level[l]`: live nodes whose top level is exactly `l`.
    pub nodes_per_level: Vec<u64>,
    /// `degree_histogram[layer][d]`: live nodes on `layer` (those of level ≥ `layer`) with
    /// exactly `d` out-links there. One row per layer up to the top level; a row is as long as
    /// the layer's bound plus one (`2*m + 1` on layer 0, `m + 1` above), longer only if a list
    /// exceeds its bound.
    pub degree_histogram: Vec<Vec<u64>>,
    /// Node ids freed by removals and not yet reused.
    pub free_ids: u64,
    /// Size of the index file in bytes; 0 for an [`in_memory`](crate::Index::in_memory) index;
    /// for an index inside an app's database, the bytes its tables take in the file (their
    /// rows, B-tree pages and fragmentation, as redb counts them).
    pub file_bytes: u64,
    /// Bytes of memory held by hnswdb's cache: the sum of the four parts below.
    pub cache_bytes: u64,
    /// Of `cache_bytes`: the node table (key, level, liveness of every id) and the upper layers
    /// (lists of the nodes of level ≥ 1, and without quantization their vectors), always held.
    pub upper_bytes: u64,
    /// Of `cache_bytes`: the codes of the vectors ([`Quantization`](crate::Quantization)),
    /// when held.
    pub codes_bytes: u64,
    /// Of `cache_bytes`: the layer-0 neighbour lists, when held.
    pub links_bytes: u64,
    /// Of `cache_bytes`: the layer-0 `f32` vectors held.
    pub vectors_bytes: u64,
    /// The most redb's page cache may take, beside `cache_bytes`, for an index file of its own
    /// (a sixteenth of [`Options::cache_bytes`], between 1 MiB and 256 MiB); 0 inside an app's
    /// database, whose redb cache the app sizes, and in memory.
    ///
    /// [`Options::cache_bytes`]: crate::Options::cache_bytes
    pub page_cache_bytes: u64,
    /// Whether every layer-0 vector is cached (else some or all are read from the file).
    pub layer0_vectors_cached: bool,
    /// Live vectors whose layer-0 copy the cache holds: all of them (`len`) when
    /// `layer0_vectors_cached`, else as many as fit in [`Options::cache_bytes`] (the lowest node
    /// ids), or none.
    ///
    /// [`Options::cache_bytes`]: crate::Options::cache_bytes
    pub layer0_vectors_in_cache: u64,
    /// Whether the layer-0 neighbour lists are cached (else read from the file).
    pub layer0_links_cached: bool,
    /// Level of the entry point; `None` when empty.
    pub max_level: Option<u8>,
}

/// Every problem [`Index::verify_report`] found.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use hnswdb::{Index, Options};
/// let index = Index::create(dir.path().join("r.hnsw"), Options::new(2))?;
/// index.insert(1, &[1.0, 0.0])?;
/// let report = index.verify_report()?;
/// assert!(report.is_ok() && report.complete);
/// for problem in &report.problems {
///     eprintln!("{} (at {})", problem.what, problem.location);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The problems, in the order found: the first [`VerifyReport::MAX_PROBLEMS`] of them.
    pub problems: Vec<Problem>,
    /// Problems found beyond those listed.
    pub omitted: u64,
    /// Whether every check ran. `false` when a record could not be read at all (the last
    /// problem says which), so checking stopped there and later problems may be missing.
    pub complete: bool,
    /// Live nodes in the file, as the index's header counts them.
    pub nodes: u64,
}

/// One problem found by [`Index::verify_report`]: what is wrong, and where.
///
/// ```
/// let problem = hnswdb::Problem::new("node 3 links to itself on layer 0", "links of node 3");
/// assert_eq!(problem.to_string(), "node 3 links to itself on layer 0 (at links of node 3)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// What is wrong.
    pub what: String,
    /// Where: a table and key, a node and layer, or the invariant that failed.
    pub location: String,
}

impl Problem {
    /// A problem: `what` is wrong at `location`.
    pub fn new(what: impl Into<String>, location: impl Into<String>) -> Problem {
        Problem {
            what: what.into(),
            location: location.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at {})", self.what, self.location)
    }
}

impl VerifyReport {
    /// At most this many problems are listed; the rest are counted in `omitted`.
    pub const MAX_PROBLEMS: usize = 1000;

    /// Whether no problem was found (and, if `complete`, the file is healthy).
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// Problems found in all: listed and omitted.
    pub fn total(&self) -> u64 {
        self.problems.len() as u64 + self.omitted
    }

    fn push(&mut self, what: String, location: String) {
        if self.problems.len() < Self::MAX_PROBLEMS {
            self.problems.push(Problem { what, location });
        } else {
            self.omitted += 1;
        }
    }

    /// `Ok` for a healthy report, else `Error::Corrupt`: a single problem as it is, several as
    /// the first [`SHOWN_IN_ERROR`] joined, located at "verify".
    fn into_result(self) -> Result<()> {
        match self.problems.as_slice() {
            [] => Ok(()),
            [one] if self.omitted == 0 => {
                Err(Error::corrupt(one.what.clone(), one.location.clone()))
            }
            problems => {
                let shown: Vec<String> = problems
                    .iter()
                    .take(SHOWN_IN_ERROR)
                    .map(Problem::to_string)
                    .collect();
                let more = self.total() - shown.len() as u64;
                let mut what = shown.join("; ");
                if more > 0 {
                    what.push_str(&format!("; and {more} more"));
                }
                Err(Error::corrupt(what, "verify"))
            }
        }
    }
}

/// How many problems the error of [`Index::verify`] spells out.
const SHOWN_IN_ERROR: usize = 20;

impl Index {
    /// Counts per level, the out-degree histogram per layer, free ids, file and cache bytes.
    ///
    /// Cost: one pass over the live nodes. The neighbour lists for the degree histogram come
    /// from memory for the upper layers, and for layer 0 too while its lists are cached
    /// (`layer0_links_cached`); otherwise each layer-0 list is read from the file, about 1 µs
    /// per node (roughly a second per million vectors).
    pub fn stats(&self) -> Result<Stats> {
        let snap = self.engine().snapshot();
        let params = self.engine().params();
        let mut nodes_per_level = Vec::new();
        let mut degree_histogram: Vec<Vec<u64>> = Vec::new();
        let graph = SnapshotGraph::new(&snap, self.options().metric);
        let mut list = Vec::new();
        let mut vectors_in_cache = 0;
        store::guarded("stats", || {
            for id in snap.live_ids()? {
                vectors_in_cache += u64::from(snap.vectors.as_ref().is_some_and(|v| v.holds(id)));
                let level = snap.node(id)?.level;
                let top = usize::from(level);
                if nodes_per_level.len() <= top {
                    nodes_per_level.resize(top + 1, 0);
                }
                nodes_per_level[top] += 1;
                for layer in 0..=level {
                    let l = usize::from(layer);
                    if degree_histogram.len() <= l {
                        let bound = params.max_neighbours(layer);
                        degree_histogram.resize_with(l + 1, || vec![0; bound + 1]);
                    }
                    graph.neighbours(id, layer, &mut list)?;
                    let row = &mut degree_histogram[l];
                    if row.len() <= list.len() {
                        row.resize(list.len() + 1, 0);
                    }
                    row[list.len()] += 1;
                }
            }
            Ok(())
        })?;
        Ok(Stats {
            len: snap.counters.len,
            nodes_per_level,
            degree_histogram,
            free_ids: snap.free.len() as u64,
            file_bytes: match self.location() {
                Location::Memory => 0,
                Location::File(path) => std::fs::metadata(path)?.len(),
                Location::Named(_) => store::guarded("stats", || {
                    let file = self.engine().database();
                    store::table_bytes(&store::begin_read(&file)?, file.names())
                })?,
            },
            cache_bytes: snap.bytes(),
            upper_bytes: snap.upper_bytes(),
            codes_bytes: snap.codes.as_ref().map_or(0, Chunked::bytes),
            links_bytes: snap.links0.as_ref().map_or(0, Chunked::bytes),
            vectors_bytes: snap.vectors.as_ref().map_or(0, Chunked::bytes),
            page_cache_bytes: match self.location() {
                Location::File(_) => {
                    crate::options::page_cache_bytes(self.options().cache_bytes) as u64
                }
                Location::Memory | Location::Named(_) => 0,
            },
            layer0_vectors_cached: snap.vectors.is_some() && vectors_in_cache == snap.counters.len,
            layer0_vectors_in_cache: vectors_in_cache,
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
    /// Returns `Error::Corrupt` on any problem: a single one as it is, several joined (the first
    /// 20) at location `verify`. [`Index::verify_report`] lists them all.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use hnswdb::{Index, Options};
    /// let index = Index::create(dir.path().join("v.hnsw"), Options::new(2))?;
    /// index.insert(1, &[1.0, 0.0])?;
    /// index.verify()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify(&self) -> Result<()> {
        self.verify_report()?.into_result()
    }

    /// Runs the checks of [`Index::verify`] and lists every problem found (up to
    /// [`VerifyReport::MAX_PROBLEMS`], the rest counted), each with what is wrong and where.
    ///
    /// The tables are first checked against each other (keys, nodes, vectors, which rows
    /// exist); the graph's invariants are checked only when those agree, since a graph walk
    /// over inconsistent tables would mostly repeat the same damage. A record that cannot be
    /// decoded at all stops the check: it becomes the last problem and `complete` is `false`.
    /// Returns `Err` only when the file cannot be read (an I/O or storage error).
    pub fn verify_report(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport {
            nodes: self.engine().snapshot().counters.len,
            ..VerifyReport::default()
        };
        let found = store::guarded("verify", || {
            self.check_into(&mut |what, location| report.push(what, location))
        });
        match found {
            Ok(()) => report.complete = true,
            Err(Error::Corrupt { what, location }) => report.push(what, location),
            Err(e) => return Err(e),
        }
        Ok(report)
    }

    /// Calls `found(what, location)` for every problem in the file; see [`Index::verify_report`].
    fn check_into(&self, found: &mut dyn FnMut(String, String)) -> Result<()> {
        let file = self.engine().database();
        let txn = store::begin_read(&file)?;
        let header = store::read_header(&txn, file.names(), self.location())?;
        let options = self.options();
        let counters = self.engine().snapshot().counters;
        let problems = std::cell::Cell::new(0usize);
        let mut found = |what: String, location: String| {
            problems.set(problems.get() + 1);
            found(what, location);
        };
        if header != crate::header::header_of(options, &counters) {
            found(
                "the file's header differs from the open index's state".to_string(),
                "meta.header".to_string(),
            );
        }
        // A file-only view: layer 0 is read from the file, not the cache.
        let shape = Shape {
            budget: 0,
            ..Shape::of(options)
        };
        // The load checks the counters against the tables (`len` against the node and key
        // rows, `next_id` against the live and free ids): a disagreement stops it as Corrupt.
        let snap = Snapshot::load(&file, &txn, counters, &shape)?;
        let tables = &snap.tables;

        let live: Vec<NodeId> = snap.live_ids()?;
        for &id in snap.free.iter() {
            if snap.node(id)?.live {
                found(
                    format!("node {id} is both live and free"),
                    format!("free_ids[{id}]"),
                );
            }
        }
        let mut keys = HashMap::new();
        tables.scan_keys(|key, id| {
            let slot = match NodeId::try_from(id) {
                Ok(id) => snap.node(id)?,
                Err(_) => Default::default(),
            };
            if !slot.live || slot.key != key {
                found(
                    format!("key {key} maps to node {id}, which does not map back"),
                    format!("keys[{key}]"),
                );
            }
            keys.insert(key, id);
            Ok(())
        })?;
        for &id in &live {
            let key = snap.node(id)?.key;
            if keys.get(&key) != Some(&u64::from(id)) {
                found(
                    format!("node {id} (key {key}) is not mapped from its key"),
                    format!("nodes[{id}]"),
                );
            }
        }
        let mut vectors = 0u64;
        tables.scan_vectors(u64::MAX, |id, v| {
            vectors += 1;
            let live = match NodeId::try_from(id) {
                Ok(id) => snap.node(id)?.live,
                Err(_) => false,
            };
            let at = || format!("vectors[{id}]");
            if !live {
                found(format!("vector {id} belongs to no live node"), at());
            } else if v.len() != options.dim {
                found(
                    format!(
                        "vector {id} has {} dimensions, not {}",
                        v.len(),
                        options.dim
                    ),
                    at(),
                );
            } else if v.iter().any(|x| !x.is_finite()) {
                found(format!("vector {id} holds NaN or infinity"), at());
            }
            Ok(())
        })?;
        if vectors != live.len() as u64 {
            found(
                format!("{vectors} vectors stored for {} live nodes", live.len()),
                "vectors".to_string(),
            );
        }
        self.check_codes(&snap, &mut found)?;
        for reverse in [false, true] {
            let table = if reverse { "reverse" } else { "links" };
            tables.scan_lists(reverse, |id, layer, _| {
                let slot = match NodeId::try_from(id) {
                    Ok(id) => snap.node(id)?,
                    Err(_) => Default::default(),
                };
                if !slot.live || layer > slot.level || layer > MAX_LEVEL {
                    found(
                        format!("{table} row for node {id} layer {layer}, which it does not have"),
                        format!("{table}[node {id}, layer {layer}]"),
                    );
                }
                Ok(())
            })?;
        }
        if problems.get() > 0 {
            return Ok(());
        }
        let graph = FileGraph {
            view: SnapshotGraph::new(&snap, options.metric),
            snap: &snap,
        };
        graph::check_each(&graph, &live, &self.engine().params(), &mut found)
    }
}

impl Index {
    /// The codes against their vectors: with quantization, one code per live node, of the
    /// codec's length, equal to the code of its vector, and the cached one equal to the stored
    /// one; without, none.
    fn check_codes(&self, snap: &Snapshot, found: &mut dyn FnMut(String, String)) -> Result<()> {
        let metric = self.options().metric;
        let cached = self.engine().snapshot();
        let mut codes = 0u64;
        let mut row = Vec::new();
        snap.tables.scan_codes(u64::MAX, |id, bytes| {
            codes += 1;
            let at = || format!("codes[{id}]");
            let node = NodeId::try_from(id)
                .ok()
                .filter(|&id| snap.node(id).is_ok_and(|slot| slot.live));
            let (Some(codec), Some(node)) = (snap.codec.as_deref(), node) else {
                found(format!("code {id} belongs to no live node"), at());
                return Ok(());
            };
            if let Err(e) = codec.read_row(bytes, node, &mut row) {
                found(e.to_string(), at());
                return Ok(());
            }
            let want = snap
                .tables
                .vector_with(node, |v| codec.code(&metric.search_form(v)))?;
            if row != want {
                found(format!("code {id} is not the code of its vector"), at());
            }
            let in_memory = cached.codes.as_ref().and_then(|c| c.get(node));
            if in_memory.is_some_and(|r| r != row.as_slice()) {
                found(
                    format!("the cached code of node {id} differs from the stored one"),
                    "cache".to_string(),
                );
            }
            Ok(())
        })?;
        let expected = match snap.codec {
            Some(_) => snap.counters.len,
            None => 0,
        };
        if codes != expected {
            found(
                format!("{codes} codes stored for {expected} live nodes with a code"),
                "codes".to_string(),
            );
        }
        Ok(())
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

impl graph::GraphReverse for FileGraph<'_> {
    fn linked_from(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()> {
        self.snap.tables.reverse_into(id, layer, out)
    }
}
