"""The run store and the blob store for one set of settings, each built on first use (thread-safe).

The recorder and the HTTP app both hold one: building a store opens the database (and creates
the schema in an empty one) and building a blob store may import s3fs, so neither happens until
something is actually written or read.
"""

from __future__ import annotations

import threading

from rundossier.settings import Settings
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import RunStore


class Backends:
    def __init__(
        self,
        settings: Settings,
        store: RunStore | None = None,
        blobs: BlobStore | None = None,
        *,
        timeout: float | None = None,
        pool: tuple[int, int] | None = None,
    ) -> None:
        """`timeout`: how long a database call waits on a lock (default RUNDOSSIER_DB_TIMEOUT; the
        recorder passes its write budget, readers may wait longer). `pool`: PostgreSQL connections
        kept and extra ones at busy moments (the store's default when None)."""
        self.settings = settings
        self._pool = pool
        self._store = store
        self._blobs = blobs
        self._timeout = timeout if timeout is not None else settings.db_timeout
        # one lock each: building the blob store (importing an object store's client) must not
        # hold up the database's first write
        self._store_lock = threading.Lock()
        self._blobs_lock = threading.Lock()

    @property
    def store(self) -> RunStore:
        if self._store is None:
            with self._store_lock:
                if self._store is None:
                    self._store = RunStore(self.settings.db_url, timeout=self._timeout, pool=self._pool)
        return self._store

    @property
    def blobs(self) -> BlobStore:
        if self._blobs is None:
            with self._blobs_lock:
                if self._blobs is None:
                    self._blobs = BlobStore(self.settings.storage_url, self.settings.storage_options)
        return self._blobs

    @property
    def blobs_built(self) -> BlobStore | None:
        """The blob store if it is built already (never builds it)."""
        return self._blobs

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


__all__ = ["Backends"]
