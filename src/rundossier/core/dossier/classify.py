"""Failure classification by fixed rules over recorded evidence (no language model, no guessing).

Input is `FailureFacts`: the failed try's status, its error and exception chain (every chained
exception's type and message, root cause first), its events and its timing boundaries. Each rule
below looks at that evidence and, when it matches, says which lines made the call. The first
class in `ORDER` whose rule matched is the classification; other matches are listed in `also`.

Classes and what matches them (confidence in brackets):

- `killed`: `step_killed` / `heartbeat_lost` events [high]; kill or OOM exception types such as
  AirflowTaskTerminated, MemoryError [high]; SIGKILL, OOM, zombie, heartbeat, a negative return
  code in a message [medium]; a crashed try with no exception [medium].
- `timeout`: `step_timeout` event [high]; AirflowTaskTimeout, TimeoutError, ReadTimeout... [high];
  "timed out", "exceeded timeout" [medium].
- `upstream`: status `upstream_failed`, an `upstream_failed` event, UpstreamTaskError, "upstream
  failed" [high].
- `pre_work`: ImportError, ModuleNotFoundError, SyntaxError, ParameterBindError, configuration
  errors [high]; "No module named", "is not installed" [medium]; a failure before the first work
  event in a run that reports work events, or before a worker claimed the try [low].
- `write_back`: `write_back_failed` event [high]; a failure after the try's `last_work` event,
  "No space left on device", "Read-only file system", a failed upload or write [medium].
- `rate_limited`: ThrottlingException, RateLimitError, TooManyRequests... [high]; "429", "rate
  limit", "throttl" in a message, a `rate_limited` event on the try [medium].
- `unavailable`: ConnectionError and its subclasses, socket.gaierror, ConnectError,
  EndpointConnectionError... [high]; "connection refused", "could not connect", "Name or service
  not known", 502/503/504 [medium].
- `data`: ValidationError, SchemaError, JSONDecodeError, IntegrityError... [high]; ValueError,
  AssertionError, "invalid input", "violates ... constraint" [medium].
- `unknown`: nothing matched; the evidence is the error as recorded.

Types are compared by their last dotted part (`psycopg.OperationalError` -> `OperationalError`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rundossier.core.dossier.events import (
    HEARTBEAT_LOST,
    LAST_WORK,
    RATE_LIMITED,
    STEP_KILLED,
    STEP_TIMEOUT,
    UPSTREAM_FAILED,
)
from rundossier.core.dossier.events import WRITE_BACK_FAILED as EV_WRITE_BACK_FAILED
from rundossier.core.dossier.model import Classification, Evidence
from rundossier.core.status import FAILURES

KILLED = "killed"
TIMEOUT = "timeout"
UPSTREAM = "upstream"
PRE_WORK = "pre_work"
WRITE_BACK = "write_back"
RATE_LIMITED_CLASS = "rate_limited"
UNAVAILABLE = "unavailable"
DATA = "data"
UNKNOWN = "unknown"

LABELS: dict[str, str] = {
    KILLED: "Killed",
    TIMEOUT: "Timeout",
    UPSTREAM: "Upstream failure",
    PRE_WORK: "Failed before any work",
    WRITE_BACK: "Write-back failure",
    RATE_LIMITED_CLASS: "Rate limited",
    UNAVAILABLE: "External service unavailable",
    DATA: "Data / validation error",
    UNKNOWN: "Unknown",
}
DESCRIPTIONS: dict[str, str] = {
    KILLED: "the try's process was killed (signal, out of memory, or lost heartbeat)",
    TIMEOUT: "the try ran past a time limit",
    UPSTREAM: "the step did not run because a step it depends on failed",
    PRE_WORK: "the try failed before doing any work (import, configuration or dependency error)",
    WRITE_BACK: "the work was done, persisting its output failed",
    RATE_LIMITED_CLASS: "a service throttled the requests",
    UNAVAILABLE: "a service the step talks to could not be reached",
    DATA: "the data did not pass validation or could not be parsed",
    UNKNOWN: "no rule matched the recorded evidence",
}
#: first match wins; strong, specific evidence comes before weak, generic evidence
ORDER: tuple[tuple[str, str], ...] = (
    (KILLED, "high"),
    (TIMEOUT, "high"),
    (UPSTREAM, "high"),
    (PRE_WORK, "high"),
    (WRITE_BACK, "high"),
    (KILLED, "medium"),
    (WRITE_BACK, "medium"),
    (RATE_LIMITED_CLASS, "high"),
    (UNAVAILABLE, "high"),
    (TIMEOUT, "medium"),
    (PRE_WORK, "medium"),
    (RATE_LIMITED_CLASS, "medium"),
    (UNAVAILABLE, "medium"),
    (DATA, "high"),
    (DATA, "medium"),
    (PRE_WORK, "low"),
)
CLASSES: tuple[str, ...] = tuple(LABELS)

_TYPES: dict[str, frozenset[str]] = {
    KILLED: frozenset(
        {
            "AirflowTaskTerminated",
            "TaskTerminated",
            "TerminationSignal",
            "MemoryError",
            "OutOfMemoryError",
            "OOMKilled",
            "WorkerLostError",
            "Terminated",
            "BrokenProcessPool",
        }
    ),
    TIMEOUT: frozenset(
        {
            "AirflowTaskTimeout",
            "AirflowSensorTimeout",
            "TimeoutError",
            "Timeout",
            "TimeoutExpired",
            "ReadTimeout",
            "ReadTimeoutError",
            "WriteTimeout",
            "PoolTimeout",
            "DeadlineExceeded",
            "FlowRunTimeoutError",
            "TaskRunTimeoutError",
            "QueryCanceled",
        }
    ),
    UPSTREAM: frozenset({"UpstreamTaskError", "AirflowUpstreamFailed", "UpstreamFailed"}),
    PRE_WORK: frozenset(
        {
            "ImportError",
            "ModuleNotFoundError",
            "SyntaxError",
            "IndentationError",
            "TabError",
            "AirflowConfigException",
            "DagNotFound",
            "TaskNotFound",
            "DagCodeNotFound",
            "SerializedDagNotFound",
            "ParameterBindError",
            "SignatureMismatchError",
            "ParameterTypeError",
            "MissingFlowError",
            "ScriptError",
            "PackageNotFoundError",
            "DistributionNotFound",
            "VersionConflict",
            "ConfigError",
            "ConfigurationError",
            "ImproperlyConfigured",
            "NoCredentialsError",
            "PartialCredentialsError",
            "NoRegionError",
            "MissingContextError",
        }
    ),
    WRITE_BACK: frozenset({"S3UploadFailedError", "UploadFailed"}),
    RATE_LIMITED_CLASS: frozenset(
        {
            "RateLimitError",
            "RateLimitExceeded",
            "RateLimited",
            "TooManyRequests",
            "TooManyRequestsError",
            "ThrottlingException",
            "Throttling",
            "ThrottledException",
            "RequestLimitExceeded",
            "ProvisionedThroughputExceededException",
            "SlowDown",
            "ResourceExhausted",
            "QuotaExceeded",
            "QuotaExceededError",
        }
    ),
    UNAVAILABLE: frozenset(
        {
            "ConnectionError",
            "ConnectionRefusedError",
            "ConnectionResetError",
            "ConnectionAbortedError",
            "BrokenPipeError",
            "gaierror",
            "herror",
            "ConnectError",
            "ConnectTimeout",
            "ConnectTimeoutError",
            "NewConnectionError",
            "MaxRetryError",
            "RemoteDisconnected",
            "ServiceUnavailable",
            "ServiceUnavailableError",
            "EndpointConnectionError",
            "ConnectionClosed",
            "ConnectionClosedError",
            "ServerDisconnectedError",
            "ClientConnectorError",
            "ProxyError",
            "NetworkError",
            "UnavailableError",
            "BadGateway",
            "GatewayTimeout",
        }
    ),
    DATA: frozenset(
        {
            "ValidationError",
            "SchemaError",
            "SchemaErrors",
            "JSONDecodeError",
            "UnicodeDecodeError",
            "UnicodeError",
            "ParserError",
            "EmptyDataError",
            "IntegrityError",
            "DataError",
            "InvalidInput",
            "DataValidationError",
            "ValidationException",
            "CheckViolation",
            "NotNullViolation",
            "UniqueViolation",
            "ForeignKeyViolation",
            "InvalidTextRepresentation",
            "NumericValueOutOfRange",
            "ArrowInvalid",
            "ArrowTypeError",
            "DataContractError",
            "ExpectationFailed",
            "InvalidOperation",
        }
    ),
}
#: types that point at a class, but weakly (they are raised for many reasons)
_WEAK_TYPES: dict[str, frozenset[str]] = {
    DATA: frozenset({"ValueError", "AssertionError", "DecodeError"}),
}


def _rx(*patterns: str) -> re.Pattern[str]:
    """One case-blind pattern, matched against lowercased text (`_search`).

    Lowering the text once and the pattern's literals here is several times faster than
    re.IGNORECASE, which defeats the regex engine's first-character scan (as does a leading
    `\\b`, see `_literal_first`); escapes such as `\\S` or `\\b` keep their case.
    """
    return re.compile(_lower_literals("|".join(f"(?:{_literal_first(p)})" for p in patterns)))


def _literal_first(pattern: str) -> str:
    """`\\bword...` as `w(?<!\\ww)ord...`: the same matches, but the pattern starts with a
    literal, so the engine scans for candidate characters in C instead of trying every position."""
    if pattern.startswith("\\b") and len(pattern) > 2 and (pattern[2].isalnum() or pattern[2] == "_"):
        first = pattern[2]
        return f"{first}(?<!\\w{first}){pattern[3:]}"
    return pattern


def _lower_literals(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            out.append(pattern[i : i + 2])
            i += 2
        else:
            out.append(pattern[i].lower())
            i += 1
    return "".join(out)


def _search(pattern: re.Pattern[str], text: str, low: str) -> str | None:
    """What `pattern` found in `text` (as written there), given `low = text.lower()`."""
    m = pattern.search(low)
    if m is None:
        return None
    return text[m.start() : m.end()] if len(low) == len(text) else m.group(0)


_MESSAGES: dict[str, re.Pattern[str]] = {
    KILLED: _rx(
        r"\bSIG(?:KILL|TERM|SEGV|ABRT|BUS|INT)\b",
        r"\bnegsignal\b",
        r"\bkilled\b",
        r"\bout of memory\b",
        r"\bOOM\b",
        r"oom[ _-]?kill",
        r"cannot allocate memory",
        r"\bzombie\b",
        r"heartbeat",
        r"return code -\d+",
        r"exit(?:ed)? (?:with )?(?:code|status) (?:-\d+|137|139|143)\b",
        r"crash detected",
        r"process (?:died|was killed|exited unexpectedly|terminated)",
        r"was (?:the task )?killed externally",
    ),
    TIMEOUT: _rx(
        r"\btimed? ?out\b",
        r"exceeded (?:the )?(?:execution )?time(?:out| limit)",
        r"exceeded timeout",
        r"deadline exceeded",
        r"execution_timeout",
        r"statement timeout",
        r"canceling statement due to statement timeout",
    ),
    UPSTREAM: _rx(r"upstream (?:task |step )?(?:failed|failure)", r"upstream_failed"),
    PRE_WORK: _rx(
        r"no module named",
        r"cannot import name",
        r"could not import",
        r"is not installed",
        r"missing (?:required )?(?:environment variable|setting|configuration|config|dependency|credentials)",
        r"environment variable \S+ (?:is )?not set",
        r"not configured",
        r"unable to locate credentials",
        r"could not (?:find|load) (?:the )?(?:dag|flow|entrypoint|config)",
    ),
    WRITE_BACK: _rx(
        r"no space left on device",
        r"disk quota exceeded",
        r"read-only file system",
        r"\bPutObject\b",
        r"failed to (?:upload|write|save|persist|commit|flush)",
        r"could not (?:upload|write|save|persist|commit)",
        r"error (?:uploading|writing|saving|persisting)",
    ),
    RATE_LIMITED_CLASS: _rx(
        r"\b429\b",
        r"too many requests",
        r"rate[ _-]?limit",
        r"throttl",
        r"slow ?down",
        r"quota exceeded",
        r"resource[ _]exhausted",
        r"request limit exceeded",
    ),
    UNAVAILABLE: _rx(
        r"connection (?:refused|reset|aborted|closed|error)",
        r"could not connect",
        r"failed to establish a new connection",
        r"name or service not known",
        r"temporary failure in name resolution",
        r"nodename nor servname",
        r"could not translate host name",
        r"no route to host",
        r"network is unreachable",
        r"\b50[234]\b",
        r"service unavailable",
        r"bad gateway",
        r"gateway time-?out",
        r"server closed the connection",
        r"remote end closed connection",
        r"connection pool is full",
    ),
    DATA: _rx(
        r"validation (?:failed|error)",
        r"\binvalid (?:value|input|literal|format|data|record|row|schema)",
        r"schema mismatch",
        r"could not convert",
        r"unexpected (?:column|null|value|token)",
        r"violates (?:\w+ )*constraint",
        r"duplicate key",
        r"\bmissing (?:column|field|required field)",
    ),
}

#: the class's rule may look at messages (some classes are decided by types and events only)
_MESSAGE_CONFIDENCE = "medium"
MAX_EVIDENCE_TEXT = 300


@dataclass(frozen=True, slots=True)
class ErrorNode:
    """One exception of the chain: type and (masked, bounded) message."""

    type: str
    message: str


@dataclass(frozen=True)
class FailureFacts:
    """What was recorded about one failed try (or a run that failed outside any step)."""

    status: str
    error_type: str | None = None
    error_message: str | None = None
    #: every exception of the chain, root cause first (from the `step_failed` event's data)
    chain: tuple[ErrorNode, ...] = ()
    #: the try's events of the dossier vocabulary, by kind
    events: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    step_id: str | None = None
    try_number: int | None = None
    started_at: datetime | None = None
    claimed: bool = True
    first_work: datetime | None = None
    failed_at: datetime | None = None
    #: the integration reports first_work events for this run (so their absence means something)
    work_reported: bool = False


@dataclass(frozen=True, slots=True)
class _Match:
    code: str
    confidence: str
    evidence: tuple[Evidence, ...]


def short_type(name: str | None) -> str:
    return (name or "").rsplit(".", 1)[-1]


def chain_from_data(data: Any) -> tuple[ErrorNode, ...]:
    """The chain as the recorder stores it in a `step_failed` event's data (tolerant of bad input)."""
    if not isinstance(data, dict):
        return ()
    raw = data.get("chain")
    if not isinstance(raw, list):
        return ()
    out: list[ErrorNode] = []
    for item in raw:
        if isinstance(item, dict):
            t, m = item.get("type"), item.get("message")
        elif isinstance(item, list | tuple) and len(item) == 2:
            t, m = item
        else:
            continue
        if isinstance(t, str):
            out.append(ErrorNode(t, m if isinstance(m, str) else ""))
    return tuple(out)


