//! [`WriteTxn`]: several changes, committed all together or not at all.

use crate::batch;
use crate::engine::{Engine, WriterGuard};
use crate::error::{Error, Result};
use crate::graph::{self, Scratch};
use crate::graph_views::{Work, WorkGraph};
use crate::options::Durability;
use crate::store::{self, NodeRecord, WriteTables};

/// A write transaction: stages inserts and removes, applies them to the graph as they come, and
/// makes them visible and durable together on [`commit`](WriteTxn::commit). Dropping it without
/// committing aborts it: nothing of it reaches the file or any search.
///
/// Only one write transaction is open at a time; [`Index::write`] waits for the current one to
/// end. Searches go on meanwhile and see the last committed state.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use hnswdb::{Index, Metric, Options};
/// let index = Index::create(dir.path().join("t.hnsw"), Options::new(2).metric(Metric::L2))?;
/// let mut tx = index.write()?;
/// tx.insert(1, &[0.0, 1.0])?;
/// tx.insert(2, &[1.0, 0.0])?;
/// tx.remove(1)?;
/// tx.commit()?;
/// assert_eq!(index.keys()?, vec![2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WriteTxn<'a> {
    index: &'a Engine,
    state: WriterGuard<'a>,
    txn: redb::WriteTransaction,
    work: Work,
    scratch: Scratch,
    /// An operation failed part-way: the working state may be inconsistent, so commit refuses.
    broken: bool,
}

impl std::fmt::Debug for WriteTxn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTxn")
            .field("len", &self.len())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl<'a> WriteTxn<'a> {
    pub(crate) fn new(
        index: &'a Engine,
        state: WriterGuard<'a>,
        txn: redb::WriteTransaction,
    ) -> Self {
        // Taken under the writer lock: no commit can land between this and our own.
        let snap = (*index.snapshot()).clone();
        WriteTxn {
            index,
            state,
            txn,
            work: Work::new(snap),
            scratch: Scratch::new(),
            broken: false,
        }
    }

    /// Inserts `vector` under `key`, replacing the key's vector if it is present (upsert).
    pub fn insert(&mut self, key: u64, vector: &[f32]) -> Result<()> {
        let options = &self.index.options;
        options.metric.validate(options.dim, vector)?;
        self.apply(|tx| tx.insert_valid(key, vector))
    }

    /// Inserts (upserts) every `(key, vector)` of `rows`; a key repeated in `rows` ends up with
    /// its last vector. Every vector is checked before anything changes, so a rejected one
    /// leaves the transaction as it was, and usable. A batch of a few hundred keys or more is
    /// linked on [`Options::build_threads`](crate::Options::build_threads) threads.
    pub fn insert_batch<I, V>(&mut self, rows: I) -> Result<()>
    where
        I: IntoIterator<Item = (u64, V)>,
        V: AsRef<[f32]>,
    {
        let index = self.index;
        let options = &index.options;
        let owned: Vec<(u64, V)> = rows.into_iter().collect();
        let rows: Vec<(u64, &[f32])> = owned.iter().map(|(k, v)| (*k, v.as_ref())).collect();
        for &(_, vector) in &rows {
            options.metric.validate(options.dim, vector)?;
        }
        let unique = batch::last_of_each_key(&rows);
        if !batch::parallel(options, unique.len()) {
            for &(key, vector) in &rows {
                self.apply(|tx| tx.insert_valid(key, vector))?;
            }
            return Ok(());
        }
        self.apply(|tx| {
            let tables = WriteTables::open(&tx.txn, options.dim)?;
            let params = index.params();
            batch::insert_parallel(
                &mut tx.work,
                &tables,
                options,
                &params,
                &mut tx.scratch,
                &unique,
            )
        })
    }

    /// Removes `key`; returns whether it was present. Every list that pointed at it is repaired.
    pub fn remove(&mut self, key: u64) -> Result<bool> {
        self.apply(|tx| tx.remove_valid(key))
    }

    /// Whether `key` is present, as this transaction sees it.
    pub fn contains(&self, key: u64) -> Result<bool> {
        if self.broken {
            return Err(broken_error());
        }
        store::guarded("contains", || {
            let tables = WriteTables::open(&self.txn, self.index.options.dim)?;
            Ok(self.node_of(&tables, key)?.is_some())
        })
    }

    /// Number of vectors, as this transaction sees it.
    pub fn len(&self) -> usize {
        self.work.snap.counters.len as usize
    }

    /// Whether the index is empty, as this transaction sees it.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes every change of this transaction durable (as the index's [`Durability`] says) and
    /// visible to searches, all at once.
    pub fn commit(self) -> Result<()> {
        let WriteTxn {
            index,
            mut state,
            mut txn,
            work,
            broken,
            ..
        } = self;
        if broken {
            return Err(broken_error());
        }
        index.check_writable()?;
        let options = &index.options;
        // In memory nothing survives the process anyway: commits are made durable only as often
        // as `Eventual` makes them (redb reuses the space a commit frees only after a durable
        // one), and never with quick-repair data (which halved an in-memory insert's cost).
        let in_memory = index.is_in_memory();
        let immediate = options.durability == Durability::Immediate && !in_memory;
        let durable = immediate || state.checkpoint_due();
        // A background load installs what it read at an earlier commit: it re-reads these.
        if let Some(changes) = &mut state.changes {
            changes.nodes.extend(&work.dirty_nodes);
            changes.lists.extend(&work.dirty_lists);
        }
        let snap = store::guarded("commit", || {
            flush(&txn, &work, options)?;
            txn.set_durability(if durable {
                redb::Durability::Immediate
            } else {
                redb::Durability::None
            })?;
            txn.set_quick_repair(durable && options.quick_repair && !in_memory);
            txn.commit()?;
            let mut snap = work.snap;
            let file = index.database();
            let read = store::begin_read(&file)?;
            snap.tables = std::sync::Arc::new(store::ReadTables::open(&read, options.dim)?);
            snap.file = file;
            snap.fit_budget(options.cache_bytes);
            Ok(snap)
        })
        .inspect_err(|e| index.poison_on_panic(e))?;
        state.committed(durable);
        index.publish(snap);
        Ok(())
    }

    fn apply<T>(&mut self, op: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.broken {
            return Err(broken_error());
        }
        let result = store::guarded("write", || op(self));
        if let Err(e) = &result {
            self.broken = true;
            self.index.poison_on_panic(e);
        }
        result
    }

    fn node_of(&self, tables: &WriteTables<'_>, key: u64) -> Result<Option<graph::NodeId>> {
        match self.work.keys.get(&key) {
            Some(id) => Ok(*id),
            None => tables.node_id(key),
        }
    }

    fn insert_valid(&mut self, key: u64, vector: &[f32]) -> Result<()> {
        let options = &self.index.options;
        let params = self.index.params();
        let tables = WriteTables::open(&self.txn, self.index.options.dim)?;
        let mut g = WorkGraph {
            work: &mut self.work,
            tables: &tables,
            metric: options.metric,
            m0: params.m0,
        };
        if let Some(old) = match g.work.keys.get(&key) {
            Some(id) => *id,
            None => tables.node_id(key)?,
        } {
            graph::remove(&mut g, old, &params, &mut self.scratch)?;
            g.work.delete_node(&tables, old)?;
        }
        let id = g.work.allocate_id()?;
        let level = graph::level_for(options.seed, g.work.snap.counters.inserts, options.m);
        g.work
            .add_node(id, key, level, vector, options.metric, params.m0)?;
        let search = options.metric.search_form(vector);
        graph::insert(&mut g, id, level, &search, &params, &mut self.scratch)
    }

    fn remove_valid(&mut self, key: u64) -> Result<bool> {
        let options = &self.index.options;
        let params = self.index.params();
        let tables = WriteTables::open(&self.txn, self.index.options.dim)?;
        let Some(id) = self.node_of(&tables, key)? else {
            return Ok(false);
        };
        let mut g = WorkGraph {
            work: &mut self.work,
            tables: &tables,
            metric: options.metric,
            m0: params.m0,
        };
        graph::remove(&mut g, id, &params, &mut self.scratch)?;
        g.work.delete_node(&tables, id)?;
        Ok(true)
    }
}

