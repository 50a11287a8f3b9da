"""The errors rundossier raises, in one tree.

RundossierError
 +-- ConfigError        a setting is malformed (bad URL, bad JSON, bad regex); says which and how to fix it
 +-- InvalidInput       a value a caller gave (API parameter, CLI option) is outside what rundossier accepts
 |                      (also a ValueError); HTTP 422, CLI exit code 2
 +-- StorageError       the blob store (fsspec) refused a read, write or delete
 |    +-- BlobNotFound  no blob at that URI
 |    +-- BlobCorrupt   a stored blob cannot be decoded (not gzip, truncated, not a trace document)
 +-- StoreError         the run history database refused a read or write
 |    +-- StoreUnavailable  it could not be reached, was locked or read-only, or did not answer in time
 |    +-- SchemaOutdated    its schema is at another revision than this version's (`rundossier db upgrade`)
 |    +-- RunNotFound   no run with that id
 +-- SpoolError         the local spool could not hold or deliver an item
 +-- TraceUnavailable   a run or step has no trace to give
      +-- TraceNotFound  none was captured (or it is still in a spool)
      +-- TraceExpired   retention removed it; the row stays

Every message says what went wrong and what to do about it. The HTTP API maps these to the
one error shape `{"error": {"type": ..., "message": ...}}`.
"""

from __future__ import annotations


class RundossierError(Exception):
    """Base of every error rundossier raises on purpose."""


class ConfigError(RundossierError):
    """A configuration value is malformed."""


class InvalidInput(RundossierError, ValueError):
    """A value given by a caller is outside what rundossier accepts: the message names it and what
    is accepted. The only errors the HTTP API answers with a 4xx of its own making (422); any other
    exception in a handler is a bug and answers 500. Also a ValueError, for callers that catch those."""


class StorageError(RundossierError):
    """The blob store could not complete an operation."""


class BlobNotFound(StorageError):
    """No blob exists at the given URI."""


class BlobCorrupt(StorageError):
    """A stored blob exists but cannot be decoded: it was damaged after it was written."""


class StoreError(RundossierError):
    """The run history database could not complete an operation."""


class StoreUnavailable(StoreError):
    """The database could not be reached, was locked or read-only, or did not answer in time.

    What the recorder was writing waits in the spool; the same write will work later."""


class SchemaOutdated(StoreError):
    """The database's schema is at an older (or unknown) revision: `rundossier db upgrade` applies
    the migrations; rundossier never runs them by itself on an existing database."""


class RunNotFound(StoreError):
    """No run has the given id."""


class SpoolError(RundossierError):
    """The local spool could not hold or deliver an item."""


class TraceUnavailable(RundossierError):
    """A run or step has no trace to give."""


class TraceNotFound(TraceUnavailable):
    """No trace was captured for it (or it still waits in a spool)."""


class TraceExpired(TraceUnavailable):
    """Retention removed the trace; the summary row remains."""


__all__ = [
    "RundossierError",
    "ConfigError",
    "InvalidInput",
    "StorageError",
    "BlobNotFound",
    "BlobCorrupt",
    "StoreError",
    "StoreUnavailable",
    "SchemaOutdated",
    "RunNotFound",
    "SpoolError",
    "TraceUnavailable",
    "TraceNotFound",
    "TraceExpired",
]
