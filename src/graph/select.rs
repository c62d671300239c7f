//! Which links a list keeps: the paper's neighbour-selection heuristic (Alg. 4), and the parent
//! rule that keeps every live node reachable from the entry point on layer 0.
//!
//! # The parent rule
//!
//! Rank the live nodes: the entry point first, then the others by id ([`Rank`]). A link `u → v`
//! on layer 0 is a *parent link* of `v` when `u` ranks before `v`.
//!
//! Invariant: on layer 0, every live node except the entry point has a parent link.
//!
//! This makes every node reachable: from any node, step back along a parent link, and again;
//! ranks strictly fall, so the walk ends, and only the entry point has no parent link to step
//! along, so it ends there. Read forwards, that is a path from the entry point. The argument
//! holds for any graph, islands included, and the invariant is local, so it is cheap to keep:
//!
//! - a list may drop a link unless it is its target's *last* parent link ([`shrink`],
//!   `try_link`), which costs one `linked_from` read per dropped link;
//! - adding links never breaks it;
//! - a node left without a parent link gets one from [`adopt`]: a new node that no neighbour kept,
//!   the children of a removed node, and, when the entry point changes, the old entry point and
//!   the nodes it linked to.
//!
//! In a normal graph nearly every node has several parent links, so the rule rarely changes what
//! the heuristic chose.

use std::collections::BTreeSet;

use super::scratch::Near;
use super::{GraphRead, GraphWrite, NodeId};
use crate::error::{Error, Result};

/// Paper Alg. 4, SELECT-NEIGHBORS-HEURISTIC, without `extendCandidates` and
/// `keepPrunedConnections`, as hnswlib's `getNeighborsByHeuristic2`: with fewer than `m`
/// candidates all are kept; otherwise, nearest first, a candidate is kept when it is closer to
/// the base than to every neighbour kept so far, until `m` are kept. Keeping diverse directions
/// rather than the `m` nearest is what lets greedy search leave a cluster.
///
/// `candidates` hold distances to the base (no duplicates, not the base); they are sorted in
/// place. `out` receives the kept ones, nearest first.
pub(super) fn select_neighbours<G: GraphRead>(
    graph: &G,
    candidates: &mut [Near],
    m: usize,
    out: &mut Vec<Near>,
) -> Result<()> {
    candidates.sort_unstable();
    out.clear();
    if candidates.len() < m {
        out.extend_from_slice(candidates);
        return Ok(());
    }
    for &c in candidates.iter() {
        if out.len() >= m {
            break;
        }
        let mut good = true;
        for kept in out.iter() {
            if graph.distance_between(c.id, kept.id)? < c.dist {
                good = false;
                break;
            }
        }
        if good {
            out.push(c);
        }
    }
    Ok(())
}

/// The order of the parent rule: the entry point first, then the other nodes by id.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rank {
    /// The entry point the graph has once the current insert or remove is done.
    pub ep: NodeId,
}

impl Rank {
    /// Whether `a` ranks before `b`.
    pub(super) fn before(self, a: NodeId, b: NodeId) -> bool {
        a != b && (a == self.ep || (b != self.ep && a < b))
    }
}

/// The parent rule during one insert or remove.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rule {
    pub rank: Rank,
    /// The node being removed: its links are about to go, so they do not count.
    pub gone: Option<NodeId>,
}

impl Rule {
    /// Whether `v` is the entry point or has a parent link from a node other than `except`.
    pub(super) fn has_parent<G: GraphWrite>(
        self,
        graph: &G,
        v: NodeId,
        except: Option<NodeId>,
        buf: &mut Vec<NodeId>,
    ) -> Result<bool> {
        if v == self.rank.ep {
            return Ok(true);
        }
        graph.linked_from(v, 0, buf)?;
        Ok(buf
            .iter()
            .any(|&u| Some(u) != except && Some(u) != self.gone && self.rank.before(u, v)))
    }

    /// Whether the layer-0 link `u → v` is `v`'s last parent link (so it must stay).
    pub(super) fn last_parent_link<G: GraphWrite>(
        self,
        graph: &G,
        u: NodeId,
        v: NodeId,
        buf: &mut Vec<NodeId>,
    ) -> Result<bool> {
        Ok(self.rank.before(u, v) && !self.has_parent(graph, v, Some(u), buf)?)
    }
}

