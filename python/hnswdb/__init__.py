"""hnswdb: an embedded, crash-safe, persistent HNSW vector index.

    import numpy as np, hnswdb
    idx = hnswdb.Index.create("photos.hnsw", dim=128, metric="l2")
    idx.add(keys, vectors)                        # uint64 (n,), float32 (n, 128): one transaction
    keys, dists = idx.search(queries, k=10, ef=64)  # (nq, k) arrays, nearest first

Every error is an :class:`hnswdb.Error`; see ``hnswdb._errors`` for the classes and the
built-in exceptions each also derives from.
"""

from ._errors import *  # noqa: F401,F403
from ._errors import __all__ as _error_names
from ._hnswdb import DEFAULT_CACHE_BYTES, NO_KEY, Index, Transaction, delete_index, index_names

__all__ = [
    "Index",
    "Transaction",
    "index_names",
    "delete_index",
    "NO_KEY",
    "DEFAULT_CACHE_BYTES",
    *_error_names,
]
