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

/// How an index keeps a compact copy of its vectors for searches to walk on.
///
/// With a quantization other than [`None`](Quantization::None), every vector also gets a code
/// (written with it, in the same transaction, to a table of its own). A search walks the graph
/// on the codes, every layer, which take a fraction of the memory of the `f32` vectors and are
/// faster to compare, then re-ranks its best candidates ([`SearchParams::rescore`]) with the exact
/// vectors: every [`Hit::distance`] is the exact distance, the same as without quantization.
/// The memory budget ([`Options::cache_bytes`]) holds the codes and the layer-0 lists first,
/// then as many `f32` vectors as fit; the rest are read from the file for the re-ranking.
///
/// Neither quantizer is trained: a code depends only on its own vector, so the index takes
/// inserts forever without drifting. Stored in the file; fixed when the index is created.
///
/// ```
/// use hnswdb::Quantization;
/// assert_eq!("int8".parse::<Quantization>()?, Quantization::Int8);
/// assert_eq!(Quantization::Binary.to_string(), "binary");
/// # Ok::<(), hnswdb::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Quantization {
    /// No codes: searches compare the `f32` vectors.
    None,
    /// One byte per dimension with a per-vector offset and scale: a quarter of the `f32`
    /// memory, estimates within about 1% of the distance spread.
    Int8,
    /// One bit per dimension after a fixed random rotation, with RaBitQ's estimator: 1/32 of
    /// the `f32` memory, for high-dimensional embeddings (hundreds of dimensions and more),
    /// where it needs a larger [`SearchParams::rescore`] to reach the recall of `Int8`.
    Binary,
}

/// Every quantization, in byte order.
const QUANTIZATIONS: [Quantization; 3] =
    [Quantization::None, Quantization::Int8, Quantization::Binary];

impl Quantization {
    /// The byte stored in the file for this quantization. Persisted: never renumber.
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Quantization::None => 0,
            Quantization::Int8 => 1,
            Quantization::Binary => 2,
        }
    }

    /// The quantization stored as `byte`, if it is one.
    pub(crate) fn from_byte(byte: u8) -> Option<Quantization> {
        QUANTIZATIONS.get(usize::from(byte)).copied()
    }
}

impl fmt::Display for Quantization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Quantization::None => "none",
            Quantization::Int8 => "int8",
            Quantization::Binary => "binary",
        })
    }
}

/// Parses the names [`Display`](fmt::Display) prints: `none`, `int8`, `binary`.
impl std::str::FromStr for Quantization {
    type Err = Error;

    fn from_str(name: &str) -> Result<Quantization> {
        QUANTIZATIONS
            .into_iter()
            .find(|q| q.to_string() == name)
            .ok_or_else(|| Error::InvalidOptions {
                reason: format!("unknown quantization {name:?} (none, int8 or binary)"),
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
    pub(crate) quantization: Quantization,
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

/// Default memory budget of an index ([`Options::cache_bytes`]).
pub const DEFAULT_CACHE_BYTES: u64 = 1 << 30;

/// redb's page cache takes this share (1/n) of the memory budget (an eighth before: as fast to
/// build, commit and re-rank from the file on minilm50k, 6 MiB less resident on gen1536 Int8)...
const PAGE_CACHE_SHARE: u64 = 16;
/// ...but at least this much (redb's write buffer is half of it: smaller slows commits)...
const MIN_PAGE_CACHE: u64 = 1 << 20;
/// ...and at most this much (beyond, pages are better spent on hnswdb's own cache).
const MAX_PAGE_CACHE: u64 = 256 << 20;

/// The size of redb's page cache for an index file with memory budget `cache_bytes`.
pub(crate) fn page_cache_bytes(cache_bytes: u64) -> usize {
    (cache_bytes / PAGE_CACHE_SHARE).clamp(MIN_PAGE_CACHE, MAX_PAGE_CACHE) as usize
}

/// What the budget `cache_bytes` leaves for hnswdb's layer-0 cache after redb's page cache.
pub(crate) fn layer0_budget(cache_bytes: u64) -> u64 {
    cache_bytes.saturating_sub(page_cache_bytes(cache_bytes) as u64)
}

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
            quantization: Quantization::None,
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

    /// Memory budget, in bytes, for redb's page cache and hnswdb's layer-0 cache. redb's page
    /// cache takes a sixteenth of it, between 1 MiB and 256 MiB (for an index inside an app's
    /// database the app sizes redb's cache, and the sixteenth is left unused). The rest holds
    /// layer 0: without quantization vectors first (those of the lowest node ids, as many as
    /// fit, when not all do), then neighbour lists if all vectors and lists fit; with
    /// [`quantization`](Options::quantization) codes and lists first, then vectors. Upper
    /// layers (a few percent of the nodes: their lists, and without quantization their
    /// vectors) and the node table are always cached, beyond the budget. With 0, every layer-0
    /// read goes to the file. Default [`DEFAULT_CACHE_BYTES`].
    pub fn cache_bytes(mut self, bytes: u64) -> Options {
        self.cache_bytes = bytes;
        self
    }

    /// How the index keeps compact codes of its vectors for searches to walk on (see
    /// [`Quantization`]). Default [`Quantization::None`]. Fixed when the index is created:
    /// opening it with another value is `Error::OptionsMismatch`.
    pub fn quantization(mut self, quantization: Quantization) -> Options {
        self.quantization = quantization;
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

    /// The quantization.
    pub fn get_quantization(&self) -> Quantization {
        self.quantization
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
    pub(crate) rescore: Option<usize>,
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
            rescore: None,
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

    /// With a [`Quantization`] other than `None`: how many of the best candidates found on the
    /// codes are re-ranked with their exact `f32` distances (raised to `k` when smaller; `ef` is
    /// raised to it when larger). More costs an exact distance each (a read from the file for a
    /// vector outside the memory budget) and gains recall. The default: with `Int8`, `k + ⌈k/2⌉`
    /// (at most `ef`), which gave the recall of re-ranking every candidate in the measurements;
    /// with `Binary`, `2·ef` (after raising `ef` to `k`), which widens the walk to `2·ef`
    /// candidates and re-ranks them all: Binary's estimates need it to find, at a given `ef`,
    /// what `None` finds; and with `ef` at least the number of vectors, every one, so such a
    /// search stays exact. Without quantization it changes nothing.
    pub fn rescore(mut self, n: usize) -> SearchParams<'f> {
        self.rescore = Some(n);
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
            .field("rescore", &self.rescore)
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
