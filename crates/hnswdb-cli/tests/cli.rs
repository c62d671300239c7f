//! The `hnswdb` command line, end to end: every subcommand on small files written here, bad
//! input files giving one clear error line, a killed and resumed build, and recall reporting.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};

use assert_cmd::Command;
use hnswdb::redb::{self, ReadableDatabase, ReadableTable};
use predicates::prelude::*;
use tempfile::TempDir;

/// `n` pseudo-random vectors of `dim` components in [-1, 1), from `seed`.
fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    common::random_vectors(seed, n, dim)
}

/// Writes `rows` in the TEXMEX layout: per row a little-endian `i32` length, then the values.
fn write_vecs<T: Copy>(path: &Path, rows: &[Vec<T>], le_bytes: fn(T) -> [u8; 4]) {
    let mut bytes = Vec::new();
    for row in rows {
        bytes.extend_from_slice(&(row.len() as i32).to_le_bytes());
        for &x in row {
            bytes.extend_from_slice(&le_bytes(x));
        }
    }
    fs::write(path, bytes).unwrap();
}

/// Writes `rows` as `.fvecs`.
fn write_fvecs(path: &Path, rows: &[Vec<f32>]) {
    write_vecs(path, rows, f32::to_le_bytes);
}

/// Writes `rows` as `.ivecs`.
fn write_ivecs(path: &Path, rows: &[Vec<u32>]) {
    write_vecs(path, rows, u32::to_le_bytes);
}

/// The exact `k` nearest rows of `base` to each query under squared L2, ties by row.
fn brute_force(base: &[Vec<f32>], queries: &[Vec<f32>], k: usize) -> Vec<Vec<u32>> {
    queries
        .iter()
        .map(|q| {
            let mut d: Vec<(f32, u32)> = base
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    (
                        v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum(),
                        i as u32,
                    )
                })
                .collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            d.iter().take(k).map(|&(_, i)| i).collect()
        })
        .collect()
}

/// The binary under test.
fn hnswdb() -> Command {
    Command::cargo_bin("hnswdb").unwrap()
}

/// A temp dir holding `base.fvecs` (300 × 12) and `query.fvecs` (20 × 12).
struct Fixture {
    dir: TempDir,
    base: Vec<Vec<f32>>,
    queries: Vec<Vec<f32>>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let base = vectors(300, 12, 1);
        let queries = vectors(20, 12, 2);
        write_fvecs(&dir.path().join("base.fvecs"), &base);
        write_fvecs(&dir.path().join("query.fvecs"), &queries);
        Fixture { dir, base, queries }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Builds `index.hnsw` from `base.fvecs`.
    fn built(self) -> Fixture {
        hnswdb()
            .arg("build")
            .arg(self.path("index.hnsw"))
            .arg("--input")
            .arg(self.path("base.fvecs"))
            .args(["--batch", "64"])
            .assert()
            .success()
            .stdout(
                predicate::str::contains("inserted 300 vectors")
                    .and(predicate::str::contains("compacted: ")),
            );
        self
    }
}

