//! Reads at one committed state: the search core every search runs, and [`ReadTxn`], which
//! pairs a snapshot with a redb read transaction of the same commit.

use std::cell::RefCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::Result;
use crate::graph::{self, NodeId, Scratch};
use crate::graph_views::{SnapshotCodes, SnapshotGraph};
use crate::options::{Hit, Options, SearchParams};
use crate::quant::{Codec, Prepared};
use crate::snapshot::Snapshot;
use crate::store;

thread_local! {
    /// Per-thread search state, reused by every search on this thread.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
    /// Per-thread prepared query, for searches on codes.
    static PREPARED: RefCell<Prepared> = RefCell::new(Prepared::default());
}

/// A read at one commit of an index, from [`Index::read`](crate::Index::read): searches and
/// gets through it all see that commit, and so do the app's own reads through
/// [`redb`](ReadTxn::redb): inside an app's database, a row written with a vector is there for
/// every hit. Owned (no borrow of the index), `Send` and `Sync`.
///
/// ```
/// use std::sync::Arc;
/// use hnswdb::redb::{self, ReadableDatabase, ReadableTable, TableDefinition};
/// use hnswdb::{Index, Metric, Options, SearchParams};
/// const PUBLIC: TableDefinition<u64, bool> = TableDefinition::new("public");
///
/// # let dir = tempfile::tempdir()?;
/// let db = Arc::new(redb::Database::create(dir.path().join("app.redb"))?);
/// let index = Index::create_in(Arc::clone(&db), "docs", Options::new(2).metric(Metric::L2))?;
/// let mut tx = index.write()?;
/// {
///     let mut public = tx.redb().open_table(PUBLIC)?;
///     public.insert(1, true)?;
///     public.insert(2, false)?;
/// }
/// tx.insert_batch([(1, [0.0, 1.0]), (2, [0.0, 0.9])])?;
/// tx.commit()?;
///
/// let read = index.read()?;
/// let public = read.redb().open_table(PUBLIC)?;
/// // A filter that reads the app's table, at the same commit as the search.
/// let params = SearchParams::new(1).filter(|key| {
///     public.get(key).ok().flatten().is_some_and(|row| row.value())
/// });
/// assert_eq!(read.search_with(&[0.0, 0.9], &params)?[0].key, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReadTxn {
    snap: Arc<Snapshot>,
    options: Options,
    txn: redb::ReadTransaction,
}

impl ReadTxn {
    /// A read of `snap`, which shows the index as `txn` does.
    pub(crate) fn new(snap: Arc<Snapshot>, options: Options, txn: redb::ReadTransaction) -> Self {
        ReadTxn { snap, options, txn }
    }

    /// The `k` nearest keys to `query`, as [`Index::search`](crate::Index::search).
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        self.search_with(query, &SearchParams::new(k))
    }

    /// The nearest keys to `query` as `params` says, as
    /// [`Index::search_with`](crate::Index::search_with).
    pub fn search_with(&self, query: &[f32], params: &SearchParams) -> Result<Vec<Hit>> {
        search(&self.snap, &self.options, query, params)
    }

    /// The nearest keys to each of `queries`, as
    /// [`Index::search_batch`](crate::Index::search_batch), all at this read's commit.
    pub fn search_batch<Q>(&self, queries: &[Q], params: &SearchParams) -> Result<Vec<Vec<Hit>>>
    where
        Q: AsRef<[f32]> + Sync,
    {
        search_batch(&self.snap, &self.options, queries, params)
    }

    /// The vector stored under `key`, exactly as inserted.
    pub fn get(&self, key: u64) -> Result<Option<Vec<f32>>> {
        get(&self.snap, key)
    }

    /// Whether `key` is in the index.
    pub fn contains(&self, key: u64) -> Result<bool> {
        contains(&self.snap, key)
    }

    /// Number of vectors in the index.
    pub fn len(&self) -> usize {
        self.snap.counters.len as usize
    }

    /// Whether the index holds no vectors.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The redb read transaction at the same commit: open the app's tables in it.
    pub fn redb(&self) -> &redb::ReadTransaction {
        &self.txn
    }
}

