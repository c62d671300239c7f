//! Connect a new node (paper Alg. 1, INSERT), as hnswlib's `addPoint` /
//! `mutuallyConnectNewElement` do it, keeping the parent rule of [`select`](super::select).

use std::mem;

use super::scratch::Near;
use super::search::{greedy, level_out_of_range, search_layer, seed};
use super::select::{adopt, select_neighbours, shrink, Rank, Rule};
use super::{EntryPoint, GraphWrite, NodeId, Params, Scratch, MAX_LEVEL};
use crate::error::Result;

/// Links node `id` (of `level`, with `vector` in search form) into the graph.
///
/// Invariant: node `id` exists in `graph` with its vector and `level`, has empty lists, and
/// nothing links to it yet.
///
/// An empty graph makes it the entry point. Otherwise: greedy descent (`ef = 1`) from the entry
/// point down to layer `level + 1`; then on each layer `lc` from `min(level, ep.level)` down to
/// 0, W = SEARCH-LAYER(vector, eps, `ef_construction`, lc), the new list = the heuristic over W
/// bounded by `m` (on every layer, as hnswlib), and each chosen neighbour links back, shrinking
/// its list with the heuristic when it overflows `max_neighbours(lc)`; W seeds the next layer.
/// A `level` above the entry point's makes the new node the entry point.
pub(crate) fn insert<G: GraphWrite>(
    graph: &mut G,
    id: NodeId,
    level: u8,
    vector: &[f32],
    params: &Params,
    scratch: &mut Scratch,
) -> Result<()> {
    if level > MAX_LEVEL {
        return Err(level_out_of_range(id, level));
    }
    let Some(ep) = graph.entry_point() else {
        graph.set_entry_point(Some(EntryPoint { id, level }));
        return Ok(());
    };
    if ep.level > MAX_LEVEL {
        return Err(level_out_of_range(ep.id, ep.level));
    }
    let new_ep = level > ep.level;
    let rule = Rule {
        rank: Rank {
            ep: if new_ep { id } else { ep.id },
        },
        gone: None,
    };
    let ef = params.ef_construction.max(params.m).max(1);

    let mut cur = Near::new(graph.distance_to(vector, ep.id)?, ep.id);
    for layer in (level + 1..=ep.level).rev() {
        greedy(&*graph, vector, layer, &mut cur, &mut scratch.links)?;
    }

    // A new entry point demotes the old one: it and the nodes it linked to before any list
    // changes may have lost their parent link.
    let mut demoted = Vec::new();
    if new_ep {
        graph.neighbours(ep.id, 0, &mut demoted)?;
        demoted.push(ep.id);
    }

    let mut seeds = mem::take(&mut scratch.seeds);
    let mut found = mem::take(&mut scratch.found);
    let mut chosen = mem::take(&mut scratch.chosen);
    let mut ids = mem::take(&mut scratch.ids);
    seeds.clear();
    seeds.push(cur);
    let result = (|| {
        for layer in (0..=level.min(ep.level)).rev() {
            scratch.begin();
            for &s in &seeds {
                seed(&*graph, scratch, s, None)?;
            }
            search_layer(&*graph, vector, layer, ef, None, scratch)?;
            scratch.drain_results(&mut found);
            seeds.clone_from(&found);
            let m = params.m.min(params.max_neighbours(layer));
            select_neighbours(&*graph, &mut seeds, m, &mut chosen)?;
            ids.clear();
            ids.extend(chosen.iter().map(|n| n.id));
            graph.set_neighbours(id, layer, &ids)?;
            for &y in &chosen {
                link_back(graph, y, id, layer, params, rule, scratch)?;
            }
            mem::swap(&mut seeds, &mut found);
        }
        if new_ep {
            graph.set_entry_point(Some(EntryPoint { id, level }));
        }

        // The parent rule (see select.rs): the new node has no parent link if every neighbour
        // dropped it, and a demoted entry point's links to lower ids are no parent links.
        ids.clear();
        if !rule.has_parent(&*graph, id, None, &mut scratch.list)? {
            ids.push(id);
        }
        ids.extend_from_slice(&demoted);
        if !ids.is_empty() {
            // `seeds` holds W of layer 0: reachable nodes near the new one.
            let near: Vec<NodeId> = seeds.iter().map(|n| n.id).collect();
            adopt(graph, rule, &ids, &near, params.m0)?;
        }
        Ok(())
    })();
    scratch.seeds = seeds;
    scratch.found = found;
    scratch.chosen = chosen;
    scratch.ids = ids;
    result
}

/// Adds `y → x` on `layer` (`y` is `x`'s neighbour at distance `y.dist`); a list that overflows
/// `max_neighbours(layer)` shrinks with the heuristic, keeping last parent links.
fn link_back<G: GraphWrite>(
    graph: &mut G,
    y: Near,
    x: NodeId,
    layer: u8,
    params: &Params,
    rule: Rule,
    scratch: &mut Scratch,
) -> Result<()> {
    let bound = params.max_neighbours(layer);
    let Scratch {
        cands,
        kept,
        list,
        links,
        ..
    } = scratch;
    graph.neighbours(y.id, layer, list)?;
    if list.contains(&x) {
        return Ok(());
    }
    if list.len() < bound {
        list.push(x);
        return graph.set_neighbours(y.id, layer, list);
    }
    cands.clear();
    cands.push(Near::new(y.dist, x));
    for &q in list.iter() {
        cands.push(Near::new(graph.distance_between(y.id, q)?, q));
    }
    shrink(&*graph, y.id, layer, cands, bound, list, rule, kept, links)?;
    list.clear();
    list.extend(kept.iter().map(|n| n.id));
    graph.set_neighbours(y.id, layer, list)
}
