"""The pinned API: create, add, search, get, remove, len, in, verify, stats, close, open."""

import os

import numpy as np
import pytest

import hnswdb
from conftest import brute_force


def test_the_pinned_api_end_to_end(tmp_path, data):
    keys, vectors = data
    path = tmp_path / "a.hnsw"
    idx = hnswdb.Index.create(path, dim=16, metric="l2", m=16, ef_construction=200)
    idx.add(keys, vectors)
    assert len(idx) == 1000
    found, dists = idx.search(vectors[:50], k=10, ef=64)
    assert found.shape == (50, 10) and found.dtype == np.uint64
    assert dists.shape == (50, 10) and dists.dtype == np.float32
    # Each query is in the index: it is its own nearest, at distance 0.
    assert (found[:, 0] == keys[:50]).all()
    assert (dists[:, 0] == 0).all()
    assert (np.diff(dists, axis=1) >= 0).all()

    one_keys, one_dists = idx.search(vectors[3], k=10, ef=64)
    assert one_keys.shape == (10,) and one_dists.shape == (10,)
    assert one_keys[0] == 3

    assert np.array_equal(idx.get(7), vectors[7])
    assert idx.get(7).dtype == np.float32 and idx.get(7).shape == (16,)
    assert idx.get(123456) is None
    assert idx.remove(7) is True
    assert idx.remove(7) is False
    assert 7 not in idx and 8 in idx and len(idx) == 999
    assert "seven" not in idx and -1 not in idx

    with idx.write() as tx:
        tx.add(np.array([5000], dtype=np.uint64), vectors[:1])
        tx.remove(9)
    assert 5000 in idx and 9 not in idx

    idx.verify()
    stats = idx.stats()
    assert isinstance(stats, dict)
    assert stats["len"] == 999
    assert sum(stats["nodes_per_level"]) == 999
    assert stats["file_bytes"] > 0
    idx.close()
    assert idx.closed

    with hnswdb.Index.open(path) as idx:
        assert len(idx) == 999
        assert idx.dim == 16 and idx.metric == "l2"
        assert idx.path == path
        assert np.array_equal(idx.get(8), vectors[8])
    assert idx.closed


@pytest.mark.parametrize("metric", ["l2", "cosine", "dot"])
def test_search_is_exact_with_ef_at_least_the_size(metric, data):
    keys, vectors = data
    if metric == "dot":
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    idx = hnswdb.Index.in_memory(dim=16, metric=metric)
    idx.add(keys, vectors)
    queries = np.random.default_rng(1).standard_normal((20, 16)).astype(np.float32)
    found, dists = idx.search(queries, k=10, ef=1000)
    for q, row_keys, row_dists in zip(queries, found, dists):
        want_keys, want_dists = brute_force(metric, keys, vectors, q, 10)
        np.testing.assert_allclose(row_dists, want_dists, rtol=1e-4, atol=1e-5)
        assert set(row_keys) == set(want_keys)


def test_recall_at_default_settings(data):
    keys, vectors = data
    idx = hnswdb.Index.in_memory(dim=16, metric="l2")
    idx.add(keys, vectors)
    queries = np.random.default_rng(2).standard_normal((100, 16)).astype(np.float32)
    found, _ = idx.search(queries, k=10, ef=64)
    hits = 0
    for q, row in zip(queries, found):
        want, _ = brute_force("l2", keys, vectors, q, 10)
        hits += len(set(row) & set(want))
    assert hits / 1000 >= 0.95


