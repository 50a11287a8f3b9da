"""A sweep in its own process, for the SIGKILL test: prints "ready", then sweeps in tiny batches.

python -m tests.retention.sweep_child DB_URL STORAGE_URL BATCH
"""

from __future__ import annotations

import sys

from rundossier.retention import sweep
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import RunStore
from tests.retention.helpers import NOW


def main() -> None:
    db_url, storage_url, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = RunStore(db_url, timeout=30)
    blobs = BlobStore(storage_url)
    print("ready", flush=True)
    report = sweep(store, blobs, now=NOW, batch_size=batch)
    print("done" if report.complete else f"stopped: {report.error}", flush=True)


if __name__ == "__main__":
    main()
