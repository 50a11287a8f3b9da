"""The orphan sweep: remove blobs that no row points at (I/O).

Walks storage as `{orchestrator}/{flow}/{run_id}/...` and, run folder by run folder (rows looked
up in batches):

* no run row, and the run id is older than the grace period: the whole folder goes (a blob is
  written before its row, and a row may wait in a spool for a while: the grace covers both);
* the run's blobs are expired (by retention): the whole folder goes;
* a finished run unchanged for the grace period: every blob its rows do not point at goes
  (log parts of a try whose row is gone, temporary files of an interrupted write). A step
  that ended without storing its log (its process was killed) keeps what it published while
  it ran (the live snapshot and log parts): the UI shows them as its log;
* queued, running or paused runs are left alone, and so is anything that does not look like a
  run folder (counted as `unknown`);
* a run that rows waiting in the spool (`spool`, this host's) write for is left alone whatever
  its age (counted as `skipped_spooled`): its blobs are in storage, its rows are on their way.
  Spools on other hosts are covered by the grace period only: keep it longer than a spool may
  wait (a worker host that is down holds its spool until it is back).

Memory: local storage is walked folder by folder; object stores are listed one flow at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from rundossier.core.ids import is_run_id, run_id_time
from rundossier.core.status import TERMINAL
from rundossier.errors import RundossierError
from rundossier.storage.blobs import (
    LOG_LIVE,
    BlobStore,
    RunBlobs,
    blob_key,
    log_index,
    log_part_name,
    row_step,
    structured_trace,
)
from rundossier.storage.blobs.blobstore import TEMP_PREFIX
from rundossier.storage.db import RunStore
from rundossier.storage.db.models import RUN_TABLE as RUN
from rundossier.storage.db.models import STEP_TABLE as STEP
from rundossier.storage.spool import Spool

DEFAULT_GRACE = timedelta(hours=24)


@dataclass
class OrphanReport:
    dry_run: bool
    grace_s: float
    run_folders_scanned: int = 0
    runs_without_row: int = 0
    expired_runs_cleaned: int = 0
    unreferenced_blobs: int = 0
    blobs_removed: int = 0
    bytes_removed: int = 0
    skipped_recent: int = 0
    skipped_active: int = 0
    skipped_spooled: int = 0
    unknown: int = 0
    complete: bool = True
    error: str | None = None
    samples: list[str] = field(default_factory=list)  # up to 20 removed keys, for people

    COUNTS = (
        "run_folders_scanned",
        "runs_without_row",
        "expired_runs_cleaned",
        "unreferenced_blobs",
        "blobs_removed",
        "bytes_removed",
        "skipped_recent",
        "skipped_active",
        "skipped_spooled",
        "unknown",
    )

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "grace_s": self.grace_s,
            "complete": self.complete,
            "error": {"type": "orphan_sweep_stopped", "message": self.error} if self.error else None,
            **{k: getattr(self, k) for k in self.COUNTS},
            "samples": self.samples,
        }


@dataclass
class RunFolder:
    """One `{orchestrator}/{flow}/{run}` folder and the blobs in it (keys relative to the root)."""

    prefix: str
    run_id: str
    files: list[tuple[str, int]]  # (key, size)


def sweep_orphans(
    store: RunStore,
    blobs: BlobStore,
    *,
    dry_run: bool = False,
    grace: timedelta = DEFAULT_GRACE,
    now: datetime | None = None,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
    spool: Spool | None = None,
) -> OrphanReport:
    """Remove (or, dry, count) blobs no row points at; see the module docstring for the rules.
    `spool`: this host's spool; the runs its waiting rows write for are left alone."""
    if grace < timedelta(0):
        raise ValueError("the orphan grace period must not be negative")
    now = now or datetime.now(UTC)
    report = OrphanReport(dry_run=dry_run, grace_s=grace.total_seconds())
    cutoff = now - grace
    spooled = spool.run_ids() if spool is not None else set()
    lister = _LocalLister(blobs, report) if blobs.url.startswith("file://") else _ObjectLister(blobs, report)
    batch: list[RunFolder] = []
    try:
        for folder in lister.run_folders():
            batch.append(folder)
            if len(batch) >= batch_size:
                _check_batch(store, blobs, lister, batch, cutoff, report, spooled)
                batch = []
                if progress is not None:
                    progress(report.run_folders_scanned)
        if batch:
            _check_batch(store, blobs, lister, batch, cutoff, report, spooled)
    except RundossierError as exc:
        report.complete = False
        report.error = str(exc)
    return report