/// Asserts a failed run printed exactly one `error: ` line on stderr and nothing of a panic.
fn assert_one_error_line(output: &std::process::Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(
        !stderr.contains("panicked at") && !stderr.contains("RUST_BACKTRACE"),
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains(expected),
        "{stderr:?} should mention {expected:?}"
    );
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "build",
        "search",
        "bench",
        "stats",
        "verify",
        "get",
        "remove",
        "compact",
        "export",
        "import",
        "list",
        "delete-index",
    ] {
        hnswdb()
            .args([sub, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Usage: hnswdb"));
    }
    // Every command that opens or creates an index takes `--name`.
    for sub in [
        "build", "search", "stats", "verify", "get", "remove", "compact", "export", "import",
    ] {
        hnswdb()
            .args([sub, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("--name <NAME>"));
    }
    hnswdb().assert().failure().code(2);
}

#[test]
fn build_stats_verify_get_remove() {
    let f = Fixture::new().built();
    let index = f.path("index.hnsw");

    let out = hnswdb()
        .arg("stats")
        .arg(&index)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["len"], 300);
    assert_eq!(stats["dim"], 12);
    assert_eq!(stats["metric"], "l2");
    let per_level: u64 = stats["nodes_per_level"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(per_level, 300);
    // One histogram row per layer, counting every node on that layer once.
    let on_layer = stats["nodes_per_layer"].as_array().unwrap();
    let histogram = stats["degree_histogram"].as_array().unwrap();
    assert_eq!(on_layer[0], 300);
    assert_eq!(histogram.len(), on_layer.len());
    for (row, nodes) in histogram.iter().zip(on_layer) {
        let row: Vec<u64> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect();
        assert_eq!(row.iter().sum::<u64>(), nodes.as_u64().unwrap());
    }
    assert_eq!(histogram[0].as_array().unwrap().len(), 33, "degrees 0..=2m");
    hnswdb().arg("stats").arg(&index).assert().success().stdout(
        predicate::str::contains("vectors          300")
            .and(predicate::str::contains("level"))
            .and(predicate::str::contains("out-links"))
            .and(predicate::str::contains("mean")),
    );

    hnswdb()
        .arg("verify")
        .arg(&index)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("ok: "));
    let out = hnswdb()
        .arg("verify")
        .arg(&index)
        .arg("--json")
        .output()
        .unwrap();
    let verify: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["complete"], true);
    assert_eq!(verify["len"], 300);
    assert_eq!(verify["total_problems"], 0);
    assert_eq!(verify["problems"].as_array().unwrap().len(), 0);
    assert!(verify["error"].is_null());

    let out = hnswdb().arg("get").arg(&index).arg("7").output().unwrap();
    assert!(out.status.success());
    let got: Vec<f32> = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(got, f.base[7]);

    hnswdb()
        .arg("remove")
        .arg(&index)
        .args(["7", "8"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "removed 2 keys; the index holds 298",
        ));
    let out = hnswdb().arg("get").arg(&index).arg("7").output().unwrap();
    assert_one_error_line(&out, "key 7 is not in");
    let out = hnswdb()
        .arg("remove")
        .arg(&index)
        .args(["7", "9"])
        .output()
        .unwrap();
    assert_one_error_line(&out, "not removed: 7");
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed 1 key;"));
    hnswdb().arg("verify").arg(&index).assert().success();

    hnswdb()
        .arg("compact")
        .arg(&index)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("compacted: "));
    hnswdb().arg("verify").arg(&index).assert().success();
    let out = hnswdb().arg("get").arg(&index).arg("10").output().unwrap();
    assert!(out.status.success());
}

