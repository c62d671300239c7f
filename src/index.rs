//! [`Index`]: open or create an index file, search it, read it, write it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::claims::{self, NameClaim};
use crate::engine::{Engine, Shared, WriterState};
use crate::error::{Error, Location, Result};
use crate::files::{self, Purpose};
use crate::header::{header_of, unpack_header, EMPTY};
use crate::load::{self, Loader};
use crate::load_progress::Progress;
use crate::options::{
    layer0_budget, page_cache_bytes, Hit, Options, SearchParams, DEFAULT_CACHE_BYTES,
};
use crate::read_txn::{self, ReadTxn};
use crate::snapshot::{Changes, Counters, Shape, Snapshot};
use crate::store::{self, Db, ReadTables, TableNames};

/// A persistent HNSW index stored in one file.
///
/// `Index` is `Send + Sync`: share it (e.g. in an `Arc`) and search from any number of threads
/// while one thread writes. A search sees one committed state; once `insert` returns `Ok`, every
/// search started afterwards finds the new vector, and with [`Durability::Immediate`] it
/// survives a crash or power loss.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use hnswdb::{Index, Metric, Options};
/// let index = Index::create(dir.path().join("demo.hnsw"), Options::new(3).metric(Metric::L2))?;
/// index.insert(1, &[1.0, 0.0, 0.0])?;
/// index.insert(2, &[0.0, 1.0, 0.0])?;
/// let hits = index.search(&[0.9, 0.1, 0.0], 1)?;
/// assert_eq!(hits[0].key, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Index {
    engine: Engine,
    /// The background load started by `open` (see `crate::load`).
    loader: Mutex<Loader>,
    /// Set by `close`: the file is closed, and the drop that follows has nothing left to do.
    closed: bool,
}

/// How an open loads the cache: in the background with the memory budget given (else the
/// stored one), or the same held back until `resume_load`.
pub(crate) enum Load {
    Background(Option<u64>),
    #[cfg(feature = "test-hooks")]
    Paused(Option<u64>),
}

impl Load {
    /// The memory budget given, if any.
    fn budget(&self) -> Option<u64> {
        match *self {
            Load::Background(budget) => budget,
            #[cfg(feature = "test-hooks")]
            Load::Paused(budget) => budget,
        }
    }
}

impl Index {
    /// Creates a new index file at `path`. Fails with [`Error::AlreadyExists`] if anything is
    /// there, and with [`Error::InvalidOptions`] for options out of range.
    ///
    /// The file is built under a temporary name beside `path` and moved into place only when
    /// it is complete, never replacing a file that appeared meanwhile: a crash leaves either no
    /// index or a whole one.
    pub fn create(path: impl AsRef<Path>, options: Options) -> Result<Index> {
        let path = path.as_ref();
        options.validate()?;
        if path.exists() {
            return Err(Error::AlreadyExists {
                index: Location::File(path.to_owned()),
            });
        }
        let (db, temp) = Index::build_empty(path, &options, Purpose::Create)?;
        files::place_new(temp, path)?;
        Index::start(Location::File(path.to_owned()), db, options, EMPTY, None)
    }

    /// A new index in a temporary file beside `path` (for `import`): the index, and the file to
    /// move into place once it is complete.
    pub(crate) fn create_temporary(
        path: &Path,
        options: Options,
    ) -> Result<(Index, tempfile::NamedTempFile)> {
        options.validate()?;
        let (db, temp) = Index::build_empty(path, &options, Purpose::Import)?;
        let index = Index::start(
            Location::File(temp.path().to_owned()),
            db,
            options,
            EMPTY,
            None,
        )?;
        Ok((index, temp))
    }

    /// A new, empty index that lives in memory only, over redb's in-memory storage: the whole
    /// API (transactions, deletes, `compact`, `export`) with nothing written to disk, and gone
    /// when dropped. For tests, fuzzing and throw-away indexes; [`export`](Index::export) saves
    /// what it holds, [`import`](Index::import) makes a file of that. Its
    /// [`path`](Index::path) is empty. [`Durability`] has no effect on it.
    ///
    /// ```
    /// use hnswdb::{Index, Metric, Options};
    /// let index = Index::in_memory(Options::new(2).metric(Metric::L2))?;
    /// index.insert_batch([(1, [1.0, 0.0]), (2, [0.0, 1.0])])?;
    /// assert_eq!(index.search(&[0.9, 0.1], 1)?[0].key, 1);
    /// assert!(index.path().as_os_str().is_empty());
    /// # Ok::<(), hnswdb::Error>(())
    /// ```
    pub fn in_memory(options: Options) -> Result<Index> {
        options.validate()?;
        let db = store::create_in_memory()?;
        init_empty(&db, &options)?;
        Index::start(Location::Memory, db, options, EMPTY, None)
    }