/// The new list of `base` on `layer`, chosen from `candidates` (distances to `base`): the
/// heuristic bounded by `bound`, except that on layer 0 each link of `old` (the current list)
/// that is its target's last parent link stays, in place of the farthest chosen link that may go.
///
/// Invariant: `old.len() ≤ bound`, so the links that must stay always fit.
#[allow(clippy::too_many_arguments)]
pub(super) fn shrink<G: GraphWrite>(
    graph: &G,
    base: NodeId,
    layer: u8,
    candidates: &mut [Near],
    bound: usize,
    old: &[NodeId],
    rule: Rule,
    out: &mut Vec<Near>,
    buf: &mut Vec<NodeId>,
) -> Result<()> {
    select_neighbours(graph, candidates, bound, out)?;
    if layer != 0 {
        return Ok(());
    }
    for &c in candidates.iter() {
        if out.iter().any(|k| k.id == c.id)
            || !old.contains(&c.id)
            || !rule.last_parent_link(graph, base, c.id, buf)?
        {
            continue;
        }
        if out.len() >= bound {
            let mut evicted = false;
            for i in (0..out.len()).rev() {
                let k = out[i].id;
                if !(old.contains(&k) && rule.last_parent_link(graph, base, k, buf)?) {
                    out.remove(i);
                    evicted = true;
                    break;
                }
            }
            if !evicted {
                return Err(Error::corrupt(
                    format!("node {base} has more than {bound} links on layer 0"),
                    "graph",
                ));
            }
        }
        out.push(c);
    }
    out.sort_unstable();
    Ok(())
}

/// Gives each node of `orphans` a parent link, restoring the invariant after `rule.gone` (if any)
/// is unlinked. `near`: nodes close to the orphans, tried first.
///
/// For an orphan `w`: the nodes of `near` that rank before `w`, nearest first, each taking `w`
/// unless its list is full of last parent links. Failing that, a walk from the entry point down
/// such full lists (ranks rise at each step, so it ends) to a node `v` that takes `w`, or whose
/// children all rank after `w`: then `v → c` becomes `v → w`, and `w → c` is added, or `c` joins
/// the orphans. Orphans are handled in rank order and only later-ranked ones join, so the loop
/// ends.
pub(super) fn adopt<G: GraphWrite>(
    graph: &mut G,
    rule: Rule,
    orphans: &[NodeId],
    near: &[NodeId],
    bound: usize,
) -> Result<()> {
    let rank = rule.rank;
    // Rank order: the entry point never needs a parent, the rest rank by id.
    let mut queue: BTreeSet<NodeId> = orphans.iter().copied().filter(|&w| w != rank.ep).collect();
    let mut list = Vec::new();
    let mut buf = Vec::new();
    let mut order: Vec<Near> = Vec::new();
    'orphans: while let Some(w) = queue.pop_first() {
        if rule.has_parent(graph, w, None, &mut buf)? {
            continue;
        }
        order.clear();
        for &v in near {
            if rank.before(v, w) && Some(v) != rule.gone && !order.iter().any(|n| n.id == v) {
                order.push(Near::new(graph.distance_between(w, v)?, v));
            }
        }
        order.sort_unstable();
        for v in &order {
            if try_link(graph, rule, v.id, w, bound, &mut list, &mut buf)? {
                continue 'orphans;
            }
        }
        let mut v = rank.ep;
        loop {
            if try_link(graph, rule, v, w, bound, &mut list, &mut buf)? {
                continue 'orphans;
            }
            // Every link of `v` is a last parent link, so each child ranks after `v`.
            graph.neighbours(v, 0, &mut list)?;
            if let Some(&c) = list.iter().find(|&&c| rank.before(c, w)) {
                v = c;
                continue;
            }
            let Some(&c) = list.first() else {
                return Err(Error::corrupt("a layer-0 list bound of 0", "graph"));
            };
            list[0] = w;
            graph.set_neighbours(v, 0, &list)?;
            if !try_link(graph, rule, w, c, bound, &mut list, &mut buf)? {
                queue.insert(c);
            }
            continue 'orphans;
        }
    }
    Ok(())
}

