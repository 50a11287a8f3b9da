"""The local spool: blobs and rows that could not be written wait here until `flush` delivers them.

One item is one directory `spool/<id>/` holding `item.json` (the rows to write and which blob
files go to which key) and the blob bytes as files. Items are created atomically (built under a
temporary name, then renamed), so a crash never leaves half an item; a lock on the item keeps two
flushers from delivering the same one.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rundossier.core.ids import new_run_id
from rundossier.errors import SpoolError

ITEM_FILE = "item.json"


@dataclass
class SpoolItem:
    """What to deliver: blobs (key -> bytes), then a batch of rows, then rows to mark delivered."""

    blobs: list[tuple[str, bytes]] = field(default_factory=list)
    batch: dict[str, Any] | None = None  # WriteBatch.to_json()
    unmark: list[dict[str, Any]] = field(default_factory=list)  # {"run_id"} or {"run_id","step_id","try_number"}
    reason: str = ""
    #: run id -> [orchestrator, flow_id, run_key] of every run the item writes to: a run id chosen
    #: while the database was down may lose to the id another process recorded the run under
    runs: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class SpooledItem:
    path: Path
    item: SpoolItem
    created: datetime | None


class Spool:
    """A directory of pending deliveries."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def put(self, item: SpoolItem) -> Path:
        """Store an item durably; raises SpoolError if even the local disk refuses."""
        name = new_run_id().removeprefix("run_")
        tmp = self.directory / f".tmp-{name}"
        final = self.directory / name
        try:
            tmp.mkdir(parents=True, exist_ok=False)
            files = []
            for i, (key, data) in enumerate(item.blobs):
                fname = f"{i}.blob"
                (tmp / fname).write_bytes(data)
                files.append({"key": key, "file": fname})
            meta = {
                "version": 1,
                "blobs": files,
                "batch": item.batch,
                "unmark": item.unmark,
                "reason": item.reason,
                "runs": item.runs,
            }
            (tmp / ITEM_FILE).write_text(json.dumps(meta, default=_json_default), encoding="utf-8")
            os.replace(tmp, final)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise SpoolError(f"could not spool to {self.directory}: {exc} (is RUNDOSSIER_HOME writable?)") from exc
        return final

    def pending(self) -> list[Path]:
        """Item directories waiting for delivery, oldest first."""
        try:
            entries = sorted(p for p in self.directory.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:  # no spool yet, or one that cannot be read: nothing to deliver from it
            return []
        return [p for p in entries if (p / ITEM_FILE).exists()]

    def has_pending(self) -> bool:
        try:
            with os.scandir(self.directory) as it:
                return any(e.is_dir() and not e.name.startswith(".") for e in it)
        except OSError:
            return False

    def run_ids(self) -> set[str]:
        """Run ids that items waiting here write rows for (their blobs may already be in storage,
        under those runs' folders, waiting for these rows). Reads each item's metadata, not its blobs."""
        found: set[str] = set()
        for path in self.pending():
            try:
                meta = json.loads((path / ITEM_FILE).read_text(encoding="utf-8"))
            except (OSError, ValueError):  # delivered (removed) meanwhile, or unreadable: nothing to keep
                continue
            batch = meta.get("batch") or {}
            rows = [r[0] for r in batch.get("runs", []) if r]
            for name in ("steps", "events", "root_causes", "artifacts"):
                rows.extend(batch.get(name, []))
            rows.extend(meta.get("unmark", []))
            found.update(str(r["run_id"]) for r in rows if isinstance(r, dict) and r.get("run_id"))
            found.update(_run_id_of_key(b.get("key", "")) for b in meta.get("blobs", []))
        found.discard("")
        return found

    def load(self, path: Path) -> SpooledItem:
        try:
            meta = json.loads((path / ITEM_FILE).read_text(encoding="utf-8"))
            blobs = [(b["key"], (path / b["file"]).read_bytes()) for b in meta.get("blobs", [])]
        except (OSError, ValueError, KeyError) as exc:
            raise SpoolError(f"spool item {path} is unreadable: {exc}") from exc
        item = SpoolItem(
            blobs=blobs,
            batch=meta.get("batch"),
            unmark=meta.get("unmark", []),
            reason=meta.get("reason", ""),
            runs=meta.get("runs") or {},
        )
        try:
            created = datetime.fromtimestamp((path / ITEM_FILE).stat().st_mtime).astimezone()
        except OSError:
            created = None
        return SpooledItem(path=path, item=item, created=created)

    @contextmanager
    def claim(self, path: Path) -> Iterator[bool]:
        """Lock an item for delivery; yields False when another process holds it."""
        try:
            fd = os.open(path / ITEM_FILE, os.O_RDONLY)
        except FileNotFoundError:
            yield False
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield (path / ITEM_FILE).exists()
        finally:
            os.close(fd)

    def remove(self, path: Path) -> None:
        trash = path.with_name(".done-" + path.name)
        try:
            os.replace(path, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def clean_temp(self, older_than_s: float = 3600) -> int:
        """Remove leftovers of items whose creation crashed (never delivered, never complete)."""
        import time

        removed = 0
        try:
            entries = list(self.directory.iterdir())
        except FileNotFoundError:
            return 0
        for p in entries:
            if p.name.startswith((".tmp-", ".done-")):
                try:
                    if time.time() - p.stat().st_mtime > older_than_s:
                        shutil.rmtree(p, ignore_errors=True)
                        removed += 1
                except OSError:
                    pass
        return removed


def _run_id_of_key(key: str) -> str:
    """The run folder segment of a blob key `{orchestrator}/{flow}/{run_id}/...` ("" if none)."""
    parts = key.split("/")
    return parts[2] if len(parts) > 3 else ""


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot spool a {type(value).__name__}")


def decode_datetimes(value: Any) -> Any:
    """Undo the datetime tagging `put` applies (rows carry timestamps)."""
    if isinstance(value, dict):
        if set(value) == {"__datetime__"}:
            return datetime.fromisoformat(value["__datetime__"])
        return {k: decode_datetimes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_datetimes(v) for v in value]
    return value


__all__ = ["Spool", "SpoolItem", "SpooledItem", "decode_datetimes"]