def _check_batch(
    store: RunStore,
    blobs: BlobStore,
    lister: _Lister,
    batch: Sequence[RunFolder],
    cutoff: datetime,
    report: OrphanReport,
    spooled: set[str],
) -> None:
    waiting = [f for f in batch if f.run_id in spooled]
    if waiting:
        report.run_folders_scanned += len(waiting)
        report.skipped_spooled += len(waiting)
        batch = [f for f in batch if f.run_id not in spooled]
    ids = sorted({f.run_id for f in batch})
    c = RUN.c
    rows: dict[str, Any] = {}
    with store.session() as s:
        for found in s.execute(
            select(c.run_id, c.status, c.blobs_expired, c.updated_at, c.trace_uri, c.orchestrator, c.flow_id).where(
                c.run_id.in_(ids)
            )
        ).all():
            rows[found[0]] = found
    live = [rid for rid, r in rows.items() if not r[2] and r[1] in TERMINAL and r[3] is not None and r[3] < cutoff]
    referenced: dict[str, set[str]] = {rid: set() for rid in live}
    if live:
        sc = STEP.c
        with store.session() as s:
            for run_id, step_id, try_number, trace_uri, log_uri in s.execute(
                select(sc.run_id, sc.step_id, sc.try_number, sc.trace_uri, sc.log_uri).where(sc.run_id.in_(live))
            ).all():
                referenced[run_id].update(_refs(blobs, trace_uri, log_uri))
                if not log_uri:  # ended without storing its log (killed): what it published while running is its log
                    orchestrator, flow_id = rows[run_id][5], rows[run_id][6]
                    referenced[run_id].update(_published_log(orchestrator, flow_id, run_id, step_id, try_number))
        for rid in live:
            referenced[rid].update(_refs(blobs, rows[rid][4], None))
    for folder in batch:
        report.run_folders_scanned += 1
        row = rows.get(folder.run_id)
        if row is None:
            if run_id_time(folder.run_id) >= cutoff:
                report.skipped_recent += 1
                continue
            report.runs_without_row += 1
            _remove_folder(blobs, lister, folder, report)
        elif row[2]:  # blobs expired: nothing may point into this folder any more
            if folder.files:
                report.expired_runs_cleaned += 1
                _remove_folder(blobs, lister, folder, report)
        elif row[1] not in TERMINAL:
            report.skipped_active += 1
        elif folder.run_id not in referenced:
            report.skipped_recent += 1
        else:
            refs = referenced[folder.run_id]
            extra = [(k, n) for k, n in folder.files if not _is_referenced(k, refs)]
            if extra:
                report.unreferenced_blobs += len(extra)
                _remove_files(blobs, lister, extra, report)


def _refs(blobs: BlobStore, trace_uri: str | None, log_uri: str | None) -> set[str]:
    """Keys (and folder keys ending in '/') that a row points at."""
    out: set[str] = set()
    for uri in (trace_uri, log_uri):
        if not uri:
            continue
        try:
            key = blobs.key_for(uri.rstrip("/"))
        except RundossierError:
            continue
        if uri.endswith("/"):
            out.add(key + "/")
            continue
        out.add(key)
        beside = structured_trace(key) or log_index(key)
        if beside is not None:
            out.add(beside)
    return out


def _published_log(orchestrator: str, flow_id: str, run_id: str, step_id: str, try_number: int) -> set[str]:
    """The live snapshot and the spilled parts (a folder key) of a step's log."""
    try:
        live = blob_key(orchestrator, flow_id, run_id, row_step(step_id), try_number, LOG_LIVE)
        part = blob_key(orchestrator, flow_id, run_id, row_step(step_id), try_number, log_part_name(1))
    except ValueError:  # not a key this store could hold anyway
        return set()
    return {live, part.rsplit("/", 1)[0] + "/"}


def _is_referenced(key: str, refs: set[str]) -> bool:
    if key in refs:
        return True
    parent = key.rsplit("/", 1)[0] + "/"
    return parent in refs


