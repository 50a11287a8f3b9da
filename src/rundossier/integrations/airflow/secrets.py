"""Airflow's own secrets masker as a rundossier redactor (connection passwords, masked variables).

Airflow keeps one masker per import path: the Task SDK's (`airflow.sdk._shared.secrets_masker`)
in workers, where `mask_secret` registers connection passwords and secret variables, and core's
(`airflow._shared.secrets_masker`) in the scheduler and API server. `airflow_redact` runs a text
through the Task SDK's masker and, where core's is already loaded, through that one too; it
never imports core into a worker. rundossier's own patterns run after it (see `Masker`); when
Airflow's masker raises or answers a non-str, the `Masker` withholds the text.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

SDK_MASKER = "airflow.sdk._shared.secrets_masker"
CORE_MASKER = "airflow._shared.secrets_masker"
_redactors: list[Callable[..., Any]] | None = None


def _load() -> list[Callable[..., Any]]:
    found: list[Callable[..., Any]] = []
    try:
        found.append(importlib.import_module(SDK_MASKER).redact)
    except Exception:  # noqa: BLE001 - an Airflow without the Task SDK masker
        pass
    return found


def airflow_redact(text: str) -> str:
    """`text` with every secret Airflow's masker knows in this process replaced by `***`."""
    global _redactors
    if _redactors is None:
        _redactors = _load()
    out = text
    for redact in _redactors:
        out = _apply(redact, out)
    core = sys.modules.get(CORE_MASKER)
    if core is not None:
        out = _apply(getattr(core, "redact", None), out)
    return out


def _apply(redact: Callable[..., Any] | None, text: str) -> str:
    """Airflow's answer, or an error: a masker that fails or answers something else than a str
    makes the `Masker` withhold the text (fail closed), never keep it as it was."""
    if redact is None:
        return text
    result = redact(text)
    if not isinstance(result, str):
        raise TypeError(f"Airflow's secrets masker returned {type(result).__name__}, not str")
    return result


__all__ = ["airflow_redact"]