#[test]
fn search_prints_hits_and_json() {
    let f = Fixture::new().built();
    let index = f.path("index.hnsw");
    let truth = brute_force(&f.base, &f.queries, 3);
    hnswdb()
        .arg("search")
        .arg(&index)
        .arg("--query")
        .arg(f.path("query.fvecs"))
        .args(["-k", "3"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "query 0: {} (",
            truth[0][0]
        )));
    let out = hnswdb()
        .arg("search")
        .arg(&index)
        .arg("--query")
        .arg(f.path("query.fvecs"))
        .args(["-k", "3", "--ef", "100", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    for (r, expected) in results.iter().zip(&truth) {
        let keys: Vec<u64> = r["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["key"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = expected.iter().map(|&k| u64::from(k)).collect();
        assert_eq!(keys, expected);
    }
}

#[test]
fn search_with_truth_reports_recall() {
    let f = Fixture::new().built();
    write_ivecs(&f.path("gt.ivecs"), &brute_force(&f.base, &f.queries, 10));
    let out = hnswdb()
        .arg("search")
        .arg(f.path("index.hnsw"))
        .arg("--query")
        .arg(f.path("query.fvecs"))
        .arg("--truth")
        .arg(f.path("gt.ivecs"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["recall"].as_f64().unwrap() >= 0.95, "{json}");
    assert_eq!(json["queries"], 20);
    assert!(json["qps"].as_f64().unwrap() > 0.0);
    assert!(json["p99_us"].as_f64().unwrap() >= json["p50_us"].as_f64().unwrap());
    hnswdb()
        .arg("search")
        .arg(f.path("index.hnsw"))
        .arg("--query")
        .arg(f.path("query.fvecs"))
        .arg("--truth")
        .arg(f.path("gt.ivecs"))
        .assert()
        .success()
        .stdout(
            predicate::str::contains("recall@10")
                .and(predicate::str::contains("queries/s"))
                .and(predicate::str::contains("latency p99")),
        );
}

#[test]
fn csv_input_and_keys_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("v.csv");
    fs::write(&csv, "a,b,c\n1,0,0\n0,1,0\n0,0,1\n").unwrap();
    let keys = dir.path().join("keys.txt");
    fs::write(&keys, "100\n200\n300\n").unwrap();
    let index = dir.path().join("c.hnsw");
    hnswdb()
        .arg("build")
        .arg(&index)
        .arg("--input")
        .arg(&csv)
        .arg("--keys")
        .arg(&keys)
        .args(["--metric", "cosine"])
        .assert()
        .success();
    hnswdb()
        .arg("get")
        .arg(&index)
        .arg("200")
        .assert()
        .success()
        .stdout("0,1,0\n");
    let stats = hnswdb()
        .arg("stats")
        .arg(&index)
        .arg("--json")
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["metric"], "cosine");
    // Asking to resume with another metric is refused.
    let out = hnswdb()
        .arg("build")
        .arg(&index)
        .arg("--input")
        .arg(&csv)
        .args(["--metric", "l2"])
        .output()
        .unwrap();
    assert_one_error_line(&out, "was built with --metric cosine");
}

#[test]
fn bad_files_give_one_error_line() {
    let f = Fixture::new().built();
    let index = f.path("index.hnsw");
    let p = |name: &str| f.path(name).into_os_string();

    // The bad files: text posing as an index, a truncated .fvecs, queries of the wrong
    // dimension, a float64 .npy, a short and a damaged truth file, a damaged and a truncated
    // export.
    fs::write(f.path("notes.hnsw"), "just some text\n").unwrap();
    let fvecs = fs::read(f.path("base.fvecs")).unwrap();
    fs::write(f.path("cut.fvecs"), &fvecs[..fvecs.len() - 5]).unwrap();
    write_fvecs(&f.path("q5.fvecs"), &vectors(3, 5, 9));
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }          \n";
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    npy.extend_from_slice(&[0; 16]);
    fs::write(f.path("d.npy"), npy).unwrap();
    write_ivecs(&f.path("short.ivecs"), &[vec![1, 2, 3]]);
    fs::write(f.path("bad.ivecs"), [1, 2, 3]).unwrap();
    hnswdb()
        .arg("export")
        .arg(&index)
        .arg(f.path("good.export"))
        .assert()
        .success();
    let export = fs::read(f.path("good.export")).unwrap();
    let mut flipped = export.clone();
    flipped[export.len() / 2] ^= 0x04;
    fs::write(f.path("flipped.export"), flipped).unwrap();
    fs::write(f.path("cut.export"), &export[..export.len() - 3]).unwrap();

    let q = "--query";
    let cases: Vec<(Vec<OsString>, &str)> = vec![
        (vec!["stats".into(), p("notes.hnsw")], "not an hnswdb index"),
        (
            vec!["verify".into(), p("notes.hnsw")],
            "not an hnswdb index",
        ),
        (
            vec!["get".into(), p("notes.hnsw"), "1".into()],
            "not an hnswdb index",
        ),
        (vec!["stats".into(), p("missing.hnsw")], "does not exist"),
        (
            vec!["export".into(), p("missing.hnsw"), p("x.export")],
            "does not exist",
        ),
        (
            vec![
                "build".into(),
                p("new.hnsw"),
                "--input".into(),
                p("cut.fvecs"),
            ],
            "truncated",
        ),
        (
            vec![
                "search".into(),
                index.clone().into(),
                q.into(),
                p("q5.fvecs"),
            ],
            "5-dimensional",
        ),
        (
            vec![
                "build".into(),
                index.clone().into(),
                "--input".into(),
                p("q5.fvecs"),
            ],
            "holds 12-dimensional vectors",
        ),
        (
            vec!["build".into(), p("new.hnsw"), "--input".into(), p("d.npy")],
            "float32",
        ),
        (
            vec![
                "search".into(),
                index.clone().into(),
                q.into(),
                p("notes.hnsw"),
            ],
            "unknown vector file type",
        ),
        (
            vec![
                "search".into(),
                index.clone().into(),
                q.into(),
                p("query.fvecs"),
                "--truth".into(),
                p("short.ivecs"),
            ],
            "neighbours for 1 queries",
        ),
        (
            vec![
                "search".into(),
                index.clone().into(),
                q.into(),
                p("query.fvecs"),
                "--truth".into(),
                p("bad.ivecs"),
            ],
            "truncated",
        ),
        (
            vec!["import".into(), p("new.hnsw"), p("flipped.export")],
            "checksum mismatch",
        ),
        (
            vec!["import".into(), p("new.hnsw"), p("cut.export")],
            "truncated",
        ),
        (
            vec!["import".into(), p("new.hnsw"), p("notes.hnsw")],
            "not an hnswdb export stream",
        ),
        (
            vec!["import".into(), p("new.hnsw"), p("missing.export")],
            "missing.export",
        ),
        (
            vec!["import".into(), index.clone().into(), p("good.export")],
            "already exists",
        ),
        (
            vec!["export".into(), index.clone().into(), p("notes.hnsw")],
            "already exists",
        ),
    ];
    for (args, expected) in cases {
        let out = hnswdb().args(&args).output().unwrap();
        assert_one_error_line(&out, expected);
    }
    // Nothing was created, and nothing given was changed.
    assert!(!f.path("new.hnsw").exists());
    assert!(!f.path("x.export").exists());
    assert_eq!(
        fs::read_to_string(f.path("notes.hnsw")).unwrap(),
        "just some text\n"
    );
    hnswdb().arg("verify").arg(&index).assert().success();

    // Bad arguments are clap's: exit code 2.
    hnswdb()
        .args(["get"])
        .arg(&index)
        .arg("nope")
        .assert()
        .code(2);
}

