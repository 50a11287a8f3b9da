"""The artifact manifest's vocabulary (pure): roles, the URI key lineage joins on, checksums.

An artifact is a URI a step try read (`input`) or wrote (`output`). Runs are linked through it:
an input whose URI another step wrote earlier has that step as its producer.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

#: the longest kind and note kept on a row
KIND_MAX = 80
NOTE_MAX = 500
CHECKSUM_MAX = 200


class Role(StrEnum):
    INPUT = "input"
    OUTPUT = "output"


def check_role(role: str) -> Role:
    """The role, or ValueError naming the two there are."""
    try:
        return Role(str(role).strip().lower())
    except ValueError:
        raise ValueError(f"an artifact's role is 'input' or 'output', not {role!r}") from None


def normalize_uri(uri: str) -> str:
    """The URI as stored: a plain path becomes a file:// URI, trailing spaces go."""
    text = str(uri).strip()
    if not text:
        raise ValueError("an artifact needs a URI (got an empty one)")
    if "://" not in text and text.startswith("/"):
        return "file://" + text
    return text


def uri_key(uri: str) -> str:
    """What rows of one URI share: a fixed-size key (URIs may be longer than an index entry)."""
    return hashlib.sha256(uri.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def changed(before: str | None, after: str | None) -> bool:
    """Whether two checksums say the content changed (unknown on either side: not changed)."""
    return before is not None and after is not None and before != after


__all__ = ["Role", "check_role", "normalize_uri", "uri_key", "changed", "KIND_MAX", "NOTE_MAX", "CHECKSUM_MAX"]
