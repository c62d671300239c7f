//! Settings of an index ([`Options`]) and of one search ([`SearchParams`]).

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// How distance between two vectors is measured. Smaller is always closer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Squared Euclidean distance, `Σ (aᵢ − bᵢ)²`.
    L2,
    /// `1 − cos(a, b)`; zero vectors are rejected.
    Cosine,
    /// `1 − a·b`, for vectors the caller keeps normalised (inner-product search).
    Dot,
}

impl Metric {
    /// The byte stored in the file for this metric. Persisted: never renumber.
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Metric::L2 => 0,
            Metric::Cosine => 1,
            Metric::Dot => 2,
        }
    }

    /// The metric stored as `byte`, if it is one.
    pub(crate) fn from_byte(byte: u8) -> Option<Metric> {
        match byte {
            0 => Some(Metric::L2),
            1 => Some(Metric::Cosine),
            2 => Some(Metric::Dot),
            _ => None,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Metric::L2 => "l2",
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
        })
    }
}

/// Parses the names [`Display`](fmt::Display) prints: `l2`, `cosine`, `dot`.
///
/// ```
/// use hnswdb::Metric;
/// assert_eq!("cosine".parse::<Metric>()?, Metric::Cosine);
/// for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
///     assert_eq!(metric.to_string().parse::<Metric>()?, metric);
/// }
/// assert!("manhattan".parse::<Metric>().is_err());
/// # Ok::<(), hnswdb::Error>(())
/// ```
impl std::str::FromStr for Metric {
    type Err = Error;

    fn from_str(name: &str) -> Result<Metric> {
        [Metric::L2, Metric::Cosine, Metric::Dot]
            .into_iter()
            .find(|m| m.to_string() == name)
            .ok_or_else(|| Error::InvalidOptions {
                reason: format!("unknown metric {name:?} (l2, cosine or dot)"),
            })
    }
}

/// When a committed write reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Durability {
    /// Every commit is fsynced before it returns: once `insert`, `remove` or `commit` returns
    /// `Ok`, the change survives a process crash and a power loss.
    Immediate,
    /// Commits are not fsynced one by one: a commit is made durable (a checkpoint, which also
    /// makes every earlier commit durable) when it is the [`EVENTUAL_CHECKPOINT_COMMITS`]th since
    /// the last checkpoint or comes at least [`EVENTUAL_CHECKPOINT_MS`] ms after it, and a
    /// checkpoint is written by [`Index::checkpoint`](crate::Index::checkpoint),
    /// [`Index::compact`](crate::Index::compact) and when the [`Index`](crate::Index) is dropped.
    /// There is no timer: commits followed by silence stay volatile until one of those happens.
    ///
    /// What a crash may lose: after a **process crash** (kill, panic, abort) the commits since
    /// the last checkpoint may be lost — at most `EVENTUAL_CHECKPOINT_COMMITS - 1` of them,
    /// however long ago they were made — but the index reopens at the state after some commit:
    /// never a half-applied transaction, never a later commit without an earlier one (tested
    /// with thousands of SIGKILLs). After a
    /// **power loss or OS crash** the same bound holds as far as the disk honours fsync: the file
    /// reopens at the last checkpoint or a later commit.
    Eventual,
}

/// With [`Durability::Eventual`], at most this many commits pass between durable checkpoints.
pub const EVENTUAL_CHECKPOINT_COMMITS: u32 = 64;
/// With [`Durability::Eventual`], a commit this many milliseconds after the last durable
/// checkpoint is itself made durable.
pub const EVENTUAL_CHECKPOINT_MS: u64 = 1000;

/// Settings of an index.
///
/// The structural settings (`dim`, `metric`, `m`, `ef_construction`, `seed`) are fixed when the
/// index is created and stored in its file. The others (`ef_search`, `durability`,
/// `quick_repair`, `cache_bytes`) are stored too, and may be changed when the index is opened
/// with [`Index::open_or_create`](crate::Index::open_or_create). `build_threads` belongs to the
/// process, not the file: it is never stored, and [`Index::open`](crate::Index::open) uses the
/// default.
///
/// ```
/// use hnswdb::{Durability, Metric, Options};
/// let options = Options::new(384).metric(Metric::Cosine).m(16).ef_construction(200)
///     .ef_search(64).seed(42).durability(Durability::Immediate);
/// assert_eq!(options.get_m(), 16);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub(crate) dim: usize,
    pub(crate) metric: Metric,
    pub(crate) m: usize,
    pub(crate) ef_construction: usize,
    pub(crate) ef_search: usize,
    pub(crate) seed: u64,
    pub(crate) durability: Durability,
    pub(crate) quick_repair: bool,
    pub(crate) cache_bytes: u64,
    /// Threads of a batch insert; 0 means `available_parallelism`. Not stored in the file.
    pub(crate) build_threads: usize,
}

