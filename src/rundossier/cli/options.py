"""Option values checked when the command line is parsed: a bad one is a usage error (exit 2).

Each type says what it accepts, so `--try 100000000000000000000` or `--status nope` gets one line
naming the option and the accepted values instead of a database error (or a traceback) later.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rundossier.core.status import Status
from rundossier.storage.db import MAX_PAGE
from rundossier.storage.db.failuregroups import MAX_GROUPS
from rundossier.storage.db.models import MAX_TRY


def bounded_int(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number; use {what} from {low} to {high}"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range; use {what} from {low} to {high}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


try_number = bounded_int(1, MAX_TRY, "a try number")
positive_limit = bounded_int(1, MAX_PAGE, "a number of runs")
group_limit = bounded_int(1, MAX_GROUPS, "a number of groups")
port = bounded_int(1, 65535, "a TCP port")


def status_name(text: str) -> str:
    """An argparse type: one status of the vocabulary (`failed`, `crashed`...)."""
    value = text.strip().lower()
    try:
        return Status(value).value
    except ValueError:
        known = ", ".join(s.value for s in Status)
        raise argparse.ArgumentTypeError(f"unknown status {text!r}; use one of {known}") from None


__all__ = ["bounded_int", "try_number", "positive_limit", "group_limit", "port", "status_name"]
