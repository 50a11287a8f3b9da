"""The event kinds the dossier understands: the one vocabulary recorders and integrations write.

Every event is a row of the ledger (`rd_event`): `kind`, `ts`, optional `step_id`/`try_number`,
a one-line `summary`, an optional `raw_ref` (a URI) and optional `data` (a small JSON object).
An event with no `step_id` is about the run as a whole.

Integrations emit these with `Recorder.record_event(run, kind, summary, step_id=..., try_number=...,
data=...)`. None of them is required: when one is absent the dossier says so (an open timing
window, a missing piece of evidence) instead of guessing. Kinds outside this vocabulary are kept
in the ledger and shown in the timeline, but the dossier does not interpret them.

| kind | meaning | `data` keys the dossier reads |
|---|---|---|
| `run_queued` | the orchestrator queued the run (or, with a step id, the step) | |
| `run_started` | the run began executing | |
| `worker_claimed` | a worker picked up the step try (the start of its setup) | `worker` |
| `first_work` | the step (or run) did its first piece of real work | |
| `last_work` | the step (or run) did its last piece of real work; what follows is write-back | |
| `artifact_written` | an output was persisted (the write-back finished) | `uri`, `bytes` |
| `write_back_failed` | work was done, persisting its output failed | `uri` |
| `inputs_recorded` | the inputs a run or step used, as a hash | `hash` (or `params_hash`), `code_version`, `attempt` |
| `step_retry` | the orchestrator scheduled another try | `next_try` |
| `step_timeout` | the orchestrator stopped the try at its time limit | `timeout_s` |
| `step_killed` | the try's process was killed | `signal`, `reason` (`oom`, `sigkill`...), `exit_code` |
| `heartbeat_lost` | the orchestrator lost the try's heartbeat (zombie) | `last_heartbeat` |
| `upstream_failed` | the step did not run because an upstream step failed | `upstream` (list of step ids) |
| `rate_limited` | a service throttled the step (the step may have recovered) | `service`, `retry_after_s` |
| `step_failed` | the recorder stored a failure (summary "Type: message", raw_ref = trace) | `chain`, `captured` |
| `run_finished` | the recorder stored the run's end (summary = status) | |
"""

from __future__ import annotations

import re

RUN_QUEUED = "run_queued"
RUN_STARTED = "run_started"
WORKER_CLAIMED = "worker_claimed"
FIRST_WORK = "first_work"
LAST_WORK = "last_work"
ARTIFACT_WRITTEN = "artifact_written"
WRITE_BACK_FAILED = "write_back_failed"
INPUTS_RECORDED = "inputs_recorded"
STEP_RETRY = "step_retry"
STEP_TIMEOUT = "step_timeout"
STEP_KILLED = "step_killed"
HEARTBEAT_LOST = "heartbeat_lost"
UPSTREAM_FAILED = "upstream_failed"
RATE_LIMITED = "rate_limited"
STEP_FAILED = "step_failed"
RUN_FINISHED = "run_finished"

#: every kind the dossier interprets
KINDS: frozenset[str] = frozenset(
    {
        RUN_QUEUED,
        RUN_STARTED,
        WORKER_CLAIMED,
        FIRST_WORK,
        LAST_WORK,
        ARTIFACT_WRITTEN,
        WRITE_BACK_FAILED,
        INPUTS_RECORDED,
        STEP_RETRY,
        STEP_TIMEOUT,
        STEP_KILLED,
        HEARTBEAT_LOST,
        UPSTREAM_FAILED,
        RATE_LIMITED,
        STEP_FAILED,
        RUN_FINISHED,
    }
)

#: a kind is a short lower-case word (it fits the ledger's 40-character column)
KIND_RE = re.compile(r"^[a-z][a-z0-9_.:-]{0,39}$")


def check_kind(kind: str) -> str:
    """`kind` if it can be stored (known or not); ValueError saying what a kind looks like otherwise."""
    if not isinstance(kind, str) or not KIND_RE.match(kind):
        raise ValueError(
            f"event kind {kind!r} is not valid: use a lower-case word of at most 40 characters "
            f"(letters, digits, _ . : -), such as one of {sorted(KINDS)}"
        )
    return kind


__all__ = [
    "RUN_QUEUED",
    "RUN_STARTED",
    "WORKER_CLAIMED",
    "FIRST_WORK",
    "LAST_WORK",
    "ARTIFACT_WRITTEN",
    "WRITE_BACK_FAILED",
    "INPUTS_RECORDED",
    "STEP_RETRY",
    "STEP_TIMEOUT",
    "STEP_KILLED",
    "HEARTBEAT_LOST",
    "UPSTREAM_FAILED",
    "RATE_LIMITED",
    "STEP_FAILED",
    "RUN_FINISHED",
    "KINDS",
    "check_kind",
]
