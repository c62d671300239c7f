"""Ctrl-C during a long add: KeyboardInterrupt comes out of the call within a chunk's time,
and nothing of the add is committed (a transaction it ran in is aborted)."""

import _thread
import signal
import threading

import numpy as np
import pytest

import hnswdb

DIM = 32
# Far more rows than two cores link in the half second before the interrupt.
ROWS = 200_000


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((ROWS, DIM), dtype=np.float32)
    return np.arange(ROWS, dtype=np.uint64), vectors


@pytest.fixture(autouse=True)
def ctrl_c_raises():
    """Python's own SIGINT handler, as in an interactive session: a process started with SIGINT
    ignored (a background job of a script, say) keeps it ignored, and then a Ctrl-C, like
    `_thread.interrupt_main()`, does nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def interrupt_soon():
    """Raises KeyboardInterrupt in the main thread in 0.5 s, as a Ctrl-C would."""
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    return timer


def test_ctrl_c_stops_an_add_and_commits_nothing(tmp_path, rows):
    keys, vectors = rows
    path = tmp_path / "i.hnsw"
    with hnswdb.Index.create(path, dim=DIM, metric="l2") as idx:
        idx.add(keys[:100], vectors[:100])
        timer = interrupt_soon()
        with pytest.raises(KeyboardInterrupt):
            idx.add(keys[100:], vectors[100:])
        timer.join()
        assert len(idx) == 100
        idx.verify()
        # The index goes on working, and the writer lock is free.
        idx.add(keys[100:200], vectors[100:200])
        assert len(idx) == 200
    with hnswdb.Index.open(path) as idx:
        assert len(idx) == 200
        idx.verify()


def test_ctrl_c_in_a_transaction_aborts_it(tmp_path, rows):
    keys, vectors = rows
    with hnswdb.Index.create(tmp_path / "t.hnsw", dim=DIM, metric="l2") as idx:
        timer = interrupt_soon()
        with pytest.raises(KeyboardInterrupt):
            with idx.write() as tx:
                tx.add(keys[:10], vectors[:10])
                tx.add(keys[10:], vectors[10:])
        timer.join()
        assert tx.closed
        assert len(idx) == 0
        with pytest.raises(hnswdb.ClosedError):
            tx.add(keys[:1], vectors[:1])
        idx.add(keys[:50], vectors[:50])
        assert len(idx) == 50
        idx.verify()


def test_a_bad_vector_in_a_later_chunk_leaves_the_transaction_as_it_was(tmp_path, rows):
    keys, vectors = rows
    bad = vectors[:5000].copy()
    bad[4500, 3] = np.nan
    with hnswdb.Index.create(tmp_path / "b.hnsw", dim=DIM, metric="l2") as idx:
        with idx.write() as tx:
            tx.add(keys[:10], vectors[:10])
            with pytest.raises(hnswdb.InvalidVectorError):
                tx.add(keys[10:5010], bad)
            assert len(tx) == 10
        assert len(idx) == 10
        with pytest.raises(hnswdb.InvalidVectorError):
            idx.add(keys[10:5010], bad)
        assert len(idx) == 10