#[test]
fn export_then_import_gives_the_same_answers() {
    let f = Fixture::new().built();
    let export = f.path("index.export");
    hnswdb()
        .arg("export")
        .arg(f.path("index.hnsw"))
        .arg(&export)
        .assert()
        .success()
        .stdout(predicate::str::contains("exported 300 vectors"));
    hnswdb()
        .arg("import")
        .arg(f.path("copy.hnsw"))
        .arg(&export)
        .assert()
        .success()
        .stdout(predicate::str::contains("imported 300 vectors"));
    hnswdb()
        .arg("verify")
        .arg(f.path("copy.hnsw"))
        .assert()
        .success();

    // The build inserted the rows in key order into a new index, as the import does: the same
    // graph, so the same hits and distances at any ef, not only at an exact one.
    let search = |name: &str, ef: &str| {
        let out = hnswdb()
            .arg("search")
            .arg(f.path(name))
            .arg("--query")
            .arg(f.path("query.fvecs"))
            .args(["-k", "5", "--ef", ef, "--json"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["results"].clone()
    };
    for ef in ["5", "300"] {
        assert_eq!(search("index.hnsw", ef), search("copy.hnsw", ef), "ef {ef}");
    }
    let stats = |name: &str| {
        let out = hnswdb()
            .arg("stats")
            .arg(f.path(name))
            .arg("--json")
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (json["len"].clone(), json["degree_histogram"].clone())
    };
    assert_eq!(stats("index.hnsw"), stats("copy.hnsw"));
    for key in ["0", "299"] {
        let get = |name: &str| {
            hnswdb()
                .arg("get")
                .arg(f.path(name))
                .arg(key)
                .output()
                .unwrap()
                .stdout
        };
        assert_eq!(get("index.hnsw"), get("copy.hnsw"));
    }
}

#[test]
fn damaged_index_fails_verify() {
    let f = Fixture::new().built();
    let index = f.path("index.hnsw");
    let mut bytes = fs::read(&index).unwrap();
    // Zero the second half of the file: whatever open or verify make of it, no panic.
    let half = bytes.len() / 2;
    bytes[half..].fill(0);
    fs::write(&index, &bytes).unwrap();
    let out = hnswdb().arg("verify").arg(&index).output().unwrap();
    assert_one_error_line(&out, "failed verification");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("FAILED"));
    let out = hnswdb()
        .arg("verify")
        .arg(&index)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    // Either the file did not open (an error), or the check listed what it found.
    let problems = json["problems"].as_array().unwrap();
    assert!(
        json["error"]["message"].is_string()
            || (!problems.is_empty() && problems[0]["location"].is_string()),
        "{json}"
    );
}

/// The index's `len`, as `hnswdb stats --json` reports it.
fn stats_len(index: &Path) -> u64 {
    let out = hnswdb()
        .arg("stats")
        .arg(index)
        .arg("--json")
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    stats["len"].as_u64().unwrap()
}

/// Starts `build` (with `--log-commits`) and kills it as soon as it reports its `batches`th
/// commit. Whether the kill landed before the build ended.
fn kill_after_commits(build: &mut StdCommand, batches: usize) -> bool {
    let mut child = build
        .arg("--log-commits")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kept open until the child is gone: a closed pipe would make its next line fail.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut commits = 0;
    while commits < batches {
        let line = lines
            .next()
            .expect("the build ended before its commits")
            .unwrap();
        commits += usize::from(line.starts_with("committed "));
    }
    child.kill().unwrap();
    let killed = !child.wait().unwrap().success();
    drop(lines);
    killed
}

#[test]
fn killed_build_resumes() {
    const N: usize = 20_000;
    const BATCH: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.fvecs");
    let base = vectors(N, 16, 3);
    write_fvecs(&input, &base);
    let index = dir.path().join("big.hnsw");
    let build = || {
        let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("hnswdb"));
        cmd.arg("build")
            .arg(&index)
            .arg("--input")
            .arg(&input)
            .args(["--batch", &BATCH.to_string(), "--ef-construction", "16"]);
        cmd
    };

    // The kill lands after the second commit was reported, with 98 batches to go; should the
    // build still have finished first, the resume finds nothing to do.
    let killed = kill_after_commits(&mut build(), 2);
    let len = stats_len(&index);
    eprintln!("first build killed: {killed}, {len} rows committed");
    hnswdb().arg("verify").arg(&index).assert().success();
    let out = build().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    if killed {
        // What was reported committed before the kill is there, whole batches only.
        assert!(
            len >= 2 * BATCH && len < N as u64 && len.is_multiple_of(BATCH),
            "{len}"
        );
        let skipped = stderr
            .split("resuming: ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .map(|n| n.replace(',', "").parse::<u64>().unwrap());
        assert_eq!(skipped, Some(len), "{stderr}");
    } else {
        assert_eq!(len, N as u64);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("nothing to do"), "{stdout}");
    }

    assert_eq!(stats_len(&index), N as u64);
    hnswdb().arg("verify").arg(&index).assert().success();
    for key in [0, N / 2, N - 1] {
        let out = hnswdb()
            .arg("get")
            .arg(&index)
            .arg(key.to_string())
            .output()
            .unwrap();
        let got: Vec<f32> = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .split(',')
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(got, base[key]);
    }
}

