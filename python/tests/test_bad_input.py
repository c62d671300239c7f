"""Bad inputs: each is a clear exception, never a crash; conversions that make sense work."""

import numpy as np
import pytest

import hnswdb


@pytest.fixture
def idx():
    index = hnswdb.Index.in_memory(dim=4, metric="l2")
    index.add(np.arange(10, dtype=np.uint64), np.eye(10, 4, dtype=np.float32) + np.arange(10)[:, None])
    yield index
    index.close()


def test_wrong_dimension(idx):
    with pytest.raises(hnswdb.DimensionError, match="3 dimensions"):
        idx.add([1], np.ones((1, 3), dtype=np.float32))
    with pytest.raises(ValueError):
        idx.search(np.ones((2, 5), dtype=np.float32))
    with pytest.raises(hnswdb.DimensionError):
        idx.search(np.ones(3, dtype=np.float32))
    with pytest.raises(hnswdb.DimensionError):
        idx.add(1, np.ones(5))


def test_wrong_shape(idx):
    with pytest.raises(ValueError, match="keys"):
        idx.add([1, 2], np.ones((3, 4), dtype=np.float32))
    with pytest.raises(ValueError):
        idx.add([[1, 2]], np.ones((2, 4), dtype=np.float32))
    with pytest.raises(ValueError):
        idx.search(np.ones((2, 2, 4), dtype=np.float32))
    with pytest.raises(ValueError):
        idx.search(np.float32(1.0))
    assert len(idx) == 10


def test_nan_and_inf_and_zero_cosine(idx):
    bad = np.ones((3, 4), dtype=np.float32)
    bad[2, 1] = np.nan
    with pytest.raises(hnswdb.InvalidVectorError) as info:
        idx.add([100, 101, 102], bad)
    assert isinstance(info.value, ValueError)
    assert 100 not in idx  # all or nothing
    with pytest.raises(hnswdb.InvalidVectorError):
        idx.add([100], np.array([[np.inf, 0, 0, 0]]))
    with pytest.raises(hnswdb.InvalidVectorError):
        idx.search(np.array([np.nan, 0, 0, 0], dtype=np.float32))
    with pytest.raises(hnswdb.InvalidVectorError), np.errstate(over="ignore"):
        # float64 beyond float32's range turns into inf in the conversion: refused too.
        idx.add([100], np.array([[1e300, 0, 0, 0]]))
    cosine = hnswdb.Index.in_memory(dim=2, metric="cosine")
    with pytest.raises(hnswdb.InvalidVectorError):
        cosine.add([1], np.zeros((1, 2), dtype=np.float32))


def test_other_dtypes_are_converted_or_refused(idx):
    idx.add(np.array([50], dtype=np.int32), np.array([[1, 2, 3, 4]], dtype=np.float64))
    assert idx.get(50).tolist() == [1.0, 2.0, 3.0, 4.0]
    idx.add([51], [[1, 2, 3, 5]])  # plain lists of ints
    assert idx.get(51).dtype == np.float32
    found, _ = idx.search(np.array([1, 2, 3, 4], dtype=np.int64), k=1)
    assert found[0] == 50
    with pytest.raises(TypeError, match="keys"):
        idx.add(np.array([1.5]), np.ones((1, 4)))
    with pytest.raises(TypeError):
        idx.add(["a"], np.ones((1, 4)))
    with pytest.raises(TypeError, match="vectors"):
        idx.add([1], np.ones((1, 4), dtype=np.complex64))
    with pytest.raises(TypeError):
        idx.add([1], [["a", "b", "c", "d"]])
    with pytest.raises(TypeError):
        idx.search(np.ones(4, dtype=bool))
    with pytest.raises(OverflowError):
        idx.add(np.array([-1]), np.ones((1, 4)))
    with pytest.raises(OverflowError):
        idx.get(-1)
    with pytest.raises(OverflowError):
        idx.remove(2**64)
    with pytest.raises(TypeError):
        idx.get("seven")


def test_non_contiguous_arrays_are_read_correctly(idx):
    wide = np.arange(80, dtype=np.float32).reshape(10, 8) + 100
    strided = wide[:, ::2]  # every other column: not contiguous
    keys = np.arange(200, 220, dtype=np.uint64)[::2]
    assert not strided.flags.c_contiguous and not keys.flags.c_contiguous
    idx.add(keys, strided)
    for key, row in zip(keys, strided):
        assert np.array_equal(idx.get(int(key)), row)
    fortran = np.asfortranarray(strided)
    found, _ = idx.search(fortran, k=1)
    assert np.array_equal(found[:, 0], keys)
    reversed_query = strided[0][::-1][::-1]
    assert idx.search(reversed_query, k=1)[0][0] == 200
    readonly = strided.copy()
    readonly.flags.writeable = False
    assert idx.search(readonly, k=1)[0][0] == 200