def _remove_folder(blobs: BlobStore, lister: _Lister, folder: RunFolder, report: OrphanReport) -> None:
    report.blobs_removed += len(folder.files)
    report.bytes_removed += sum(n for _, n in folder.files)
    _sample(report, folder.prefix + "/")
    if not report.dry_run:
        lister.remove_folder(folder)


def _remove_files(blobs: BlobStore, lister: _Lister, files: Sequence[tuple[str, int]], report: OrphanReport) -> None:
    report.blobs_removed += len(files)
    report.bytes_removed += sum(n for _, n in files)
    for key, _ in files[:3]:
        _sample(report, key)
    if not report.dry_run:
        lister.remove_files([k for k, _ in files])


def _sample(report: OrphanReport, key: str) -> None:
    if len(report.samples) < 20:
        report.samples.append(key)


class _Lister:
    def __init__(self, blobs: BlobStore, report: OrphanReport) -> None:
        self.blobs = blobs
        self.report = report

    def run_folders(self) -> Iterator[RunFolder]:
        raise NotImplementedError

    def remove_folder(self, folder: RunFolder) -> None:
        self.blobs.delete_runs([RunBlobs(folder.prefix, whole=True)])

    def remove_files(self, keys: Sequence[str]) -> None:
        temp = [k for k in keys if k.rsplit("/", 1)[-1].startswith(TEMP_PREFIX)]  # interrupted writes
        if temp:
            self.blobs.delete_temp_files(temp)
        self.blobs.delete([self.blobs.uri_for(k) for k in keys if k not in temp])


class _LocalLister(_Lister):
    """Walks a file:// root with os.scandir, one run folder at a time."""

    def __init__(self, blobs: BlobStore, report: OrphanReport) -> None:
        super().__init__(blobs, report)
        self.root = blobs.url[len("file://") :]

    def _dirs(self, path: str) -> Iterator[os.DirEntry[str]]:
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            return
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                yield e
            else:
                self.report.unknown += 1  # a file where a folder belongs: not ours to judge

    def run_folders(self) -> Iterator[RunFolder]:
        for orch in self._dirs(self.root):
            for flow in self._dirs(orch.path):
                for run in self._dirs(flow.path):
                    if not is_run_id(run.name):
                        self.report.unknown += 1
                        continue
                    prefix = f"{orch.name}/{flow.name}/{run.name}"
                    files: list[tuple[str, int]] = []
                    for dirpath, _dirs, names in os.walk(run.path):
                        rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
                        for name in names:
                            try:
                                size = os.stat(os.path.join(dirpath, name)).st_size
                            except FileNotFoundError:
                                continue
                            files.append((f"{rel}/{name}", size))
                    yield RunFolder(prefix, run.name, files)


class _ObjectLister(_Lister):
    """Lists an object store one flow at a time (`find` under `{orchestrator}/{flow}`)."""

    def __init__(self, blobs: BlobStore, report: OrphanReport) -> None:
        super().__init__(blobs, report)
        self.fs = blobs.fs
        self.root = self.fs._strip_protocol(blobs.url).rstrip("/")

    def _children(self, path: str) -> Iterator[str]:
        try:
            entries = self.fs.ls(path, detail=True)
        except FileNotFoundError:
            return
        for info in sorted(entries, key=lambda i: i["name"]):
            name = info["name"].rstrip("/").rsplit("/", 1)[-1]
            if info.get("type") == "directory":
                yield name
            else:
                self.report.unknown += 1

    def run_folders(self) -> Iterator[RunFolder]:
        for orch in self._children(self.root):
            for flow in self._children(f"{self.root}/{orch}"):
                base = f"{self.root}/{orch}/{flow}"
                found = self.fs.find(base, detail=True)
                by_run: dict[str, list[tuple[str, int]]] = {}
                for path, info in found.items():
                    if info.get("type", "file") != "file" or not path.startswith(base + "/"):
                        continue
                    run_seg = path[len(base) + 1 :].split("/", 1)[0]
                    key = path[len(self.root) + 1 :]
                    by_run.setdefault(run_seg, []).append((key, int(info.get("size") or 0)))
                del found
                for run_seg in sorted(by_run):
                    if not is_run_id(run_seg):
                        self.report.unknown += 1
                        continue
                    yield RunFolder(f"{orch}/{flow}/{run_seg}", run_seg, by_run[run_seg])


__all__ = ["sweep_orphans", "OrphanReport", "DEFAULT_GRACE"]