impl std::fmt::Debug for ReadTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadTxn")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// The nearest keys to `query` in `snap` as `params` says (see `Index::search_with`).
pub(crate) fn search(
    snap: &Snapshot,
    options: &Options,
    query: &[f32],
    params: &SearchParams,
) -> Result<Vec<Hit>> {
    options.metric.validate(options.dim, query)?;
    if params.k == 0 {
        return Ok(Vec::new());
    }
    let ef = params.ef.unwrap_or(options.ef_search).max(params.k);
    let metric = options.metric;
    let filter_panic = RefCell::new(None);
    let filter_error = RefCell::new(None);
    let filter = params.filter.as_ref().map(|f| {
        let filter_panic = &filter_panic;
        let filter_error = &filter_error;
        move |id: NodeId| -> bool {
            let key = match snap.node(id) {
                Ok(slot) => slot.key,
                Err(e) => {
                    filter_error.borrow_mut().get_or_insert(e);
                    return false;
                }
            };
            match catch_unwind(AssertUnwindSafe(|| f(key))) {
                Ok(pass) => pass,
                Err(panic) => {
                    filter_panic.borrow_mut().get_or_insert(panic);
                    false
                }
            }
        }
    });
    let filter_ref = filter.as_ref().map(|f| f as &dyn Fn(NodeId) -> bool);
    let result = store::guarded("search", || {
        let graph = SnapshotGraph::new(snap, metric);
        with_scratch(|scratch| {
            let mut search_query = std::mem::take(&mut scratch.query);
            let mut found = std::mem::take(&mut scratch.found_ids);
            metric.search_form_into(query, &mut search_query);
            let walked = match snap.codec.as_deref() {
                None => graph::search(&graph, &search_query, ef, filter_ref, scratch, &mut found),
                Some(codec) => {
                    // With `ef` at least the index's size the walk sees every node, and the
                    // search stays exact by default.
                    let exhaustive = ef as u64 >= snap.counters.len;
                    let rescore = params
                        .rescore
                        .unwrap_or_else(|| match exhaustive {
                            true => ef,
                            false => codec.default_rescore(params.k, ef),
                        })
                        .max(params.k);
                    search_codes(
                        &graph,
                        codec,
                        &search_query,
                        ef.max(rescore),
                        filter_ref,
                        scratch,
                        &mut found,
                    )
                    .and_then(|()| rescore_exact(&graph, &search_query, rescore, &mut found))
                }
            };
            let hits = walked.and_then(|()| {
                if found.len() < params.k && (found.len() as u64) < snap.counters.len {
                    found = exact_scan(&graph, snap, &search_query, filter_ref)?;
                }
                nearest_hits(snap, &found, params.k)
            });
            scratch.query = search_query;
            scratch.found_ids = found;
            hits
        })
    });
    if let Some(panic) = filter_panic.into_inner() {
        resume_unwind(panic);
    }
    if let Some(e) = filter_error.into_inner() {
        return Err(e);
    }
    result
}

/// The walk on `codec`'s codes, descent included: `found` gets up to `ef` nodes, by estimated
/// distance.
fn search_codes(
    graph: &SnapshotGraph<'_>,
    codec: &Codec,
    query: &[f32],
    ef: usize,
    filter: Option<&dyn Fn(NodeId) -> bool>,
    scratch: &mut Scratch,
    found: &mut Vec<(f32, NodeId)>,
) -> Result<()> {
    let mut walk = |prepared: &mut Prepared| {
        codec.prepare(query, prepared);
        let codes = SnapshotCodes::new(graph.snapshot(), codec, prepared);
        graph::search_on(graph, query, &codes, ef, filter, scratch, found)
    };
    PREPARED.with(|cell| match cell.try_borrow_mut() {
        Ok(mut prepared) => walk(&mut prepared),
        Err(_) => walk(&mut Prepared::default()),
    })
}

/// Keeps the first `n` of `found` (nearest by estimate) with their exact distances, nearest
/// first, ties by id.
fn rescore_exact(
    graph: &SnapshotGraph<'_>,
    query: &[f32],
    n: usize,
    found: &mut Vec<(f32, NodeId)>,
) -> Result<()> {
    use crate::graph::GraphRead;
    found.truncate(n);
    for &(_, id) in found.iter() {
        graph.prefetch_vector(id);
    }
    for (distance, id) in found.iter_mut() {
        *distance = graph.distance_to(query, *id)?;
    }
    found.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    Ok(())
}

/// Queries a batch thread takes at a time: small enough to even out the threads' loads, large
/// enough that taking them costs nothing.
const BATCH_CHUNK: usize = 8;

