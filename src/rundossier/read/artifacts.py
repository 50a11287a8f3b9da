"""Reading the artifact manifest: a run's artifacts (paged, with lineage) and a URI's history.

Lineage is read, not stored: an input's producer is the newest write of its URI recorded at or
before the read, by another step (of this run or another one). So a producer recorded late (a
spooled batch delivered after the reader's run) still links up.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from rundossier.core.artifacts import normalize_uri
from rundossier.core.masking import Masker
from rundossier.core.timefmt import utc
from rundossier.errors import InvalidInput
from rundossier.read.models import ArtifactOut, ArtifactPage, ProducerOut
from rundossier.storage.db import Run, RunStore
from rundossier.storage.db.models import Artifact
from rundossier.storage.db.runstore import Producer

Flows = frozenset[str] | set[str] | None
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def run_artifacts(
    store: RunStore,
    run: Run,
    *,
    limit: int,
    cursor: str | None = None,
    step_id: str | None = None,
    role: str | None = None,
    flows: Flows = None,
) -> ArtifactPage:
    """The run's artifacts in recording order, one page; inputs name their producer when known."""
    rows, after = store.list_artifacts(run.run_id, limit=limit, after=_id_cursor(cursor), step_id=step_id, role=role)
    producers = _producers(store, rows, flows)
    return ArtifactPage.model_construct(
        items=[ArtifactOut.of(a, run.flow_id, producers.get(_producer_key(a))) for a in rows],
        next_cursor=str(after) if after is not None else None,
    )


def uri_artifacts(
    store: RunStore, masker: Masker, uri: str, *, limit: int, cursor: str | None = None, flows: Flows = None
) -> ArtifactPage:
    """Who wrote and who read `uri`, newest first, one page (rows of flows the caller may not
    read are left out). The URI is looked up as it would have been recorded (masked)."""
    try:
        stored = masker.mask(normalize_uri(uri))
    except ValueError as exc:
        raise InvalidInput(f"uri: {exc}") from None
    rows, before = store.artifacts_of_uri(stored, limit=limit, before=_time_cursor(cursor))
    flow_of = store.flows_of_runs({a.run_id for a in rows})
    rows = [a for a in rows if flows is None or flow_of.get(a.run_id) in flows]
    producers = _producers(store, rows, flows)
    return ArtifactPage.model_construct(
        items=[ArtifactOut.of(a, flow_of.get(a.run_id), producers.get(_producer_key(a))) for a in rows],
        next_cursor=f"{_micros(before[0])}.{before[1]}" if before is not None else None,
    )


def _producer_key(a: Artifact) -> tuple[str, str, str | None, datetime]:
    return (a.uri, a.run_id, a.step_id, a.recorded_at)


def _producers(
    store: RunStore, rows: Iterable[Artifact], flows: Flows
) -> dict[tuple[str, str, str | None, datetime], ProducerOut]:
    found: dict[tuple[str, str, str | None, datetime], ProducerOut] = {}
    wanted = {_producer_key(a): a for a in rows if a.role == "input"}
    found_rows = store.producers_of([(a.uri, a.recorded_at, a.run_id, a.step_id) for a in wanted.values()])
    hits: dict[tuple[str, str, str | None, datetime], Producer] = {
        key: p for key, p in zip(wanted, found_rows, strict=True) if p is not None
    }
    flow_of = store.flows_of_runs({p.run_id for p in hits.values()})
    for key, p in hits.items():
        flow = flow_of.get(p.run_id)
        if flow is None or (flows is not None and flow not in flows):
            continue  # the producer's run is gone, or in a flow the caller may not read
        found[key] = ProducerOut(
            run_id=p.run_id, flow_id=flow, step_id=p.step_id, try_number=p.try_number, recorded_at=p.recorded_at
        )
    return found


def _id_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise InvalidInput("cursor: not a cursor this API returned; pass the next_cursor of a previous page")
    return int(cursor)


def _time_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if cursor is None:
        return None
    micros, _, last = cursor.partition(".")
    if not (micros.isdigit() and last.isdigit() and len(micros) <= 18 and len(last) <= 18):
        raise InvalidInput("cursor: not a cursor this API returned; pass the next_cursor of a previous page")
    try:
        ts = _EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:
        raise InvalidInput("cursor: not a cursor this API returned") from None
    return ts, int(last)


def _micros(ts: datetime) -> int:
    return (utc(ts) - _EPOCH) // timedelta(microseconds=1)


__all__ = ["run_artifacts", "uri_artifacts"]
