"""The run's events indexed once by step try and kind, so each question is a dictionary lookup.

Only kinds in the dossier's vocabulary are indexed (a run can have 100,000 events of other
kinds). An event with a step id but no try number belongs to the step's latest try; an event
without a step id belongs to the run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from operator import attrgetter
from typing import Any

from rundossier.core.dossier.events import KINDS

RUN = None  # the key of run-level events
_EMPTY: dict[str, list[Any]] = {}
_KEY = attrgetter("step_id", "try_number", "kind")


class Ledger:
    """Events by (step_id, try_number) and kind; run-level ones under step_id None."""

    __slots__ = ("_by", "kinds_seen", "total")

    def __init__(self, events: Iterable[Any]) -> None:
        kinds = KINDS
        events = events if isinstance(events, list | tuple) else list(events)
        flat: defaultdict[tuple[str | None, int | None, str], list[Any]] = defaultdict(list)
        key_of = _KEY
        for e in [e for e in events if e.kind in kinds]:  # one flat lookup per event: the hot loop
            flat[key_of(e)].append(e)
        by: dict[tuple[str | None, int | None], dict[str, list[Any]]] = {}
        for (step_id, try_number, kind), bucket in flat.items():
            key = (step_id, try_number if step_id is not None else None)
            slot = by.get(key)
            if slot is None:
                slot = by[key] = {}
            if kind in slot:  # run-level events recorded with a try number join the others
                slot[kind] = sorted([*slot[kind], *bucket], key=lambda e: e.ts)
            else:
                slot[kind] = bucket
        self._by = by
        self.kinds_seen: frozenset[str] = frozenset(k for slot in by.values() for k in slot)
        self.total = len(events)

    def run(self, kind: str) -> list[Any]:
        """Run-level events of `kind`, in the order given (time order from the store)."""
        return self._by.get((None, None), {}).get(kind, [])

    def step(self, step_id: str, try_number: int | None, kind: str, *, latest: bool = True) -> list[Any]:
        """Events of `kind` for one step try; events without a try count for the latest try."""
        out = self._by.get((step_id, try_number), {}).get(kind, [])
        if latest and try_number is not None:
            loose = self._by.get((step_id, None), {}).get(kind)
            if loose:
                out = sorted([*out, *loose], key=lambda e: e.ts)
        return out

    def step_kinds(self, step_id: str, try_number: int | None, *, latest: bool = True) -> dict[str, list[Any]]:
        """Every indexed kind for one step try (loose events included for the latest try).

        The mapping returned may be the index's own: read it, do not change it.
        """
        own = self._by.get((step_id, try_number), _EMPTY)
        if latest and try_number is not None:
            loose = self._by.get((step_id, None))
            if loose:
                own = dict(own)
                for kind, events in loose.items():
                    own[kind] = sorted([*own.get(kind, []), *events], key=lambda e: e.ts)
        return own

    def has(self, kind: str) -> bool:
        return kind in self.kinds_seen

    def all_of(self, kind: str) -> list[Any]:
        """Every event of `kind`, whatever its step."""
        out: list[Any] = []
        for slot in self._by.values():
            out.extend(slot.get(kind, ()))
        return out


__all__ = ["Ledger", "RUN"]
