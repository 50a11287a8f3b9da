"""Helpers shared by the trace tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def caught(fn: Callable[..., Any], *args: Any) -> BaseException:
    """The exception `fn(*args)` raises (with its live traceback)."""
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001
        return exc
    raise AssertionError("fn did not raise")
