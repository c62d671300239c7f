//! Hits at equal distances: ordered by key, and a tie at the `k`-th distance goes to the
//! smallest keys, whatever order the keys went in (and so whatever their node ids).

use hnswdb::{Index, Metric, Options, SearchParams};

#[test]
fn equal_distances_come_back_by_key() {
    for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
        let index = Index::in_memory(Options::new(2).metric(metric)).unwrap();
        // Five copies of one vector under keys out of order, then farther ones.
        for key in [50, 10, 40, 20, 30] {
            index.insert(key, &[1.0, 1.0]).unwrap();
        }
        for key in 0..5 {
            index.insert(key, &[1.0, -1.0 - key as f32]).unwrap();
        }
        for k in 1..=7 {
            let hits = index
                .search_with(&[1.0, 1.0], &SearchParams::new(k).ef(64))
                .unwrap();
            let keys: Vec<u64> = hits.iter().take(5).map(|h| h.key).collect();
            let expected = [10, 20, 30, 40, 50];
            assert_eq!(keys, expected[..k.min(5)], "{metric:?}, k {k}");
        }
    }
}
