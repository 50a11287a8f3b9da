"""Blobs: gzip'd traces and logs as bytes under one fsspec URL, keyed by encoded run id parts.

`paths` builds keys (pure); `blobstore.BlobStore` reads, writes, lists and deletes them.
"""

from __future__ import annotations

from rundossier.storage.blobs.blobstore import BlobInfo, BlobStore, RunBlobs
from rundossier.storage.blobs.paths import (
    BLOB_NAMES,
    LOG,
    LOG_INDEX,
    LOG_LIVE,
    LOG_PARTS_DIR,
    TRACE_JSON,
    TRACE_TEXT,
    blob_key,
    decode_segment,
    encode_segment,
    is_blob_name,
    log_index,
    log_part_name,
    log_parts_prefix,
    row_step,
    run_prefix,
    step_prefix,
    structured_trace,
)

__all__ = [
    "BlobStore",
    "BlobInfo",
    "RunBlobs",
    "blob_key",
    "run_prefix",
    "step_prefix",
    "log_parts_prefix",
    "structured_trace",
    "log_index",
    "row_step",
    "log_part_name",
    "is_blob_name",
    "encode_segment",
    "decode_segment",
    "TRACE_TEXT",
    "TRACE_JSON",
    "LOG",
    "LOG_INDEX",
    "LOG_LIVE",
    "LOG_PARTS_DIR",
    "BLOB_NAMES",
]