/// Largest accepted dimension.
pub(crate) const MAX_DIM: usize = 65_536;
/// Largest accepted `m` (layer 0 holds `2*m`, and lists are stored with `u32` ids).
pub(crate) const MAX_M: usize = 256;
/// Largest accepted `build_threads` or search `threads`: far beyond any useful count, small
/// enough that a typo (say `usize::MAX`) is refused instead of trying to start that many threads.
pub(crate) const MAX_THREADS: usize = 1024;

/// A thread count as the user gives it: 0 means [`std::thread::available_parallelism`].
fn resolve_threads(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// The error for a thread count over [`MAX_THREADS`], naming the `setting`.
fn check_threads(setting: &str, threads: usize) -> Result<()> {
    if threads > MAX_THREADS {
        return Err(Error::InvalidOptions {
            reason: format!("{setting} must be 0 (all cores) to {MAX_THREADS}, got {threads}"),
        });
    }
    Ok(())
}

/// Default budget of the layer-0 cache.
pub const DEFAULT_CACHE_BYTES: u64 = 1 << 30;

impl Options {
    /// Options for `dim`-dimensional vectors, with the defaults: [`Metric::Cosine`], `m` 16
    /// (layer 0 holds `2*m` = 32 neighbours), `ef_construction` 200, `ef_search` 64, seed 0,
    /// [`Durability::Immediate`], quick-repair on, a layer-0 cache of up to 1 GiB, and batch
    /// inserts on as many threads as [`std::thread::available_parallelism`] says.
    pub fn new(dim: usize) -> Options {
        Options {
            dim,
            metric: Metric::Cosine,
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            seed: 0,
            durability: Durability::Immediate,
            quick_repair: true,
            cache_bytes: DEFAULT_CACHE_BYTES,
            build_threads: 0,
        }
    }

    /// The distance metric.
    pub fn metric(mut self, metric: Metric) -> Options {
        self.metric = metric;
        self
    }

    /// Neighbours kept per node on the upper layers (`2*m` on layer 0). 2 to 256.
    pub fn m(mut self, m: usize) -> Options {
        self.m = m;
        self
    }

    /// Size of the candidate list while inserting; larger builds a better graph, slower.
    pub fn ef_construction(mut self, ef: usize) -> Options {
        self.ef_construction = ef;
        self
    }

    /// Default size of the candidate list while searching ([`SearchParams::ef`] overrides it).
    pub fn ef_search(mut self, ef: usize) -> Options {
        self.ef_search = ef;
        self
    }

    /// Seed of the level generator: the same seed and the same operations build the same graph.
    pub fn seed(mut self, seed: u64) -> Options {
        self.seed = seed;
        self
    }

    /// When commits reach the disk.
    pub fn durability(mut self, durability: Durability) -> Options {
        self.durability = durability;
        self
    }

    /// Whether commits write redb's quick-repair data (on by default). With it, the first open
    /// after a crash takes milliseconds; without it, redb walks the whole file (about 0.3–1 s per
    /// GB), and each commit is somewhat cheaper.
    pub fn quick_repair(mut self, enabled: bool) -> Options {
        self.quick_repair = enabled;
        self
    }

    /// Memory budget, in bytes, for the layer-0 cache: vectors first (those of the lowest node
    /// ids, as many as fit, when not all do), then neighbour lists if all vectors and lists
    /// fit. Upper layers are always cached. With 0, every layer-0 read goes to the file.
    /// Default [`DEFAULT_CACHE_BYTES`].
    pub fn cache_bytes(mut self, bytes: u64) -> Options {
        self.cache_bytes = bytes;
        self
    }

    /// Threads that link the vectors of one [`insert_batch`](crate::Index::insert_batch); 0 (the
    /// default) means [`std::thread::available_parallelism`]. At most 1024.
    ///
    /// With 1, a batch is inserted one vector after another, exactly as by repeated
    /// [`insert`](crate::WriteTxn::insert): the graph is a pure function of the seed and the
    /// operations. With more, the threads race for the same neighbour lists, so the graph (not
    /// its quality) varies from run to run: a parallel build is not bit-reproducible. Small
    /// batches are always inserted serially. The setting is not stored in the file.
    pub fn build_threads(mut self, threads: usize) -> Options {
        self.build_threads = threads;
        self
    }

    /// The vector dimension.
    pub fn get_dim(&self) -> usize {
        self.dim
    }
    /// The metric.
    pub fn get_metric(&self) -> Metric {
        self.metric
    }
    /// Neighbours per node on the upper layers.
    pub fn get_m(&self) -> usize {
        self.m
    }
    /// Neighbours per node on layer 0: `2*m`.
    pub fn get_m0(&self) -> usize {
        2 * self.m
    }
    /// The candidate-list size while inserting.
    pub fn get_ef_construction(&self) -> usize {
        self.ef_construction
    }
    /// The default candidate-list size while searching.
    pub fn get_ef_search(&self) -> usize {
        self.ef_search
    }
    /// The level generator's seed.
    pub fn get_seed(&self) -> u64 {
        self.seed
    }
    /// The durability mode.
    pub fn get_durability(&self) -> Durability {
        self.durability
    }
    /// Whether commits write quick-repair data.
    pub fn get_quick_repair(&self) -> bool {
        self.quick_repair
    }
    /// The layer-0 cache budget in bytes.
    pub fn get_cache_bytes(&self) -> u64 {
        self.cache_bytes
    }

    /// The threads of a batch insert, 0 resolved to the available parallelism.
    pub fn get_build_threads(&self) -> usize {
        resolve_threads(self.build_threads)
    }

    /// Checks every setting; the error names the first one out of range.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::InvalidOptions { reason });
        if self.dim == 0 || self.dim > MAX_DIM {
            return bad(format!("dim must be 1..={MAX_DIM}, got {}", self.dim));
        }
        if !(2..=MAX_M).contains(&self.m) {
            return bad(format!("m must be 2..={MAX_M}, got {}", self.m));
        }
        if self.ef_construction == 0 || self.ef_construction > u32::MAX as usize {
            return bad(format!(
                "ef_construction must be at least 1, got {}",
                self.ef_construction
            ));
        }
        if self.ef_search == 0 || self.ef_search > u32::MAX as usize {
            return bad(format!(
                "ef_search must be at least 1, got {}",
                self.ef_search
            ));
        }
        check_threads("build_threads", self.build_threads)
    }
}