/// Adds the layer-0 link `from → to` unless every slot of a full list holds a last parent link;
/// a full list gives up its farthest link that may go. Returns whether the link is there.
fn try_link<G: GraphWrite>(
    graph: &mut G,
    rule: Rule,
    from: NodeId,
    to: NodeId,
    bound: usize,
    list: &mut Vec<NodeId>,
    buf: &mut Vec<NodeId>,
) -> Result<bool> {
    graph.neighbours(from, 0, list)?;
    if list.contains(&to) {
        return Ok(true);
    }
    if list.len() < bound {
        list.push(to);
        graph.set_neighbours(from, 0, list)?;
        return Ok(true);
    }
    let mut by_distance = Vec::with_capacity(list.len());
    for &q in list.iter() {
        by_distance.push(Near::new(graph.distance_between(from, q)?, q));
    }
    by_distance.sort_unstable();
    for victim in by_distance.iter().rev() {
        if !rule.last_parent_link(graph, from, victim.id, buf)? {
            list.retain(|&q| q != victim.id);
            list.push(to);
            graph.set_neighbours(from, 0, list)?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// The nodes of `live` that break the parent rule on layer 0 (for tests).
#[cfg(test)]
pub(super) fn orphans<G: GraphWrite>(graph: &G, live: &[NodeId]) -> Result<Vec<NodeId>> {
    let Some(ep) = graph.entry_point() else {
        return Ok(live.to_vec());
    };
    let rule = Rule {
        rank: Rank { ep: ep.id },
        gone: None,
    };
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for &v in live {
        if !rule.has_parent(graph, v, None, &mut buf)? {
            out.push(v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::MemoryGraph;
    use crate::options::Metric;

    /// A graph of unlinked 2-d points under L2.
    fn points(xy: &[[f32; 2]]) -> MemoryGraph {
        let mut g = MemoryGraph::new(Metric::L2);
        for (id, p) in xy.iter().enumerate() {
            g.add_node(id as NodeId, 0, p.to_vec()).unwrap();
        }
        g
    }

    fn candidates(g: &MemoryGraph, base: NodeId, ids: &[NodeId]) -> Vec<Near> {
        ids.iter()
            .map(|&id| Near::new(g.distance_between(base, id).unwrap(), id))
            .collect()
    }

    #[test]
    fn heuristic_keeps_directions_not_the_nearest() {
        // Base 0 at the origin; 1, 2, 3 along +x; 4 along +y.
        let g = points(&[[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [0.0, 2.5]]);
        let mut c = candidates(&g, 0, &[3, 2, 4, 1]);
        let mut out = Vec::new();
        select_neighbours(&g, &mut c, 3, &mut out).unwrap();
        let ids: Vec<NodeId> = out.iter().map(|n| n.id).collect();
        assert_eq!(ids, [1, 4], "2 and 3 are closer to 1 than to the base");
        // Fewer candidates than the bound: all kept, nearest first (hnswlib).
        let mut c = candidates(&g, 0, &[3, 2]);
        select_neighbours(&g, &mut c, 3, &mut out).unwrap();
        assert_eq!(out.iter().map(|n| n.id).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn shrink_keeps_a_last_parent_link() {
        // 0 → {1, 2, 3}; 0 is the entry point, so it is the only parent of 2 and 3.
        let mut g = points(&[[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]);
        g.set_neighbours(0, 0, &[1, 2, 3]).unwrap();
        g.set_neighbours(1, 0, &[2]).unwrap();
        g.set_entry_point(Some(super::super::EntryPoint { id: 0, level: 0 }));
        let rule = Rule {
            rank: Rank { ep: 0 },
            gone: None,
        };
        let mut c = candidates(&g, 0, &[1, 2, 3]);
        let (mut out, mut buf) = (Vec::new(), Vec::new());
        shrink(&g, 0, 0, &mut c, 2, &[1, 2, 3], rule, &mut out, &mut buf).unwrap();
        let ids: Vec<NodeId> = out.iter().map(|n| n.id).collect();
        // The heuristic keeps only 1; 3 must stay (its only parent link), 2 has 1 → 2.
        assert_eq!(ids, [1, 3]);
        // On upper layers the heuristic alone decides.
        shrink(&g, 0, 1, &mut c, 2, &[1, 2, 3], rule, &mut out, &mut buf).unwrap();
        assert_eq!(out.iter().map(|n| n.id).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn rank_puts_the_entry_point_first_then_ids() {
        let rank = Rank { ep: 5 };
        assert!(rank.before(5, 0) && !rank.before(0, 5));
        assert!(rank.before(1, 2) && !rank.before(2, 1));
        assert!(!rank.before(3, 3) && !rank.before(5, 5));
    }
}
