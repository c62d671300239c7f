//! K-NN search (paper Alg. 5): a narrow beam descends through the upper layers, then
//! `search_layer` (Alg. 2) walks layer 0, filter-aware. Structured as hnswlib's `searchKnn` /
//! `searchBaseLayerST`.

use std::cmp::Reverse;
use std::mem;
use std::ops::RangeInclusive;

use super::scratch::{Near, Visited};
use super::{Distances, Exact, GraphRead, NodeId, Scratch, MAX_LEVEL};
use crate::error::{Error, Result};

/// With a filter, `search_layer` expands at most this many times `ef` candidates. Unfiltered,
/// a search expands about `ef` to `3·ef`; a filter passing a fraction `p` of the nodes needs
/// about `1/p` times that, so this keeps filters down to a few percent on the graph and stops a
/// filter that matches almost nothing from walking the whole graph. The caller falls back to an
/// exact scan when fewer than `k` come back. When `ef ≥ n` the bound is never reached.
const FILTER_EXPANSIONS: usize = 32;

/// Width of the descent's beam while inserting (see [`descend`]). Beside `ef_construction`
/// candidates per layer of the node's own, four on each layer above cost nothing measurable, and
/// they choose the region a new node links into far better on well-separated clusters
/// (BENCHMARKS.md, "Descending with a beam").
pub(super) const INSERT_BEAM: usize = 4;

/// Width of a search's descent beam for a given `ef`: `ef / 16`, from 2 to 4. A beam of 4 walks
/// clustered data far more reliably than greedy descent, but on a small set in the CPU cache at
/// `ef` 10 it cost a tenth of the queries/s; a beam of 2 cost nothing measurable there.
///
/// On exact distances the beam stops at layer 2, and layer 1 is walked greedily: the beam
/// chooses the region on the sparse layers, and layer 1 only closes in on it. On gen1536,
/// recall moved by at most 0.0022 at `ef` 16 to 256 (ten clusters; greedy all the way lost up
/// to 0.034), and bigann10k gained 1.8% and 3.9% queries/s at `ef` 16 and 64, nothing
/// measurable at 10 (BENCHMARKS.md, "Where a query's time goes"). On codes, layer 1's second
/// candidate covers the estimates' error: greedy there lost up to 0.004 with `Binary`.
fn search_beam(ef: usize) -> usize {
    (ef / 16).clamp(2, 4)
}

/// A quantized search descends on exact distances through the layers from this one up (their
/// nodes keep their `f32` vectors in memory: one in `m²` of the vectors, 1.1 MiB of 1,536-d
/// ones on gen1536), and on the codes below. With `Binary`, a descent on the codes all the way
/// settled in the wrong one of ten far-apart clusters for 5 of 1,000 queries on gen1536
/// (recall@10 0.9947 at `ef` 256 and 0.9949 at `ef` 1,000, where `None` reaches 0.9998);
/// exact on these layers, 0.9997 at `ef` 256 (BENCHMARKS.md, "Exact top layers").
pub(crate) const EXACT_DESCENT_LEVEL: u8 = 2;

/// Fills `out` with up to `ef` nodes nearest to `query` (search form) that pass `filter`,
/// ascending by distance, ties by id. An empty graph or `ef == 0` gives an empty `out`.
///
/// Layer 0 is seeded with the nearest node the descent reached and with the entry point, so
/// that when every node is reachable from the entry point on layer 0 and `ef ≥ n`, the search is
/// exact.
pub(crate) fn search<G: GraphRead>(
    graph: &G,
    query: &[f32],
    ef: usize,
    filter: Option<&dyn Fn(NodeId) -> bool>,
    scratch: &mut Scratch,
    out: &mut Vec<(f32, NodeId)>,
) -> Result<()> {
    let exact = Exact { graph, query };
    let no_top: Option<&Exact<'_, G>> = None;
    search_with(graph, no_top, &exact, ef, filter, scratch, out)
}

/// [`search`] on `codes`' distances (estimates on compact codes), except on the layers from
/// [`EXACT_DESCENT_LEVEL`] up, which the descent walks on exact distances to `query` (search
/// form). The distances in `out` are `codes`'.
pub(crate) fn search_on<G: GraphRead, D: Distances>(
    graph: &G,
    query: &[f32],
    codes: &D,
    ef: usize,
    filter: Option<&dyn Fn(NodeId) -> bool>,
    scratch: &mut Scratch,
    out: &mut Vec<(f32, NodeId)>,
) -> Result<()> {
    let exact = Exact { graph, query };
    search_with(graph, Some(&exact), codes, ef, filter, scratch, out)
}

