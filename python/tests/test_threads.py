"""Threads: searches run while one thread writes, and builds and searches release the GIL."""

import threading
import time

import numpy as np

import hnswdb


def test_threads_search_while_one_writes(tmp_path):
    rng = np.random.default_rng(7)
    dim = 16
    base = rng.standard_normal((4000, dim)).astype(np.float32)
    idx = hnswdb.Index.create(tmp_path / "c.hnsw", dim=dim, metric="l2")
    idx.add(np.arange(1000, dtype=np.uint64), base[:1000])
    stop = threading.Event()
    errors = []
    searches = [0, 0]

    def searcher(slot):
        queries = rng.standard_normal((32, dim)).astype(np.float32)
        try:
            while not stop.is_set():
                found, dists = idx.search(queries, k=10, ef=64)
                # Every hit is a key ever written, with its true distance, nearest first.
                assert (found < 4000).all()
                assert (np.diff(dists, axis=1) >= 0).all()
                expected = ((base[found.astype(np.int64)] - queries[:, None, :]) ** 2).sum(axis=2)
                np.testing.assert_allclose(dists, expected, rtol=1e-4, atol=1e-4)
                searches[slot] += 1
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=searcher, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    try:
        for start in range(1000, 4000, 500):
            idx.add(np.arange(start, start + 500, dtype=np.uint64), base[start:start + 500])
            for key in range(start - 1000, start - 1000 + 50):
                idx.remove(key)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors
    assert min(searches) > 0
    assert len(idx) == 4000 - 300
    idx.verify()
    idx.close()


def test_a_build_releases_the_gil():
    rng = np.random.default_rng(8)
    vectors = rng.standard_normal((6000, 32)).astype(np.float32)
    idx = hnswdb.Index.in_memory(dim=32, metric="l2", build_threads=1)
    builder = threading.Thread(target=idx.add, args=(np.arange(6000, dtype=np.uint64), vectors))
    ticks = 0
    started = time.perf_counter()
    builder.start()
    while builder.is_alive():
        ticks += 1
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    assert len(idx) == 6000
    # Holding the GIL, the build would have let this loop run about once; released, it runs
    # about once a millisecond for the whole build.
    assert elapsed > 0.05, "the build was too quick to tell"
    assert ticks > elapsed * 1000 / 10, (ticks, elapsed)


def test_close_waits_for_searches_in_other_threads(tmp_path):
    rng = np.random.default_rng(9)
    vectors = rng.standard_normal((3000, 16)).astype(np.float32)
    idx = hnswdb.Index.create(tmp_path / "w.hnsw", dim=16)
    idx.add(np.arange(3000, dtype=np.uint64), vectors)
    outcomes = []

    def search_until_closed():
        try:
            while True:
                idx.search(vectors[:64], k=10)
        except hnswdb.ClosedError:
            outcomes.append("closed")
        except Exception as e:
            outcomes.append(e)

    threads = [threading.Thread(target=search_until_closed) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    idx.close()
    for t in threads:
        t.join(30)
    assert outcomes == ["closed", "closed"]
    with hnswdb.Index.open(tmp_path / "w.hnsw") as again:
        assert len(again) == 3000