#[test]
fn quantized_build_stats_search_and_bench() {
    let f = Fixture::new();
    hnswdb()
        .arg("build")
        .arg(f.path("index.hnsw"))
        .arg("--input")
        .arg(f.path("base.fvecs"))
        .args(["--quantization", "int8"])
        .assert()
        .success();
    let out = hnswdb()
        .arg("stats")
        .arg(f.path("index.hnsw"))
        .arg("--json")
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["quantization"], "int8");
    assert!(stats["codes_bytes"].as_u64().unwrap() > 0, "{stats}");
    let parts: u64 = ["upper_bytes", "codes_bytes", "links_bytes", "vectors_bytes"]
        .iter()
        .map(|p| stats[p].as_u64().unwrap())
        .sum();
    assert_eq!(parts, stats["cache_bytes"].as_u64().unwrap());
    hnswdb()
        .arg("stats")
        .arg(f.path("index.hnsw"))
        .assert()
        .success()
        .stdout(
            predicate::str::contains("quantization     int8")
                .and(predicate::str::contains("codes")),
        );

    // Resuming with another quantization is refused, naming it.
    let out = hnswdb()
        .arg("build")
        .arg(f.path("index.hnsw"))
        .arg("--input")
        .arg(f.path("base.fvecs"))
        .args(["--quantization", "binary"])
        .output()
        .unwrap();
    assert_one_error_line(&out, "--quantization int8, not binary");
    hnswdb()
        .args([
            "build",
            "x.hnsw",
            "--input",
            "y.fvecs",
            "--quantization",
            "int4",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("int4"));

    write_ivecs(&f.path("gt.ivecs"), &brute_force(&f.base, &f.queries, 10));
    let out = hnswdb()
        .arg("search")
        .arg(f.path("index.hnsw"))
        .arg("--query")
        .arg(f.path("query.fvecs"))
        .arg("--truth")
        .arg(f.path("gt.ivecs"))
        .args(["--rescore", "50", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["recall"].as_f64().unwrap() >= 0.95, "{json}");
    if cfg!(target_os = "linux") {
        assert!(json["index_rss_bytes"].as_u64().is_some(), "{json}");
    }

    // One index per quantization, each its own line; and an explicit budget.
    let out_dir = f.path("bench");
    hnswdb()
        .args([
            "bench",
            "--n",
            "2000",
            "--dim",
            "16",
            "--queries",
            "50",
            "--ef",
            "16,32",
        ])
        .args([
            "--ef-construction",
            "32",
            "--quantization",
            "all",
            "--cache",
            "on",
            "--out",
        ])
        .arg(&out_dir)
        .assert()
        .success()
        .stdout(predicate::str::contains("=== quantization binary"));
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out_dir.join("bench.json")).unwrap()).unwrap();
    let quantizations: Vec<&str> = json["sweeps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["quantization"].as_str().unwrap())
        .collect();
    assert_eq!(quantizations, ["none", "int8", "binary"]);
    for sweep in json["sweeps"].as_array().unwrap() {
        let memory = &sweep["memory"];
        let codes = memory["codes"].as_u64().unwrap();
        assert_eq!(codes > 0, sweep["quantization"] != "none", "{sweep}");
        assert!(memory["file"].as_u64().unwrap() > 0, "{sweep}");
    }
    assert_eq!(json["builds"].as_array().unwrap().len(), 3);
    let svg = fs::read_to_string(out_dir.join("recall-vs-qps.svg")).unwrap();
    assert!(svg.contains("int8, layer-0 cache on"));
    hnswdb()
        .args([
            "bench",
            "--n",
            "2000",
            "--dim",
            "16",
            "--queries",
            "50",
            "--ef",
            "16",
        ])
        .args([
            "--quantization",
            "int8",
            "--cache-bytes",
            "1200000",
            "--rescore",
            "30",
        ])
        .arg("--out")
        .arg(f.path("budget"))
        .assert()
        .success()
        .stdout(
            predicate::str::contains("memory budget 1.1 MiB")
                .and(predicate::str::contains("rescore   30 candidates")),
        );
}