/// A filter on user keys: a search returns only keys for which it returns `true`. It may
/// borrow for `'f`.
pub(crate) type KeyFilter<'f> = Arc<dyn Fn(u64) -> bool + Send + Sync + 'f>;

/// Parameters of a search: `k`, and optionally `ef`, a key filter and the threads of a
/// [`search_batch`](crate::Index::search_batch). The filter may borrow (a local set, the app's
/// tables through [`ReadTxn::redb`](crate::ReadTxn::redb)) for `'f`.
///
/// ```
/// use std::collections::HashSet;
/// use hnswdb::SearchParams;
/// let params = SearchParams::new(10).ef(128).filter(|key| key % 2 == 0);
/// assert_eq!(params.get_k(), 10);
/// let allowed: HashSet<u64> = [1, 2, 3].into();
/// let params = SearchParams::new(2).filter(|key| allowed.contains(&key));
/// # drop(params);
/// ```
#[derive(Clone)]
pub struct SearchParams<'f> {
    pub(crate) k: usize,
    pub(crate) ef: Option<usize>,
    pub(crate) filter: Option<KeyFilter<'f>>,
    threads: usize,
}

impl<'f> SearchParams<'f> {
    /// Search for the `k` nearest keys, with the index's default `ef_search`, no filter, and
    /// batches on every core.
    pub fn new(k: usize) -> SearchParams<'f> {
        SearchParams {
            k,
            ef: None,
            filter: None,
            threads: 0,
        }
    }

    /// Size of the candidate list (raised to `k` when smaller): larger is more accurate, slower.
    pub fn ef(mut self, ef: usize) -> SearchParams<'f> {
        self.ef = Some(ef);
        self
    }

    /// Return only keys for which `filter` returns `true`. When at least `k` keys match, `k` hits
    /// come back, however rare the matches are.
    pub fn filter<F>(mut self, filter: F) -> SearchParams<'f>
    where
        F: Fn(u64) -> bool + Send + Sync + 'f,
    {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// Threads of a [`search_batch`](crate::Index::search_batch): 0 (the default) means
    /// [`std::thread::available_parallelism`], 1 the calling thread only; at most 1024 (more is
    /// `Error::InvalidOptions`). The calling thread is one of them, and a batch uses at most one
    /// thread per 8 queries (a batch of up to 8 runs on the calling thread alone). A single
    /// search always runs on the calling thread.
    pub fn threads(mut self, threads: usize) -> SearchParams<'f> {
        self.threads = threads;
        self
    }

    /// The number of hits asked for.
    pub fn get_k(&self) -> usize {
        self.k
    }

    /// The threads of a batch, 0 resolved to the available parallelism.
    pub fn get_threads(&self) -> usize {
        resolve_threads(self.threads)
    }

    /// Checks the settings a search cannot run with.
    pub(crate) fn validate(&self) -> Result<()> {
        check_threads("threads", self.threads)
    }
}

impl fmt::Debug for SearchParams<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SearchParams")
            .field("k", &self.k)
            .field("ef", &self.ef)
            .field("filter", &self.filter.is_some())
            .field("threads", &self.threads)
            .finish()
    }
}

/// One search result: a key and its distance to the query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// The user key.
    pub key: u64,
    /// Distance to the query under the index's metric; smaller is closer.
    pub distance: f32,
}