/// The search proper: the descent compares `top`'s distances (when given) on the layers from
/// [`EXACT_DESCENT_LEVEL`] up and `dist`'s below, and layer 0 is walked on `dist`'s.
fn search_with<G: GraphRead, T: Distances, D: Distances>(
    graph: &G,
    top: Option<&T>,
    dist: &D,
    ef: usize,
    filter: Option<&dyn Fn(NodeId) -> bool>,
    scratch: &mut Scratch,
    out: &mut Vec<(f32, NodeId)>,
) -> Result<()> {
    out.clear();
    let Some(ep) = graph.entry_point() else {
        return Ok(());
    };
    if ef == 0 {
        return Ok(());
    }
    if ep.level > MAX_LEVEL {
        return Err(level_out_of_range(ep.id, ep.level));
    }
    let start = Near::new(dist.distance(ep.id)?, ep.id);
    let beam = search_beam(ef);
    let mut upper = mem::take(&mut scratch.seeds);
    upper.clear();
    let descended = (|| match top {
        None => {
            // Exact all the way: the beam down to layer 2, then greedy (see `search_beam`).
            upper.push(start);
            descend(graph, dist, 2..=ep.level, beam, scratch, &mut upper)?;
            descend(graph, dist, 1..=ep.level.min(1), 1, scratch, &mut upper)
        }
        Some(top) if ep.level >= EXACT_DESCENT_LEVEL => {
            upper.push(Near::new(top.distance(ep.id)?, ep.id));
            descend(
                graph,
                top,
                EXACT_DESCENT_LEVEL..=ep.level,
                beam,
                scratch,
                &mut upper,
            )?;
            // The beam goes on below on `dist`'s distances, its order theirs.
            for near in upper.iter_mut() {
                near.dist = dist.distance(near.id)?;
            }
            upper.sort_unstable();
            descend(
                graph,
                dist,
                1..=EXACT_DESCENT_LEVEL - 1,
                beam,
                scratch,
                &mut upper,
            )
        }
        Some(_) => {
            upper.push(start);
            descend(graph, dist, 1..=ep.level, beam, scratch, &mut upper)
        }
    })();
    let nearest = upper.first().copied().unwrap_or(start);
    scratch.seeds = upper;
    descended?;
    scratch.begin();
    seed(graph, scratch, nearest, filter)?;
    if nearest.id != start.id {
        seed(graph, scratch, start, filter)?;
    }
    search_layer(graph, dist, 0, ef, filter, scratch)?;
    out.extend(scratch.results.drain().map(|p| {
        let n = p.near();
        (n.dist, n.id)
    }));
    out.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    Ok(())
}

/// The descent through `layers` (from the top one down) from the nodes in `beam_nodes`: on each
/// layer, SEARCH-LAYER with `ef = beam`, seeded with W of the layer above; `beam_nodes` receives W
/// of the lowest layer, nearest first (it is left as it is when `layers` is empty).
///
/// The paper and hnswlib descend greedily (`beam` 1); a wider beam is FAISS's `upper_beam`.
/// On well-separated clusters a greedy step can settle in the wrong cluster, and layer 0 has few
/// links out of it: on a generated 1,536-d set of ten clusters one build's recall at `ef` 256
/// went from 0.964 to 0.9998 (BENCHMARKS.md, "Descending with a beam").
///
/// With so small an `ef`, W itself serves as C: W is kept as a sorted array, each node marked
/// once expanded, and the nearest unexpanded one is expanded next, until none is left. That
/// expands what [`search_layer`] would (a candidate it would pop after leaving W is farther than
/// all of W, which ends its loop), without its two heaps: 6.5%, 2.5% and 0.9% more queries/s
/// at `ef` 10, 16 and 64 on bigann10k.
pub(super) fn descend<G: GraphRead, D: Distances>(
    graph: &G,
    dist: &D,
    layers: RangeInclusive<u8>,
    beam: usize,
    scratch: &mut Scratch,
    beam_nodes: &mut Vec<Near>,
) -> Result<()> {
    let Scratch {
        visited,
        links,
        fresh,
        beam: w,
        ..
    } = scratch;
    for layer in layers.rev() {
        visited.clear();
        w.clear();
        for &s in beam_nodes.iter() {
            if !visited.fits(s.id) {
                graph.level(s.id)?;
                visited.grow(s.id);
            }
            if visited.insert(s.id) {
                w.push((s, false));
            }
        }
        w.sort_unstable_by_key(|&(near, _)| near);
        w.truncate(beam);
        while let Some(next) = w.iter().position(|&(_, expanded)| !expanded) {
            w[next].1 = true;
            let list = graph.neighbours_ref(w[next].0.id, layer, links)?;
            take_unvisited(graph, dist, list, visited, fresh)?;
            for &n in fresh.iter() {
                let near = Near::new(dist.distance(n)?, n);
                if w.len() == beam {
                    match w.last() {
                        Some(&(worst, _)) if near < worst => w.pop(),
                        _ => continue,
                    };
                }
                let at = w.partition_point(|&(other, _)| other < near);
                w.insert(at, (near, false));
            }
        }
        beam_nodes.clear();
        beam_nodes.extend(w.iter().map(|&(near, _)| near));
    }
    Ok(())
}

