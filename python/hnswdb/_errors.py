"""The exceptions of hnswdb: one class per kind of error, all deriving from :class:`Error`.

Each also derives from the built-in exception a Python programmer would catch for it: a vector
of the wrong dimension is a ``ValueError``, a missing index a ``FileNotFoundError``, and so on.
The Rust extension raises them by name (see ``python/src/errors.rs``).
"""


class Error(Exception):
    """Base class of every error hnswdb raises (except ``TypeError`` for arguments of a wrong
    type, ``OverflowError`` for keys outside 0..2**64-1, and ``MemoryError``)."""


class DimensionError(Error, ValueError):
    """A vector had a different number of components than the index."""


class InvalidVectorError(Error, ValueError):
    """A vector holds NaN or infinity, or is all zeros under the cosine metric."""


class InvalidOptionsError(Error, ValueError):
    """Options or search parameters that cannot work (the message names the setting)."""


class AlreadyExistsError(Error, FileExistsError):
    """``create`` was given a path (or name) that already exists."""


class NotFoundError(Error, FileNotFoundError):
    """``open`` was given a path (or name) where there is no index."""


class NotAnIndexError(Error, ValueError):
    """The file exists but is not an hnswdb index; it was left unchanged."""


class InUseError(Error):
    """The index is open already, in another ``Index`` of this process or in another process."""


class InvalidNameError(Error, ValueError):
    """An index name inside a database file that cannot be used."""


class NotInSharedDatabaseError(Error):
    """The operation is not available for a named index inside a database file."""


class VersionError(Error):
    """The index was written in a format version this build cannot read."""


class OptionsMismatchError(Error, ValueError):
    """``open_or_create`` found an index with other structural settings than those asked for."""


class CorruptError(Error):
    """The file's contents are damaged (or ``verify`` found a problem)."""


class InvalidStreamError(Error, ValueError):
    """An export file given to ``Index.from_export`` is damaged, truncated or not an export."""


class TransactionBrokenError(Error):
    """An earlier operation of this write transaction failed part-way: it can only be aborted."""


class WriteInProgressError(Error):
    """This thread holds an open write transaction of the index: use it (or end it) first."""


class NotInTransactionError(Error):
    """An index that is not part of the write transaction (not reachable from Python)."""


class FullError(Error):
    """The index holds as many vectors as node ids can number."""


class LoadStoppedError(Error):
    """The background cache load was stopped before it finished."""


class ThreadError(Error, OSError):
    """A thread could not be started."""


class StorageError(Error, OSError):
    """The storage engine (redb) failed."""


class IoError(Error, OSError):
    """An operating-system I/O error."""


class ClosedError(Error, ValueError):
    """The index was closed, or the write transaction has ended (committed or aborted)."""


__all__ = [name for name, value in globals().items() if isinstance(value, type)]