def classify(facts: FailureFacts) -> Classification:
    """The class of one failure, its confidence and the evidence lines that decided it."""
    matches = list(_matches(facts))
    for code, confidence in ORDER:
        for m in matches:
            if m.code == code and m.confidence == confidence:
                also = tuple(dict.fromkeys(x.code for x in matches if x.code != code))
                return Classification(
                    code=code,
                    label=LABELS[code],
                    confidence=confidence,
                    summary=DESCRIPTIONS[code],
                    step_id=facts.step_id,
                    try_number=facts.try_number,
                    evidence=m.evidence,
                    also=also,
                )
    return Classification(
        code=UNKNOWN,
        label=LABELS[UNKNOWN],
        confidence="low",
        summary=DESCRIPTIONS[UNKNOWN],
        step_id=facts.step_id,
        try_number=facts.try_number,
        evidence=_as_recorded(facts),
    )


def error_class(
    status: str,
    chain: Sequence[ErrorNode] = (),
    error_type: str | None = None,
    error_message: str | None = None,
) -> str:
    """`classify(...).code` for a failure known by its status and error alone (no events, no
    timing): the class the recorder stores with each failure. When there is a chain it alone
    decides (as in `classify`)."""
    if chain:
        return classify(FailureFacts(status=status, chain=tuple(chain))).code
    return classify(FailureFacts(status=status, error_type=error_type, error_message=error_message)).code


