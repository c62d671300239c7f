"""Type stubs of the native module hnswdb._hnswdb (import them from ``hnswdb``)."""

import os
from typing import BinaryIO, Callable, Literal, TypedDict, final

import numpy as np
import numpy.typing as npt

Metric = Literal["l2", "cosine", "dot"]
QuantizationName = Literal["none", "int8", "binary"]
DurabilityName = Literal["immediate", "eventual"]
Path = str | os.PathLike[str]
Keys = npt.ArrayLike
"""uint64 keys of shape (n,) (any integer dtype without negative values is converted), or one
key (an int) with one vector."""
Vectors = npt.ArrayLike
"""float32 vectors of shape (n, dim) (any real dtype, any layout is converted: a copy), or one
vector of shape (dim,) with one key."""

NO_KEY: int
"""2**64-1: the key that fills a search's row where fewer than k hits were found (with
distance +inf)."""
DEFAULT_CACHE_BYTES: int
"""The default memory budget of an index (1 GiB)."""

class Options(TypedDict):
    dim: int
    metric: Metric
    m: int
    ef_construction: int
    ef_search: int
    seed: int
    durability: DurabilityName
    quick_repair: bool
    cache_bytes: int
    quantization: QuantizationName
    build_threads: int

class Stats(TypedDict):
    len: int
    nodes_per_level: list[int]
    degree_histogram: list[list[int]]
    free_ids: int
    file_bytes: int
    cache_bytes: int
    upper_bytes: int
    codes_bytes: int
    links_bytes: int
    vectors_bytes: int
    page_cache_bytes: int
    layer0_vectors_cached: bool
    layer0_vectors_in_cache: int
    layer0_links_cached: bool
    max_level: int | None

class VerifyReport(TypedDict):
    problems: list[tuple[str, str]]
    omitted: int
    complete: bool
    nodes: int

class ExportStats(TypedDict):
    rows: int
    bytes: int

