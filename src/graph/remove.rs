//! Unlink a node and repair every list that pointed at it, exactly: no tombstones.
//!
//! The paper has no delete. This is the repair hnswlib does when an element is updated
//! (`repairConnectionsForUpdate`), applied to every node that linked to the removed one, plus the
//! parent rule of [`select`](super::select) so layer 0 stays connected.

use super::scratch::Near;
use super::search::level_out_of_range;
use super::select::{adopt, shrink, Rank, Rule};
use super::{GraphWrite, NodeId, Params, Scratch, MAX_LEVEL};
use crate::error::Result;

/// Unlinks node `id` from `graph`; afterwards no list holds it and its own lists are empty.
/// The caller deletes the node's data afterwards.
///
/// On every layer `l ≤ level(id)`, each node `y` that links to `id` gets a new list: the
/// heuristic (Alg. 4) over its other neighbours and the neighbours of `id`, bounded by
/// `max_neighbours(l)`. If `id` was the entry point, the highest remaining node replaces it.
/// Finally, nodes that lose their last parent link with `id` are adopted.
pub(crate) fn remove<G: GraphWrite>(
    graph: &mut G,
    id: NodeId,
    params: &Params,
    scratch: &mut Scratch,
) -> Result<()> {
    let level = graph.level(id)?;
    if level > MAX_LEVEL {
        return Err(level_out_of_range(id, level));
    }
    let entry = match graph.entry_point() {
        Some(ep) if ep.id == id => graph.highest_node(id)?,
        other => other,
    };
    let rule = Rule {
        rank: Rank {
            ep: entry.map_or(id, |e| e.id),
        },
        gone: Some(id),
    };
    let Scratch {
        cands,
        kept,
        list,
        links,
        ids,
        ..
    } = scratch;
    let mut own = Vec::new();
    let mut from = Vec::new();
    // Layer 0: the removed node's children may lose their last parent link; the nodes around
    // it are where they look for a new one.
    let mut children = Vec::new();
    let mut near = Vec::new();
    for layer in 0..=level {
        let bound = params.max_neighbours(layer);
        graph.neighbours(id, layer, &mut own)?;
        graph.linked_from(id, layer, &mut from)?;
        if layer == 0 {
            children.clone_from(&own);
            near.extend(from.iter().chain(&own).copied());
        }
        for &y in &from {
            if y == id {
                continue;
            }
            graph.neighbours(y, layer, list)?;
            cands.clear();
            for &q in list.iter().chain(&own) {
                if q != id && q != y && !cands.iter().any(|c: &Near| c.id == q) {
                    cands.push(Near::new(graph.distance_between(y, q)?, q));
                }
            }
            shrink(&*graph, y, layer, cands, bound, list, rule, kept, links)?;
            ids.clear();
            ids.extend(kept.iter().map(|n| n.id));
            graph.set_neighbours(y, layer, ids)?;
        }
        graph.set_neighbours(id, layer, &[])?;
    }
    graph.set_entry_point(entry);
    if entry.is_some() {
        adopt(graph, rule, &children, &near, params.m0)?;
    }
    Ok(())
}
