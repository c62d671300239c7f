"""Property test: random add/remove/search sequences against a dict and numpy brute force."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hnswdb
from conftest import distances

DIM = 4
KEYS = st.integers(min_value=0, max_value=40)
# Small integers as components: exact in float32, with duplicates (ties) on purpose.
VECTOR = st.lists(st.integers(min_value=-6, max_value=6), min_size=DIM, max_size=DIM)

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(st.tuples(KEYS, VECTOR), min_size=1, max_size=30)),
        st.tuples(st.just("remove"), KEYS),
        st.tuples(st.just("search"), VECTOR, st.integers(min_value=1, max_value=12)),
        st.tuples(st.just("abort"), st.lists(st.tuples(KEYS, VECTOR), min_size=1, max_size=5)),
    ),
    max_size=25,
)


def check_search(idx, model, metric, query, k):
    query = np.array(query, dtype=np.float32)
    usable = metric != "cosine" or np.any(query)
    if not usable:
        return
    # ef at least the index's size: hnswdb's search is exact then.
    found, dists = idx.search(query, k=k, ef=max(len(model), k, 1))
    n = min(k, len(model))
    assert (found[n:] == hnswdb.NO_KEY).all() and np.isinf(dists[n:]).all()
    if n == 0:
        return
    keys = np.array(sorted(model), dtype=np.uint64)
    base = np.array([model[key] for key in keys.tolist()], dtype=np.float32)
    exact = np.sort(distances(metric, base, query))[:n]
    np.testing.assert_allclose(dists[:n], exact, rtol=1e-5, atol=1e-5)
    # Every hit is a present key, at its true distance (ties may pick either key).
    assert len(set(found[:n].tolist())) == n
    for key, d in zip(found[:n].tolist(), dists[:n]):
        assert key in model
        true = distances(metric, np.array([model[key]]), query)[0]
        np.testing.assert_allclose(d, true, rtol=1e-5, atol=1e-5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metric=st.sampled_from(["l2", "cosine"]), quantization=st.sampled_from(["none", "int8"]),
       ops=OPS)
def test_operations_match_a_model(metric, quantization, ops):
    idx = hnswdb.Index.in_memory(dim=DIM, metric=metric, quantization=quantization, m=4,
                                 ef_construction=16)
    model = {}
    for op in ops:
        if op[0] in ("add", "abort"):
            rows = op[1]
            keys = np.array([key for key, _ in rows], dtype=np.uint64)
            vectors = np.array([v for _, v in rows], dtype=np.float32)
            zero = metric == "cosine" and not np.all(np.any(vectors, axis=1))
            if op[0] == "abort":
                try:
                    with idx.write() as tx:
                        tx.add(keys, vectors)
                        raise KeyError("abort")
                except (KeyError, hnswdb.InvalidVectorError):
                    pass
                continue
            if zero:
                try:
                    idx.add(keys, vectors)
                except hnswdb.InvalidVectorError:
                    continue
                raise AssertionError("a zero vector under cosine was accepted")
            idx.add(keys, vectors)
            for key, vector in rows:
                model[key] = vector
        elif op[0] == "remove":
            assert idx.remove(op[1]) == (op[1] in model)
            model.pop(op[1], None)
        else:
            check_search(idx, model, metric, op[1], op[2])
        assert len(idx) == len(model)
    for key, vector in model.items():
        assert idx.get(key).tolist() == [float(x) for x in vector]
    assert np.array_equal(idx.keys(), np.array(sorted(model), dtype=np.uint64))
    for query in ([1, 0, 0, 0], [0, -3, 2, 1], [5, 5, 5, 5]):
        check_search(idx, model, metric, query, 10)
    idx.verify()
    idx.close()
