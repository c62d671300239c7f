//! Quantized indexes (`Quantization::Int8`, `Binary`): the walk on codes, re-ranked with exact
//! distances, finds what the unquantized index finds (recall within 0.005 at equal `ef`, the very
//! same distance bits for every key), whatever part of the cache holds what; the setting is
//! stored and checked; codes follow every insert, removal and upsert (`verify`).

mod common;

use common::{data_dir, read_fvecs, read_ivecs};
use hnswdb::redb::ReadableTable;
use hnswdb::{Error, Hit, Index, Metric, Options, Quantization, SearchParams};

/// Base vectors, queries and the exact top 10 of each.
type DataSet = (Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<Vec<u64>>);

/// bigann10k/heldout.
fn bigann() -> DataSet {
    let dir = data_dir("bigann10k/heldout");
    let truth = read_ivecs(&dir.join("gt.ivecs"))
        .into_iter()
        .map(|t| t[..10].iter().map(|&i| i as u64).collect())
        .collect();
    (
        read_fvecs(&dir.join("base.fvecs")),
        read_fvecs(&dir.join("query.fvecs")),
        truth,
    )
}

/// A serial build (so the graph depends on the seed and the rows only, not on the
/// quantization) of `base` with `quantization`.
fn build(path: &std::path::Path, base: &[Vec<f32>], quantization: Quantization) -> Index {
    let options = Options::new(base[0].len())
        .metric(Metric::L2)
        .ef_construction(100)
        .build_threads(1)
        .quantization(quantization);
    let index = Index::create(path, options).unwrap();
    common::insert_numbered(&index, base);
    index
}

fn search_all(index: &Index, queries: &[Vec<f32>], params: &SearchParams) -> Vec<Vec<Hit>> {
    index.search_batch(queries, params).unwrap()
}

fn recall(hits: &[Vec<Hit>], truth: &[Vec<u64>]) -> f64 {
    let found: usize = hits
        .iter()
        .zip(truth)
        .map(|(h, t)| h.iter().filter(|h| t.contains(&h.key)).count())
        .sum();
    found as f64 / (10 * truth.len()) as f64
}

#[test]
fn rescored_searches_match_the_unquantized_index() {
    let (base, queries, truth) = bigann();
    let dir = tempfile::tempdir().unwrap();
    let plain = build(&dir.path().join("none"), &base, Quantization::None);
    for quantization in [Quantization::Int8, Quantization::Binary] {
        let index = build(
            &dir.path().join(quantization.to_string()),
            &base,
            quantization,
        );
        for ef in [16, 64] {
            let params = SearchParams::new(10).ef(ef);
            let want = search_all(&plain, &queries, &params);
            let got = search_all(&index, &queries, &params);
            let (r0, r1) = (recall(&want, &truth), recall(&got, &truth));
            eprintln!("{quantization} ef {ef}: recall {r1:.4}, unquantized {r0:.4}");
            if quantization == Quantization::Int8 {
                // The default re-ranks k + ⌈k/2⌉: enough for Int8's close estimates.
                assert!(
                    r1 >= r0 - 0.005,
                    "{quantization} ef {ef}: {r1} against {r0}"
                );
            }
            // Every distance is the exact one: the same bits as the unquantized index's.
            for (w, g) in want.iter().zip(&got) {
                for hit in g {
                    if let Some(same) = w.iter().find(|h| h.key == hit.key) {
                        assert_eq!(same.distance.to_bits(), hit.distance.to_bits());
                    }
                }
            }
            // Int8 needs no more than its default (every candidate of the walk); Binary on
            // these 128-d SIFT vectors (a bit each) needs eight times as many.
            let (rescore, slack) = match quantization {
                Quantization::Int8 => (ef, 0.005),
                _ => (8 * ef, 0.005),
            };
            let got = search_all(&index, &queries, &params.clone().rescore(rescore));
            let r1 = recall(&got, &truth);
            eprintln!("{quantization} ef {ef} rescore {rescore}: recall {r1:.4}");
            assert!(
                r1 >= r0 - slack,
                "{quantization} ef {ef}: {r1} against {r0}"
            );
        }
    }
}

/// The index's answers for `queries` at ef 32.
fn answers(index: &Index, queries: &[Vec<f32>]) -> Vec<Vec<Hit>> {
    search_all(index, queries, &SearchParams::new(10).ef(32))
}

fn same(a: &[Vec<Hit>], b: &[Vec<Hit>], what: &str) {
    for (x, y) in a.iter().zip(b) {
        let bits = |h: &[Hit]| -> Vec<(u64, u32)> {
            h.iter().map(|h| (h.key, h.distance.to_bits())).collect()
        };
        assert_eq!(bits(x), bits(y), "{what}");
    }
}

/// Reopens `path` with memory budget `budget` and waits for the cache load.
fn reopen(path: &std::path::Path, quantization: Quantization, budget: u64) -> Index {
    let options = Index::open(path).unwrap().options().clone();
    let index = Index::open_or_create(path, options.quantization(quantization).cache_bytes(budget))
        .unwrap();
    index.wait_loaded().unwrap();
    index
}

