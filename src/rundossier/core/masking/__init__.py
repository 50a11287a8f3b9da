"""Mask secrets before anything is stored or served; pure, no I/O.

- `builtin`: the built-in secret families (PEM keys, URL passwords, service tokens, bearer and
  basic credentials, cookies, secret-named keys) found in one text.
- `userpatterns`: the user's own regular expressions, checked at start and run with a timeout.
- `masker`: `Masker`, which runs redactors, the built-ins and user patterns on every text,
  field and structured value, and withholds a text when masking fails or runs out of time.
- `lines`: `KeyBlocks`, for a private key printed over several lines of a step's log.
"""

from rundossier.core.masking.builtin import FAMILIES, MASK
from rundossier.core.masking.lines import KeyBlocks
from rundossier.core.masking.masker import (
    DEFAULT_MASKER,
    MASK_BUDGET_S,
    WITHHELD_PREFIX,
    Masker,
    MaskingFailed,
    withheld,
)

__all__ = [
    "MASK",
    "FAMILIES",
    "Masker",
    "DEFAULT_MASKER",
    "MaskingFailed",
    "KeyBlocks",
    "withheld",
    "WITHHELD_PREFIX",
    "MASK_BUDGET_S",
]
