"""Shared helpers: small random data sets and numpy brute force, the oracle of the tests."""

import numpy as np
import pytest


def distances(metric, base, query):
    """Distances from `query` (dim,) to every row of `base` (n, dim), as hnswdb defines them:
    squared L2, 1 - cosine similarity, 1 - dot product."""
    base = np.asarray(base, dtype=np.float64)
    query = np.asarray(query, dtype=np.float64)
    if metric == "l2":
        return ((base - query) ** 2).sum(axis=1)
    if metric == "cosine":
        norms = np.linalg.norm(base, axis=1) * np.linalg.norm(query)
        return 1.0 - (base @ query) / norms
    if metric == "dot":
        return 1.0 - base @ query
    raise ValueError(metric)


def brute_force(metric, keys, base, query, k):
    """The exact k nearest (keys, distances), ties by key, as hnswdb orders them."""
    d = distances(metric, base, query)
    order = np.lexsort((np.asarray(keys), d))[:k]
    return np.asarray(keys)[order], d[order]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def data(rng):
    """1,000 random 16-dimensional float32 vectors with keys 0..999."""
    vectors = rng.standard_normal((1000, 16)).astype(np.float32)
    keys = np.arange(1000, dtype=np.uint64)
    return keys, vectors