#[test]
fn bench_runs_small_and_draws_a_plot() {
    let dir = tempfile::tempdir().unwrap();
    hnswdb()
        .args([
            "bench",
            "--n",
            "2000",
            "--dim",
            "16",
            "--queries",
            "50",
            "--ef",
            "16,64",
            "--threads",
            "2",
        ])
        .args(["--ef-construction", "64", "--save-data", "--out"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(
            predicate::str::contains("recall@10")
                .and(predicate::str::contains("build"))
                .and(predicate::str::contains("recall-vs-qps.svg")),
        );
    let svg = fs::read_to_string(dir.path().join("recall-vs-qps.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("ef 64"));
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("bench.json")).unwrap()).unwrap();
    // One sweep with the layer-0 cache on, one with it off: the same answers.
    let sweeps = json["sweeps"].as_array().unwrap();
    assert_eq!(sweeps.len(), 2);
    for sweep in sweeps {
        assert_eq!(sweep["sweep"].as_array().unwrap().len(), 2);
        assert!(sweep["sweep"][1]["recall"].as_f64().unwrap() > 0.9);
    }
    assert_eq!(
        sweeps[0]["sweep"][1]["recall"], sweeps[1]["sweep"][1]["recall"],
        "the cache changed the answers"
    );
    assert!(svg.contains("layer-0 cache off"));
    // The batch search gives the one-query-per-call answers at ef 64, on 1 thread and on 2.
    for sweep in sweeps {
        let batch = sweep["batch"].as_array().unwrap();
        let threads: Vec<u64> = batch
            .iter()
            .map(|b| b["threads"].as_u64().unwrap())
            .collect();
        assert_eq!(threads, [1, 2]);
        for point in batch {
            assert_eq!(point["ef"], 64);
            assert_eq!(point["recall"], sweep["sweep"][1]["recall"]);
        }
    }

    // The saved data set runs through `bench --input` with its truth file.
    hnswdb()
        .arg("bench")
        .arg("--input")
        .arg(dir.path().join("base.fvecs"))
        .arg("--query")
        .arg(dir.path().join("query.fvecs"))
        .arg("--truth")
        .arg(dir.path().join("gt.ivecs"))
        .args(["--ef", "32", "--ef-construction", "64", "--out"])
        .arg(dir.path().join("again"))
        .assert()
        .success()
        .stdout(predicate::str::contains("2,000 vectors × 16 dimensions"));
}

/// The app's own table in the database file that holds the named indexes.
const APP_TABLE: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("app.rows");
/// What the app wrote into it.
const APP_ROWS: [(&str, u64); 3] = [("alpha", 1), ("beta", 2), ("gamma", 3)];

/// Creates the app's database at `path` holding [`APP_TABLE`], written with redb directly.
fn write_app_database(path: &Path) {
    let db = redb::Database::create(path).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut table = tx.open_table(APP_TABLE).unwrap();
        for (key, value) in APP_ROWS {
            table.insert(key, value).unwrap();
        }
    }
    tx.commit().unwrap();
}

/// Asserts the app's table at `path` still holds exactly [`APP_ROWS`].
fn assert_app_table_unchanged(path: &Path) {
    let db = redb::Database::open(path).unwrap();
    let tx = db.begin_read().unwrap();
    let table = tx.open_table(APP_TABLE).unwrap();
    let rows: Vec<(String, u64)> = table
        .iter()
        .unwrap()
        .map(|row| {
            let (key, value) = row.unwrap();
            (key.value().to_owned(), value.value())
        })
        .collect();
    let expected: Vec<(String, u64)> = APP_ROWS.iter().map(|&(k, v)| (k.to_owned(), v)).collect();
    assert_eq!(rows, expected);
}

/// `hnswdb stats --json` of `args`, parsed.
fn stats_json(args: &[OsString]) -> serde_json::Value {
    let out = hnswdb()
        .arg("stats")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The vector `hnswdb get` prints for `args`.
fn get_vector(args: &[OsString]) -> Vec<f32> {
    let out = hnswdb().arg("get").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect()
}

#[test]
fn named_indexes_share_an_app_database() {
    let f = Fixture::new().built();
    let app = f.path("app.redb");
    write_app_database(&app);
    // `INDEX --name NAME`, as the commands below take it.
    let named =
        |name: &str| -> Vec<OsString> { vec![app.clone().into(), "--name".into(), name.into()] };

    // Two indexes built into the app's file: `a` from the base vectors as `index.hnsw` was,
    // `b` from the queries under another metric.
    hnswdb()
        .arg("build")
        .args(named("a"))
        .arg("--input")
        .arg(f.path("base.fvecs"))
        .args(["--batch", "64"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("\"a\" in")
                .and(predicate::str::contains("inserted 300 vectors")),
        );
    hnswdb()
        .arg("build")
        .args(named("b"))
        .arg("--input")
        .arg(f.path("query.fvecs"))
        .args(["--metric", "cosine"])
        .assert()
        .success()
        .stdout(predicate::str::contains("inserted 20 vectors"));
    // Building `a` again resumes it: nothing to do.
    hnswdb()
        .arg("build")
        .args(named("a"))
        .arg("--input")
        .arg(f.path("base.fvecs"))
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to do"));
    // The app's file is no index file of its own: without --name it is refused as before.
    let out = hnswdb().arg("stats").arg(&app).output().unwrap();
    assert_one_error_line(&out, "not an hnswdb index");

    hnswdb()
        .arg("list")
        .arg(&app)
        .assert()
        .success()
        .stdout("a\nb\n");
    let out = hnswdb()
        .arg("list")
        .arg(&app)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let names: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names, serde_json::json!(["a", "b"]));

    // The same rows inserted in the same order give the same graph as the index file: the
    // same hits.
    let search = |target: Vec<OsString>| {
        let out = hnswdb()
            .arg("search")
            .args(target)
            .arg("--query")
            .arg(f.path("query.fvecs"))
            .args(["-k", "5", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["results"].clone()
    };
    assert_eq!(
        search(named("a")),
        search(vec![f.path("index.hnsw").into()])
    );

    let stats = stats_json(&named("a"));
    assert_eq!(stats["len"], 300);
    assert_eq!(stats["name"], "a");
    assert_eq!(stats["path"], app.display().to_string());
    let stats = stats_json(&named("b"));
    assert_eq!(stats["len"], 20);
    assert_eq!(stats["metric"], "cosine");
    assert!(stats_json(&[f.path("index.hnsw").into()])["name"].is_null());
    hnswdb()
        .arg("stats")
        .args(named("a"))
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "index            \"a\" in {}",
            app.display()
        )));

    hnswdb()
        .arg("verify")
        .args(named("a"))
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!(
            "ok: \"a\" in {} passed",
            app.display()
        )));
    let out = hnswdb()
        .arg("verify")
        .args(named("b"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let verify: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["name"], "b");
    assert_eq!(verify["len"], 20);

    let key = |k: &str, target: Vec<OsString>| {
        let mut args = target;
        args.push(k.into());
        args
    };
    assert_eq!(get_vector(&key("7", named("a"))), f.base[7]);
    assert_eq!(get_vector(&key("3", named("b"))), f.queries[3]);

    hnswdb()
        .arg("remove")
        .args(named("a"))
        .args(["7", "8"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "removed 2 keys; the index holds 298",
        ));
    let out = hnswdb()
        .arg("get")
        .args(key("7", named("a")))
        .output()
        .unwrap();
    assert_one_error_line(&out, "key 7 is not in \"a\" in");
    // `b` was not touched.
    assert_eq!(stats_json(&named("b"))["len"], 20);

    // Export `a`, import it as `c` beside it and into a database file of its own.
    let export = f.path("a.export");
    hnswdb()
        .arg("export")
        .args(named("a"))
        .arg(&export)
        .assert()
        .success()
        .stdout(predicate::str::contains("exported 298 vectors"));
    hnswdb()
        .arg("import")
        .args(named("c"))
        .arg(&export)
        .assert()
        .success()
        .stdout(predicate::str::contains("imported 298 vectors"));
    hnswdb().arg("verify").args(named("c")).assert().success();
    assert_eq!(
        get_vector(&key("9", named("c"))),
        get_vector(&key("9", named("a")))
    );
    let other = f.path("other.redb");
    hnswdb()
        .arg("import")
        .arg(&other)
        .args(["--name", "copy"])
        .arg(&export)
        .assert()
        .success()
        .stdout(predicate::str::contains("imported 298 vectors"));
    hnswdb()
        .arg("list")
        .arg(&other)
        .assert()
        .success()
        .stdout("copy\n");
    let out = hnswdb()
        .arg("import")
        .args(named("a"))
        .arg(&export)
        .output()
        .unwrap();
    assert_one_error_line(&out, "already exists");

    // Compaction is the app's business: a clear error, nothing changed.
    let out = hnswdb().arg("compact").args(named("a")).output().unwrap();
    assert_one_error_line(
        &out,
        "compact is not available for an index inside an app's database",
    );
    assert_eq!(stats_json(&named("a"))["len"], 298);

    // Deleting `b` leaves `a`, `c` and the app's table.
    hnswdb()
        .arg("delete-index")
        .arg(&app)
        .arg("b")
        .assert()
        .success()
        .stdout(predicate::str::contains("deleted the index \"b\""));
    hnswdb()
        .arg("delete-index")
        .arg(&app)
        .arg("b")
        .assert()
        .success()
        .stdout(predicate::str::contains("there is no index \"b\""));
    hnswdb()
        .arg("list")
        .arg(&app)
        .assert()
        .success()
        .stdout("a\nc\n");
    let out = hnswdb().arg("stats").args(named("b")).output().unwrap();
    assert_one_error_line(&out, "does not exist");
    hnswdb().arg("verify").args(named("a")).assert().success();
    hnswdb().arg("verify").args(named("c")).assert().success();

    assert_app_table_unchanged(&app);
}