/// Fills `fresh` with the nodes of `list` not visited yet, in list order, marking them visited
/// and starting to load what `dist` will read of them: the loads overlap, then the caller
/// compares them. An id beyond the visited set's slots is checked to be a real node before the
/// set grows to it. Inlined by force: left to the compiler, it stayed a call in both loops and
/// searches ran 2–4% slower (bigann10k, ef 10 to 64, alternating binaries).
#[inline(always)]
fn take_unvisited<G: GraphRead, D: Distances>(
    graph: &G,
    dist: &D,
    list: &[NodeId],
    visited: &mut Visited,
    fresh: &mut Vec<NodeId>,
) -> Result<()> {
    fresh.clear();
    for &n in list {
        if !visited.fits(n) {
            graph.level(n)?;
            visited.grow(n);
        }
        if visited.insert(n) {
            dist.prefetch(n);
            fresh.push(n);
        }
    }
    Ok(())
}

/// Puts an entry point of `search_layer` into the visited set, C, and W (if it passes).
/// Invariant: [`Scratch::begin`] was called for this search.
pub(super) fn seed<G: GraphRead>(
    graph: &G,
    scratch: &mut Scratch,
    node: Near,
    filter: Option<&dyn Fn(NodeId) -> bool>,
) -> Result<()> {
    if !scratch.visited.fits(node.id) {
        graph.level(node.id)?;
        scratch.visited.grow(node.id);
    }
    if scratch.visited.insert(node.id) {
        scratch.candidates.push(Reverse(node.packed()));
        if filter.is_none_or(|f| f(node.id)) {
            scratch.results.push(node.packed());
        }
    }
    Ok(())
}