/// [`search`] for each of `queries`, on `params.threads` threads (the calling one among them),
/// each taking the next [`BATCH_CHUNK`] queries until none are left. Every query is checked
/// before any search starts, so a bad one fails the batch at once; a filter's panic reaches
/// the caller, as in [`search`].
pub(crate) fn search_batch<Q>(
    snap: &Snapshot,
    options: &Options,
    queries: &[Q],
    params: &SearchParams,
) -> Result<Vec<Vec<Hit>>>
where
    Q: AsRef<[f32]> + Sync,
{
    params.validate()?;
    for query in queries {
        options.metric.validate(options.dim, query.as_ref())?;
    }
    let threads = params
        .get_threads()
        .min(queries.len().div_ceil(BATCH_CHUNK));
    if threads <= 1 {
        return queries
            .iter()
            .map(|query| search(snap, options, query.as_ref(), params))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = || -> Result<Vec<(usize, Vec<Hit>)>> {
        let mut done = Vec::new();
        loop {
            let start = next.fetch_add(BATCH_CHUNK, Ordering::Relaxed);
            if start >= queries.len() || failed.load(Ordering::Relaxed) {
                return Ok(done);
            }
            for (i, query) in queries.iter().enumerate().skip(start).take(BATCH_CHUNK) {
                match search(snap, options, query.as_ref(), params) {
                    Ok(hits) => done.push((i, hits)),
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
        }
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        // A panic here (a filter's) propagates from the scope once the helpers are done.
        let mine = work();
        let mut answers = vec![Vec::new(); queries.len()];
        let mut error = None;
        for part in std::iter::once(mine).chain(
            helpers
                .into_iter()
                .map(|helper| helper.join().unwrap_or_else(|panic| resume_unwind(panic))),
        ) {
            match part {
                Ok(done) => {
                    for (i, hits) in done {
                        answers[i] = hits;
                    }
                }
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(answers),
        }
    })
}

/// The vector stored under `key`, exactly as inserted.
pub(crate) fn get(snap: &Snapshot, key: u64) -> Result<Option<Vec<f32>>> {
    store::guarded("get", || match snap.tables.node_id(key)? {
        None => Ok(None),
        Some(id) => snap.tables.vector_with(id, |v| Some(v.to_vec())),
    })
}

/// Whether `key` is in `snap`.
pub(crate) fn contains(snap: &Snapshot, key: u64) -> Result<bool> {
    store::guarded("contains", || Ok(snap.tables.node_id(key)?.is_some()))
}

/// Every key of `snap`, ascending.
pub(crate) fn keys(snap: &Snapshot) -> Result<Vec<u64>> {
    store::guarded("keys", || {
        // Grown as keys are read: a count from the file does not size an allocation.
        let mut keys = Vec::new();
        snap.tables.scan_keys(|key, _| {
            keys.push(key);
            Ok(())
        })?;
        Ok(keys)
    })
}

/// Runs `f` with this thread's scratch (a fresh one if a filter searches from inside a search).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        Err(_) => f(&mut Scratch::new()),
    })
}

/// The `k` nearest of `found` (sorted by distance, then id) as hits, ties by key. Keys are looked
/// up only for those and for any further node at the `k`-th distance, which may win the tie.
fn nearest_hits(snap: &Snapshot, found: &[(f32, NodeId)], k: usize) -> Result<Vec<Hit>> {
    let cut = match found.get(k.saturating_sub(1)) {
        Some(&(kth, _)) => k + found[k..].iter().take_while(|(d, _)| *d == kth).count(),
        None => found.len(),
    };
    // Sized up front: collecting through `Result` would grow the vector twice per query.
    let mut hits = Vec::with_capacity(cut);
    for &(distance, id) in &found[..cut] {
        hits.push(Hit {
            key: snap.node(id)?.key,
            distance,
        });
    }
    // `found` is in distance order: only ties need ordering by key.
    if hits.windows(2).any(|w| w[0].distance == w[1].distance) {
        hits.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.key.cmp(&b.key)));
    }
    hits.truncate(k);
    Ok(hits)
}

/// Every live node passing `filter`, nearest first: the fallback when the graph walk finds too
/// few (a very selective filter).
fn exact_scan(
    graph: &SnapshotGraph<'_>,
    snap: &Snapshot,
    query: &[f32],
    filter: Option<&dyn Fn(NodeId) -> bool>,
) -> Result<Vec<(f32, NodeId)>> {
    use crate::graph::GraphRead;
    let mut found = Vec::new();
    for id in snap.live_ids()? {
        if filter.is_none_or(|f| f(id)) {
            found.push((graph.distance_to(query, id)?, id));
        }
    }
    found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    Ok(found)
}