fn broken_error() -> Error {
    Error::TransactionBroken
}

/// Writes everything `work` changed into `txn`.
fn flush(txn: &redb::WriteTransaction, work: &Work, options: &crate::Options) -> Result<()> {
    let snap = &work.snap;
    {
        let mut tables = WriteTables::open(txn, options.dim)?;
        for &id in &work.dirty_nodes {
            let slot = work.slot(&tables, id)?;
            if slot.live {
                tables.put_node(
                    id,
                    &NodeRecord {
                        key: slot.key,
                        level: slot.level,
                    },
                )?;
                if let Some(v) = work.new_vectors.get(&id) {
                    tables.put_vector(id, v)?;
                }
            } else {
                tables.delete_node(id)?;
            }
        }
        // In key order: neighbouring B-tree inserts touch the same pages (the flush of one
        // bigann10k batch went from 55–85 ms in hash order to 40–46 ms).
        let mut keys: Vec<(u64, Option<graph::NodeId>)> =
            work.keys.iter().map(|(&k, &id)| (k, id)).collect();
        keys.sort_unstable_by_key(|&(k, _)| k);
        for (key, id) in keys {
            tables.put_key(key, id)?;
        }
        let mut dirty: Vec<u64> = work.dirty_lists.iter().copied().collect();
        dirty.sort_unstable();
        let mut list = Vec::new();
        for key in dirty {
            let (id, layer) = store::split_link_key(key);
            let id = id as graph::NodeId;
            work.list_into(&tables, id, layer, options.metric, &mut list)?;
            tables.put_list(false, id, layer, &list)?;
        }
        let mut reverse: Vec<(&u64, &Vec<graph::NodeId>)> = work.reverse.iter().collect();
        reverse.sort_unstable_by_key(|&(&k, _)| k);
        for (&key, list) in reverse {
            let (id, layer) = store::split_link_key(key);
            let id = id as graph::NodeId;
            tables.put_list(true, id, layer, list)?;
        }
    }
    let (freed, taken): (Vec<_>, Vec<_>) = work
        .free_changed
        .iter()
        .partition(|id| snap.free.contains(id));
    store::update_free_ids(txn, freed, taken)?;
    store::write_header(txn, &crate::header::header_of(options, &snap.counters))
}
