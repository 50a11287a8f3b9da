"""What an artifact is when it is recorded: exists or not, size, checksum (fsspec).

The checksum is the filesystem's own where it has one (S3's ETag, GCS's md5 or crc32c, an HTTP
ETag); otherwise the sha256 of the content, streamed, for files up to `hash_max_bytes` (larger
ones keep their size only). A URI no filesystem knows (a database table, an unknown protocol) is
recorded as given, unlooked-at. Lookups on a network filesystem run on a daemon thread and are
waited on for at most `timeout` seconds: a hung object store costs a task that long, not forever.

Options: URIs of the protocol of rundossier's own storage get its storage options (an S3 endpoint
in tests, credentials), others fsspec's defaults (the environment's credentials).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import fsspec

from rundossier.storage.blobs.blobstore import LOCAL_PROTOCOLS, S3_PROTOCOLS

#: streamed in blocks of this size when hashing
HASH_BLOCK = 1024 * 1024
#: info() keys that carry a content checksum, with the prefix the checksum is recorded under
_CHECKSUM_KEYS = (("ETag", "etag"), ("etag", "etag"), ("md5Hash", "md5"), ("md5", "md5"), ("crc32c", "crc32c"))


@dataclass(frozen=True)
class ArtifactStat:
    """What a lookup found. `present` None: not looked at (or the lookup failed: see `note`)."""

    present: bool | None = None
    size: int | None = None
    checksum: str | None = None
    note: str | None = None


class ArtifactInspector:
    """Looks artifacts up with fsspec (one filesystem per protocol, built on first use)."""

    def __init__(
        self,
        *,
        hash_max_bytes: int,
        timeout: float,
        storage_url: str = "",
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.hash_max_bytes = hash_max_bytes
        self.timeout = timeout
        self._storage_protocol = storage_url.partition("://")[0].lower() if "://" in storage_url else ""
        self._storage_options = dict(storage_options or {})
        self._filesystems: dict[str, Any] = {}
        self._lock = threading.Lock()

    def inspect(self, uri: str, *, want_checksum: bool = True) -> ArtifactStat:
        """Look `uri` up; never raises (a failure is a note on an unlooked-at artifact)."""
        protocol = uri.partition("://")[0].lower() if "://" in uri else "file"
        try:
            fs = self._filesystem(protocol)
        except Exception as exc:  # noqa: BLE001 - an unknown protocol or missing backend: recorded as given
            return ArtifactStat(note=f"not looked up: {_describe(exc)}")
        path = fs._strip_protocol(uri)
        if protocol in LOCAL_PROTOCOLS:
            return self._stat(fs, path, want_checksum)
        return _bounded(lambda: self._stat(fs, path, want_checksum), self.timeout)

    def _filesystem(self, protocol: str) -> Any:
        fs = self._filesystems.get(protocol)
        if fs is None:
            with self._lock:
                fs = self._filesystems.get(protocol)
                if fs is None:
                    options: dict[str, Any] = {}
                    if protocol == self._storage_protocol and protocol not in LOCAL_PROTOCOLS:
                        options = {
                            k: dict(v) if isinstance(v, Mapping) else v for k, v in self._storage_options.items()
                        }
                    if protocol in S3_PROTOCOLS:
                        options.setdefault("use_listings_cache", False)
                    fs = fsspec.filesystem(protocol, **options)
                    self._filesystems[protocol] = fs
        return fs

    def _stat(self, fs: Any, path: str, want_checksum: bool) -> ArtifactStat:
        try:
            info = fs.info(path)
        except FileNotFoundError:
            return ArtifactStat(present=False)
        except Exception as exc:  # noqa: BLE001 - permission, network...: recorded, never raised
            return ArtifactStat(note=f"lookup failed: {_describe(exc)}")
        size = info.get("size")
        size = int(size) if isinstance(size, int | float) and info.get("type") != "directory" else None
        if info.get("type") == "directory":
            return ArtifactStat(present=True, note="a directory")
        if not want_checksum:
            return ArtifactStat(present=True, size=size)
        checksum = _native_checksum(info)
        note = None
        if checksum is None:
            if size is not None and size <= self.hash_max_bytes:
                try:
                    checksum = "sha256:" + _sha256(fs, path)
                except Exception as exc:  # noqa: BLE001
                    note = f"could not read it to hash it: {_describe(exc)}"
            elif size is not None:
                note = f"not hashed: larger than {self.hash_max_bytes} bytes (RUNDOSSIER_ARTIFACT_HASH_MAX_BYTES)"
        return ArtifactStat(present=True, size=size, checksum=checksum, note=note)


def _native_checksum(info: Mapping[str, Any]) -> str | None:
    for key, prefix in _CHECKSUM_KEYS:
        value = info.get(key)
        if isinstance(value, str) and value.strip('"'):
            return f"{prefix}:{value.strip(chr(34))}"
    return None


def _sha256(fs: Any, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _bounded(fn: Callable[[], ArtifactStat], timeout: float) -> ArtifactStat:
    """Run `fn` on a daemon thread; past `timeout` the artifact is recorded unlooked-at."""
    box: list[ArtifactStat] = []
    done = threading.Event()

    def work() -> None:
        try:
            box.append(fn())
        except Exception as exc:  # noqa: BLE001
            box.append(ArtifactStat(note=f"lookup failed: {_describe(exc)}"))
        finally:
            done.set()

    threading.Thread(target=work, name="rundossier-artifact", daemon=True).start()
    if not done.wait(timeout) or not box:
        return ArtifactStat(note=f"lookup gave no answer within {timeout:g}s")
    return box[0]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


__all__ = ["ArtifactInspector", "ArtifactStat"]
