//! `hnswdb`: build, search, benchmark and inspect hnswdb index files from the command line.
//!
//! This file holds the command-line definitions and the dispatch; each command lives in its own
//! module and reaches the index only through the public `hnswdb` API.

mod bench;
mod build;
mod data;
mod database;
mod error;
mod inspect;
mod maintain;
mod report;
mod rss;
mod search;
mod target;
mod vecio;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub(crate) use error::CliError;
pub(crate) use target::Target;

/// Build, search, benchmark and inspect hnswdb vector indexes.
///
/// An index is one file; every build batch is a committed transaction, so an interrupted build
/// keeps what it committed and running the same command again resumes it.
///
/// An index can also live inside an app's own redb database file, next to the app's tables:
/// every command that takes INDEX takes `--name NAME` to work on the index NAME inside the
/// database file INDEX. `list` shows the names in a file and `delete-index` removes one.
#[derive(Parser, Debug)]
#[command(name = "hnswdb", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
enum Command {
    /// Build an index from a vector file, or resume an interrupted build.
    ///
    /// With --name, INDEX is an app's redb database file (created when no file is there; a file
    /// that is not a redb database is refused) and the index NAME inside it is built or resumed.
    Build(BuildArgs),
    /// Search an index with the vectors of a file; with --truth, measure recall and speed.
    Search(SearchArgs),
    /// Benchmark: build an index and sweep ef, reporting recall, queries/s and latency, with a plot.
    Bench(BenchArgs),
    /// Show counts per level, the out-degree histogram per layer, sizes and the options.
    Stats(StatsArgs),
    /// Run the full integrity check of an index; exits non-zero on any problem.
    Verify(VerifyArgs),
    /// Print the vector stored under a key (comma-separated).
    Get(GetArgs),
    /// Remove keys from an index (in one transaction).
    Remove(RemoveArgs),
    /// Give file space back after many removals (rewrites the file, replacing it atomically).
    ///
    /// Only for an index file of its own: with --name it fails, since the space of an index
    /// inside an app's database goes back to that database (compact it with redb's
    /// `Database::compact`).
    Compact(CompactArgs),
    /// Write every key and vector of an index to a file (a versioned, checksummed stream).
    Export(ExportArgs),
    /// Create a new index from a file written by `export` (the graph is rebuilt).
    ///
    /// With --name, the index NAME is created inside the app's redb database file INDEX (the
    /// file is created when nothing is there); NAME must not exist yet.
    Import(ImportArgs),
    /// List the names of the indexes inside an app's redb database file, one per line.
    List(ListArgs),
    /// Delete the index NAME from an app's redb database file, leaving everything else in it.
    ///
    /// Prints whether there was such an index; exits 0 either way.
    DeleteIndex(DeleteIndexArgs),
}

/// Which layer-0 cache settings `bench` sweeps.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CacheArg {
    /// The whole layer 0 in memory.
    On,
    /// No layer-0 cache: layer 0 read from the file, zero-copy.
    Off,
    /// On, then off.
    Both,
}

/// The quantization of a new index, as named on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QuantizationArg {
    /// No codes: searches compare the f32 vectors.
    None,
    /// A byte per dimension: searches walk on the codes and re-rank with exact distances.
    Int8,
    /// A bit per dimension after a fixed rotation (for high-dimensional embeddings).
    Binary,
}

impl From<QuantizationArg> for hnswdb::Quantization {
    fn from(q: QuantizationArg) -> hnswdb::Quantization {
        match q {
            QuantizationArg::None => hnswdb::Quantization::None,
            QuantizationArg::Int8 => hnswdb::Quantization::Int8,
            QuantizationArg::Binary => hnswdb::Quantization::Binary,
        }
    }
}

/// Which quantizations `bench` builds and sweeps.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BenchQuantizationArg {
    /// No codes.
    None,
    /// A byte per dimension.
    Int8,
    /// A bit per dimension.
    Binary,
    /// The three, one index each, on the same data.
    All,
}