    /// An empty index file with `options`, under a temporary name beside `path`.
    fn build_empty(
        path: &Path,
        options: &Options,
        purpose: Purpose,
    ) -> Result<(Db, tempfile::NamedTempFile)> {
        files::remove_leftovers(path);
        let temp = files::temporary(path, purpose)?;
        let db = store::create_database(temp.reopen()?, page_cache_bytes(options.cache_bytes))?;
        init_empty(&db, options)?;
        Ok((db, temp))
    }

    /// Opens the index file at `path`, with the options stored in it. Fails with
    /// [`Error::NotFound`] if there is no file, [`Error::NotAnIndex`] if it is not an hnswdb
    /// index (the file is left unchanged), [`Error::Version`] for another format version and
    /// [`Error::Corrupt`] for a damaged file.
    ///
    /// The open reads the header and the free ids, not the whole file: damage elsewhere shows
    /// up when it is read (as [`Error::Corrupt`]), or by [`verify`](Index::verify). For a file
    /// that may be damaged, see [`open_checked`](Index::open_checked).
    ///
    /// The cache (upper layers, then layer 0 within [`Options::cache_bytes`]) is loaded by a
    /// background thread; searches and writes work at once, reading what is not loaded yet
    /// from the file, and speed up as the load goes on. [`wait_loaded`](Index::wait_loaded)
    /// waits for it to finish (e.g. to warm up before serving).
    pub fn open(path: impl AsRef<Path>) -> Result<Index> {
        Index::open_inner(path.as_ref(), false, Load::Background(None))
    }