def test_fewer_hits_than_k_are_filled_with_no_key_and_inf():
    idx = hnswdb.Index.in_memory(dim=2, metric="l2")
    idx.add(np.array([1, 2, 3], dtype=np.uint64), np.array([[0, 0], [1, 0], [2, 0]], dtype=np.float32))
    found, dists = idx.search(np.array([0, 0], dtype=np.float32), k=5)
    assert list(found[:3]) == [1, 2, 3]
    assert list(found[3:]) == [hnswdb.NO_KEY, hnswdb.NO_KEY] == [2**64 - 1] * 2
    assert np.isinf(dists[3:]).all() and (dists[3:] > 0).all()
    # The same with a filter that matches fewer than k.
    found, dists = idx.search(np.array([[0, 0], [2, 0]], dtype=np.float32), k=3, filter=lambda key: key == 2)
    assert found.tolist() == [[2, 2**64 - 1, 2**64 - 1]] * 2
    assert dists[:, 0].tolist() == [1.0, 1.0] and np.isinf(dists[:, 1:]).all()
    # An empty index, and k = 0.
    empty = hnswdb.Index.in_memory(dim=2)
    found, dists = empty.search(np.ones((4, 2), dtype=np.float32), k=2)
    assert (found == hnswdb.NO_KEY).all() and np.isinf(dists).all()
    found, dists = idx.search(np.ones((4, 2), dtype=np.float32), k=0)
    assert found.shape == (4, 0) and dists.shape == (4, 0)


def test_filter_ef_rescore_threads(data):
    keys, vectors = data
    idx = hnswdb.Index.in_memory(dim=16, metric="l2", quantization="int8", seed=3)
    idx.add(keys, vectors)
    found, _ = idx.search(vectors[:40], k=5, ef=32, rescore=20, threads=2, filter=lambda k: k % 3 == 0)
    assert (found % 3 == 0).all()
    # A key that passes is found first when it is the query itself.
    assert found[0, 0] == 0 and found[3, 0] == 3
    one, _ = idx.search(vectors[:40], k=5, ef=200, threads=1)
    many, _ = idx.search(vectors[:40], k=5, ef=200, threads=0)
    assert np.array_equal(one, many)


def test_every_setting_is_a_keyword(tmp_path):
    path = tmp_path / "s.hnsw"
    settings = dict(
        metric="dot", m=8, ef_construction=50, ef_search=40, seed=9, durability="eventual",
        quick_repair=False, cache_bytes=64 << 20, quantization="binary", build_threads=1,
    )
    idx = hnswdb.Index.create(path, dim=32, **settings)
    assert idx.options == dict(dim=32, **settings)
    idx.close()
    idx = hnswdb.Index.open(path, checked=True)
    stored = idx.options
    assert stored["seed"] == 9 and stored["quantization"] == "binary" and stored["m"] == 8
    idx.close()
    # open_or_create: the same structure, a new ef_search and durability.
    idx = hnswdb.Index.open_or_create(path, dim=32, metric="dot", m=8, ef_construction=50, seed=9,
                                      quantization="binary", ef_search=80, durability="immediate")
    assert idx.options["ef_search"] == 80 and idx.options["durability"] == "immediate"
    idx.close()
    with pytest.raises(hnswdb.OptionsMismatchError) as info:
        hnswdb.Index.open_or_create(path, dim=32, metric="l2")
    assert isinstance(info.value, ValueError)
    fresh = hnswdb.Index.open_or_create(tmp_path / "new.hnsw", dim=3)
    assert fresh.options["metric"] == "cosine" and len(fresh) == 0
    fresh.close()


def test_keys_export_import_compact_checkpoint(tmp_path, data):
    keys, vectors = data
    idx = hnswdb.Index.create(tmp_path / "a.hnsw", dim=16, metric="l2", durability="eventual")
    idx.add(keys[:300], vectors[:300])
    for key in range(100):
        idx.remove(key)
    idx.checkpoint()
    idx.compact()
    assert np.array_equal(idx.keys(), np.arange(100, 300, dtype=np.uint64))
    written = idx.export(tmp_path / "a.export")
    assert written["rows"] == 200 and written["bytes"] == os.path.getsize(tmp_path / "a.export")
    copy = hnswdb.Index.from_export(tmp_path / "b.hnsw", tmp_path / "a.export")
    assert len(copy) == 200 and np.array_equal(copy.get(150), vectors[150])
    assert copy.options["metric"] == "l2"
    report = copy.verify_report()
    assert report["problems"] == [] and report["complete"] and report["nodes"] == 200
    copy.close()
    idx.close()