impl BenchQuantizationArg {
    /// The quantizations to build, in order.
    pub(crate) fn settings(self) -> Vec<hnswdb::Quantization> {
        let one = |q: QuantizationArg| vec![q.into()];
        match self {
            BenchQuantizationArg::None => one(QuantizationArg::None),
            BenchQuantizationArg::Int8 => one(QuantizationArg::Int8),
            BenchQuantizationArg::Binary => one(QuantizationArg::Binary),
            BenchQuantizationArg::All => [
                QuantizationArg::None,
                QuantizationArg::Int8,
                QuantizationArg::Binary,
            ]
            .map(hnswdb::Quantization::from)
            .to_vec(),
        }
    }
}

/// The distance metric, as named on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetricArg {
    /// Squared Euclidean distance.
    L2,
    /// 1 − cosine similarity.
    Cosine,
    /// 1 − inner product (for normalised vectors).
    Dot,
}

impl From<MetricArg> for hnswdb::Metric {
    fn from(m: MetricArg) -> hnswdb::Metric {
        match m {
            MetricArg::L2 => hnswdb::Metric::L2,
            MetricArg::Cosine => hnswdb::Metric::Cosine,
            MetricArg::Dot => hnswdb::Metric::Dot,
        }
    }
}

/// Arguments of `hnswdb build`.
#[derive(Args, Debug)]
pub(crate) struct BuildArgs {
    #[command(flatten)]
    pub target: Target,
    /// Vectors to insert: .fvecs, .bvecs, .npy (float32, 2-D, C order) or .csv (one per line).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Keys of the rows, one unsigned integer per line (default: the row numbers 0, 1, 2, …).
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Distance metric of a new index [default: l2]. A resumed build uses the index's own.
    #[arg(long, value_enum)]
    pub metric: Option<MetricArg>,
    /// Neighbours per node on the upper layers (2*m on layer 0) [default: 16].
    #[arg(long)]
    pub m: Option<usize>,
    /// Candidate-list size while inserting: larger builds a better graph, slower [default: 200].
    #[arg(long)]
    pub ef_construction: Option<usize>,
    /// Compact codes searches walk on, re-ranking with exact distances [default: none]. A
    /// resumed build uses the index's own.
    #[arg(long, value_enum)]
    pub quantization: Option<QuantizationArg>,
    /// Memory budget of a new index, stored in it (`Options::cache_bytes`: redb's page cache
    /// and the layer-0 cache) [default: 1 GiB]
    #[arg(long)]
    pub cache_bytes: Option<u64>,
    /// Rows per committed transaction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// After each committed transaction, print `committed N of M rows` on stderr (for logs, and
    /// for scripts that follow or interrupt a build).
    #[arg(long)]
    pub log_commits: bool,
    /// Leave the file as the build left it. By default a build that inserted rows into an index
    /// file of its own ends with `compact`, which gives back the slack of redb's last doubling
    /// of the file (a fifth of it on minilm50k, for about 2% of the build time).
    #[arg(long)]
    pub no_compact: bool,
}