@final
class Index:
    """An HNSW vector index stored in one file (or in memory): crash-safe, transactional, with
    real deletes. Searches, reads and writes release the GIL; any number of threads may
    search while one writes. Also a context manager that closes the index."""

    @staticmethod
    def create(
        path: Path,
        dim: int,
        *,
        metric: Metric = "cosine",
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        seed: int = 0,
        durability: DurabilityName = "immediate",
        quick_repair: bool = True,
        cache_bytes: int = ...,
        quantization: QuantizationName = "none",
        build_threads: int = 0,
    ) -> Index:
        """Creates a new index file at ``path``; FileExistsError (AlreadyExistsError) if
        anything is there. ``build_threads=0`` means every core."""

    @staticmethod
    def open(path: Path, *, checked: bool = False) -> Index:
        """Opens the index file at ``path`` with its stored settings; FileNotFoundError
        (NotFoundError) if there is none. ``checked=True`` checks the whole file first."""

    @staticmethod
    def open_or_create(
        path: Path,
        dim: int,
        *,
        metric: Metric = "cosine",
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        seed: int = 0,
        durability: DurabilityName = "immediate",
        quick_repair: bool = True,
        cache_bytes: int = ...,
        quantization: QuantizationName = "none",
        build_threads: int = 0,
    ) -> Index:
        """Opens the index at ``path`` or creates it. The structural settings (dim, metric,
        m, ef_construction, seed, quantization) must match a stored index
        (OptionsMismatchError); ef_search, durability, quick_repair and cache_bytes replace
        the stored ones."""

    @staticmethod
    def in_memory(
        dim: int,
        *,
        metric: Metric = "cosine",
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        seed: int = 0,
        durability: DurabilityName = "immediate",
        quick_repair: bool = True,
        cache_bytes: int = ...,
        quantization: QuantizationName = "none",
        build_threads: int = 0,
    ) -> Index:
        """A new index in memory only: the whole API, nothing on disk."""

    @staticmethod
    def from_export(path: Path, source: Path | BinaryIO) -> Index:
        """Builds a new index file at ``path`` from an export written by ``export``: a path,
        or a binary file object to ``read`` from."""

    @staticmethod
    def create_in(
        path: Path,
        name: str,
        dim: int,
        *,
        metric: Metric = "cosine",
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        seed: int = 0,
        durability: DurabilityName = "immediate",
        quick_repair: bool = True,
        cache_bytes: int = ...,
        quantization: QuantizationName = "none",
        build_threads: int = 0,
    ) -> Index:
        """Creates the index ``name`` inside the database file at ``path`` (made if
        missing). Names: 1 to 64 ASCII letters, digits, ``_``, ``-``, ``.``."""

    @staticmethod
    def open_in(path: Path, name: str) -> Index:
        """Opens the index ``name`` inside the database file at ``path``."""

    @staticmethod
    def open_or_create_in(
        path: Path,
        name: str,
        dim: int,
        *,
        metric: Metric = "cosine",
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        seed: int = 0,
        durability: DurabilityName = "immediate",
        quick_repair: bool = True,
        cache_bytes: int = ...,
        quantization: QuantizationName = "none",
        build_threads: int = 0,
    ) -> Index:
        """Opens the index ``name`` inside the database file at ``path``, or creates it."""

    def add(self, keys: Keys, vectors: Vectors) -> None:
        """Inserts (upserts) every (key, vector) in one transaction, built on
        ``build_threads`` threads: all of them or, on any error, none. Ctrl-C
        (KeyboardInterrupt) stops a long add within a second or so, committing none of it."""

    def search(
        self,
        queries: Vectors,
        k: int = 10,
        *,
        ef: int | None = None,
        filter: Callable[[int], object] | None = None,
        rescore: int | None = None,
        threads: int = 0,
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.float32]]:
        """The k nearest keys and their distances, nearest first: arrays of shape (nq, k)
        for queries of shape (nq, dim) (searched on ``threads`` threads, 0 = every core), or
        (k,) for one query of shape (dim,). Missing hits are ``NO_KEY`` with distance +inf.
        ``filter(key)`` must be truthy for a key to be returned; an exception it raises is
        raised here."""

    def get(self, key: int) -> npt.NDArray[np.float32] | None:
        """The vector stored under ``key``, exactly as inserted, or None."""

    def remove(self, key: int) -> bool:
        """Removes ``key`` (repairing the graph) in its own transaction; whether it was there."""

    def keys(self) -> npt.NDArray[np.uint64]:
        """Every key, ascending."""

    def write(self) -> Transaction:
        """Starts a write transaction; waits for another thread's to end."""

    def verify(self) -> None:
        """The full integrity check; CorruptError names the first problem."""

    def verify_report(self) -> VerifyReport:
        """The full integrity check, every problem listed (up to 100)."""

    def stats(self) -> Stats:
        """Sizes and counts of the index."""

    def checkpoint(self) -> None:
        """Makes every commit so far durable (durability "eventual")."""

    def compact(self) -> None:
        """Rewrites the file without its free space."""

    def export(self, target: Path | BinaryIO) -> ExportStats:
        """Writes every key and vector to ``target``: a path (created and synced), or a
        binary file object to ``write`` to (flushed, not closed)."""

    def wait_loaded(self) -> None:
        """Waits for the background cache load that ``open`` started."""

    @property
    def is_loaded(self) -> bool: ...
    def close(self) -> None:
        """Closes the index (durable, file closed); waits for other threads' searches;
        WriteInProgressError while a transaction is open. A second close does nothing."""

    @property
    def closed(self) -> bool: ...
    @property
    def dim(self) -> int: ...
    @property
    def metric(self) -> Metric: ...
    @property
    def path(self) -> os.PathLike[str] | None:
        """The index file (a pathlib.Path); None in memory."""

    @property
    def name(self) -> str | None:
        """The index's name inside a database file; None otherwise."""

    @property
    def options(self) -> Options: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object) -> bool: ...
    def __enter__(self) -> Index: ...
    def __exit__(self, exc_type: object, exc: object, traceback: object) -> bool: ...

def index_names(path: Path) -> list[str]:
    """The names of the indexes inside the database file at ``path``, ascending."""

def delete_index(path: Path, name: str) -> bool:
    """Deletes the index ``name`` from the database file at ``path``; whether there was one."""

@final
class Transaction:
    """A write transaction from ``Index.write()``: commits on a normal exit of ``with``,
    aborts on an exception. Dropped without ``commit``, it aborts. Any use after its end
    raises ClosedError."""

    def add(self, keys: Keys, vectors: Vectors) -> None:
        """Inserts (upserts) in this transaction (the vectors are copied once). A bad
        vector leaves the transaction as it was; Ctrl-C (KeyboardInterrupt) during the add
        aborts the whole transaction."""

    def remove(self, key: int) -> bool:
        """Removes ``key`` in this transaction; whether it was there."""

    def commit(self) -> None: ...
    def abort(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object) -> bool: ...
    def __enter__(self) -> Transaction: ...
    def __exit__(self, exc_type: object, exc: object, traceback: object) -> bool: ...
