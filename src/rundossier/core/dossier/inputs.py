"""Artifacts as evidence: the inputs of the failed step try, against the flow's last success.

A failing step whose input was missing, empty, or changed since the last successful run read it
is a lead worth a line of its own. Inputs are artifact rows (`uri`, `present`, `size`,
`checksum`, `step_id`, `try_number`, `role`); the last success's are its rows of the same step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rundossier.core.artifacts import changed
from rundossier.core.dossier.model import Signal

#: at most this many input signals in a dossier (the API lists the rest)
MAX_INPUT_SIGNALS = 10


def input_signals(
    step_id: str, try_number: int | None, inputs: Sequence[Any], baseline_inputs: Sequence[Any] = ()
) -> list[Signal]:
    """Signals for the inputs of one failed try: missing, empty, changed since the last success."""
    mine = [a for a in inputs if a.role == "input" and a.step_id == step_id and a.try_number == try_number]
    before: dict[str, Any] = {}
    for a in baseline_inputs:
        if a.role == "input" and a.step_id == step_id:
            before[a.uri] = a  # the latest read wins (rows come in recording order)
    out: list[Signal] = []
    for a in mine:
        if a.present is False:
            out.append(
                Signal("input_missing", f"input {a.uri} did not exist when the step read it", step_id, try_number)
            )
        elif a.size == 0:
            out.append(Signal("input_empty", f"input {a.uri} was empty (0 bytes)", step_id, try_number))
        elif a.uri in before and changed(before[a.uri].checksum, a.checksum):
            was = before[a.uri]
            sizes = f" ({was.size} -> {a.size} bytes)" if was.size is not None and a.size is not None else ""
            out.append(
                Signal(
                    "input_changed",
                    f"input {a.uri} changed since the last successful run read it{sizes}",
                    step_id,
                    try_number,
                )
            )
        if len(out) >= MAX_INPUT_SIGNALS:
            break
    return out


__all__ = ["input_signals", "MAX_INPUT_SIGNALS"]