def _nodes(facts: FailureFacts) -> list[tuple[ErrorNode, str]]:
    """(node, its position in words) for every exception we know of, outermost first."""
    if facts.chain:
        n = len(facts.chain)
        out = []
        for i, node in enumerate(reversed(facts.chain)):
            if n == 1:
                where = "the error"
            elif i == 0:
                where = "the outermost error"
            elif i == n - 1:
                where = "the root cause"
            else:
                where = "a chained error"
            out.append((node, where))
        return out
    if facts.error_type or facts.error_message:
        return [(ErrorNode(facts.error_type or "", facts.error_message or ""), "the error")]
    return []


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_EVIDENCE_TEXT else text[: MAX_EVIDENCE_TEXT - 3] + "..."


def _matches(facts: FailureFacts) -> Iterable[_Match]:
    ev = facts.events
    src = _source(facts)
    # explicit events from the orchestrator
    for kind, code in (
        (STEP_KILLED, KILLED),
        (HEARTBEAT_LOST, KILLED),
        (STEP_TIMEOUT, TIMEOUT),
        (UPSTREAM_FAILED, UPSTREAM),
        (EV_WRITE_BACK_FAILED, WRITE_BACK),
    ):
        events = ev.get(kind) or ()
        if events:
            yield _Match(code, "high", tuple(_event_evidence(e) for e in events[:3]))
    for e in (ev.get(RATE_LIMITED) or ())[:1]:
        yield _Match(RATE_LIMITED_CLASS, "medium", (_event_evidence(e),))
    if facts.status == "upstream_failed":
        yield _Match(
            UPSTREAM,
            "high",
            (Evidence(f"{src} has status upstream_failed", f"{src}.status", {"status": facts.status}),),
        )
    nodes = _nodes(facts)
    # exception types, then messages
    for node, where in nodes:
        t = short_type(node.type)
        for code, types in _TYPES.items():
            if t in types:
                yield _Match(code, "high", (_node_evidence(node, where, f"{t} means {DESCRIPTIONS[code]}"),))
        for code, types in _WEAK_TYPES.items():
            if t in types:
                yield _Match(code, "medium", (_node_evidence(node, where, f"{t} usually means {DESCRIPTIONS[code]}"),))
        text = f"{node.type}: {node.message}"
        low = text.lower()
        for code, pattern in _MESSAGES.items():
            found = _search(pattern, text, low)
            if found is not None:
                conf = "high" if code == UPSTREAM else _MESSAGE_CONFIDENCE
                yield _Match(code, conf, (_node_evidence(node, where, f"{found!r} in the message"),))
    if facts.status == "crashed" and not nodes:
        yield _Match(
            KILLED,
            "medium",
            (Evidence(f"{src} crashed and no exception was reported", f"{src}.status", {"status": facts.status}),),
        )
    # timing: failed after the work was done
    last = ev.get(LAST_WORK) or ()
    if last and facts.failed_at is not None:
        lw = max(e.ts for e in last)
        if facts.failed_at >= lw:
            secs = (facts.failed_at - lw).total_seconds()
            yield _Match(
                WRITE_BACK,
                "medium",
                (
                    Evidence(
                        f"the last work event came at {_hms(lw)}; the try failed {secs:.1f}s later, while writing back",
                        "event last_work",
                        {"last_work": lw.isoformat(), "failed_at": facts.failed_at.isoformat()},
                    ),
                ),
            )
    # timing: failed before any work
    if not facts.claimed and facts.status in FAILURES:
        yield _Match(
            PRE_WORK,
            "low",
            (
                Evidence(
                    f"{src} failed before a worker claimed it (no start recorded)",
                    f"{src}.started_at",
                    {"started_at": None},
                ),
            ),
        )
    elif facts.work_reported and facts.first_work is None and facts.started_at is not None:
        fields: dict[str, Any] = {"started_at": facts.started_at.isoformat(), "first_work": None}
        after = ""
        if facts.failed_at is not None:
            fields["failed_at"] = facts.failed_at.isoformat()
            after = f" {(facts.failed_at - facts.started_at).total_seconds():.1f}s after it started,"
        yield _Match(
            PRE_WORK,
            "low",
            (
                Evidence(
                    f"{src} failed{after} before its first work event (this run reports work events)",
                    "events first_work",
                    fields,
                ),
            ),
        )


