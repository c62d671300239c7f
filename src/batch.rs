//! A batch insert in one write transaction, linked on several threads.
//!
//! 1. Serially: the last row of each key wins; keys already present are removed with the usual
//!    repair (`graph::remove`); every row gets an id, a level (the seeded draw of a serial
//!    insert) and an unlinked node in the transaction's [`Work`].
//! 2. In parallel: `graph::link_parallel` links the new nodes, reading the work through a
//!    shareable [`WorkView`] (a write transaction's tables are not `Sync`).
//! 3. Serially: the changed lists go back into the work through [`WorkGraph`]'s
//!    `set_neighbours` (reverse lists stay exact, the commit's flush sees one consistent graph),
//!    and `graph::repair_parents` gives every node left without a parent link one, so the graph
//!    passes `verify` after every batch.
//!
//! Small batches and `build_threads == 1` take the serial path: repeated [`insert`] calls, a
//! graph that is a pure function of the seed and the operations. A parallel build is not
//! bit-reproducible.
//!
//! [`insert`]: crate::WriteTxn::insert

use std::collections::HashMap;

use crate::error::Result;
use crate::graph::{self, NodeId, Params, Scratch};
use crate::graph_views::{Work, WorkGraph, WorkView};
use crate::options::Options;
use crate::store::WriteTables;

/// Batches with fewer distinct keys than this are inserted serially: the threads would not pay
/// for themselves.
pub(crate) const PARALLEL_MIN: usize = 256;

/// Whether a batch of `rows` distinct keys is linked in parallel under `options`.
pub(crate) fn parallel(options: &Options, rows: usize) -> bool {
    rows >= PARALLEL_MIN && options.get_build_threads() > 1
}

/// The rows of `rows` that survive: the last of each key, in their order.
pub(crate) fn last_of_each_key<'v>(rows: &[(u64, &'v [f32])]) -> Vec<(u64, &'v [f32])> {
    let mut last = HashMap::with_capacity(rows.len());
    for (i, &(key, _)) in rows.iter().enumerate() {
        last.insert(key, i);
    }
    rows.iter()
        .enumerate()
        .filter(|&(i, (key, _))| last[key] == i)
        .map(|(_, &row)| row)
        .collect()
}

/// Inserts `rows` (valid vectors, distinct keys) into `work` on `options.build_threads`
/// threads: upserts removed, nodes added, linked in parallel, written back, parent rule
/// restored. On error the work may be half-changed: the caller marks the transaction broken.
pub(crate) fn insert_parallel(
    work: &mut Work,
    tables: &WriteTables<'_>,
    options: &Options,
    params: &Params,
    scratch: &mut Scratch,
    rows: &[(u64, &[f32])],
) -> Result<()> {
    let metric = options.metric;
    let mut g = WorkGraph {
        work,
        tables,
        metric,
        m0: params.m0,
    };
    for &(key, _) in rows {
        let old = match g.work.keys.get(&key) {
            Some(id) => *id,
            None => tables.node_id(key)?,
        };
        if let Some(old) = old {
            graph::remove(&mut g, old, params, scratch)?;
            g.work.delete_node(tables, old)?;
        }
    }
    let mut staged: Vec<(NodeId, u8, Vec<f32>)> = Vec::with_capacity(rows.len());
    for &(key, vector) in rows {
        let id = g.work.allocate_id()?;
        let level = graph::level_for(options.seed, g.work.snap.counters.inserts, options.m);
        g.work.add_node(id, key, level, vector, metric, params.m0)?;
        staged.push((id, level, metric.search_form(vector)));
    }
    let batch: Vec<(NodeId, u8, &[f32])> = staged
        .iter()
        .map(|(id, level, v)| (*id, *level, &v[..]))
        .collect();
    let view = WorkView {
        work: &*g.work,
        metric,
    };
    let slots = g.work.snap.counters.next_id as usize;
    let built = graph::link_parallel(&view, slots, &batch, params, options.get_build_threads())?;
    let suspects = built.apply(&mut g)?;
    graph::repair_parents(&mut g, &suspects, params)?;
    Ok(())
}
