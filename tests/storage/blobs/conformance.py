"""BlobStoreConformance: the behaviour every BlobStore backend must show, as a mixin of tests.

Subclass it in a test module and provide a `store` fixture that returns an empty BlobStore:

    class TestMemory(BlobStoreConformance):
        @pytest.fixture
        def store(self): ...
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
from datetime import datetime
from pathlib import Path

import pytest

from rundossier.errors import BlobNotFound, StorageError
from rundossier.storage.blobs import (
    LOG,
    LOG_INDEX,
    TRACE_JSON,
    TRACE_TEXT,
    BlobInfo,
    BlobStore,
    RunBlobs,
    blob_key,
    log_part_name,
    run_prefix,
)

MIB = 1024 * 1024


def payload(n: int, seed: int = 0) -> bytes:
    """n reproducible pseudo-random bytes."""
    return random.Random(seed).randbytes(n)


ODD_IDS = [
    ("airflow", "my:dag", "manual__2026-11-22T00:00:00+00:00", "group.task", 1),
    ("airflow", "dag", "scheduled__2026-11-21T06:30:00+00:00", "task[3]", 2),
    ("prefect", "my flow/etl", "run_01JD3Z4M8Q2N6K7T9V0W1X2Y3Z", "load data", 1),
    ("python", "..", ".", ".hidden", None),
    ("python", "", "100%", None, None),
    ("python", "数据 🚀", "nul\x00line\nbreak", "x" * 500, 7),
]

FOREIGN_URIS = [
    "file:///etc/passwd",
    "memory://elsewhere/key",
    "s3://other-bucket/key",
    "{url}",
    "{url}/",
    "{url}x/key",
    "{url}/../outside",
    "{url}/a/../../outside",
    "{url}/./a",
    "{url}//a",
    "{url}/a/",
    "{url}/a\\..\\b",
    "{url}/a/\x00",
    "{url}/*",
    "{url}/a/.tmp-123",
]

BAD_KEYS = [
    *("", "/abs", "../x", "a/../../x", "a/./b", "a//b", "a/", "a\\b", "a*", "a?", "[ab]", ".."),
    *("a/.tmp-x", "nul\x00", "new\nline"),
]


class BlobStoreConformance:
    """Tests every BlobStore backend must pass; needs a `store` fixture (an empty store)."""

    # -- round trips ---------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "data",
        [b"", b"\x00", bytes(range(256)) * 4, payload(5 * MIB)],
        ids=["empty", "nul", "all-bytes", "5MiB"],
    )
    def test_put_get_round_trip(self, store: BlobStore, data: bytes) -> None:
        uri = store.put("a/b/blob.bin", data)
        assert uri == store.uri_for("a/b/blob.bin") == f"{store.url}/a/b/blob.bin"
        assert store.get(uri) == data
        assert store.size(uri) == len(data)
        assert store.exists(uri)

    def test_url_is_normalized(self, store: BlobStore) -> None:
        assert not store.url.endswith("/")
        assert "://" in store.url
        assert BlobStore(store.url + "/").url == store.url

    def test_overwrite_replaces(self, store: BlobStore) -> None:
        uri = store.put("k", b"first version, longer")
        assert store.put("k", b"second") == uri
        assert store.get(uri) == b"second"
        assert store.size(uri) == 6
        assert [b.key for b in store.iter_blobs()] == ["k"]

    def test_missing_blob(self, store: BlobStore) -> None:
        uri = store.uri_for("no/such/blob")
        assert not store.exists(uri)
        with pytest.raises(BlobNotFound, match="no/such/blob"):
            store.get(uri)
        with pytest.raises(BlobNotFound):
            store.size(uri)
        with pytest.raises(BlobNotFound):
            with store.open_read(uri):
                pass

    def test_folder_is_not_a_blob(self, store: BlobStore) -> None:
        store.put("dir/leaf", b"x")
        assert not store.exists(store.uri_for("dir"))
        with pytest.raises(StorageError):
            store.get(store.uri_for("dir"))

    def test_open_read_is_seekable(self, store: BlobStore) -> None:
        data = payload(300_000, seed=3)
        uri = store.put("r/blob", data)
        with store.open_read(uri) as f:
            assert f.read(10) == data[:10]
            f.seek(200_000)
            assert f.tell() == 200_000
            assert f.read() == data[200_000:]
            assert f.read() == b""

    def test_open_read_with_a_block_size_seeks_into_the_middle(self, store: BlobStore) -> None:
        data = payload(3 * MIB, seed=5)
        uri = store.put("r/ranged", data)
        with store.open_read(uri, block_size=70_000) as f:
            f.seek(2 * MIB + 17)
            assert f.read(70_000) == data[2 * MIB + 17 : 2 * MIB + 17 + 70_000]
            f.seek(5)
            assert f.read(3) == data[5:8]

    def test_a_log_page_reads_through_the_index(self, store: BlobStore) -> None:
        """A multi-member log and its index, as the recorder stores them: any page is read from
        its point on; a log without an index, or with one that does not fit, says so (None)."""
        from rundossier.read.reader import indexed_lines, read_log_index
        from rundossier.record.steplog import StepLog

        log = StepLog(chunk_bytes=64 << 20)
        messages = [f"row {i:06d} " + "p" * (i % 50) for i in range(25_000)]
        for i, m in enumerate(messages):
            log.write("stderr" if i % 7 == 0 else "stdout", m)
        data = log.finish()
        uri = store.put(f"f/run/step.1.{LOG}", data)
        assert read_log_index(store, uri) is None  # no index yet: the caller scans
        index = log.index()
        store.put(f"f/run/step.1.{LOG_INDEX}", index.to_json())
        got = read_log_index(store, uri)
        assert got == index and len(index.points) >= 20
        for first, count in [(0, 500), (999, 500), (12_345, 500), (24_500, 500), (24_999, 1), (0, 25_000)]:
            lines = indexed_lines(store, uri, index, first, count)
            assert lines is not None
            assert [x.message for x in lines] == messages[first : first + count]
        store.put(f"f/run/step.1.{LOG_INDEX}", b"{not an index")
        assert read_log_index(store, uri) is None
        shifted = type(index)(index.lines, index.size, tuple((n, o + 3) if n else (n, o) for n, o in index.points))
        assert indexed_lines(store, uri, shifted, 5_000, 10) is None  # not a member start: scan instead
        assert indexed_lines(store, store.uri_for("f/run/gone.1." + LOG), index, 0, 10) is None

    # -- streaming -----------------------------------------------------------------------------

    def test_open_write_streams_20_mib(self, store: BlobStore) -> None:
        digest = hashlib.sha256()
        with store.open_write("big/stream.bin") as f:
            for i in range(20):
                chunk = payload(MIB, seed=i)
                digest.update(chunk)
                assert f.write(chunk) == MIB
        uri = store.uri_for("big/stream.bin")
        assert store.size(uri) == 20 * MIB
        read = hashlib.sha256()
        with store.open_read(uri) as f:
            while chunk := f.read(MIB):
                read.update(chunk)
        assert read.hexdigest() == digest.hexdigest()

    def test_open_write_gzip_and_read_back(self, store: BlobStore) -> None:
        lines = [f'{{"n": {i}, "msg": "line {i}"}}\n'.encode() for i in range(5000)]
        with store.open_write(blob_key("airflow", "d", "r", "t", 1, LOG)) as f:
            with gzip.GzipFile(fileobj=f, mode="wb") as gz:
                gz.writelines(lines)
        uri = store.uri_for(blob_key("airflow", "d", "r", "t", 1, LOG))
        with store.open_read(uri) as f, gzip.GzipFile(fileobj=f, mode="rb") as gz:
            assert gz.read() == b"".join(lines)
        assert gzip.decompress(store.get(uri)) == b"".join(lines)

    def test_open_write_empty(self, store: BlobStore) -> None:
        with store.open_write("empty"):
            pass
        assert store.get(store.uri_for("empty")) == b""

    def test_open_write_error_leaves_nothing(self, store: BlobStore) -> None:
        store.put("keep", b"old")
        with pytest.raises(KeyError, match="boom"):
            with store.open_write("partial") as f:
                f.write(payload(2 * MIB))
                raise KeyError("boom")
        with pytest.raises(RuntimeError):
            with store.open_write("keep") as f:
                f.write(b"new but unfinished")
                raise RuntimeError
        assert not store.exists(store.uri_for("partial"))
        assert store.get(store.uri_for("keep")) == b"old"
        assert [b.key for b in store.iter_blobs()] == ["keep"]

    def test_put_file(self, store: BlobStore, tmp_path: Path) -> None:
        src = tmp_path / "upload.bin"
        data = payload(3 * MIB + 17, seed=9)
        src.write_bytes(data)
        uri = store.put_file("up/loaded.bin", src)
        assert uri == store.uri_for("up/loaded.bin")
        assert store.get(uri) == data
        assert store.put_file("up/loaded.bin", str(src)) == uri
        with pytest.raises(StorageError, match="does not exist"):
            store.put_file("up/other.bin", tmp_path / "missing.bin")
        assert not store.exists(store.uri_for("up/other.bin"))

    # -- listing -------------------------------------------------------------------------------

    def test_iter_blobs_lists_exactly_what_was_put(self, store: BlobStore) -> None:
        expected: dict[str, bytes] = {}
        for i, (orch, flow, run, step, attempt) in enumerate(ODD_IDS):
            for name in (TRACE_TEXT, TRACE_JSON, log_part_name(i)):
                key = blob_key(orch, flow, run, step, attempt, name)
                expected[key] = payload(i * 7 + len(name), seed=i)
                store.put(key, expected[key])
        assert len(expected) == 3 * len(ODD_IDS)
        listed = list(store.iter_blobs())
        assert all(isinstance(b, BlobInfo) for b in listed)
        assert [b.key for b in listed] == sorted(expected)
        for b in listed:
            assert b.uri == store.uri_for(b.key)
            assert store.key_for(b.uri) == b.key
            assert b.size == len(expected[b.key])
            assert b.modified is None or (isinstance(b.modified, datetime) and b.modified.tzinfo is not None)
            assert store.get(b.uri) == expected[b.key]

    def test_iter_blobs_under_a_prefix(self, store: BlobStore) -> None:
        a = run_prefix("airflow", "dag", "run_1")
        b = run_prefix("airflow", "dag", "run_10")
        store.put(blob_key("airflow", "dag", "run_1", "t", 1, TRACE_TEXT), b"a")
        store.put(blob_key("airflow", "dag", "run_1", None, None, LOG), b"a")
        store.put(blob_key("airflow", "dag", "run_10", "t", 1, TRACE_TEXT), b"b")
        assert [x.key for x in store.iter_blobs(a)] == [
            f"{a}/_run.0.log.jsonl.gz",
            f"{a}/t.1.trace.txt.gz",
        ]
        assert [x.key for x in store.iter_blobs(b + "/")] == [f"{b}/t.1.trace.txt.gz"]
        assert len(list(store.iter_blobs("airflow"))) == 3
        assert list(store.iter_blobs("nothing/here")) == []

    def test_iter_blobs_of_empty_store(self, store: BlobStore) -> None:
        assert list(store.iter_blobs()) == []

    # -- deleting ------------------------------------------------------------------------------

    def test_delete_many_in_batches(self, store: BlobStore) -> None:
        uris = [store.uri_for(f"del/{i:05d}") for i in range(2500)]
        present = uris[::10] + [uris[999], uris[1000], uris[2499]]  # spread over all 3 batches
        for uri in present:
            store.put(store.key_for(uri), b"x")
        store.put("keep/me", b"k")
        assert store.delete(uris) == 2500
        assert [b.key for b in store.iter_blobs()] == ["keep/me"]
        assert not any(store.exists(u) for u in (uris[0], uris[1000], uris[2499]))
        assert store.delete(uris) == 2500  # idempotent: a second delete is a no-op
        assert store.delete([]) == 0
        assert [b.key for b in store.iter_blobs()] == ["keep/me"]

    def test_delete_refuses_a_single_string(self, store: BlobStore) -> None:
        uri = store.put("k", b"x")
        with pytest.raises(TypeError):
            store.delete(uri)
        assert store.exists(uri)

    def test_delete_prefix(self, store: BlobStore) -> None:
        run_a = ("airflow", "my:dag", "manual__2026-11-22T00:00:00+00:00")
        run_b = ("airflow", "my:dag", "manual__2026-11-22T00:00:00+00:001")
        keys_a = [
            blob_key(*run_a, "t1", 1, TRACE_TEXT),
            blob_key(*run_a, "t1", 1, log_part_name(0)),
            blob_key(*run_a, None, None, LOG),
        ]
        keys_b = [blob_key(*run_b, "t1", 1, TRACE_TEXT)]
        for key in keys_a + keys_b:
            store.put(key, b"x")
        store.delete_prefix(run_prefix(*run_a))
        assert [b.key for b in store.iter_blobs()] == keys_b
        store.delete_prefix(run_prefix(*run_a))  # nothing left: fine
        store.delete_prefix("never/existed")
        assert [b.key for b in store.iter_blobs()] == keys_b
        with pytest.raises(StorageError):
            store.delete_prefix("")
        with pytest.raises(StorageError):
            store.delete_prefix("../x")
        assert [b.key for b in store.iter_blobs()] == keys_b

    def test_delete_runs(self, store: BlobStore) -> None:
        """Every blob rows point at goes (parts folders too); what no row knows stays on object
        stores unless the run goes whole; a local run folder always goes whole, no empty folder left."""
        run_a = ("airflow", "my:dag", "manual__2026-11-22T00:00:00+00:00")
        run_b = ("airflow", "my:dag", "run_b")
        run_c = ("prefect", "flow c", "run_c")
        known_a = [blob_key(*run_a, "t1", 1, TRACE_TEXT), blob_key(*run_a, None, None, LOG)]
        part_a = blob_key(*run_a, "t1", 1, log_part_name(1))
        stray_a = blob_key(*run_a, "t9", 1, LOG)  # no row knows it
        known_c = [blob_key(*run_c, "s", 2, LOG)]
        extra_c = blob_key(*run_c, "s", 3, LOG)
        keep = blob_key(*run_b, "t1", 1, TRACE_TEXT)
        for key in [*known_a, part_a, stray_a, *known_c, extra_c, keep]:
            store.put(key, b"x")
        parts = part_a.rsplit("/", 1)[0]
        runs = [
            RunBlobs(run_prefix(*run_a), [*known_a, "never/written.gz"], [parts]),
            RunBlobs(run_prefix(*run_c), known_c, whole=True),
        ]
        assert store.delete_runs(runs) == 4
        left = {b.key for b in store.iter_blobs()}
        local = store.url.startswith("file://")
        assert left == ({keep} if local else {keep, stray_a})
        assert store.delete_runs(runs) == 4  # again: nothing there is fine
        assert store.delete_runs([]) == 0
        if local:
            root = store.url[len("file://") :]
            assert not os.path.exists(f"{root}/{run_prefix(*run_a)}") and not os.path.exists(
                f"{root}/{run_prefix(*run_c)}"
            )
        with pytest.raises(StorageError):
            store.delete_runs([RunBlobs(run_prefix(*run_b), ["../outside"])])
        assert store.exists(store.uri_for(keep))

    # -- addressing and confinement --------------------------------------------------------------

    @pytest.mark.parametrize(
        "key",
        [
            "k",
            "a/b/c.bin",
            "airflow/my%3Adag/run_1/%5Frun/0/trace.txt.gz",
            "python/%empty/%2E./%2Ehidden/0/log.parts/000001.jsonl.gz",
            "x" * 150 + "~0123456789abcdef/y",
        ],
    )
    def test_key_uri_round_trip(self, store: BlobStore, key: str) -> None:
        uri = store.uri_for(key)
        assert uri == f"{store.url}/{key}"
        assert store.key_for(uri) == key
        assert store.key_for(store.put(key, key.encode())) == key
        assert store.get(uri) == key.encode()

    def test_blob_key_round_trip(self, store: BlobStore) -> None:
        for i, ids in enumerate(ODD_IDS):
            key = blob_key(*ids, TRACE_TEXT)
            uri = store.put(key, str(i).encode())
            assert store.key_for(uri) == key
            assert store.get(uri) == str(i).encode()
            assert store.exists(uri)

    @pytest.mark.parametrize("template", FOREIGN_URIS)
    def test_foreign_uri_refused(self, store: BlobStore, template: str) -> None:
        uri = template.format(url=store.url)
        with pytest.raises(StorageError):
            store.key_for(uri)
        with pytest.raises(StorageError):
            store.get(uri)
        with pytest.raises(StorageError):
            store.exists(uri)
        with pytest.raises(StorageError):
            store.size(uri)
        with pytest.raises(StorageError):
            store.delete([uri])
        with pytest.raises(StorageError):
            with store.open_read(uri):
                pass

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_bad_keys_refused(self, store: BlobStore, key: str) -> None:
        with pytest.raises(StorageError):
            store.put(key, b"x")
        with pytest.raises(StorageError):
            store.uri_for(key)
        with pytest.raises(StorageError):
            with store.open_write(key) as f:
                f.write(b"x")
        assert list(store.iter_blobs()) == []

    def test_delete_checks_every_uri_first(self, store: BlobStore) -> None:
        uri = store.put("k", b"x")
        with pytest.raises(StorageError):
            store.delete([uri, "file:///etc/passwd"])
        assert store.exists(uri)

    def test_ping(self, store: BlobStore) -> None:
        store.ping()
        store.put("k", b"x")
        store.ping()

    def test_writer_is_a_binary_file(self, store: BlobStore) -> None:
        with store.open_write("t/text.txt") as f:
            assert f.writable() and not f.readable()
            text = io.TextIOWrapper(f, encoding="utf-8", newline="\n")
            text.write("héllo\n")
            text.flush()
            text.detach()
        assert store.get(store.uri_for("t/text.txt")) == "héllo\n".encode()