def _source(facts: FailureFacts) -> str:
    if facts.step_id is None:
        return "the run"
    return f"step {facts.step_id} try {facts.try_number}" if facts.try_number else f"step {facts.step_id}"


def _node_evidence(node: ErrorNode, where: str, why: str) -> Evidence:
    # a failure reported as a message has no type: the message alone, not ": message"
    line = _clip(f"{node.type}: {node.message}" if node.message and node.type else node.message or node.type)
    return Evidence(f"{line} ({where}; {why})", "exception chain", {"type": node.type, "message": _clip(node.message)})


def _event_evidence(e: Any) -> Evidence:
    fields: dict[str, Any] = {"kind": e.kind, "ts": e.ts.isoformat() if e.ts else None}
    if e.summary:
        fields["summary"] = e.summary
    if getattr(e, "data", None):
        fields["data"] = e.data
    text = f"{e.kind} event at {_hms(e.ts)}" + (f": {_clip(e.summary)}" if e.summary else "")
    ident = getattr(e, "id", None)
    return Evidence(text, f"event {e.kind}" + (f" #{ident}" if ident is not None else ""), fields)


def _as_recorded(facts: FailureFacts) -> tuple[Evidence, ...]:
    nodes = _nodes(facts)
    if not nodes:
        return (
            Evidence(
                f"{_source(facts)} is {facts.status} and no error was reported", "status", {"status": facts.status}
            ),
        )
    return tuple(_node_evidence(n, where, "no rule matched") for n, where in nodes[:3])


def _hms(ts: datetime | None) -> str:
    return ts.strftime("%H:%M:%S") if ts is not None else "?"


__all__ = [
    "FailureFacts",
    "ErrorNode",
    "classify",
    "error_class",
    "chain_from_data",
    "short_type",
    "CLASSES",
    "LABELS",
    "DESCRIPTIONS",
    "ORDER",
    "KILLED",
    "TIMEOUT",
    "UPSTREAM",
    "PRE_WORK",
    "WRITE_BACK",
    "RATE_LIMITED_CLASS",
    "UNAVAILABLE",
    "DATA",
    "UNKNOWN",
]