    /// Opens like [`open`](Index::open), with the background load held back until
    /// [`resume_load`](Index::resume_load): for tests of searches and writes on a snapshot with
    /// nothing cached, and of commits that land while a load is pending. Only with the
    /// `test-hooks` feature (this crate's own tests): not part of the API.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn open_paused(path: impl AsRef<Path>) -> Result<Index> {
        Index::open_inner(path.as_ref(), false, Load::Paused(None))
    }

    /// Lets the load held back by [`open_paused`](Index::open_paused) start.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn resume_load(&self) {
        self.engine.shared.load.resume();
    }

    /// Opens like [`open`](Index::open), after checking the whole file: redb's check of every
    /// page checksum and of its allocator state, then [`verify`](Index::verify). Costs a read of
    /// the whole file (about 40 ms for a 67 MB index). A damaged file gets [`Error::Corrupt`].
    ///
    /// Use it for a file of unknown provenance (copied in, restored from a backup, on a disk
    /// that reported errors). [`open`](Index::open) reads only what it needs, so damage
    /// elsewhere shows up later, when it is read; this finds it before anything is used
    /// (damage in redb's own pages is reported with the location `"file pages"`). It matters
    /// most in an app built with `panic = "abort"`: redb still panics on some damaged files,
    /// in open, reads, writes and close (the crate's README gives the measured rates); hnswdb
    /// catches those panics and reports [`Error::Corrupt`], but with `abort` no
    /// `catch_unwind` can catch them, so the process ends. (Crashes and kills do not damage a file: redb's
    /// commits are atomic.) When redb's check finds its allocator state inconsistent but
    /// repairable, it repairs it in place.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.hnsw");
    /// # drop(hnswdb::Index::create(&path, hnswdb::Options::new(2))?);
    /// let index = hnswdb::Index::open_checked(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_checked(path: impl AsRef<Path>) -> Result<Index> {
        let index = Index::open_inner(path.as_ref(), true, Load::Background(None))?;
        index.verify()?;
        Ok(index)
    }

    fn open_inner(path: &Path, check_storage: bool, load: Load) -> Result<Index> {
        files::remove_leftovers(path);
        let requested = load.budget();
        let guess = page_cache_bytes(requested.unwrap_or(DEFAULT_CACHE_BYTES));
        let mut db = store::open_database(path, guess)?;
        if requested.is_none() {
            // redb's page cache is sized at its open, from the budget the header stores: with
            // another budget there, open again with the right size (a clean redb open reads a
            // few pages). A header that cannot be read is reported by `open_over`.
            let stored = store::guarded("open", || {
                let txn = store::begin_read(&db)?;
                let header = store::read_header(&txn, db.names(), &Location::File(path.into()))?;
                Ok(unpack_header(&header)?.0.cache_bytes)
            });
            if let Ok(stored) = stored {
                if page_cache_bytes(stored) != guess {
                    drop(db);
                    db = store::open_database(path, page_cache_bytes(stored))?;
                }
            }
        }
        if check_storage {
            store::check_storage(&mut db)?;
        }
        Index::open_over(Location::File(path.to_owned()), db, load)
    }

    /// Opens the index whose tables `db` names, found at `location`.
    pub(crate) fn open_over(location: Location, db: Db, load: Load) -> Result<Index> {
        let header = store::guarded("open", || {
            store::read_header(&store::begin_read(&db)?, db.names(), &location)
        })?;
        let (options, counters) = unpack_header(&header)?;
        let (budget, paused) = match load {
            Load::Background(budget) => (budget, false),
            #[cfg(feature = "test-hooks")]
            Load::Paused(budget) => (budget, true),
        };
        let budget = layer0_budget(budget.unwrap_or(options.cache_bytes));
        Index::start(location, db, options, counters, Some((budget, paused)))
    }

    /// Opens the index at `path`, or creates it with `options` if there is no file. An existing
    /// index must have the same `dim`, `metric`, `m`, `ef_construction`, `seed` and
    /// `quantization`
    /// ([`Error::OptionsMismatch`] otherwise); its `ef_search`, `durability`, `quick_repair`
    /// and `cache_bytes` become those of `options`.
    pub fn open_or_create(path: impl AsRef<Path>, options: Options) -> Result<Index> {
        let path = path.as_ref();
        options.validate()?;
        if !path.exists() {
            return Index::create(path, options);
        }
        let index = Index::open_inner(path, false, Load::Background(Some(options.cache_bytes)))?;
        index.adopt(options)
    }

    /// This index, opened by `open_or_create` (or `open_or_create_in`) with `options`: the
    /// structural ones must match the stored ones; the others replace them.
    fn adopt(mut self, options: Options) -> Result<Index> {
        let stored = &self.engine.options;
        let mismatch = |setting, stored: String, requested: String| {
            Err(Error::OptionsMismatch {
                setting,
                stored,
                requested,
            })
        };
        if stored.dim != options.dim {
            return mismatch("dim", stored.dim.to_string(), options.dim.to_string());
        }
        if stored.metric != options.metric {
            return mismatch(
                "metric",
                stored.metric.to_string(),
                options.metric.to_string(),
            );
        }
        if stored.m != options.m {
            return mismatch("m", stored.m.to_string(), options.m.to_string());
        }
        if stored.ef_construction != options.ef_construction {
            return mismatch(
                "ef_construction",
                stored.ef_construction.to_string(),
                options.ef_construction.to_string(),
            );
        }
        if stored.seed != options.seed {
            return mismatch("seed", stored.seed.to_string(), options.seed.to_string());
        }
        if stored.quantization != options.quantization {
            return mismatch(
                "quantization",
                stored.quantization.to_string(),
                options.quantization.to_string(),
            );
        }
        // `build_threads` belongs to this process, not the file: a change of it alone writes
        // nothing.
        let mut stored_part = options.clone();
        stored_part.build_threads = self.engine.options.build_threads;
        let changed = stored_part != self.engine.options;
        self.engine.options = options;
        if changed {
            // The commit stores the new settings and fits the cache to the new budget under the
            // writer lock, so a background install cannot land between the two and be lost.
            self.write()?.commit()?;
        }
        Ok(self)
    }

    /// Creates the index `name` inside the app's redb database `db`, beside the app's own
    /// tables. Its tables are named `hnswdb/<name>/...`; hnswdb touches no other table. The
    /// name is 1 to 64 ASCII letters, digits, `_`, `-` or `.` ([`Error::InvalidName`]
    /// otherwise); an index of that name already there is [`Error::AlreadyExists`], a handle
    /// of it open in this process [`Error::InUse`].
    ///
    /// The app keeps using `db` for its own tables: [`WriteTxn::redb`](crate::WriteTxn::redb)
    /// writes its rows in the index's transaction, [`Index::read`] reads them at the index's
    /// commit, and [`Index::write_with`] commits several indexes of `db` at once. Do not call
    /// an index write on a thread that holds a redb write transaction of its own on `db`:
    /// redb would make it wait for that one (use `WriteTxn::redb` instead).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use hnswdb::{redb, Index, Metric, Options};
    /// # let dir = tempfile::tempdir()?;
    /// let db = Arc::new(redb::Database::create(dir.path().join("app.redb"))?);
    /// let index = Index::create_in(Arc::clone(&db), "photos", Options::new(2).metric(Metric::L2))?;
    /// index.insert(1, &[0.5, 0.5])?;
    /// drop(index);
    /// assert_eq!(hnswdb::index_names(&db)?, ["photos"]);
    /// assert_eq!(Index::open_in(db, "photos")?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_in(db: Arc<redb::Database>, name: &str, options: Options) -> Result<Index> {
        options.validate()?;
        let claim = claim_name(&db, name)?;
        let db = Db::shared(db, TableNames::named(name));
        let location = Location::Named(name.to_owned());
        let (exists, index_file) = store::guarded("create", || {
            let txn = store::begin_read(&db)?;
            Ok((
                store::index_exists(&txn, db.names())?,
                store::index_exists(&txn, &TableNames::whole_file())?,
            ))
        })?;
        if index_file {
            return Err(Error::InvalidOptions {
                reason: "this redb database is an hnswdb index file, not an app's database: \
                    create named indexes in the app's own database"
                    .into(),
            });
        }
        if exists {
            return Err(Error::AlreadyExists { index: location });
        }
        Index::create_over(location, db, options).map(|index| index.holding(claim))
    }

    /// A new, empty index with `options` in the tables `db` names.
    pub(crate) fn create_over(location: Location, db: Db, options: Options) -> Result<Index> {
        init_empty(&db, &options)?;
        Index::start(location, db, options, EMPTY, None)
    }

    /// Opens the index `name` inside the app's redb database `db`, with the options stored in
    /// it: [`Error::NotFound`] if there is none, [`Error::InUse`] if a handle of it is open in
    /// this process. Like [`open`](Index::open), the open reads the header only; the cache
    /// loads in the background.
    pub fn open_in(db: Arc<redb::Database>, name: &str) -> Result<Index> {
        Index::open_named(db, name, Load::Background(None))
    }

    fn open_named(db: Arc<redb::Database>, name: &str, load: Load) -> Result<Index> {
        let claim = claim_name(&db, name)?;
        Index::open_claimed(db, name, claim, load)
    }

    /// [`open_in`](Index::open_in) with the name claimed already.
    fn open_claimed(
        db: Arc<redb::Database>,
        name: &str,
        claim: NameClaim,
        load: Load,
    ) -> Result<Index> {
        let db = Db::shared(db, TableNames::named(name));
        let location = Location::Named(name.to_owned());
        if !store::guarded("open", || {
            store::index_exists(&store::begin_read(&db)?, db.names())
        })? {
            return Err(Error::NotFound { index: location });
        }
        Index::open_over(location, db, load).map(|index| index.holding(claim))
    }

    /// Opens the index `name` inside `db`, or creates it with `options` if there is none; an
    /// existing one is treated as [`open_or_create`](Index::open_or_create) treats a file.
    pub fn open_or_create_in(
        db: Arc<redb::Database>,
        name: &str,
        options: Options,
    ) -> Result<Index> {
        options.validate()?;
        match Index::open_named(
            Arc::clone(&db),
            name,
            Load::Background(Some(options.cache_bytes)),
        ) {
            Ok(index) => index.adopt(options),
            Err(Error::NotFound { .. }) => Index::create_in(db, name, options),
            Err(e) => Err(e),
        }
    }

    /// [`open_in`](Index::open_in) with the name claimed already (by an import that built it).
    pub(crate) fn open_imported(
        db: Arc<redb::Database>,
        name: &str,
        claim: NameClaim,
    ) -> Result<Index> {
        Index::open_claimed(db, name, claim, Load::Background(None))
    }

    /// This handle, holding `claim` on its name until it is dropped.
    fn holding(mut self, claim: NameClaim) -> Index {
        self.engine.name_claim = Some(claim);
        self
    }

    /// The index over `db`: loaded at once (a new, empty index) when `background` is `None`,
    /// else with no cached part and a loader thread started with that layer-0 budget (held
    /// back until `resume_load` if paused).
    fn start(
        location: Location,
        db: Db,
        options: Options,
        counters: Counters,
        background: Option<(u64, bool)>,
    ) -> Result<Index> {
        let shape = Shape::of(&options);
        let db = Arc::new(db);
        let snap = store::guarded("open", || {
            let txn = store::begin_read(&db)?;
            match background {
                None => Snapshot::load(&db, &txn, counters, &shape),
                Some(_) => Snapshot::unloaded(&db, &txn, counters, &shape),
            }
        })?;
        let snap = Arc::new(snap);
        let shared = Arc::new(Shared::new(
            Arc::clone(&snap),
            background.map(|_| Changes::default()),
            Progress::new(background.is_none(), layer0_budget(options.cache_bytes)),
        ));
        let loader = match background {
            None => None,
            Some((budget, paused)) => {
                shared.load.budget.store(budget, Ordering::Release);
                if paused {
                    shared.load.pause();
                }
                Some(load::spawn(Arc::clone(&shared), snap, shape)?)
            }
        };
        Ok(Index {
            engine: Engine {
                name_claim: None,
                location,
                db: RwLock::new(db),
                options,
                shared,
                poisoned: AtomicBool::new(false),
            },
            loader: Mutex::new(Loader::new(loader)),
            closed: false,
        })
    }

    /// Whether the cache is fully loaded: the background load that [`open`](Index::open)
    /// started has finished, and every part within [`Options::cache_bytes`] is in memory.
    /// Searches do not need it (they read the rest from the file, more slowly).
    pub fn is_loaded(&self) -> bool {
        self.engine.shared.load.is_loaded()
    }

    /// Waits until the background load that [`open`](Index::open) started has finished: from
    /// then on searches run from memory as far as the budget allows. Returns at once for an
    /// index from [`create`](Index::create), or a finished load. An `Err` says why the load
    /// stopped (a damaged file: [`Error::Corrupt`]; a failing disk: [`Error::Io`]); the index
    /// still works, reading from the file.
    ///
    /// The load installs what it read under the writer lock, so this waits for no
    /// [`WriteTxn`] of the calling thread: there it is [`Error::WriteInProgress`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("w.hnsw");
    /// # drop(hnswdb::Index::create(&path, hnswdb::Options::new(2))?);
    /// let index = hnswdb::Index::open(&path)?;
    /// index.wait_loaded()?; // warm before serving
    /// assert!(index.is_loaded());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_loaded(&self) -> Result<()> {
        self.engine.shared.check_not_writing()?;
        self.engine.shared.load.wait()
    }

    /// Gives file space back after many removals, or after a large build: every live row is
    /// copied, in key order, into a fresh file next to the index, which then atomically
    /// replaces the old one. Afterwards the file holds the rows and little else (redb grows a
    /// file by doubling it, so a fresh build keeps the slack of its last doubling; minilm50k:
    /// 142.6 MB built, 118.0 MB compacted). The graph is kept as it is (no rebuild), and a crash
    /// at any moment leaves either the old or the new file in place, both complete.
    ///
    /// Writes wait for it; searches go on meanwhile (those that started before it finish on the
    /// old file). Called on a thread that holds a [`WriteTxn`] of this index, it is
    /// [`Error::WriteInProgress`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use std::sync::Arc;
    /// use hnswdb::{Index, Metric, Options};
    /// let index = Arc::new(Index::create(dir.path().join("c.hnsw"), Options::new(2).metric(Metric::L2))?);
    /// index.insert_batch((0..100u64).map(|k| (k, [k as f32, 1.0])))?;
    /// for k in 0..90 {
    ///     index.remove(k)?;
    /// }
    /// index.compact()?;
    /// assert_eq!(index.len(), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compact(&self) -> Result<()> {
        self.engine.check_writable()?;
        self.engine.shared.check_not_writing()?;
        let mut loader = self.loader.lock().unwrap_or_else(PoisonError::into_inner);
        // The loader reads the old file and installs under the writer lock: stopped before the
        // lock is taken, restarted if the compaction fails.
        loader.stop(&self.engine.shared.load);
        let mut state = self.engine.shared.lock_writer()?;
        let result = self.compact_locked(&mut state);
        if result.is_err() && !self.is_loaded() {
            state.changes = Some(Changes::default());
            if let Ok(handle) = load::spawn(
                Arc::clone(&self.engine.shared),
                self.engine.shared.snapshot(),
                Shape::of(&self.engine.options),
            ) {
                *loader = Loader::new(Some(handle));
            }
        }
        result
    }

    /// [`compact`](Index::compact) with the writer lock held and no loader running.
    fn compact_locked(&self, state: &mut WriterState) -> Result<()> {
        let path = match &self.engine.location {
            Location::File(path) => Some(path),
            Location::Memory => None,
            Location::Named(_) => {
                return Err(Error::NotInSharedDatabase {
                    operation: "compact",
                    instead: "redb gives the space of removed rows back to the app's database \
                        for reuse; to shrink the file, close every index and transaction and call \
                        redb's Database::compact",
                })
            }
        };
        let db = self.engine.database();
        if path.is_some()
            && store::guarded("compact", || {
                store::has_other_tables(&store::begin_read(&db)?, db.names())
            })?
        {
            return Err(Error::NotInSharedDatabase {
                operation: "compact",
                instead: "the index file also holds tables that are not the index's (written \
                    with redb directly), which a compaction would leave behind; move them out, \
                    or keep the index in your database with Index::create_in",
            });
        }
        drop(db);
        let counters = self.engine.snapshot().counters;
        let shape = Shape::of(&self.engine.options);
        let (fresh, temp) = match path {
            None => (store::create_in_memory()?, None),
            Some(path) => {
                let (db, temp) = Index::build_empty(path, &self.engine.options, Purpose::Compact)?;
                (db, Some(temp))
            }
        };
        let mut fresh = fresh;
        store::guarded("compact", || {
            store::copy_all(&self.engine.database(), &fresh)
        })?;
        fresh.shrink()?;
        let fresh = Arc::new(fresh);
        let snap = store::guarded("compact", || {
            Snapshot::load(&fresh, &store::begin_read(&fresh)?, counters, &shape)
        })?;
        if let (Some(temp), Some(path)) = (temp, path) {
            // The open handle follows the file through the rename.
            files::replace(temp, path)?;
        }
        // The copy was one durable commit: nothing is left to checkpoint.
        state.committed(true);
        *self
            .engine
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner) = fresh;
        self.engine.shared.publish(snap);
        self.engine.shared.load.set_loaded();
        Ok(())
    }

    /// The open index below this handle.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The index's options (structural ones as stored in the file).
    pub fn options(&self) -> &Options {
        &self.engine.options
    }

    /// The vector dimension.
    pub fn dim(&self) -> usize {
        self.engine.options.dim
    }

    /// The path of the index file; empty for an [`in_memory`](Index::in_memory) index and an
    /// index inside an app's database.
    pub fn path(&self) -> &Path {
        match &self.engine.location {
            Location::File(path) => path,
            _ => Path::new(""),
        }
    }

    /// The index's name inside an app's database ([`open_in`](Index::open_in)); `None` for an
    /// index file or an index in memory.
    pub fn name(&self) -> Option<&str> {
        match &self.engine.location {
            Location::Named(name) => Some(name),
            _ => None,
        }
    }

    /// Where the index lives.
    pub fn location(&self) -> &Location {
        &self.engine.location
    }

    /// Number of vectors in the index.
    pub fn len(&self) -> usize {
        self.engine.snapshot().counters.len as usize
    }

    /// Whether the index holds no vectors.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts `vector` under `key` in its own transaction; an existing key's vector is replaced
    /// (upsert). Rejects a vector of the wrong dimension, with NaN or infinity, or all zeros under
    /// cosine.
    pub fn insert(&self, key: u64, vector: &[f32]) -> Result<()> {
        let mut tx = self.write()?;
        tx.insert(key, vector)?;
        tx.commit()
    }

    /// Inserts (upserts) every `(key, vector)` in one transaction: all of them or, on any error,
    /// none. A key repeated in `items` ends up with its last vector. A batch of a few hundred
    /// keys or more is linked on [`Options::build_threads`] threads; see
    /// [`WriteTxn::insert_batch`].
    pub fn insert_batch<I, V>(&self, items: I) -> Result<()>
    where
        I: IntoIterator<Item = (u64, V)>,
        V: AsRef<[f32]>,
    {
        let mut tx = self.write()?;
        tx.insert_batch(items)?;
        tx.commit()
    }

    /// Removes `key` in its own transaction, repairing every list that pointed at it; returns
    /// whether it was present.
    pub fn remove(&self, key: u64) -> Result<bool> {
        let mut tx = self.write()?;
        let existed = tx.remove(key)?;
        if existed {
            tx.commit()?;
        }
        Ok(existed)
    }

    /// Makes every commit so far durable, now. A no-op under [`Durability::Immediate`] (every
    /// commit already is) and when nothing was committed since the last checkpoint.
    ///
    /// Under [`Durability::Eventual`] a checkpoint is otherwise written only by a commit (every
    /// [`EVENTUAL_CHECKPOINT_COMMITS`](crate::EVENTUAL_CHECKPOINT_COMMITS)th, or the first one
    /// [`EVENTUAL_CHECKPOINT_MS`](crate::EVENTUAL_CHECKPOINT_MS) ms after the last checkpoint) and
    /// when the index is dropped: there is no timer. Call this after a burst of writes that must
    /// not be lost, or from your own timer.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use hnswdb::{Durability, Index, Metric, Options};
    /// let options = Options::new(2).metric(Metric::L2).durability(Durability::Eventual);
    /// let index = Index::create(dir.path().join("e.hnsw"), options)?;
    /// index.insert(1, &[0.5, 0.5])?; // may be lost by a crash now
    /// index.checkpoint()?;          // survives a crash or power loss from here on
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkpoint(&self) -> Result<()> {
        self.engine.check_writable()?;
        let mut state = self.engine.shared.lock_writer()?;
        self.engine.checkpoint_locked(&mut state)
    }

    /// Closes the index: stops the background load, makes the last commits durable (under
    /// [`Durability::Eventual`]) and closes the file, returning any error of these, which a
    /// drop has to swallow. A handle that refused writes after a storage failure checkpoints
    /// nothing (its last commits may be lost, as its errors said).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use hnswdb::{Durability, Index, Metric, Options};
    /// let options = Options::new(2).metric(Metric::L2).durability(Durability::Eventual);
    /// let index = Index::create(dir.path().join("c.hnsw"), options)?;
    /// index.insert(1, &[0.5, 0.5])?;
    /// index.close()?; // durable now, or an error says why not
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(mut self) -> Result<()> {
        let checkpoint = self.shut_down();
        self.closed = true;
        // Every snapshot holds the database: the current one (the only one left, since no
        // search or loader runs now) lets go of it, so that it can be closed here, with its
        // error, and not by a drop.
        let closed = Arc::new(Db::closed());
        let mut snap = (*self.engine.snapshot()).clone();
        snap.file = Arc::clone(&closed);
        self.engine.publish(snap);
        let db = std::mem::replace(
            self.engine
                .db
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
            closed,
        );
        let close = match Arc::try_unwrap(db) {
            Ok(db) => db.close(),
            Err(_) => Ok(()),
        };
        checkpoint.and(close)
    }

    /// Stops the loader and makes the last commits durable (unless the handle is poisoned).
    fn shut_down(&mut self) -> Result<()> {
        // The loader holds a read transaction of the file: it ends before the file closes.
        self.loader
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .stop(&self.engine.shared.load);
        // An in-memory index ends with the process: there is nothing to make durable.
        if self.engine.poisoned.load(Ordering::Acquire) || self.engine.is_in_memory() {
            return Ok(());
        }
        let mut state = self.engine.shared.lock_writer()?;
        self.engine.checkpoint_locked(&mut state)
    }

    /// The `k` nearest keys to `query`, nearest first (ties by key), with the default `ef_search`.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        self.search_with(query, &SearchParams::new(k))
    }

    /// The nearest keys to `query` as `params` says: `k`, `ef` (raised to `k`) and a key filter.
    /// With a filter, `k` hits come back whenever at least `k` keys pass it: when the graph walk
    /// finds fewer, the matching keys are scanned exactly.
    pub fn search_with(&self, query: &[f32], params: &SearchParams) -> Result<Vec<Hit>> {
        read_txn::search(&self.engine.snapshot(), &self.engine.options, query, params)
    }

    /// The nearest keys to each of `queries` (in their order), each as
    /// [`search_with`](Index::search_with) with `params`, spread over
    /// [`SearchParams::threads`] threads (every core by default; the calling thread is one of
    /// them). All the queries see one and the same commit. `queries` is any slice of vectors:
    /// `&[Vec<f32>]`, `&[[f32; N]]`, `&[&[f32]]`.
    ///
    /// Every query is checked first: a query of the wrong length, with a NaN or infinite
    /// component (or all zero under cosine), fails the whole batch before any search runs.
    /// A filter is called from every thread of the batch.
    ///
    /// ```
    /// use hnswdb::{Index, Metric, Options, SearchParams};
    /// let index = Index::in_memory(Options::new(2).metric(Metric::L2))?;
    /// index.insert_batch((0..100u64).map(|k| (k, [k as f32, 1.0])))?;
    /// let queries = vec![vec![3.1, 1.0], vec![42.0, 1.0], vec![97.8, 1.0]];
    /// let answers = index.search_batch(&queries, &SearchParams::new(1).threads(2))?;
    /// let nearest: Vec<u64> = answers.iter().map(|hits| hits[0].key).collect();
    /// assert_eq!(nearest, [3, 42, 98]);
    /// # Ok::<(), hnswdb::Error>(())
    /// ```
    pub fn search_batch<Q>(&self, queries: &[Q], params: &SearchParams) -> Result<Vec<Vec<Hit>>>
    where
        Q: AsRef<[f32]> + Sync,
    {
        read_txn::search_batch(
            &self.engine.snapshot(),
            &self.engine.options,
            queries,
            params,
        )
    }

    /// The vector stored under `key`, exactly as inserted.
    pub fn get(&self, key: u64) -> Result<Option<Vec<f32>>> {
        read_txn::get(&self.engine.snapshot(), key)
    }

    /// Whether `key` is in the index.
    pub fn contains(&self, key: u64) -> Result<bool> {
        read_txn::contains(&self.engine.snapshot(), key)
    }

    /// Every key, ascending.
    pub fn keys(&self) -> Result<Vec<u64>> {
        read_txn::keys(&self.engine.snapshot())
    }

    /// A read at the current commit: searches and gets through it see one committed state,
    /// and [`ReadTxn::redb`] reads the app's own tables at the same commit (inside an app's
    /// database, a hit's row is always there). Searches through `Index` need no `ReadTxn`;
    /// take one to read the index and the app's tables together. It waits only for a commit
    /// being published this moment.
    ///
    /// A `ReadTxn` holds its commit's pages in the file, as any redb read transaction does:
    /// keep it for a request, not for the life of the app.
    pub fn read(&self) -> Result<ReadTxn> {
        let engine = &self.engine;
        let _publishing = engine
            .shared
            .publishing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let db = engine.database();
        let txn = store::guarded("read", || store::begin_read(&db))?;
        let mut snap = engine.snapshot();
        // In an app's database, the app's commits go on between the index's: the published
        // snapshot's read transaction would keep the pages they free from reuse until the next
        // index commit. Following the app's commit here lets them go (skipped while a writer or
        // the background load holds the writer lock: they publish a fresh snapshot soon).
        if db.is_shared() {
            if let Ok(Some(_writer)) = engine.shared.try_lock_writer() {
                let mut fresh = (*snap).clone();
                fresh.tables = store::guarded("read", || {
                    ReadTables::open(&txn, db.names(), engine.options.dim).map(Arc::new)
                })?;
                engine.publish(fresh);
                snap = engine.snapshot();
            }
        }
        Ok(ReadTxn::new(snap, engine.options.clone(), txn))
    }
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("location", &self.engine.location)
            .field("len", &self.len())
            .field("options", &self.engine.options)
            .finish_non_exhaustive()
    }
}

