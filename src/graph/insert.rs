//! Connect a new node (paper Alg. 1, INSERT), as hnswlib's `addPoint` /
//! `mutuallyConnectNewElement` do it, keeping the parent rule of [`select`](super::select).
//!
//! [`insert`] is [`connect`] (the paper's algorithm) followed by the parent-rule step. A parallel
//! build ([`parallel`](super::parallel)) runs [`connect`] on many threads at once and restores the
//! parent rule in one serial pass afterwards; every list change goes through
//! [`update_neighbours`](GraphWrite::update_neighbours), which a concurrent graph makes atomic.

use std::mem;

use super::scratch::Near;
use super::search::{descend, level_out_of_range, search_layer, seed, INSERT_BEAM};
use super::select::{adopt, select_neighbours, shrink, Rank, Rule};
use super::{EntryPoint, Exact, GraphWrite, NodeId, Params, Scratch, MAX_LEVEL};
use crate::error::Result;

/// Links node `id` (of `level`, with `vector` in search form) into the graph.
///
/// Invariant: node `id` exists in `graph` with its vector and `level`, has empty lists, and
/// nothing links to it yet.
///
/// An empty graph makes it the entry point. Otherwise [`connect`], then the parent rule (see
/// select.rs): the new node gets a parent link if no neighbour kept one to it, and so do a
/// demoted entry point and the nodes it linked to.
pub(crate) fn insert<G: GraphWrite>(
    graph: &mut G,
    id: NodeId,
    level: u8,
    vector: &[f32],
    params: &Params,
    scratch: &mut Scratch,
) -> Result<()> {
    let Some(Connected { rule, demoted }) = connect(graph, id, level, vector, params, scratch)?
    else {
        return Ok(());
    };
    // The new node has no parent link if every neighbour dropped it, and a demoted entry
    // point's links to lower ids are no parent links.
    let mut ids = mem::take(&mut scratch.ids);
    ids.clear();
    let result = (|| {
        if !rule.has_parent(&*graph, id, None, &mut scratch.list)? {
            ids.push(id);
        }
        ids.extend_from_slice(&demoted);
        if !ids.is_empty() {
            // `connect` left W of layer 0 in `seeds`: reachable nodes near the new one.
            let near: Vec<NodeId> = scratch.seeds.iter().map(|n| n.id).collect();
            adopt(graph, rule, &ids, &near, params.m0)?;
        }
        Ok(())
    })();
    scratch.ids = ids;
    result
}

/// What [`connect`] leaves for the parent-rule step.
pub(super) struct Connected {
    /// The rule under the entry point after the insert.
    pub rule: Rule,
    /// A demoted entry point and the nodes it linked to on layer 0 before the insert (empty if
    /// the entry point stayed).
    pub demoted: Vec<NodeId>,
}

/// Paper Alg. 1 without the parent-rule step: links node `id` into the graph and returns `None`
/// when the graph was empty (the node became the entry point). Same invariant as [`insert`].
///
/// A descent with a beam of [`INSERT_BEAM`] from the entry point down to layer `level + 1` (the
/// paper descends greedily, with `ef = 1`); then, seeded with its W, on each layer
/// `lc` from `min(level, ep.level)` down to 0, W = SEARCH-LAYER(vector, eps,
/// `ef_construction`, lc), the new list = the heuristic over W bounded by `m` (on every layer,
/// as hnswlib), and each chosen neighbour links back, shrinking its list with the heuristic when
/// it overflows `max_neighbours(lc)`; W seeds the next layer. A `level` above the entry point's
/// makes the new node the entry point. On return `scratch.seeds` holds W of layer 0.
pub(super) fn connect<G: GraphWrite>(
    graph: &mut G,
    id: NodeId,
    level: u8,
    vector: &[f32],
    params: &Params,
    scratch: &mut Scratch,
) -> Result<Option<Connected>> {
    if level > MAX_LEVEL {
        return Err(level_out_of_range(id, level));
    }
    let Some(ep) = graph.entry_point() else {
        graph.set_entry_point(Some(EntryPoint { id, level }));
        return Ok(None);
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

    let start = Near::new(graph.distance_to(vector, ep.id)?, ep.id);

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
    let result = (|| {
        let exact = Exact {
            graph: &*graph,
            query: vector,
        };
        seeds.clear();
        seeds.push(start);
        descend(
            &*graph,
            &exact,
            level + 1..=ep.level,
            INSERT_BEAM,
            scratch,
            &mut seeds,
        )?;
        for layer in (0..=level.min(ep.level)).rev() {
            scratch.begin();
            for &s in &seeds {
                seed(&*graph, scratch, s, None)?;
            }
            let exact = Exact {
                graph: &*graph,
                query: vector,
            };
            search_layer(&*graph, &exact, layer, ef, None, scratch)?;
            scratch.drain_results(&mut found);
            // Only in a parallel build can the search meet `id` itself: another insert that
            // found it on the layer above may have linked to it here already.
            found.retain(|n| n.id != id);
            seeds.clone_from(&found);
            let m = params.m.min(params.max_neighbours(layer));
            select_neighbours(&*graph, &mut seeds, m, &mut chosen)?;
            set_own_list(graph, id, layer, &chosen, params, rule, scratch)?;
            for &y in &chosen {
                link_back(graph, y, id, layer, params, rule, scratch)?;
            }
            mem::swap(&mut seeds, &mut found);
        }
        if new_ep {
            graph.set_entry_point(Some(EntryPoint { id, level }));
        }
        Ok(())
    })();
    scratch.seeds = seeds;
    scratch.found = found;
    scratch.chosen = chosen;
    result.map(|()| Some(Connected { rule, demoted }))
}

/// Makes `chosen` (nearest first) the list of the new node `x` on `layer`.
///
/// Serially the list is empty until then. In a parallel build another insert may already have
/// linked `x` here (it found `x` through the layer above); those links are kept as link-backs
/// would be: all of them while they fit, else the heuristic over the union.
fn set_own_list<G: GraphWrite>(
    graph: &mut G,
    x: NodeId,
    layer: u8,
    chosen: &[Near],
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
    graph.update_neighbours(x, layer, list, |g, list| {
        if list.is_empty() {
            list.extend(chosen.iter().map(|n| n.id));
            return Ok(true);
        }
        cands.clear();
        cands.extend_from_slice(chosen);
        for &q in list.iter() {
            if !chosen.iter().any(|n| n.id == q) {
                cands.push(Near::new(g.distance_between(x, q)?, q));
            }
        }
        if cands.len() <= bound {
            cands.sort_unstable();
            list.clear();
            list.extend(cands.iter().map(|n| n.id));
        } else {
            shrink(g, x, layer, cands, bound, list, rule, kept, links)?;
            list.clear();
            list.extend(kept.iter().map(|n| n.id));
        }
        Ok(true)
    })
}

/// Adds `y → x` on `layer` (`y` is `x`'s neighbour at distance `y.dist`); a list that overflows
/// `max_neighbours(layer)` shrinks with the heuristic, keeping last parent links. One atomic
/// read-modify-write of `y`'s list.
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
    graph.update_neighbours(y.id, layer, list, |g, list| {
        if list.contains(&x) {
            return Ok(false);
        }
        if list.len() < bound {
            list.push(x);
            return Ok(true);
        }
        cands.clear();
        cands.push(Near::new(y.dist, x));
        for &q in list.iter() {
            cands.push(Near::new(g.distance_between(y.id, q)?, q));
        }
        shrink(g, y.id, layer, cands, bound, list, rule, kept, links)?;
        list.clear();
        list.extend(kept.iter().map(|n| n.id));
        Ok(true)
    })
}
