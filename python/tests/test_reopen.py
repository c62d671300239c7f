"""What is committed is there after a reopen; durability "eventual" with checkpoint and close."""

import subprocess
import sys
import textwrap

import numpy as np

import hnswdb


def test_reopen_keeps_every_commit(tmp_path, data):
    keys, vectors = data
    path = tmp_path / "r.hnsw"
    with hnswdb.Index.create(path, dim=16, metric="cosine", seed=5) as idx:
        idx.add(keys[:500], vectors[:500])
        with idx.write() as tx:
            tx.add(keys[500:], vectors[500:])
            for key in range(0, 1000, 10):
                tx.remove(key)
        before = idx.search(vectors[:20], k=10, ef=200)
    with hnswdb.Index.open(path) as idx:
        assert len(idx) == 900
        assert 10 not in idx and 11 in idx
        assert np.array_equal(idx.get(999), vectors[999])
        after = idx.search(vectors[:20], k=10, ef=200)
        assert np.array_equal(before[0], after[0])
        np.testing.assert_array_equal(before[1], after[1])
        idx.verify()


def test_a_killed_process_keeps_what_it_committed(tmp_path):
    path = tmp_path / "k.hnsw"
    script = textwrap.dedent(f"""
        import os, numpy as np, hnswdb
        idx = hnswdb.Index.create({str(path)!r}, dim=4, metric="l2")
        idx.add(np.arange(100, dtype=np.uint64), np.random.default_rng(0).random((100, 4)))
        tx = idx.write()
        tx.add([1000], np.ones((1, 4)))
        os._exit(0)  # no close, no commit: the transaction is lost, the batch is not
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    with hnswdb.Index.open(path) as idx:
        assert len(idx) == 100 and 1000 not in idx
        idx.verify()


def test_eventual_durability_checkpoint_and_close(tmp_path):
    path = tmp_path / "e.hnsw"
    idx = hnswdb.Index.create(path, dim=4, durability="eventual")
    for key in range(20):
        idx.add(key, np.array([1.0, key, 0.5, 0.25]))
    idx.checkpoint()
    idx.add(20, np.ones(4))
    idx.close()
    with hnswdb.Index.open(path) as idx:
        assert len(idx) == 21
        assert idx.options["durability"] == "eventual"
