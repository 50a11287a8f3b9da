"""What a Prefect task run wrote, as artifacts of its try, read from Prefect's API after the run:

- its persisted result (`persist_result=True`, or a result storage): the result record's storage
  key. On Prefect's default local storage that is a file path (recorded as `file://...`, looked up
  like any file); on a storage block it is a key in that block, recorded as
  `prefect-result://{block id}/{key}` (not looked up: the block holds the credentials);
- each `create_*_artifact` call (table, markdown, link, image, progress): recorded as
  `prefect://artifacts/{key}` (keyed artifacts are versioned, so later runs link to earlier ones)
  or `prefect://artifacts/{id}`, kind `prefect.{type}`, with the size and sha256 of its content.

All of them are outputs of the task run's last try (Prefect does not say which try made them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Made:
    """One thing a task run wrote: where, of what kind, and its size and checksum when known."""

    task_run_id: str
    uri: str
    kind: str
    size: int | None = None
    checksum: str | None = None


def result_of(task_run: Any) -> Made | None:
    """The persisted result of a completed task run, from its state's result record metadata."""
    state = getattr(task_run, "state", None)
    if state is None or not bool(getattr(state, "is_completed", lambda: False)()):
        return None
    data = getattr(state, "data", None)
    key = getattr(data, "storage_key", None)
    if not isinstance(key, str) or not key:
        return None
    block = getattr(data, "storage_block_id", None)
    if block is None:
        uri = "file://" + key if key.startswith("/") else key
    else:
        uri = f"prefect-result://{block}/{key.lstrip('/')}"
    return Made(str(task_run.id), uri, "prefect.result")


def artifact_of(artifact: Any) -> Made | None:
    """A `create_*_artifact` of a task run (None for the flow run's own artifacts)."""
    task_run_id = getattr(artifact, "task_run_id", None)
    if task_run_id is None:
        return None
    key = getattr(artifact, "key", None)
    uri = f"prefect://artifacts/{key or artifact.id}"
    data = getattr(artifact, "data", None)
    text = data if isinstance(data, str) else json.dumps(data, sort_keys=True, default=str)
    content = text.encode("utf-8", "replace")
    kind = f"prefect.{getattr(artifact, 'type', None) or 'artifact'}"
    return Made(str(task_run_id), uri, kind, len(content), "sha256:" + hashlib.sha256(content).hexdigest())


def uid_of(run_id: str, step_id: str, try_number: int, made: Made) -> str:
    """The same artifact read back twice (a second reconcile) keeps one row."""
    raw = f"{run_id}\x00{step_id}\x00{try_number}\x00{made.uri}\x00{made.kind}"
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:32]


__all__ = ["Made", "result_of", "artifact_of", "uid_of"]
