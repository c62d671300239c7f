//! The graph's invariants and reachability, checked in full; a report for `Index::verify`.
//!
//! [`check_each`] reports every problem, each as what is wrong and where; [`check`] (for
//! tests) collects them into a short list of messages.

use super::{GraphReverse, NodeId, Params, MAX_LEVEL};
use crate::error::Result;

/// At most this many messages come back; the last says how many more were found.
#[cfg(test)]
const MAX_MESSAGES: usize = 20;

/// Checks the graph over `live` (every live node id, ascending) and returns the problems found,
/// in words (at most [`MAX_MESSAGES`]); an empty list means healthy. See [`check_each`].
#[cfg(test)]
pub(crate) fn check<G: GraphReverse>(
    graph: &G,
    live: &[NodeId],
    params: &Params,
) -> Result<Vec<String>> {
    let mut report = Report::default();
    check_each(graph, live, params, &mut |what, _| report.push(what))?;
    Ok(report.finish())
}

/// Checks the graph over `live` (every live node id, ascending), calling `found(what, location)`
/// for every problem; no call means healthy. An `Err` is a list that could not be read.
///
/// Checked: every listed id is live, no list holds its owner or a duplicate; list sizes are
/// within `max_neighbours(layer)`; every level is at most [`MAX_LEVEL`] and a neighbour on layer
/// `l` has a level ≥ `l`; reverse links (`linked_from`) match forward links exactly; the entry
/// point is present iff some node is, is live, and has the highest level; every live node is
/// reachable from the entry point on layer 0.
///
/// Lists are read on layers `0..=level` only: lists on layers above a node's level are not
/// visible through the traits, so storage checks its rows itself.
///
/// Reverse links are compared per node and layer by count and by a sum of 64-bit hashes of the
/// linking ids, so the check needs no memory per link; a mismatch escapes it with probability
/// about 2⁻⁶⁴.
pub(crate) fn check_each<G: GraphReverse>(
    graph: &G,
    live: &[NodeId],
    params: &Params,
    found: &mut dyn FnMut(String, String),
) -> Result<()> {
    let links_of = |id: NodeId, layer: u8| format!("links of node {id} on layer {layer}");
    let reverse_of = |id: NodeId, layer: u8| format!("reverse links of node {id} on layer {layer}");
    if live.windows(2).any(|w| w[0] >= w[1]) {
        found(
            "the live ids are not strictly ascending".to_string(),
            "live nodes".to_string(),
        );
    }
    let slots = live.iter().max().map_or(0, |&id| id as usize + 1);
    // `levels[id]` is `None` for ids that are not live.
    let mut levels: Vec<Option<u8>> = vec![None; slots];
    let mut top = 0;
    for &id in live {
        let level = graph.level(id)?;
        if level > MAX_LEVEL {
            found(
                format!("node {id} has level {level}, above {MAX_LEVEL}"),
                format!("node {id}"),
            );
            continue;
        }
        levels[id as usize] = Some(level);
        top = top.max(level);
    }
    let level_of = |id: NodeId| levels.get(id as usize).copied().flatten();
    let on_layer = |layer: u8| {
        live.iter()
            .copied()
            .filter(move |&id| level_of(id).is_some_and(|l| l >= layer))
    };

    let mut list = Vec::new();
    let mut in_count = vec![0u32; slots];
    let mut in_hash = vec![0u64; slots];
    for layer in 0..=top {
        in_count.fill(0);
        in_hash.fill(0);
        let bound = params.max_neighbours(layer);
        for id in on_layer(layer) {
            graph.neighbours(id, layer, &mut list)?;
            if list.len() > bound {
                found(
                    format!(
                        "node {id} has {} links on layer {layer}, above the bound {bound}",
                        list.len()
                    ),
                    links_of(id, layer),
                );
            }
            for (i, &n) in list.iter().enumerate() {
                if n == id {
                    found(
                        format!("node {id} links to itself on layer {layer}"),
                        links_of(id, layer),
                    );
                } else if list[..i].contains(&n) {
                    found(
                        format!("node {id} links to {n} twice on layer {layer}"),
                        links_of(id, layer),
                    );
                } else {
                    match level_of(n) {
                        None => found(
                            format!(
                                "node {id} links to {n} on layer {layer}, which is not a live \
                                 node"
                            ),
                            links_of(id, layer),
                        ),
                        Some(l) if l < layer => found(
                            format!("node {id} links to {n} on layer {layer}, above its level {l}"),
                            links_of(id, layer),
                        ),
                        Some(_) => {
                            in_count[n as usize] += 1;
                            in_hash[n as usize] = in_hash[n as usize].wrapping_add(mix(id));
                        }
                    }
                }
            }
        }
        for id in on_layer(layer) {
            graph.linked_from(id, layer, &mut list)?;
            let mut hash = 0u64;
            let mut count = 0u32;
            for (i, &u) in list.iter().enumerate() {
                if level_of(u).is_none_or(|l| l < layer) || u == id || list[..i].contains(&u) {
                    found(
                        format!(
                            "reverse links of node {id} on layer {layer} hold {u}, which does \
                             not link to it"
                        ),
                        reverse_of(id, layer),
                    );
                } else {
                    count += 1;
                    hash = hash.wrapping_add(mix(u));
                }
            }
            if count != in_count[id as usize] || hash != in_hash[id as usize] {
                found(
                    format!(
                        "reverse links of node {id} on layer {layer} ({} nodes) differ from the \
                         {} lists that hold it",
                        list.len(),
                        in_count[id as usize]
                    ),
                    reverse_of(id, layer),
                );
            }
        }
    }

    let Some(ep) = graph.entry_point() else {
        if !live.is_empty() {
            found(
                format!("no entry point, but {} live nodes", live.len()),
                "entry point".to_string(),
            );
        }
        return Ok(());
    };
    match level_of(ep.id) {
        None => {
            found(
                format!("the entry point {} is not a live node", ep.id),
                "entry point".to_string(),
            );
            return Ok(());
        }
        Some(level) if level != ep.level => found(
            format!(
                "the entry point {} is recorded at level {}, but the node has level {level}",
                ep.id, ep.level
            ),
            "entry point".to_string(),
        ),
        Some(level) if level != top => found(
            format!(
                "the entry point {} has level {level}, below the highest level {top}",
                ep.id
            ),
            "entry point".to_string(),
        ),
        Some(_) => {}
    }

    // Breadth-first over layer 0 from the entry point.
    let mut seen = vec![false; slots];
    seen[ep.id as usize] = true;
    let mut queue = vec![ep.id];
    let mut next = 0;
    while let Some(&id) = queue.get(next) {
        next += 1;
        graph.neighbours(id, 0, &mut list)?;
        for &n in &list {
            if level_of(n).is_some() && !seen[n as usize] {
                seen[n as usize] = true;
                queue.push(n);
            }
        }
    }
    if queue.len() < live.len() {
        let lost: Vec<NodeId> = live
            .iter()
            .copied()
            .filter(|&id| !seen[id as usize])
            .collect();
        let shown: Vec<String> = lost.iter().take(10).map(|id| id.to_string()).collect();
        found(
            format!(
                "{} live nodes are unreachable from the entry point on layer 0: {}{}",
                lost.len(),
                shown.join(", "),
                if lost.len() > 10 { ", …" } else { "" }
            ),
            "layer 0, from the entry point".to_string(),
        );
    }
    Ok(())
}