/// Paper Alg. 2, SEARCH-LAYER(q, ep, ef, lc): from the seeds already in `scratch` (see
/// [`seed`]), leaves in W (`scratch.results`) the `ef` nearest nodes of `layer` found.
///
/// C (`scratch.candidates`) holds the nodes to expand, nearest first; W the best `ef` nodes that
/// pass `filter`, farthest on top. Nodes failing the filter are still expanded (they carry the
/// graph) but never enter W. The loop stops, as in the paper, when the nearest unexpanded
/// candidate is farther than the farthest of `ef` results; with a filter also after
/// [`FILTER_EXPANSIONS`]` · ef` expansions.
pub(super) fn search_layer<G: GraphRead, D: Distances>(
    graph: &G,
    distances: &D,
    layer: u8,
    ef: usize,
    filter: Option<&dyn Fn(NodeId) -> bool>,
    scratch: &mut Scratch,
) -> Result<()> {
    let Scratch {
        visited,
        candidates,
        results,
        links,
        fresh,
        ..
    } = scratch;
    let budget = match filter {
        Some(_) => ef.saturating_mul(FILTER_EXPANSIONS),
        None => usize::MAX,
    };
    let mut expanded = 0;
    while let Some(Reverse(c)) = candidates.pop() {
        let c = c.near();
        let worst = results.peek().map_or(f32::INFINITY, |w| w.dist());
        if c.dist > worst && results.len() >= ef {
            break;
        }
        if expanded == budget {
            break;
        }
        expanded += 1;
        let links = graph.neighbours_ref(c.id, layer, links)?;
        take_unvisited(graph, distances, links, visited, fresh)?;
        for &n in fresh.iter() {
            let dist = distances.distance(n)?;
            let worst = results.peek().map_or(f32::INFINITY, |w| w.dist());
            if results.len() < ef || dist < worst {
                if layer == 0 {
                    graph.prefetch_list(n);
                }
                let near = Near::new(dist, n).packed();
                candidates.push(Reverse(near));
                if filter.is_none_or(|f| f(n)) {
                    if results.len() < ef {
                        results.push(near);
                    } else if let Some(mut farthest) = results.peek_mut() {
                        // Full, so `dist < worst`: replace the farthest, in one sift.
                        *farthest = near;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Error for a level that no node may have.
pub(super) fn level_out_of_range(id: NodeId, level: u8) -> Error {
    Error::corrupt(
        format!("node {id} has level {level}, above the maximum {MAX_LEVEL}"),
        "graph",
    )
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::graph::memory::random_graph;
    use crate::graph::{EntryPoint, MemoryGraph};

    /// A graph that counts distance computations and can append a damaged id to every list.
    struct Wrapped<'a> {
        graph: &'a MemoryGraph,
        distances: Cell<usize>,
        bogus: Option<NodeId>,
    }

    impl GraphRead for Wrapped<'_> {
        fn entry_point(&self) -> Option<EntryPoint> {
            self.graph.entry_point()
        }
        fn level(&self, id: NodeId) -> Result<u8> {
            self.graph.level(id)
        }
        fn neighbours(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()> {
            self.graph.neighbours(id, layer, out)?;
            out.extend(self.bogus);
            Ok(())
        }
        fn distance_to(&self, query: &[f32], id: NodeId) -> Result<f32> {
            self.distances.set(self.distances.get() + 1);
            self.graph.distance_to(query, id)
        }
        fn distance_between(&self, a: NodeId, b: NodeId) -> Result<f32> {
            self.graph.distance_between(a, b)
        }
    }

    #[test]
    fn a_descent_ends_on_its_lowest_layer_with_at_most_beam_nodes_nearest_first() {
        let n = 2000;
        let (graph, _) = random_graph(n, 4, 8, 5);
        let ep = graph.entry_point().unwrap();
        assert!(ep.level >= 2, "the test wants two upper layers");
        let layer1: Vec<NodeId> = (0..n as NodeId)
            .filter(|&id| graph.level(id).unwrap() >= 1)
            .collect();
        let mut scratch = Scratch::new();
        let mut out = Vec::new();
        for q in 0..20 {
            let query = [q as f32 / 10.0 - 1.0, 0.3, -0.2, 0.5 - q as f32 / 20.0];
            let exact = Exact {
                graph: &graph,
                query: &query,
            };
            let from = Near::new(exact.distance(ep.id).unwrap(), ep.id);
            out.clear();
            out.push(from);
            #[allow(clippy::reversed_empty_ranges)] // a graph whose entry point is on layer 0
            descend(&graph, &exact, 1..=0, 4, &mut scratch, &mut out).unwrap();
            assert_eq!(out.iter().map(|n| n.id).collect::<Vec<_>>(), [ep.id]);

            out.clear();
            out.push(from);
            descend(&graph, &exact, 1..=ep.level, 2, &mut scratch, &mut out).unwrap();
            assert!(!out.is_empty() && out.len() <= 2);
            assert!(out.iter().all(|n| graph.level(n.id).unwrap() >= 1));
            assert!(out.windows(2).all(|w| w[0] < w[1]));
            assert!(out[0].dist <= from.dist);

            // A beam as wide as layer 1 sees all of it (this graph's layer 1 is connected).
            let wide = layer1.len();
            out.clear();
            out.push(from);
            descend(&graph, &exact, 1..=ep.level, wide, &mut scratch, &mut out).unwrap();
            let nearest = layer1
                .iter()
                .map(|&id| Near::new(exact.distance(id).unwrap(), id))
                .min()
                .unwrap();
            assert_eq!(out[0].id, nearest.id);
            assert_eq!(out.len(), wide);
        }
    }

    /// The descent as the paper writes it: SEARCH-LAYER with `ef = beam` on each layer.
    fn descend_by_search_layer<G: GraphRead>(
        graph: &G,
        dist: &Exact<'_, G>,
        layers: RangeInclusive<u8>,
        beam: usize,
        scratch: &mut Scratch,
        beam_nodes: &mut Vec<Near>,
    ) {
        for layer in layers.rev() {
            scratch.begin();
            for &s in beam_nodes.iter() {
                seed(graph, scratch, s, None).unwrap();
            }
            search_layer(graph, dist, layer, beam, None, scratch).unwrap();
            scratch.drain_results(beam_nodes);
        }
    }

    #[test]
    fn a_descent_ends_where_search_layer_with_ef_beam_ends() {
        for graph_seed in 0..4 {
            let (graph, _) = random_graph(1500, 3, 4, graph_seed);
            let ep = graph.entry_point().unwrap();
            let mut rng = crate::graph::Rng(graph_seed + 100);
            let mut scratch = Scratch::new();
            for _ in 0..50 {
                let query = rng.vector(3);
                let exact = Exact {
                    graph: &graph,
                    query: &query,
                };
                let from = Near::new(exact.distance(ep.id).unwrap(), ep.id);
                for beam in 1..=6 {
                    let (mut fast, mut paper) = (vec![from], vec![from]);
                    descend(&graph, &exact, 1..=ep.level, beam, &mut scratch, &mut fast).unwrap();
                    descend_by_search_layer(
                        &graph,
                        &exact,
                        1..=ep.level,
                        beam,
                        &mut scratch,
                        &mut paper,
                    );
                    let ids = |nodes: &[Near]| nodes.iter().map(|n| n.id).collect::<Vec<_>>();
                    assert_eq!(ids(&fast), ids(&paper), "beam {beam}, query {query:?}");
                }
            }
        }
    }

    #[test]
    fn empty_graph_and_zero_ef_give_nothing() {
        let graph = MemoryGraph::new(crate::options::Metric::L2);
        let mut out = vec![(0.0, 1)];
        search(&graph, &[0.0; 2], 10, None, &mut Scratch::new(), &mut out).unwrap();
        assert!(out.is_empty());
        let (graph, _) = random_graph(10, 2, 4, 1);
        search(&graph, &[0.0; 2], 0, None, &mut Scratch::new(), &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn results_are_sorted_and_filtered() {
        let (graph, _) = random_graph(500, 4, 8, 2);
        let mut out = Vec::new();
        let mut scratch = Scratch::new();
        let odd = |id: NodeId| id % 2 == 1;
        search(&graph, &[0.1; 4], 20, Some(&odd), &mut scratch, &mut out).unwrap();
        assert_eq!(out.len(), 20);
        assert!(out.iter().all(|&(_, id)| odd(id)));
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn a_filter_matching_nothing_stops_within_its_budget() {
        let (graph, _) = random_graph(3000, 4, 8, 3);
        let wrapped = Wrapped {
            graph: &graph,
            distances: Cell::new(0),
            bogus: None,
        };
        let mut out = Vec::new();
        let none = |_: NodeId| false;
        let ef = 10;
        search(
            &wrapped,
            &[0.0; 4],
            ef,
            Some(&none),
            &mut Scratch::new(),
            &mut out,
        )
        .unwrap();
        assert!(out.is_empty());
        // Each expansion computes at most m0 = 16 distances; the descent a few more.
        let most = FILTER_EXPANSIONS * ef * 16 + 200;
        assert!(
            wrapped.distances.get() <= most,
            "{} distances",
            wrapped.distances.get()
        );
        assert!(wrapped.distances.get() < 3000, "walked the whole graph");
    }

    #[test]
    fn a_damaged_neighbour_id_is_an_error_not_a_panic() {
        let (graph, _) = random_graph(50, 2, 4, 4);
        for bogus in [50, 1 << 20, NodeId::MAX] {
            let wrapped = Wrapped {
                graph: &graph,
                distances: Cell::new(0),
                bogus: Some(bogus),
            };
            let mut out = Vec::new();
            let result = search(&wrapped, &[0.0; 2], 10, None, &mut Scratch::new(), &mut out);
            assert!(matches!(result, Err(Error::Corrupt { .. })), "{result:?}");
        }
    }
}