#[test]
fn the_budget_holds_codes_and_lists_first_and_changes_no_answer() {
    let (base, queries, _) = bigann();
    let (base, queries) = (&base[..3000], &queries[..100]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("int8");
    let built = answers(&build(&path, base, Quantization::Int8), queries);
    // A code is 2 + 128/8 words (lo and step, ‖x‖², 128 bytes); a list 33 words of 4 bytes.
    let (codes, lists, vectors) = (3008 * 144, 3008 * 33 * 4, 3008 * 128 * 4);
    let page_cache = 1 << 20;
    for (budget, want) in [
        (0, [false, false, false]),
        (codes + page_cache, [true, false, false]),
        (codes + lists + page_cache, [true, true, false]),
        (codes + lists + vectors + page_cache, [true, true, true]),
    ] {
        let index = reopen(&path, Quantization::Int8, budget);
        let stats = index.stats().unwrap();
        let held = [
            stats.codes_bytes > 0,
            stats.links_bytes > 0,
            stats.layer0_vectors_cached,
        ];
        assert_eq!(held, want, "budget {budget}: {stats:?}");
        assert_eq!(
            stats.cache_bytes,
            stats.upper_bytes + stats.codes_bytes + stats.links_bytes + stats.vectors_bytes
        );
        assert!(stats.codes_bytes + stats.links_bytes + stats.vectors_bytes <= budget);
        assert_eq!(stats.page_cache_bytes, page_cache);
        same(
            &built,
            &answers(&index, queries),
            &format!("budget {budget}"),
        );
        index.verify().unwrap();
    }
}

#[test]
fn the_quantization_is_stored_checked_and_exported() {
    let (base, queries, _) = bigann();
    let (base, queries) = (&base[..1000], &queries[..50]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("binary");
    let index = build(&path, base, Quantization::Binary);
    let built = answers(&index, queries);
    let mut stream = Vec::new();
    index.export(&mut stream).unwrap();
    drop(index);

    let index = Index::open(&path).unwrap();
    assert_eq!(index.options().get_quantization(), Quantization::Binary);
    same(&built, &answers(&index, queries), "reopened");
    let other = index.options().clone().quantization(Quantization::Int8);
    drop(index);
    match Index::open_or_create(&path, other) {
        Err(Error::OptionsMismatch {
            setting,
            stored,
            requested,
        }) => assert_eq!(
            (setting, stored.as_str(), requested.as_str()),
            ("quantization", "binary", "int8")
        ),
        other => panic!("{other:?}"),
    }

    // An import builds the graph again (one row at a time), so compare with a serial build.
    let imported = Index::import(dir.path().join("imported"), stream.as_slice()).unwrap();
    assert_eq!(imported.options().get_quantization(), Quantization::Binary);
    imported.verify().unwrap();
    assert_eq!(imported.len(), base.len());
}

#[test]
fn codes_follow_inserts_removals_upserts_and_aborts() {
    let (base, queries, _) = bigann();
    let (base, queries) = (&base[..1500], &queries[..50]);
    for quantization in [Quantization::Int8, Quantization::Binary] {
        let options = Options::new(128)
            .metric(Metric::Cosine)
            .build_threads(1)
            .quantization(quantization);
        let dir = tempfile::tempdir().unwrap();
        let file = Index::create(dir.path().join("file"), options.clone()).unwrap();
        let memory = Index::in_memory(options).unwrap();
        for index in [&file, &memory] {
            common::insert_numbered(index, &base[..1000]);
            for key in (0..1000).step_by(3) {
                assert!(index.remove(key).unwrap());
            }
            // Upserts, new keys into freed ids, and a transaction dropped unfinished.
            let mut tx = index.write().unwrap();
            for key in 0..200u64 {
                tx.insert(key, &base[1000 + key as usize]).unwrap();
            }
            tx.commit().unwrap();
            let mut tx = index.write().unwrap();
            tx.insert(5000, &base[1400]).unwrap();
            tx.remove(1).unwrap();
            drop(tx);
            index.verify().unwrap();
            assert_eq!(index.get(3).unwrap().as_deref(), Some(&base[1003][..]));
            let hits = answers(index, queries);
            assert!(hits.iter().all(|h| h.len() == 10));
        }
        same(
            &answers(&file, queries),
            &answers(&memory, queries),
            "memory",
        );
        drop(file);
        let reopened = Index::open(dir.path().join("file")).unwrap();
        reopened.wait_loaded().unwrap();
        reopened.verify().unwrap();
        same(
            &answers(&reopened, queries),
            &answers(&memory, queries),
            "reopened",
        );
    }
}

#[test]
fn verify_finds_a_code_that_is_not_its_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("int8");
    let (base, _, _) = bigann();
    drop(build(&path, &base[..100], Quantization::Int8));
    {
        let db = hnswdb::redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def = hnswdb::redb::TableDefinition::<u64, &[u8]>::new("hnswdb.codes");
            let mut codes = txn.open_table(def).unwrap();
            let mut row = codes.get(7).unwrap().unwrap().value().to_vec();
            row[20] ^= 0x10;
            codes.insert(7, row.as_slice()).unwrap();
            codes.insert(1000, row.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let report = Index::open(&path).unwrap().verify_report().unwrap();
    let what: Vec<&str> = report.problems.iter().map(|p| p.what.as_str()).collect();
    assert_eq!(
        what,
        [
            "code 7 is not the code of its vector",
            "code 1000 belongs to no live node",
            "101 codes stored for 100 live nodes with a code"
        ],
        "{report:?}"
    );
}