/// Problems found so far, kept up to [`MAX_MESSAGES`].
#[cfg(test)]
#[derive(Default)]
struct Report {
    messages: Vec<String>,
    count: usize,
}

#[cfg(test)]
impl Report {
    fn push(&mut self, message: String) {
        self.count += 1;
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(message);
        }
    }

    /// The messages; past the cap the last one counts the rest, so at most [`MAX_MESSAGES`].
    fn finish(mut self) -> Vec<String> {
        if self.count > MAX_MESSAGES {
            self.messages.truncate(MAX_MESSAGES - 1);
            let more = self.count - self.messages.len();
            self.messages.push(format!("and {more} more problems"));
        }
        self.messages
    }
}

/// A 64-bit mix of an id, so sums of different id sets rarely collide.
fn mix(id: NodeId) -> u64 {
    super::level::splitmix64(u64::from(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::memory::random_graph;
    use crate::graph::{EntryPoint, GraphRead, GraphWrite, MemoryGraph};
    use crate::options::Metric;

    /// A view of a graph with one reverse entry hidden and the entry point replaced.
    struct Tampered<'a> {
        graph: &'a MemoryGraph,
        hide_reverse_of: Option<NodeId>,
        entry: Option<Option<EntryPoint>>,
    }

    impl GraphRead for Tampered<'_> {
        fn entry_point(&self) -> Option<EntryPoint> {
            self.entry.unwrap_or(self.graph.entry_point())
        }
        fn level(&self, id: NodeId) -> Result<u8> {
            self.graph.level(id)
        }
        fn neighbours(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()> {
            self.graph.neighbours(id, layer, out)
        }
        fn distance_to(&self, query: &[f32], id: NodeId) -> Result<f32> {
            self.graph.distance_to(query, id)
        }
        fn distance_between(&self, a: NodeId, b: NodeId) -> Result<f32> {
            self.graph.distance_between(a, b)
        }
    }

    impl GraphReverse for Tampered<'_> {
        fn linked_from(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()> {
            self.graph.linked_from(id, layer, out)?;
            if self.hide_reverse_of == Some(id) && layer == 0 {
                out.pop();
            }
            Ok(())
        }
    }

    fn tampered(graph: &MemoryGraph) -> Tampered<'_> {
        Tampered {
            graph,
            hide_reverse_of: None,
            entry: None,
        }
    }

    #[test]
    fn a_built_graph_is_healthy() {
        let (graph, params) = random_graph(2000, 8, 6, 11);
        assert_eq!(
            check(&graph, &graph.live(), &params).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn finds_a_missing_reverse_link_and_a_bad_entry_point() {
        let (graph, params) = random_graph(300, 4, 4, 12);
        let live = graph.live();
        let mut view = tampered(&graph);
        view.hide_reverse_of = Some(7);
        let problems = check(&view, &live, &params).unwrap();
        assert!(
            problems.len() == 1 && problems[0].contains("reverse links of node 7"),
            "{problems:?}"
        );

        let ep = graph.entry_point().unwrap();
        let low = *live
            .iter()
            .find(|&&id| graph.level(id).unwrap() < ep.level)
            .unwrap();
        let mut view = tampered(&graph);
        view.entry = Some(Some(EntryPoint { id: low, level: 0 }));
        let problems = check(&view, &live, &params).unwrap();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("below the highest level")),
            "{problems:?}"
        );
        view.entry = Some(None);
        let problems = check(&view, &live, &params).unwrap();
        assert!(problems[0].contains("no entry point"), "{problems:?}");
        view.entry = Some(Some(EntryPoint {
            id: 999,
            level: ep.level,
        }));
        let problems = check(&view, &live, &params).unwrap();
        assert!(problems[0].contains("not a live node"), "{problems:?}");
    }

    #[test]
    fn finds_an_island_and_an_overfull_list() {
        let mut graph = MemoryGraph::new(Metric::L2);
        for id in 0..5 {
            graph.add_node(id, 0, vec![id as f32, 0.0]).unwrap();
        }
        graph.set_entry_point(Some(EntryPoint { id: 0, level: 0 }));
        graph.set_neighbours(0, 0, &[1]).unwrap();
        graph.set_neighbours(1, 0, &[0]).unwrap();
        // 2 ↔ 3 link each other, and 4 is linked from 3 only: an island.
        graph.set_neighbours(2, 0, &[3]).unwrap();
        graph.set_neighbours(3, 0, &[2, 4]).unwrap();
        let params = Params {
            m: 1,
            m0: 1,
            ef_construction: 1,
        };
        let problems = check(&graph, &graph.live(), &params).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("node 3 has 2 links on layer 0, above the bound 1"));
        assert!(
            problems[1].starts_with("3 live nodes are unreachable"),
            "{problems:?}"
        );
        assert!(problems[1].ends_with(": 2, 3, 4"), "{problems:?}");
    }

    #[test]
    fn caps_the_report() {
        let (graph, mut params) = random_graph(300, 4, 4, 13);
        params.m0 = 1;
        params.m = 0;
        let problems = check(&graph, &graph.live(), &params).unwrap();
        assert_eq!(problems.len(), MAX_MESSAGES);
        assert!(
            problems[MAX_MESSAGES - 1].starts_with("and "),
            "{problems:?}"
        );
    }

    #[test]
    fn check_each_reports_every_problem_with_its_place() {
        let (graph, mut params) = random_graph(300, 4, 4, 13);
        params.m0 = 1;
        params.m = 0;
        let mut all = Vec::new();
        check_each(&graph, &graph.live(), &params, &mut |what, location| {
            all.push((what, location))
        })
        .unwrap();
        let capped = check(&graph, &graph.live(), &params).unwrap();
        assert!(all.len() > MAX_MESSAGES, "{}", all.len());
        assert_eq!(
            capped[MAX_MESSAGES - 1],
            format!("and {} more problems", all.len() - 19)
        );
        for (i, (what, location)) in all.iter().enumerate() {
            assert!(what.contains("above the bound"), "{what}");
            let node = what.split(' ').nth(1).unwrap();
            assert!(
                location.starts_with(&format!("links of node {node} on layer ")),
                "{location}"
            );
            if i < MAX_MESSAGES - 1 {
                assert_eq!(&capped[i], what);
            }
        }
    }
}
