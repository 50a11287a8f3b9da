"""BlobStore on file://, memory:// and S3 (moto server), plus file-only and fault tests."""

from __future__ import annotations

import gzip
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from rundossier.errors import ConfigError, StorageError
from rundossier.storage.blobs import TRACE_TEXT, BlobStore, blob_key
from rundossier.storage.blobs.blobstore import TEMP_PREFIX, _rmdir_released

from .conformance import MIB, BlobStoreConformance, payload

try:
    from s3server import create_bucket, free_port, storage_options
except ImportError:  # tests/ became a package
    from tests.s3server import create_bucket, free_port, storage_options


class TestFileStore(BlobStoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> BlobStore:
        return BlobStore(f"file://{tmp_path}/blobs")


class TestMemoryStore(BlobStoreConformance):
    @pytest.fixture
    def store(self) -> Iterator[BlobStore]:
        name = f"rd-test-{uuid.uuid4().hex}"
        yield BlobStore(f"memory://{name}")
        for path in [p for p in MemoryFileSystem.store if p.startswith(f"/{name}/")]:
            MemoryFileSystem.store.pop(path, None)
        MemoryFileSystem.pseudo_dirs[:] = [d for d in MemoryFileSystem.pseudo_dirs if not d.startswith(f"/{name}")]


@pytest.mark.s3
class TestS3Store(BlobStoreConformance):
    @pytest.fixture
    def store(self, s3_server: str) -> BlobStore:
        bucket = create_bucket(s3_server)
        return BlobStore(f"s3://{bucket}/blobs", storage_options(s3_server))


# -- file:// only ------------------------------------------------------------------------------


@pytest.fixture
def file_store(tmp_path: Path) -> BlobStore:
    return BlobStore(f"file://{tmp_path}/blobs")


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_readers_never_see_a_partial_blob(file_store: BlobStore, tmp_path: Path) -> None:
    versions = [gzip.compress(payload(MIB, seed=i), compresslevel=1) for i in range(2)]
    key = blob_key("airflow", "dag", "run_1", "t", 1, TRACE_TEXT)
    path = tmp_path / "blobs" / key
    seen: list[int] = []
    bad: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            if data in versions:
                seen.append(versions.index(data))
            else:
                bad.append(f"{len(data)} bytes matching no version")

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(50):
            file_store.put(key, versions[i % 2])
    finally:
        done.set()
        t.join(timeout=10)
    assert not bad, bad[:3]
    assert seen, "the reader never saw the blob"
    assert _files(tmp_path / "blobs") == [key]
    assert gzip.decompress(file_store.get(file_store.uri_for(key))) == payload(MIB, seed=1)


def test_open_write_uses_a_hidden_temp_then_replaces(
    file_store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        replaced.append((os.fspath(src), os.fspath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    root = tmp_path / "blobs"
    uri = file_store.uri_for("a/b.bin")
    with file_store.open_write("a/b.bin") as f:
        f.write(b"x" * 1000)
        f.flush()
        names = os.listdir(root / "a")
        assert len(names) == 1 and names[0].startswith(TEMP_PREFIX)
        assert not file_store.exists(uri)
        assert list(file_store.iter_blobs()) == []  # temp files are never listed
    assert _files(root) == ["a/b.bin"]
    assert len(replaced) == 1
    src, dst = replaced[0]
    assert os.path.dirname(src) == os.path.dirname(dst) == str(root / "a")
    assert os.path.basename(src).startswith(TEMP_PREFIX) and dst.endswith("/a/b.bin")
    file_store.put("a/c.bin", b"y")
    assert len(replaced) == 2


def test_failed_writes_leave_no_file_and_no_temp(file_store: BlobStore, tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    with pytest.raises(ValueError):
        with file_store.open_write("w/x.bin") as f:
            f.write(b"partial")
            raise ValueError
    assert _files(root) == []
    (root / "w" / "dir.bin").mkdir(parents=True)  # os.replace onto a directory fails
    with pytest.raises(StorageError, match="dir.bin"):
        file_store.put("w/dir.bin", b"x")
    with pytest.raises(StorageError):
        with file_store.open_write("w/dir.bin") as f:
            f.write(b"x")
    assert os.listdir(root / "w") == ["dir.bin"]


def test_local_writes_leave_the_tasks_random_stream_alone(file_store: BlobStore) -> None:
    import random

    random.seed(1234)
    expected = [random.random() for _ in range(3)]
    random.seed(1234)
    got = [random.random()]
    file_store.put("r/a.bin", b"x")  # a task that logs and spills between two draws
    with file_store.open_write("r/b.bin") as f:
        f.write(b"y")
    got += [random.random(), random.random()]
    assert got == expected


def test_a_temp_name_clash_draws_another(
    file_store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rundossier.storage.blobs import blobstore

    draws = iter([7, 7, 8])  # the second write's first name is taken (a crashed writer's leftover)
    monkeypatch.setattr(blobstore._TEMP_NAMES, "getrandbits", lambda k: next(draws))
    leftover = tmp_path / "blobs" / "c" / f"{TEMP_PREFIX}{7:016x}"
    file_store.put("c/first.bin", b"1")
    leftover.write_bytes(b"stale")
    file_store.put("c/second.bin", b"2")
    assert (tmp_path / "blobs" / "c" / "second.bin").read_bytes() == b"2"
    assert leftover.read_bytes() == b"stale"  # never overwritten


def test_file_mode_follows_umask(file_store: BlobStore, tmp_path: Path) -> None:
    file_store.put("m", b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "blobs" / "m").stat().st_mode & 0o777 == 0o666 & ~umask


def test_nothing_outside_the_root_is_touched(tmp_path: Path) -> None:
    store = BlobStore(f"file://{tmp_path}/blobs")
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"secret")
    sibling = tmp_path / "blobs2"
    sibling.mkdir()
    (sibling / "x").write_bytes(b"sibling")
    for key in ["../outside.txt", "a/../../outside.txt", "../blobs2/x", "/etc/passwd"]:
        with pytest.raises(StorageError):
            store.put(key, b"pwned")
        with pytest.raises(StorageError):
            store.delete_prefix(key)
    for uri in [
        f"file://{outside}",
        f"file://{sibling}/x",
        f"file://{tmp_path}/blobs/../outside.txt",
        "file:///etc/passwd",
    ]:
        for call in (store.get, store.exists, store.size, lambda u: store.delete([u])):
            with pytest.raises(StorageError):
                call(uri)
    assert outside.read_bytes() == b"secret"
    assert (sibling / "x").read_bytes() == b"sibling"
    assert not (tmp_path / "blobs").exists() or _files(tmp_path / "blobs") == []


def test_url_forms(tmp_path: Path) -> None:
    assert BlobStore(f"file://{tmp_path}/a/../blobs/").url == f"file://{tmp_path}/blobs"
    assert BlobStore(str(tmp_path / "blobs")).url == f"file://{tmp_path}/blobs"
    assert BlobStore("memory://name/").url == "memory://name"
    assert BlobStore("s3://bucket/prefix/").url == "s3://bucket/prefix"
    assert repr(BlobStore("s3://b/p", {"secret": "hunter2"})) == "BlobStore('s3://b/p')"


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("nosuchproto://x", "unknown protocol"),
        ("gcs://bucket/prefix", "gcsfs"),
        ("relative/dir", "absolute"),
        ("file://relative/dir", "absolute"),
        ("file:///", "refusing"),
        ("", "empty"),
        ("s3://", "no bucket"),
        ("memory://", "no bucket"),
        ("s3://bucket/pre[fix]", "glob"),
    ],
)
def test_config_errors(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        BlobStore(url)


def test_ping_creates_the_root(tmp_path: Path) -> None:
    store = BlobStore(f"file://{tmp_path}/new/blobs")
    store.ping()
    assert (tmp_path / "new" / "blobs").is_dir()
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError, match="ping"):
        BlobStore(f"file://{tmp_path}/file/blobs").ping()


# -- S3 only -----------------------------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.timeout(30)
def test_s3_unreachable_endpoint_fails_fast() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = BlobStore("s3://bucket/blobs", storage_options(endpoint))  # lazy: no error yet
    for call in (lambda: store.put("k", b"x"), lambda: store.get(store.uri_for("k")), store.ping):
        start = time.monotonic()
        with pytest.raises(StorageError) as info:
            call()
        # a bound, not a speed: botocore's default retries against a dead port would take minutes
        assert time.monotonic() - start < 60
        assert endpoint in str(info.value)
        assert "reachable" in str(info.value)
        assert info.value.__cause__ is not None


@pytest.mark.s3
def test_s3_missing_bucket(s3_server: str) -> None:
    store = BlobStore("s3://rd-no-such-bucket/blobs", storage_options(s3_server))
    with pytest.raises(StorageError, match="rd-no-such-bucket"):
        store.ping()
    with pytest.raises(StorageError, match="rd-no-such-bucket"):
        store.put("k", b"x")


@pytest.mark.s3
def test_s3_delete_is_batched(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = create_bucket(s3_server)
    store = BlobStore(f"s3://{bucket}/blobs", storage_options(s3_server))
    uris = [store.uri_for(f"d/{i:05d}") for i in range(2500)]
    present = [uris[0], uris[999], uris[1000], uris[1999], uris[2000], uris[2499]]
    for uri in present:
        store.put(store.key_for(uri), b"x")
    fs = store.fs
    calls: list[int] = []
    real_call = fs._call_s3

    async def counting(method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "delete_objects":
            calls.append(len(kwargs["Delete"]["Objects"]))
        return await real_call(method, *args, **kwargs)  # real HTTP still happens

    monkeypatch.setattr(fs, "_call_s3", counting)
    assert store.delete(uris) == 2500
    assert calls == [1000, 1000, 500]
    monkeypatch.undo()
    assert not any(store.exists(u) for u in present)
    assert list(store.iter_blobs()) == []


@pytest.mark.s3
def test_s3_default_timeouts_unless_overridden(s3_server: str) -> None:
    store = BlobStore("s3://b/p", storage_options(s3_server))
    assert store.fs.config_kwargs["connect_timeout"] == 3
    assert store.fs.config_kwargs["read_timeout"] == 15
    assert store.fs.retries == 1  # botocore retries; s3fs must not multiply that
    assert not store.fs.dircache.use_listings_cache
    custom = BlobStore("s3://b/p", {**storage_options(s3_server), "config_kwargs": {}})
    assert custom.fs.config_kwargs == {}


@pytest.mark.s3
@pytest.mark.timeout(30)
def test_s3_hung_endpoint_is_bounded_by_the_timeouts() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
        options = storage_options(endpoint)
        options["config_kwargs"] = {
            "connect_timeout": 1,
            "read_timeout": 1,
            "retries": {"max_attempts": 1},
        }
        store = BlobStore("s3://bucket/blobs", options)
        start = time.monotonic()
        with pytest.raises(StorageError, match="Read timeout") as info:
            store.get(store.uri_for("k"))
        assert time.monotonic() - start < 6
        assert len(accepted) == 2  # botocore's 2 attempts, no s3fs retries on top
        assert endpoint in str(info.value)
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


@pytest.mark.parametrize("bad", ["*", "?", "[", "]", "\\", "\x00", "\n", "\x1f", "\x7f"])
def test_keys_with_glob_or_control_characters_are_refused_naming_the_character(tmp_path: Path, bad: str) -> None:
    store = BlobStore(f"file://{tmp_path}/blobs")
    with pytest.raises(StorageError, match=f"contains {re.escape(repr(bad))}"):
        store.put(f"python/flow/run_1/st{bad}ep/1/log.jsonl.gz", b"x")
    assert not (tmp_path / "blobs").exists() or _files(tmp_path / "blobs") == []


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_rmdir_released_removes_empty_folders_and_refuses_the_rest(tmp_path: Any) -> None:
    before = _open_fds()
    (tmp_path / "empty").mkdir()
    _rmdir_released(str(tmp_path / "empty"))
    assert not (tmp_path / "empty").exists()
    with pytest.raises(FileNotFoundError):
        _rmdir_released(str(tmp_path / "empty"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_bytes(b"x")
    with pytest.raises(OSError):
        _rmdir_released(str(tmp_path / "full"))
    assert (tmp_path / "full" / "f").exists()
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(OSError):
        _rmdir_released(str(tmp_path / "file"))  # not a folder: left alone
    assert (tmp_path / "file").exists()
    assert _open_fds() == before  # every folder it opened is closed again


def test_rmdir_released_falls_back_to_a_plain_rmdir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: str, *args: Any, **kwargs: Any) -> int:
        raise PermissionError(f"cannot open folders here: {path}")

    monkeypatch.setattr(os, "open", refuse)
    (tmp_path / "d").mkdir()
    _rmdir_released(str(tmp_path / "d"))
    assert not (tmp_path / "d").exists()
