//! [`MemoryGraph`]: a plain in-memory graph for tests and fuzzing, and the model the algorithm
//! is checked on.
#![cfg(test)]

use std::collections::BTreeSet;

use super::{EntryPoint, GraphRead, GraphReverse, GraphWrite, NodeId};
use crate::error::{Error, Result};
use crate::options::Metric;

/// A graph held in plain vectors, indexed by node id.
///
/// Invariant: `reverse` is exactly the transpose of `links`, layer by layer.
pub(crate) struct MemoryGraph {
    metric: Metric,
    nodes: Vec<Option<Node>>,
    entry: Option<EntryPoint>,
    /// Distances computed so far (a measure of work that does not depend on the machine).
    distances: std::sync::atomic::AtomicU64,
}

struct Node {
    level: u8,
    /// Search form.
    vector: Vec<f32>,
    /// `links[l]`: the list on layer `l`, for `l ≤ level`.
    links: Vec<Vec<NodeId>>,
    /// `reverse[l]`: the nodes whose list on layer `l` holds this one.
    reverse: Vec<BTreeSet<NodeId>>,
}

impl MemoryGraph {
    /// An empty graph measuring distance under `metric`.
    pub(crate) fn new(metric: Metric) -> MemoryGraph {
        MemoryGraph {
            metric,
            nodes: Vec::new(),
            entry: None,
            distances: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Adds node `id`, unlinked, with `vector` in search form (see `Metric::search_form`).
    /// Link it with `graph::insert`.
    pub(crate) fn add_node(&mut self, id: NodeId, level: u8, vector: Vec<f32>) -> Result<()> {
        let slot = id as usize;
        if self.nodes.len() <= slot {
            self.nodes.resize_with(slot + 1, || None);
        }
        if self.nodes[slot].is_some() {
            return Err(Error::corrupt(
                format!("node {id} already exists"),
                "memory graph",
            ));
        }
        let layers = usize::from(level) + 1;
        self.nodes[slot] = Some(Node {
            level,
            vector,
            links: vec![Vec::new(); layers],
            reverse: vec![BTreeSet::new(); layers],
        });
        Ok(())
    }

    /// Deletes node `id`, which `graph::remove` has unlinked.
    pub(crate) fn delete_node(&mut self, id: NodeId) -> Result<()> {
        let node = self.node(id)?;
        if node.links.iter().any(|l| !l.is_empty()) || node.reverse.iter().any(|r| !r.is_empty()) {
            return Err(Error::corrupt(
                format!("node {id} is still linked"),
                "memory graph",
            ));
        }
        if self.entry.is_some_and(|e| e.id == id) {
            return Err(Error::corrupt(
                format!("node {id} is the entry point"),
                "memory graph",
            ));
        }
        self.nodes[id as usize] = None;
        Ok(())
    }

    /// Every live id, ascending.
    pub(crate) fn live(&self) -> Vec<NodeId> {
        (0..self.nodes.len() as NodeId)
            .filter(|&id| self.nodes[id as usize].is_some())
            .collect()
    }

    /// How many distances have been computed so far.
    pub(crate) fn distances(&self) -> u64 {
        self.distances.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The metric distances are measured in.
    pub(crate) fn metric(&self) -> Metric {
        self.metric
    }

    fn node(&self, id: NodeId) -> Result<&Node> {
        self.nodes
            .get(id as usize)
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::corrupt(format!("no node {id}"), "memory graph"))
    }

    fn node_mut(&mut self, id: NodeId) -> Result<&mut Node> {
        self.nodes
            .get_mut(id as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| Error::corrupt(format!("no node {id}"), "memory graph"))
    }

    fn on_layer(&self, id: NodeId, layer: u8) -> Result<&Node> {
        let node = self.node(id)?;
        if layer > node.level {
            return Err(Error::corrupt(
                format!("node {id} has no layer {layer}"),
                "memory graph",
            ));
        }
        Ok(node)
    }
}

impl GraphRead for MemoryGraph {
    fn entry_point(&self) -> Option<EntryPoint> {
        self.entry
    }

    fn level(&self, id: NodeId) -> Result<u8> {
        Ok(self.node(id)?.level)
    }

    fn neighbours(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()> {
        out.clear();
        out.extend_from_slice(&self.on_layer(id, layer)?.links[usize::from(layer)]);
        Ok(())
    }

    fn distance_to(&self, query: &[f32], id: NodeId) -> Result<f32> {
        self.distances
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(self.metric.search_distance(query, &self.node(id)?.vector))
    }

    fn distance_between(&self, a: NodeId, b: NodeId) -> Result<f32> {
        self.distances
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(self
            .metric
            .search_distance(&self.node(a)?.vector, &self.node(b)?.vector))
    }
}

impl GraphReverse for MemoryGraph {
    fn linked_from(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()> {
        out.clear();
        out.extend(&self.on_layer(id, layer)?.reverse[usize::from(layer)]);
        Ok(())
    }
}

impl GraphWrite for MemoryGraph {
    fn set_neighbours(&mut self, id: NodeId, layer: u8, list: &[NodeId]) -> Result<()> {
        self.on_layer(id, layer)?;
        for (i, &n) in list.iter().enumerate() {
            if n == id || list[..i].contains(&n) {
                return Err(Error::corrupt(
                    format!("list of node {id} on layer {layer} holds itself or a duplicate"),
                    "memory graph",
                ));
            }
            self.on_layer(n, layer)?;
        }
        let l = usize::from(layer);
        let old = std::mem::take(&mut self.node_mut(id)?.links[l]);
        for &n in old.iter().filter(|n| !list.contains(n)) {
            self.node_mut(n)?.reverse[l].remove(&id);
        }
        for &n in list.iter().filter(|n| !old.contains(n)) {
            self.node_mut(n)?.reverse[l].insert(id);
        }
        let links = &mut self.node_mut(id)?.links[l];
        *links = old;
        links.clear();
        links.extend_from_slice(list);
        Ok(())
    }

    fn set_entry_point(&mut self, entry: Option<EntryPoint>) {
        self.entry = entry;
    }

    fn highest_node(&self, except: NodeId) -> Result<Option<EntryPoint>> {
        let mut best: Option<EntryPoint> = None;
        for (id, node) in self.nodes.iter().enumerate() {
            let Some(node) = node else { continue };
            let id = id as NodeId;
            if id != except && best.is_none_or(|b| node.level > b.level) {
                best = Some(EntryPoint {
                    id,
                    level: node.level,
                });
            }
        }
        Ok(best)
    }
}

/// The seed of randomised graph tests: `HNSWDB_SEED` if set, else `default`; printed either way.
#[cfg(test)]
pub(crate) fn test_seed(default: u64) -> u64 {
    let seed = std::env::var("HNSWDB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("seed {seed} (set HNSWDB_SEED to reproduce)");
    seed
}

/// A splitmix64 stream, for graph tests.
#[cfg(test)]
pub(crate) struct Rng(pub u64);

#[cfg(test)]
impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        let z = super::level::splitmix64(self.0);
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z
    }

    /// A float in [-1, 1).
    pub(crate) fn float(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub(crate) fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.float()).collect()
    }
}

/// A graph of `n` random `dim`-d vectors (L2, coordinates in [-1, 1)) built by `graph::insert`
/// with `m` and `ef_construction` 64, reproducible from `seed`.
pub(crate) fn random_graph(
    n: usize,
    dim: usize,
    m: usize,
    seed: u64,
) -> (MemoryGraph, super::Params) {
    let params = super::Params {
        m,
        m0: 2 * m,
        ef_construction: 64,
    };
    let mut graph = MemoryGraph::new(Metric::L2);
    let mut scratch = super::Scratch::new();
    let mut state = seed;
    for id in 0..n as NodeId {
        let vector: Vec<f32> = (0..dim)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        let level = super::level_for(seed, u64::from(id), m);
        graph.add_node(id, level, vector.clone()).unwrap();
        super::insert(&mut graph, id, level, &vector, &params, &mut scratch).unwrap();
    }
    (graph, params)
}

#[cfg(test)]
mod tests {
    //! The algorithm on [`MemoryGraph`] against brute force: invariants and exactness after any
    //! sequence of inserts and removes, and recall on a larger random set.

    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    use super::*;
    use crate::graph::{check, insert, level_for, remove, search, Params, Scratch};

    /// A graph with id recycling, as the index runs it.
    struct Model {
        graph: MemoryGraph,
        params: Params,
        scratch: Scratch,
        free: Vec<NodeId>,
        next: NodeId,
        seed: u64,
        inserts: u64,
    }

    impl Model {
        fn new(metric: Metric, m: usize, ef_construction: usize, seed: u64) -> Model {
            Model {
                graph: MemoryGraph::new(metric),
                params: Params {
                    m,
                    m0: 2 * m,
                    ef_construction,
                },
                scratch: Scratch::new(),
                free: Vec::new(),
                next: 0,
                seed,
                inserts: 0,
            }
        }

        /// Inserts `raw` (stored form) under a fresh id, or the free id `reuse` picks.
        fn insert(&mut self, raw: &[f32], reuse: usize) -> NodeId {
            let id = if self.free.is_empty() {
                self.next += 1;
                self.next - 1
            } else {
                self.free.swap_remove(reuse % self.free.len())
            };
            let level = level_for(self.seed, self.inserts, self.params.m);
            self.inserts += 1;
            let vector = self.graph.metric().search_form(raw);
            self.graph.add_node(id, level, vector.clone()).unwrap();
            insert(
                &mut self.graph,
                id,
                level,
                &vector,
                &self.params,
                &mut self.scratch,
            )
            .unwrap();
            id
        }

        fn remove(&mut self, id: NodeId) {
            remove(&mut self.graph, id, &self.params, &mut self.scratch).unwrap();
            self.graph.delete_node(id).unwrap();
            self.free.push(id);
        }

        /// `check`'s report, plus any break of the parent rule that keeps layer 0 connected.
        fn problems(&self) -> Vec<String> {
            let live = self.graph.live();
            let mut problems = check(&self.graph, &live, &self.params).unwrap();
            let orphans = crate::graph::select::orphans(&self.graph, &live).unwrap();
            if !orphans.is_empty() {
                problems.push(format!("no parent link: {orphans:?}"));
            }
            problems
        }

        fn search(
            &mut self,
            raw: &[f32],
            ef: usize,
            filter: Option<&dyn Fn(NodeId) -> bool>,
        ) -> Vec<(f32, NodeId)> {
            let query = self.graph.metric().search_form(raw);
            let mut out = Vec::new();
            search(&self.graph, &query, ef, filter, &mut self.scratch, &mut out).unwrap();
            out
        }

        /// Every node passing `filter`, nearest first, ties by id.
        fn brute(
            &self,
            raw: &[f32],
            filter: Option<&dyn Fn(NodeId) -> bool>,
        ) -> Vec<(f32, NodeId)> {
            let query = self.graph.metric().search_form(raw);
            let mut all: Vec<(f32, NodeId)> = self
                .graph
                .live()
                .into_iter()
                .filter(|&id| filter.is_none_or(|f| f(id)))
                .map(|id| (self.graph.distance_to(&query, id).unwrap(), id))
                .collect();
            all.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            all
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert { coords: Vec<f32>, reuse: usize },
        Remove { pick: usize },
    }

    fn coordinate() -> impl Strategy<Value = f32> {
        // Small integers give exact ties and duplicate vectors; floats give the general case.
        prop_oneof![(-2i8..=2).prop_map(f32::from), -10.0f32..10.0]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (prop::collection::vec(coordinate(), 8), any::<usize>())
                .prop_map(|(coords, reuse)| Op::Insert { coords, reuse }),
            2 => any::<usize>().prop_map(|pick| Op::Remove { pick }),
        ]
    }

    fn config() -> Config {
        let rng_seed = match std::env::var("HNSWDB_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            Some(seed) => RngSeed::Fixed(seed),
            None => RngSeed::Random,
        };
        // PROPTEST_CASES overrides the number of cases.
        let cases = match std::env::var("PROPTEST_CASES") {
            Ok(_) => Config::default().cases,
            Err(_) => 512,
        };
        Config {
            cases,
            failure_persistence: None,
            rng_seed,
            ..Config::default()
        }
    }

    /// A stored-form vector of `dim` from `coords`, valid under `metric`.
    fn vector(coords: &[f32], dim: usize, metric: Metric) -> Vec<f32> {
        let mut v = coords[..dim].to_vec();
        if metric == Metric::Cosine && v.iter().all(|&x| x == 0.0) {
            v[0] = 1.0;
        }
        v
    }

    proptest! {
        #![proptest_config(config())]

        /// After every insert and remove the graph passes `check` (bounds, exact reverse links,
        /// entry point, reachability), and a search with `ef ≥ n` is exact, with and without a
        /// filter.
        #[test]
        fn any_sequence_keeps_the_graph_healthy_and_exhaustive_search_exact(
            m in 2usize..=8,
            dim in 2usize..=8,
            cosine in any::<bool>(),
            ef_construction in 1usize..=40,
            seed in any::<u64>(),
            ops in prop::collection::vec(op(), 1..=200),
        ) {
            run(m, dim, cosine, ef_construction, seed, &ops)?;
        }
    }

    fn run(
        m: usize,
        dim: usize,
        cosine: bool,
        ef_construction: usize,
        seed: u64,
        ops: &[Op],
    ) -> Result<(), TestCaseError> {
        let metric = if cosine { Metric::Cosine } else { Metric::L2 };
        let mut model = Model::new(metric, m, ef_construction, seed);
        for (step, op) in ops.iter().enumerate() {
            let query = match op {
                Op::Insert { coords, reuse } => {
                    let v = vector(coords, dim, metric);
                    model.insert(&v, *reuse);
                    v
                }
                Op::Remove { pick } => {
                    let live = model.graph.live();
                    if live.is_empty() {
                        continue;
                    }
                    let id = live[pick % live.len()];
                    model.remove(id);
                    let mut q = vec![0.5; dim];
                    q[step % dim] = 1.0;
                    q
                }
            };
            let problems = model.problems();
            prop_assert!(problems.is_empty(), "step {step} ({op:?}): {problems:?}");
            let n = model.graph.live().len();
            for ef in [n, n + 3] {
                prop_assert_eq!(
                    model.search(&query, ef, None),
                    model.brute(&query, None),
                    "step {}",
                    step
                );
            }
            let even = |id: NodeId| id & 1 == 0;
            prop_assert_eq!(
                model.search(&query, n, Some(&even)),
                model.brute(&query, Some(&even))
            );
        }
        Ok(())
    }

    fn recall(model: &mut Model, queries: &[Vec<f32>], k: usize, ef: usize) -> f64 {
        let mut hits = 0;
        for q in queries {
            let truth: Vec<f32> = model.brute(q, None).iter().take(k).map(|h| h.0).collect();
            let found = model.search(q, ef, None);
            let kth = truth[k - 1];
            // Count by distance, so ties at the k-th place do not depend on ids.
            hits += found.iter().take(k).filter(|h| h.0 <= kth).count();
        }
        hits as f64 / (queries.len() * k) as f64
    }

    /// 5,000 random 16-d vectors: recall@10 at ef 64 against brute force, before and after
    /// removing half of them, with a healthy graph each time; the repair keeps the mean layer-0
    /// out-degree (re-running only the heuristic on each repaired list lost about a quarter).
    #[test]
    fn recall_on_random_vectors_before_and_after_removing_half() {
        let seed = test_seed(20_240_601);
        let mut rng = Rng(seed);
        let (n, dim) = (5_000, 16);
        let mut model = Model::new(Metric::L2, 16, 100, seed);
        let data: Vec<Vec<f32>> = (0..n).map(|_| rng.vector(dim)).collect();
        let start = std::time::Instant::now();
        for v in &data {
            model.insert(v, 0);
        }
        eprintln!("built {n} in {:?}", start.elapsed());
        assert_eq!(model.problems(), Vec::<String>::new());
        let queries: Vec<Vec<f32>> = (0..200).map(|_| rng.vector(dim)).collect();
        let before = recall(&mut model, &queries, 10, 64);
        let degree = mean_degree(&model.graph, 0);
        eprintln!("recall@10 at ef 64: {before:.4}; mean layer-0 out-degree {degree:.2}");
        assert!(before >= 0.95, "recall {before}");

        let start = std::time::Instant::now();
        let mut live = model.graph.live();
        for i in (1..live.len()).rev() {
            live.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        for &id in &live[..n / 2] {
            model.remove(id);
        }
        eprintln!("removed {} in {:?}", n / 2, start.elapsed());
        assert_eq!(model.problems(), Vec::<String>::new());
        let after = recall(&mut model, &queries, 10, 64);
        let degree_after = mean_degree(&model.graph, 0);
        eprintln!(
            "recall@10 at ef 64 after removing half: {after:.4}; mean layer-0 out-degree \
             {degree_after:.2}"
        );
        assert!(after >= 0.95, "recall {after}");
        assert!(
            degree_after >= 0.95 * degree,
            "mean layer-0 out-degree fell from {degree:.2} to {degree_after:.2}"
        );

        // Refill the freed ids: recycled ids rank anywhere under the parent rule.
        for _ in 0..n / 2 {
            let v = rng.vector(dim);
            model.insert(&v, rng.next_u64() as usize);
        }
        assert_eq!(model.problems(), Vec::<String>::new());
        let refilled = recall(&mut model, &queries, 10, 64);
        eprintln!("recall@10 at ef 64 after refilling: {refilled:.4}");
        assert!(refilled >= 0.95, "recall {refilled}");
    }

    /// `.fvecs` rows: a little-endian `u32` dimension, then that many `f32`s.
    fn read_fvecs(path: &std::path::Path) -> Vec<Vec<f32>> {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut out = Vec::new();
        let mut at = 0;
        while at + 4 <= bytes.len() {
            let dim = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            at += 4;
            let row = bytes[at..at + 4 * dim]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            at += 4 * dim;
            out.push(row);
        }
        out
    }

    /// Mean out-degree on `layer` over the live nodes that have it.
    fn mean_degree(graph: &MemoryGraph, layer: u8) -> f64 {
        let (mut links, mut nodes) = (0, 0);
        let mut list = Vec::new();
        for id in graph.live() {
            if graph.level(id).unwrap() >= layer {
                graph.neighbours(id, layer, &mut list).unwrap();
                links += list.len();
                nodes += 1;
            }
        }
        links as f64 / nodes.max(1) as f64
    }

    /// How many live nodes have fewer than 1, 3, 5 in-links on layer 0; and how many a search for
    /// their own vector at `ef` does not return first.
    fn weak_nodes(model: &mut Model, ef: usize) -> ([usize; 3], usize) {
        let mut low = [0; 3];
        let mut from = Vec::new();
        let mut lost = 0;
        for id in model.graph.live() {
            model.graph.linked_from(id, 0, &mut from).unwrap();
            for (i, t) in [1, 3, 5].into_iter().enumerate() {
                low[i] += usize::from(from.len() < t);
            }
            let v = model.graph.nodes[id as usize]
                .as_ref()
                .unwrap()
                .vector
                .clone();
            let mut out = Vec::new();
            search(&model.graph, &v, ef, None, &mut model.scratch, &mut out).unwrap();
            lost += usize::from(out.first().is_none_or(|h| h.1 != id && h.0 > 0.0));
        }
        (low, lost)
    }

    /// Delete-repair quality on real data, a measurement rather than a check (run with
    /// `--ignored --nocapture`): build all with m 16, ef_construction 200, remove a random half,
    /// then against a fresh build of the survivors: recall@10 at ef 16, 32, 64 (brute force over
    /// the survivors) with distances computed per query, mean out-degree on layers 0 and 1,
    /// in-degree tails and self-search misses; and the distances computed per removal, a
    /// measure of repair work that does not depend on the machine's load.
    ///
    /// `HNSWDB_DATA`: a directory with `base.fvecs` and `query.fvecs` (default the repository's
    /// `tests/data/bigann10k/heldout`); `HNSWDB_METRIC=cosine` (else L2); `HNSWDB_N`: use only
    /// the first N base vectors; `HNSWDB_SEED`.
    #[test]
    #[ignore]
    fn repair_quality_on_real_data() {
        let seed = test_seed(1);
        let dir = std::env::var("HNSWDB_DATA").map_or_else(
            |_| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/data/bigann10k/heldout")
            },
            std::path::PathBuf::from,
        );
        let metric = match std::env::var("HNSWDB_METRIC").as_deref() {
            Ok("cosine") => Metric::Cosine,
            _ => Metric::L2,
        };
        let mut base = read_fvecs(&dir.join("base.fvecs"));
        if let Some(n) = std::env::var("HNSWDB_N").ok().and_then(|s| s.parse().ok()) {
            base.truncate(n);
        }
        let mut queries = read_fvecs(&dir.join("query.fvecs"));
        queries.truncate(1000);
        let n = base.len();
        let mut model = Model::new(metric, 16, 200, seed);
        for v in &base {
            model.insert(v, 0);
        }
        eprintln!(
            "full build of {n}: mean out-degree layer 0 {:.2}",
            mean_degree(&model.graph, 0)
        );
        let mut rng = Rng(seed);
        let mut live = model.graph.live();
        for i in (1..live.len()).rev() {
            live.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let (gone, kept) = live.split_at(n / 2);
        let start = std::time::Instant::now();
        let before = model.graph.distances();
        for &id in gone {
            model.remove(id);
        }
        let took = start.elapsed();
        let per_removal = (model.graph.distances() - before) as f64 / gone.len() as f64;
        assert_eq!(model.problems(), Vec::<String>::new());
        let mut kept = kept.to_vec();
        kept.sort_unstable();
        let mut fresh = Model::new(metric, 16, 200, seed);
        for &id in &kept {
            fresh.insert(&base[id as usize], 0);
        }
        for ef in [16, 32, 64] {
            let d0 = (model.graph.distances(), fresh.graph.distances());
            let after = recall(&mut model, &queries, 10, ef);
            let new = recall(&mut fresh, &queries, 10, ef);
            // `recall` also runs brute force over the same live set in both graphs.
            let brute = (queries.len() * kept.len()) as u64;
            let per_query =
                |now: u64, then: u64| (now - then - brute) as f64 / queries.len() as f64;
            eprintln!(
                "ef {ef}: recall after removing half {after:.4}, fresh build {new:.4} ({:+.4}); \
                 distances per query {:.0} vs {:.0}",
                after - new,
                per_query(model.graph.distances(), d0.0),
                per_query(fresh.graph.distances(), d0.1),
            );
        }
        eprintln!(
            "in-degree < 1, 3, 5 and self-search misses at ef 16: {:?} vs fresh {:?}",
            weak_nodes(&mut model, 16),
            weak_nodes(&mut fresh, 16)
        );
        eprintln!(
            "removed {} in {took:?} ({:.0}/s, {per_removal:.0} distances each); mean out-degree \
             layer 0: {:.2} vs fresh {:.2}; layer 1: {:.2} vs {:.2}",
            gone.len(),
            gone.len() as f64 / took.as_secs_f64(),
            mean_degree(&model.graph, 0),
            mean_degree(&fresh.graph, 0),
            mean_degree(&model.graph, 1),
            mean_degree(&fresh.graph, 1),
        );
    }

    /// Timing at scale (run with `--ignored --nocapture`): per-insert and per-remove graph work
    /// on 100k random 32-d vectors, m 16, ef_construction 100.
    #[test]
    #[ignore]
    fn timing_100k() {
        let seed = test_seed(7);
        let mut rng = Rng(seed);
        let (n, dim) = (100_000, 32);
        let mut model = Model::new(Metric::L2, 16, 100, seed);
        let start = std::time::Instant::now();
        for i in 0..n {
            let v = rng.vector(dim);
            model.insert(&v, 0);
            if (i + 1) % 20_000 == 0 {
                eprintln!(
                    "{} inserted, {:?} per insert so far",
                    i + 1,
                    start.elapsed() / (i as u32 + 1)
                );
            }
        }
        let start = std::time::Instant::now();
        for _ in 0..1000 {
            let v = rng.vector(dim);
            model.insert(&v, 0);
        }
        eprintln!("insert at 100k: {:?} each", start.elapsed() / 1000);
        let live = model.graph.live();
        let start = std::time::Instant::now();
        for k in 0..1000 {
            model.remove(live[(k * 97) % live.len()]);
        }
        eprintln!("remove at 100k: {:?} each", start.elapsed() / 1000);
        let start = std::time::Instant::now();
        for _ in 0..1000 {
            let v = rng.vector(dim);
            model.insert(&v, rng.next_u64() as usize);
        }
        eprintln!(
            "insert with recycled ids: {:?} each",
            start.elapsed() / 1000
        );
        let queries: Vec<Vec<f32>> = (0..200).map(|_| rng.vector(dim)).collect();
        let start = std::time::Instant::now();
        let r = recall(&mut model, &queries, 10, 64);
        eprintln!(
            "recall@10 at ef 64: {r:.4} ({:?} for 200 queries with brute force)",
            start.elapsed()
        );
        let start = std::time::Instant::now();
        assert_eq!(model.problems(), Vec::<String>::new());
        eprintln!("check: {:?}", start.elapsed());
    }
}