#[test]
fn named_index_errors_give_one_error_line() {
    let f = Fixture::new();
    let app = f.path("app.redb");
    write_app_database(&app);
    let p = |name: &str| f.path(name).into_os_string();
    hnswdb()
        .arg("build")
        .arg(&app)
        .args(["--name", "a", "--input"])
        .arg(f.path("query.fvecs"))
        .assert()
        .success();
    fs::write(f.path("notes.txt"), "just some text\n").unwrap();
    let name = |n: &str| -> [OsString; 2] { ["--name".into(), n.into()] };
    let input = || -> [OsString; 2] { ["--input".into(), p("query.fvecs")] };
    let with = |parts: &[&[OsString]]| -> Vec<OsString> { parts.concat() };

    let cases: Vec<(Vec<OsString>, &str)> = vec![
        // A name that cannot be an index name.
        (
            with(&[&["build".into(), p("app.redb")], &name("a/b"), &input()]),
            "invalid index name \"a/b\"",
        ),
        (
            with(&[&["build".into(), p("new.redb")], &name("a/b"), &input()]),
            "invalid index name \"a/b\"",
        ),
        (
            with(&[&["stats".into(), p("app.redb")], &name("a/b")]),
            "invalid index name",
        ),
        (
            vec!["delete-index".into(), p("app.redb"), "a/b".into()],
            "invalid index name",
        ),
        // A name that is not in the file.
        (
            with(&[&["stats".into(), p("app.redb")], &name("nope")]),
            "does not exist",
        ),
        (
            with(&[&["get".into(), p("app.redb"), "1".into()], &name("nope")]),
            "does not exist",
        ),
        // --name on a file that is not there.
        (
            with(&[&["stats".into(), p("missing.redb")], &name("a")]),
            "missing.redb does not exist",
        ),
        (
            with(&[
                &[
                    "search".into(),
                    p("missing.redb"),
                    "--query".into(),
                    p("query.fvecs"),
                ],
                &name("a"),
            ]),
            "missing.redb does not exist",
        ),
        (
            with(&[&["verify".into(), p("missing.redb")], &name("a")]),
            "missing.redb does not exist",
        ),
        (
            with(&[
                &["remove".into(), p("missing.redb"), "1".into()],
                &name("a"),
            ]),
            "missing.redb does not exist",
        ),
        (
            with(&[&["compact".into(), p("missing.redb")], &name("a")]),
            "missing.redb does not exist",
        ),
        (
            with(&[
                &["export".into(), p("missing.redb"), p("x.export")],
                &name("a"),
            ]),
            "missing.redb does not exist",
        ),
        (
            vec!["list".into(), p("missing.redb")],
            "missing.redb does not exist",
        ),
        (
            vec!["delete-index".into(), p("missing.redb"), "a".into()],
            "missing.redb does not exist",
        ),
        // A file that is not a redb database is refused, never initialised.
        (
            with(&[&["build".into(), p("notes.txt")], &name("a"), &input()]),
            "is not a redb database",
        ),
        (
            with(&[
                &["import".into(), p("notes.txt"), p("notes.txt")],
                &name("a"),
            ]),
            "is not a redb database",
        ),
        (
            vec!["list".into(), p("notes.txt")],
            "is not a redb database",
        ),
        // A failed import leaves no database file behind.
        (
            with(&[
                &["import".into(), p("new.redb"), p("notes.txt")],
                &name("a"),
            ]),
            "not an hnswdb export stream",
        ),
    ];
    for (args, expected) in cases {
        let out = hnswdb().args(&args).output().unwrap();
        assert_one_error_line(&out, expected);
    }
    let out = hnswdb()
        .arg("verify")
        .arg(&app)
        .args(name("nope"))
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["error"]["kind"], "not_found");

    // Nothing was created, and nothing given was changed.
    assert!(!f.path("new.redb").exists());
    assert!(!f.path("missing.redb").exists());
    assert!(!f.path("x.export").exists());
    assert_eq!(
        fs::read_to_string(f.path("notes.txt")).unwrap(),
        "just some text\n"
    );
    hnswdb()
        .arg("list")
        .arg(&app)
        .assert()
        .success()
        .stdout("a\n");
    hnswdb()
        .arg("verify")
        .arg(&app)
        .args(name("a"))
        .assert()
        .success();
    assert_app_table_unchanged(&app);
}
