"""Write transactions: commit, abort on an exception, explicit ends, use after the end."""

import threading
import time

import numpy as np
import pytest

import hnswdb


def vectors(n, dim=4, start=0):
    return np.arange(start, start + n * dim, dtype=np.float32).reshape(n, dim) + 1


@pytest.fixture
def idx(tmp_path):
    index = hnswdb.Index.create(tmp_path / "t.hnsw", dim=4, metric="l2")
    index.add(np.arange(10, dtype=np.uint64), vectors(10))
    yield index
    index.close()


def test_commit_on_normal_exit(idx):
    with idx.write() as tx:
        tx.add(np.array([100, 101], dtype=np.uint64), vectors(2, start=100))
        assert tx.remove(3) is True
        assert tx.remove(3) is False
        assert 100 in tx and 3 not in tx and len(tx) == 11
        # Searches see the last commit until this one commits.
        assert 100 not in idx and 3 in idx and len(idx) == 10
    assert 100 in idx and 101 in idx and 3 not in idx and len(idx) == 11
    assert tx.closed


def test_abort_on_an_exception(idx):
    with pytest.raises(RuntimeError, match="stop"):
        with idx.write() as tx:
            tx.add([100], vectors(1))
            tx.remove(1)
            raise RuntimeError("stop")
    assert 100 not in idx and 1 in idx and len(idx) == 10
    idx.verify()


def test_explicit_commit_and_abort(idx):
    tx = idx.write()
    tx.add([100], vectors(1))
    tx.abort()
    tx.abort()  # aborting an ended transaction does nothing
    assert 100 not in idx
    tx = idx.write()
    tx.add([100], vectors(1))
    tx.commit()
    assert 100 in idx
    with idx.write() as tx:
        tx.add([101], vectors(1))
        tx.commit()  # an explicit commit inside `with`: the exit does nothing more
    assert 101 in idx


def test_a_transaction_used_after_its_end(idx):
    with idx.write() as tx:
        tx.add([100], vectors(1))
    for call in [lambda: tx.add([5], vectors(1)), lambda: tx.remove(1), lambda: len(tx),
                 lambda: 1 in tx, lambda: tx.commit()]:
        with pytest.raises(hnswdb.ClosedError):
            call()
    assert "ended" in repr(tx)


def test_a_dropped_transaction_aborts(idx):
    tx = idx.write()
    tx.add([100], vectors(1))
    del tx
    # The writer lock is free again (this would wait forever otherwise), and nothing landed.
    with idx.write() as tx:
        tx.add([101], vectors(1))
    assert 100 not in idx and 101 in idx


def test_a_rejected_vector_leaves_the_transaction_usable(idx):
    with idx.write() as tx:
        tx.add([100], vectors(1))
        with pytest.raises(hnswdb.InvalidVectorError):
            tx.add([101, 102], np.array([[1, 2, 3, 4], [np.nan, 0, 0, 0]]))
        with pytest.raises(hnswdb.DimensionError):
            tx.add([103], np.ones((1, 5)))
        tx.add([104], vectors(1, start=7))
    assert 100 in idx and 104 in idx and 101 not in idx


def test_writes_on_the_thread_holding_a_transaction_are_refused(idx):
    with idx.write() as tx:
        for call in [lambda: idx.add([200], vectors(1)), lambda: idx.remove(1), idx.write,
                     idx.checkpoint, idx.compact, idx.close]:
            with pytest.raises(hnswdb.WriteInProgressError):
                call()
        # Reads go on.
        assert len(idx) == 10 and idx.search(vectors(1)[0], k=1)[0][0] == 0
        tx.add([200], vectors(1))
    assert 200 in idx


def test_another_thread_waits_for_the_transaction(idx):
    order = []

    def writer():
        idx.add([300], vectors(1))  # waits for the open transaction, GIL released
        order.append("other thread")

    with idx.write() as tx:
        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(0.2)
        order.append("transaction")
        tx.add([301], vectors(1))
    thread.join(10)
    assert order == ["transaction", "other thread"]
    assert 300 in idx and 301 in idx


def test_a_transaction_from_another_thread(idx):
    tx = idx.write()
    tx.add([400], vectors(1))
    done = threading.Thread(target=tx.commit)
    done.start()
    done.join(10)
    assert 400 in idx


def test_in_memory_transactions():
    idx = hnswdb.Index.in_memory(dim=4)
    with idx.write() as tx:
        tx.add(np.arange(500, dtype=np.uint64), np.random.default_rng(0).random((500, 4)) + 0.1)
    assert len(idx) == 500
    idx.verify()