def test_in_memory_index_has_no_path(data):
    keys, vectors = data
    idx = hnswdb.Index.in_memory(dim=16)
    assert idx.path is None
    idx.add(keys[:10], vectors[:10])
    assert len(idx) == 10 and "in memory" in repr(idx)
    assert idx.stats()["file_bytes"] == 0
    idx.close()


def test_single_key_add_and_upsert():
    idx = hnswdb.Index.in_memory(dim=3, metric="l2")
    idx.add(5, [1.0, 2.0, 3.0])
    idx.add(5, np.array([4.0, 5.0, 6.0]))
    assert len(idx) == 1 and idx.get(5).tolist() == [4.0, 5.0, 6.0]
    # A key repeated in one batch keeps its last vector.
    idx.add([6, 6], [[1, 1, 1], [2, 2, 2]])
    assert idx.get(6).tolist() == [2.0, 2.0, 2.0]
    idx.add(np.array([], dtype=np.uint64), np.zeros((0, 3), dtype=np.float32))
    assert len(idx) == 2
    big = 2**64 - 2
    idx.add([big], [[0, 0, 1]])
    assert big in idx and idx.search([0, 0, 1], k=1)[0][0] == big


def test_exception_classes():
    assert issubclass(hnswdb.DimensionError, hnswdb.Error)
    assert issubclass(hnswdb.DimensionError, ValueError)
    assert issubclass(hnswdb.InvalidVectorError, ValueError)
    assert issubclass(hnswdb.NotFoundError, FileNotFoundError)
    assert issubclass(hnswdb.AlreadyExistsError, FileExistsError)
    assert issubclass(hnswdb.InvalidOptionsError, ValueError)
    assert issubclass(hnswdb.ClosedError, hnswdb.Error)
    for name in ["CorruptError", "VersionError", "NotAnIndexError", "InUseError", "StorageError",
                 "IoError", "WriteInProgressError", "TransactionBrokenError", "FullError",
                 "InvalidStreamError", "ThreadError", "LoadStoppedError", "InvalidNameError",
                 "NotInSharedDatabaseError", "NotInTransactionError"]:
        assert issubclass(getattr(hnswdb, name), hnswdb.Error), name


def test_export_to_and_import_from_file_objects(tmp_path, data):
    import io

    keys, vectors = data[0][:300], data[1][:300]
    idx = hnswdb.Index.create(tmp_path / "f.hnsw", dim=vectors.shape[1], metric="l2")
    idx.add(keys, vectors)
    buffer = io.BytesIO()
    written = idx.export(buffer)
    assert written["rows"] == 300 and written["bytes"] == len(buffer.getvalue())
    with open(tmp_path / "f.export", "wb") as f:
        assert idx.export(f) == written
    assert (tmp_path / "f.export").read_bytes() == buffer.getvalue()

    copy = hnswdb.Index.from_export(tmp_path / "g.hnsw", io.BytesIO(buffer.getvalue()))
    with open(tmp_path / "f.export", "rb") as f:
        again = hnswdb.Index.from_export(tmp_path / "h.hnsw", f)
    for other in (copy, again):
        assert len(other) == 300
        np.testing.assert_array_equal(other.get(int(keys[7])), vectors[7])
        other.verify()

    # A truncated stream is the stream's error; the file object's own exception is itself.
    with pytest.raises(hnswdb.InvalidStreamError):
        hnswdb.Index.from_export(tmp_path / "t.hnsw", io.BytesIO(buffer.getvalue()[:-10]))
    assert not (tmp_path / "t.hnsw").exists()

    class Failing(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            raise OSError(28, "No space left on device")

        def read(self, n=-1):
            raise RuntimeError("the network went away")

    with pytest.raises(OSError, match="No space left"):
        idx.export(Failing())
    with pytest.raises(RuntimeError, match="network went away"):
        hnswdb.Index.from_export(tmp_path / "u.hnsw", Failing())
    assert not (tmp_path / "u.hnsw").exists()