/// Arguments of `hnswdb search`.
#[derive(Args, Debug)]
pub(crate) struct SearchArgs {
    #[command(flatten)]
    pub target: Target,
    /// Query vectors: .fvecs, .bvecs, .npy or .csv.
    #[arg(long, short)]
    pub query: PathBuf,
    /// Number of nearest keys per query.
    #[arg(short, long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub k: u64,
    /// Candidate-list size: larger is more accurate, slower [default: the index's ef_search].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub ef: Option<u64>,
    /// With quantization: how many of the best candidates found on the codes are re-ranked with
    /// exact distances [default: the library's: k + ⌈k/2⌉ with int8 (at most ef), 2·ef with binary].
    #[arg(long)]
    pub rescore: Option<usize>,
    /// Exact neighbours (.ivecs, ids = keys): report recall@k, queries/s and latency instead.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `hnswdb bench`.
#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Base vectors (default: a generated clustered data set).
    #[arg(long, requires = "query")]
    pub input: Option<PathBuf>,
    /// Query vectors (with --input).
    #[arg(long, requires = "input")]
    pub query: Option<PathBuf>,
    /// Exact neighbours of the queries (.ivecs); computed by brute force when absent.
    #[arg(long, requires = "input")]
    pub truth: Option<PathBuf>,
    /// Metric of --input data.
    #[arg(long, value_enum, default_value_t = MetricArg::L2)]
    pub metric: MetricArg,
    /// Directory for the plot and results [default: bench-out in the system temp dir].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Number of generated base vectors.
    #[arg(long, default_value_t = bench::DEFAULT_N, conflicts_with = "input", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub n: u64,
    /// Dimension of generated vectors.
    #[arg(long, default_value_t = 128, conflicts_with = "input", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub dim: u64,
    /// Number of generated queries.
    #[arg(long, default_value_t = 1000, conflicts_with = "input", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub queries: u64,
    /// Seed of the generated data set.
    #[arg(long, default_value_t = 42, conflicts_with = "input")]
    pub seed: u64,
    /// Number of nearest keys per query (recall@k).
    #[arg(short, long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub k: u64,
    /// Neighbours per node on the upper layers.
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// Candidate-list size while inserting.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// Also write the data set into --out as base.fvecs, query.fvecs and gt.ivecs.
    #[arg(long)]
    pub save_data: bool,
    /// The ef values to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256", value_parser = clap::value_parser!(u64).range(1..))]
    pub ef: Vec<u64>,
    /// Rows per committed transaction while building; 0 builds in one transaction
    #[arg(long, default_value_t = 0)]
    pub batch: usize,
    /// Threads of the batch build and of the batch search; 0 uses every core
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Layer-0 cache for the sweep: on (all of it in memory), off (layer 0 read from the file),
    /// or both, one after the other
    #[arg(long, value_enum, default_value_t = CacheArg::Both, conflicts_with = "cache_bytes")]
    pub cache: CacheArg,
    /// Sweep with exactly this memory budget (`Options::cache_bytes`: redb's page cache and
    /// the layer-0 cache) instead of the --cache settings
    #[arg(long)]
    pub cache_bytes: Option<u64>,
    /// The quantizations to build (one index each, on the same data) and sweep
    #[arg(long, value_enum, default_value_t = BenchQuantizationArg::None)]
    pub quantization: BenchQuantizationArg,
    /// With quantization: candidates re-ranked with exact distances in every search of the
    /// sweep [default: the library's: k + ⌈k/2⌉ with int8 (at most ef), 2·ef with binary]
    #[arg(long)]
    pub rescore: Option<usize>,
}

/// Arguments of `hnswdb stats`.
#[derive(Args, Debug)]
pub(crate) struct StatsArgs {
    #[command(flatten)]
    pub target: Target,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `hnswdb verify`.
#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub target: Target,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `hnswdb get`.
#[derive(Args, Debug)]
pub(crate) struct GetArgs {
    #[command(flatten)]
    pub target: Target,
    /// The key to look up.
    pub key: u64,
}

/// Arguments of `hnswdb remove`.
#[derive(Args, Debug)]
pub(crate) struct RemoveArgs {
    #[command(flatten)]
    pub target: Target,
    /// The keys to remove.
    #[arg(required = true)]
    pub keys: Vec<u64>,
}

/// Arguments of `hnswdb compact`.
#[derive(Args, Debug)]
pub(crate) struct CompactArgs {
    #[command(flatten)]
    pub target: Target,
}

/// Arguments of `hnswdb export`.
#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub target: Target,
    /// The file to write; it must not exist yet.
    pub file: PathBuf,
}

/// Arguments of `hnswdb import`.
#[derive(Args, Debug)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    pub target: Target,
    /// A file written by `hnswdb export`.
    pub file: PathBuf,
}

/// Arguments of `hnswdb list`.
#[derive(Args, Debug)]
pub(crate) struct ListArgs {
    /// The app's redb database file.
    pub file: PathBuf,
    /// Print a JSON array of the names instead of one per line.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `hnswdb delete-index`.
#[derive(Args, Debug)]
pub(crate) struct DeleteIndexArgs {
    /// The app's redb database file.
    pub file: PathBuf,
    /// The index to delete (its tables only; the app's tables stay).
    pub name: String,
}

/// Runs one command.
fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Build(args) => build::run(&args),
        Command::Search(args) => search::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Stats(args) => inspect::stats(&args),
        Command::Verify(args) => inspect::verify(&args),
        Command::Get(args) => inspect::get(&args),
        Command::Remove(args) => inspect::remove(&args),
        Command::Compact(args) => inspect::compact(&args),
        Command::Export(args) => maintain::export(&args),
        Command::Import(args) => maintain::import(&args),
        Command::List(args) => database::list(&args),
        Command::DeleteIndex(args) => database::delete_index(&args),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    error::exit_code(error::catch_panics(|| run(cli)))
}