impl Drop for Index {
    /// Under `Durability::Eventual`, makes the last commits durable; [`Index::close`] does the
    /// same and returns the errors this has to swallow.
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.shut_down();
        }
    }
}

/// Creates the tables of an empty index with `options` in `db`.
fn init_empty(db: &Db, options: &Options) -> Result<()> {
    let (txn, _writer) = claims::begin_write(db)?;
    store::guarded("create", || {
        store::init_tables(&txn, db.names(), &header_of(options, &EMPTY))?;
        txn.commit()?;
        Ok(())
    })
}

/// Claims the index `name` of `db` for one handle, after checking the name.
pub(crate) fn claim_name(db: &redb::Database, name: &str) -> Result<NameClaim> {
    store::check_name(name).map_err(|reason| Error::InvalidName {
        name: name.to_owned(),
        reason,
    })?;
    NameClaim::take(db, name)
}

/// The names of the indexes inside the app's redb database `db`, ascending. Only tables named
/// `hnswdb/<name>/meta` count; nothing else is read.
///
/// ```
/// use std::sync::Arc;
/// use hnswdb::{redb, Index, Options};
/// # let dir = tempfile::tempdir()?;
/// let db = Arc::new(redb::Database::create(dir.path().join("app.redb"))?);
/// drop(Index::create_in(Arc::clone(&db), "b", Options::new(4))?);
/// drop(Index::create_in(Arc::clone(&db), "a", Options::new(4))?);
/// assert_eq!(hnswdb::index_names(&db)?, ["a", "b"]);
/// assert!(hnswdb::delete_index(&db, "a")?);
/// assert!(!hnswdb::delete_index(&db, "a")?);
/// assert_eq!(hnswdb::index_names(&db)?, ["b"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn index_names(db: &redb::Database) -> Result<Vec<String>> {
    store::guarded("index names", || store::index_names(db))
}

/// Deletes the index `name` from the app's redb database `db`, in one durable commit: every
/// table of that index and nothing else. Returns whether there was one. Refused with
/// [`Error::InUse`] while a handle of it is open in this process.
pub fn delete_index(db: &redb::Database, name: &str) -> Result<bool> {
    let _claim = claim_name(db, name)?;
    let (txn, _writer) = claims::begin_write(db)?;
    store::guarded("delete index", || {
        let existed = store::delete_tables(&txn, &TableNames::named(name))?;
        txn.commit()?;
        Ok(existed)
    })
}