def test_bad_settings():
    with pytest.raises(hnswdb.InvalidOptionsError, match="metric"):
        hnswdb.Index.in_memory(dim=4, metric="manhattan")
    with pytest.raises(hnswdb.InvalidOptionsError, match="quantization"):
        hnswdb.Index.in_memory(dim=4, quantization="pq")
    with pytest.raises(hnswdb.InvalidOptionsError, match="durability"):
        hnswdb.Index.in_memory(dim=4, durability="sometimes")
    with pytest.raises(hnswdb.InvalidOptionsError):
        hnswdb.Index.in_memory(dim=0)
    with pytest.raises(hnswdb.InvalidOptionsError):
        hnswdb.Index.in_memory(dim=4, m=1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        hnswdb.Index.in_memory(dim=4, metrik="l2")
    with pytest.raises(OverflowError):
        hnswdb.Index.in_memory(dim=-1)
    with pytest.raises(TypeError):
        hnswdb.Index.in_memory(dim=4, m="sixteen")


def test_bad_search_parameters(idx):
    query = np.ones(4, dtype=np.float32)
    with pytest.raises(hnswdb.InvalidOptionsError):
        idx.search(np.ones((20, 4), dtype=np.float32), threads=10**6)
    with pytest.raises(TypeError, match="callable"):
        idx.search(query, filter=3)
    with pytest.raises(OverflowError):
        idx.search(query, k=-1)
    # A k too large for memory is numpy's MemoryError (or ValueError), not a crash.
    with pytest.raises((MemoryError, ValueError)):
        idx.search(query, k=2**60)


def test_a_filter_exception_propagates(idx):
    calls = []

    def failing(key):
        calls.append(key)
        raise ZeroDivisionError("from the filter")

    with pytest.raises(ZeroDivisionError, match="from the filter"):
        idx.search(np.ones(4, dtype=np.float32), k=3, filter=failing)
    # Once it raised, it was not called again.
    assert len(calls) == 1
    with pytest.raises(KeyError):
        idx.search(np.ones((64, 4), dtype=np.float32), k=3, filter=lambda k: {}[k], threads=2)
    # A filter returning non-bools: truthiness counts.
    found, _ = idx.search(np.ones(4, dtype=np.float32), k=3, filter=lambda k: k % 2)
    assert all(k % 2 == 1 for k in found)
    assert len(idx) == 10


def test_a_closed_index_raises_closed_error(tmp_path):
    idx = hnswdb.Index.create(tmp_path / "c.hnsw", dim=4)
    idx.add([1], np.ones((1, 4)))
    idx.close()
    idx.close()  # closing twice does nothing
    for call in [lambda: len(idx), lambda: idx.search(np.ones(4)), lambda: idx.get(1),
                 lambda: idx.add([2], np.ones((1, 4))), lambda: idx.remove(1), lambda: 1 in idx,
                 lambda: idx.write(), lambda: idx.stats(), lambda: idx.verify(), lambda: idx.dim]:
        with pytest.raises(hnswdb.ClosedError):
            call()
    assert "closed" in repr(idx)


def test_files_that_are_not_indexes(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"not an index at all" * 100)
    with pytest.raises(hnswdb.Error):
        hnswdb.Index.open(junk)
    with pytest.raises(hnswdb.NotFoundError):
        hnswdb.Index.open(tmp_path / "missing.hnsw")
    with pytest.raises(FileNotFoundError):
        hnswdb.Index.open(tmp_path / "missing.hnsw")
    with pytest.raises(hnswdb.InvalidStreamError):
        hnswdb.Index.from_export(tmp_path / "x.hnsw", junk)
    assert not (tmp_path / "x.hnsw").exists()
    with pytest.raises(FileNotFoundError) as info:
        hnswdb.Index.from_export(tmp_path / "y.hnsw", tmp_path / "missing.export")
    assert isinstance(info.value, hnswdb.Error) and info.value.errno == 2


def test_one_handle_per_file(tmp_path):
    path = tmp_path / "one.hnsw"
    first = hnswdb.Index.create(path, dim=4)
    with pytest.raises(hnswdb.Error):
        hnswdb.Index.open(path)
    first.close()
    hnswdb.Index.open(path).close()
    with pytest.raises(FileExistsError):
        hnswdb.Index.create(path, dim=4)
