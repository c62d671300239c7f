//! The same answers with the scalar distance kernels as with the SIMD ones this CPU runs.
//!
//! Every kernel sums in the one order of the summation order contract (`src/distance/mod.rs`),
//! so an index built with the scalar kernels must have the same graph, and give the same search
//! results with the same distance bits, as one built with the dispatched (SIMD) kernels. The
//! kernels are chosen once per process, and `HNSWDB_SCALAR_KERNELS=1` makes the choice the scalar
//! ones, so the scalar side runs in a child: this test binary re-executed running only
//! `scalar_child` (ignored, so that it runs only as the child), with the variable set and a file
//! to write its answers to. The parent computes the same answers with its own kernels and
//! compares them line by line.

mod common;

use std::path::Path;
use std::process::Command;

use hnswdb::__bench::{kernel_name, SCALAR_KERNELS_VAR};
use hnswdb::{Index, Metric, Options, SearchParams};

/// Set (to the file to write its answers to) in the child's environment.
const CHILD_OUT: &str = "HNSWDB_SCALAR_CHILD_OUT";
/// Not a multiple of the 64 lanes of the summation order: every distance has a partial last step.
const DIM: usize = 100;

/// For each metric, an index over the same random vectors, built with a fixed seed on one thread
/// (a serial build: the same inserts in the same order), as lines of text: its level and degree
/// counts, then per query and `ef` the keys and distance bits of the 10 results. The results of
/// small `ef` follow the greedy path through the graph, so they change if any neighbour list does.
fn answers(dir: &Path) -> Vec<String> {
    let base = common::random_vectors(7, 1500, DIM);
    let queries = common::random_vectors(8, 200, DIM);
    let mut lines = Vec::new();
    for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
        let options = Options::new(DIM)
            .metric(metric)
            .m(8)
            .ef_construction(64)
            .seed(42)
            .build_threads(1);
        let index = Index::create(dir.join(format!("{metric:?}.hnsw")), options).unwrap();
        common::insert_numbered(&index, &base);
        index.verify().unwrap();
        let stats = index.stats().unwrap();
        lines.push(format!(
            "{metric:?}: levels {:?}, degrees {:?}",
            stats.nodes_per_level, stats.degree_histogram
        ));
        for (i, query) in queries.iter().enumerate() {
            for ef in [10, 40] {
                let hits = index
                    .search_with(query, &SearchParams::new(10).ef(ef))
                    .unwrap();
                let hits: Vec<String> = hits
                    .iter()
                    .map(|h| format!("{}:{:08x}", h.key, h.distance.to_bits()))
                    .collect();
                lines.push(format!("{metric:?} query {i} ef {ef}: {}", hits.join(" ")));
            }
        }
    }
    lines
}

/// The child: the parent runs it (with `--ignored --exact`) with `HNSWDB_SCALAR_KERNELS=1` and
/// `HNSWDB_SCALAR_CHILD_OUT` set.
#[test]
#[ignore = "the child process of scalar_kernels_give_the_same_answers, which runs it"]
fn scalar_child() {
    let out = std::env::var_os(CHILD_OUT).unwrap_or_else(|| {
        panic!("scalar_child is run by scalar_kernels_give_the_same_answers, with {CHILD_OUT} set")
    });
    assert_eq!(
        kernel_name(),
        "scalar",
        "{SCALAR_KERNELS_VAR} was not obeyed"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(out, answers(dir.path()).join("\n")).unwrap();
}

#[test]
fn scalar_kernels_give_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scalar.txt");
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["scalar_child", "--exact", "--ignored", "--test-threads=1"])
        .env(SCALAR_KERNELS_VAR, "1")
        .env(CHILD_OUT, &out)
        .status()
        .unwrap();
    assert!(status.success(), "the scalar child failed: {status}");
    let scalar = std::fs::read_to_string(&out).unwrap();
    let here_dir = dir.path().join("here");
    std::fs::create_dir(&here_dir).unwrap();
    let here = answers(&here_dir);
    eprintln!("kernels: {} here, scalar in the child", kernel_name());
    let scalar: Vec<&str> = scalar.lines().collect();
    assert_eq!(scalar.len(), here.len());
    for (s, h) in scalar.iter().zip(&here) {
        assert_eq!(s, h, "scalar (left) and {} (right) differ", kernel_name());
    }
}
