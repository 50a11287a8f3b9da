"""`Masker`: redactors, then the built-in families, then user patterns; fails closed, in bounded time.

Order: `redactors` (e.g. Airflow's secrets masker, which knows this process's connection
passwords) run first, then the built-in families (`builtin`), then the user's `patterns`
(`userpatterns`). Whatever is stored or served goes through one of `mask`, `mask_many`,
`mask_fields` or `mask_data`.

Fail closed: when masking cannot vouch for its result, the text is withheld, never let
through. It is replaced by `withheld(reason)`, `[rundossier: text withheld, masking failed:
REASON]`, and one warning per cause goes to the `rundossier` logger. Causes: a redactor that
raises or returns something else than a str; a user pattern that raises; `str()` of a non-str
value that raises; a bug in the built-in families; a pass over its time budget. A reason names
the redactor (its qualified name) or the pattern (its number in the list) and the exception's
type, never the text or the exception's message, which may hold the very secret.

Time budget: one pass (one `mask` call, or one `mask_many` call over all its texts) may take
`budget_s` (1 s) plus `budget_per_mib_s` (1 s) per MiB of text. User patterns are interrupted
when the budget runs out (the `regex` package's timeout); redactors and the built-in families
cannot be interrupted (they are ordinary Python and linear scans) and are checked when they
return. Over budget, the text is withheld.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rundossier.core.masking.builtin import MASK, mask_text, mask_texts, secret_value
from rundossier.core.masking.userpatterns import compile_patterns
from rundossier.errors import ConfigError

log = logging.getLogger("rundossier")

MASK_BUDGET_S = 1.0
MASK_BUDGET_PER_MIB_S = 1.0
#: how deep `mask_data` follows nested dicts and lists
MAX_DATA_DEPTH = 50
WITHHELD_PREFIX = "[rundossier: text withheld, masking failed: "
_MIB = 1 << 20


def withheld(reason: str) -> str:
    """The text stored instead of one that could not be masked."""
    return f"{WITHHELD_PREFIX}{reason}]"


class MaskingFailed(Exception):
    """Masking could not vouch for its result; `reason` is safe to store (no text in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _name(func: Callable[..., Any]) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or type(func).__name__
    module = getattr(func, "__module__", None)
    return f"{module}.{name}" if module else str(name)


class Masker:
    """Masks secrets in every text handed to it: redactors, built-in families, user patterns."""

    def __init__(
        self,
        patterns: Iterable[str] = (),
        redactors: Iterable[Callable[[str], str]] = (),
        *,
        budget_s: float = MASK_BUDGET_S,
        budget_per_mib_s: float = MASK_BUDGET_PER_MIB_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._patterns = compile_patterns(patterns)
        funcs = list(redactors)
        for f in funcs:
            if not callable(f):
                raise ConfigError(f"redactor {f!r} is not callable; give a function str -> str")
        self._redactors = tuple((f, _name(f)) for f in funcs)
        self.budget_s = budget_s
        self.budget_per_mib_s = budget_per_mib_s
        self._clock = clock
        self._warned: set[str] = set()
        #: how many texts were withheld because masking failed (each cause is warned about once)
        self.withheld = 0

    # -- one text -----------------------------------------------------------------------------
    def mask(self, text: str) -> str:
        """`text` with every secret replaced by MASK (the same object when none is found), or
        the withheld placeholder when masking failed. Never raises."""
        try:
            if type(text) is not str:
                text = _coerce(text)
            deadline = self._deadline(len(text))
            if self._redactors:
                text = self._redact(text, deadline)
            try:
                text = mask_text(text)
            except Exception as exc:  # noqa: BLE001 - a bug in the built-ins withholds the text
                raise MaskingFailed(f"internal error in the built-in patterns ({type(exc).__name__})") from None
            self._check(deadline, "the built-in patterns")
            return self._user(text, deadline) if self._patterns else text
        except MaskingFailed as failed:
            return self._withhold(failed.reason)

    def mask_fields(self, *values: str | None) -> tuple[str | None, ...]:
        """Each value masked, None kept: the ids and short texts a caller hands the recorder."""
        return tuple(None if v is None else self.mask(v) for v in values)

    # -- many texts -----------------------------------------------------------------------------
    def mask_many(self, texts: Sequence[str]) -> list[str]:
        """Same as `[self.mask(t) for t in texts]`, with one scan over all the texts (one budget
        for the whole call). A text whose masking failed is withheld alone."""
        if len(texts) < 2:
            return [self.mask(t) for t in texts]
        out: list[str] = list(texts)
        failed: dict[int, str] = {}
        if not all(type(t) is str for t in out):
            for i, t in enumerate(texts):
                try:
                    out[i] = _coerce(t)
                except MaskingFailed as f:
                    failed[i] = f.reason
                    out[i] = ""
        deadline = self._deadline(sum(map(len, out)))
        for i, t in enumerate(out if self._redactors else ()):
            if i not in failed:
                try:
                    out[i] = self._redact(t, deadline)
                except MaskingFailed as f:
                    failed[i] = f.reason
                    out[i] = ""
        try:
            out = mask_texts(out)
        except Exception:  # noqa: BLE001 - a bug in the joined scan: one text at a time
            for i, t in enumerate(out):
                try:
                    out[i] = mask_text(t)
                except Exception as exc:  # noqa: BLE001 - withhold that text
                    failed.setdefault(i, f"internal error in the built-in patterns ({type(exc).__name__})")
        try:
            self._check(deadline, "the built-in patterns")
        except MaskingFailed as f:
            return [self._withhold(failed.get(i, f.reason)) for i in range(len(out))]
        for i, t in enumerate(out if self._patterns else ()):
            if i not in failed:
                try:
                    out[i] = self._user(t, deadline)
                except MaskingFailed as f:
                    failed[i] = f.reason
        for i, reason in failed.items():
            out[i] = self._withhold(reason)
        return out

    # -- structured values ------------------------------------------------------------------------
    def mask_data(self, value: Any) -> Any:
        """A JSON-like value (tags, event data) with every string masked, dict keys included.

        A value under a secret-named key is masked whole, by the rules that apply in text:
        `{"password": "x"}` -> `{"password": "***"}`, `{"max_tokens": 256}` stays, and a list
        under such a key has each element masked. Ints, floats, bools and None are kept unless
        a secret-named key holds them; other objects are kept when their `str()` has no finding,
        else replaced by the masked `str()`. Deeper than `MAX_DATA_DEPTH`: withheld."""
        try:
            return self._data(value, None, 0)
        except Exception as exc:  # noqa: BLE001 - host data that cannot be read (a broken Mapping): withhold
            return self._withhold(f"data could not be read ({type(exc).__name__})")

    def _data(self, value: Any, key: str | None, depth: int) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if depth > MAX_DATA_DEPTH:
            return self._withhold(f"data nested deeper than {MAX_DATA_DEPTH} levels")
        if isinstance(value, str | int | float):
            if key is not None and self._secret_under(key, value):
                return MASK
            return self.mask(value) if isinstance(value, str) else value
        if isinstance(value, Mapping):
            out: dict[Any, Any] = {}
            for k, v in value.items():
                name = k if isinstance(k, str) else str(k) if not isinstance(k, int) else None
                masked_key = self.mask(name) if name is not None else k
                out[masked_key] = self._data(v, name, depth + 1)
            return out
        if isinstance(value, list | tuple | set | frozenset):
            return [self._data(v, key, depth + 1) for v in value]
        try:
            shown = str(value)
        except Exception as exc:  # noqa: BLE001 - a broken __str__: withhold, do not store it raw
            return self._withhold(f"str() of a {type(value).__name__} raised {type(exc).__name__}")
        masked = self.mask(shown)
        return value if masked is shown else masked

    def _secret_under(self, key: str, value: str | int | float) -> bool:
        shown = json.dumps(value) if isinstance(value, str) else repr(value)
        try:
            return secret_value(key, shown)
        except Exception:  # noqa: BLE001 - cannot tell: treat it as a secret (fail closed)
            return True

    # -- stages -----------------------------------------------------------------------------------
    def _deadline(self, size: int) -> float:
        return self._clock() + self.budget_s + self.budget_per_mib_s * size / _MIB

    def _check(self, deadline: float, what: str) -> None:
        if self._clock() > deadline:
            raise MaskingFailed(f"{what} ran past the masking time budget")

    def _redact(self, text: str, deadline: float) -> str:
        for redact, name in self._redactors:
            try:
                out = redact(text)
            except Exception as exc:  # noqa: BLE001 - host code: a broken redactor withholds the text
                raise MaskingFailed(f"redactor {name} raised {type(exc).__name__}") from None
            if not isinstance(out, str):
                raise MaskingFailed(f"redactor {name} returned {type(out).__name__}, not str")
            text = out
            self._check(deadline, f"redactor {name}")
        return text

    def _user(self, text: str, deadline: float) -> str:
        for p in self._patterns:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise MaskingFailed(f"mask pattern {p.number} ran past the masking time budget")
            try:
                text = p.sub(text, remaining)
            except TimeoutError:
                raise MaskingFailed(f"mask pattern {p.number} ran past the masking time budget") from None
            except Exception as exc:  # noqa: BLE001 - e.g. RecursionError: withhold the text
                raise MaskingFailed(f"mask pattern {p.number} raised {type(exc).__name__}") from None
        return text

    def _withhold(self, reason: str) -> str:
        self.withheld += 1
        if reason not in self._warned:
            self._warned.add(reason)
            log.warning(
                "rundossier withheld a text it could not mask (%s); it is stored as a placeholder, "
                "never unmasked. This warning is shown once per cause.",
                reason,
            )
        return withheld(reason)


def _coerce(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception as exc:  # noqa: BLE001 - a broken __str__: withhold
        raise MaskingFailed(f"str() of a {type(value).__name__} raised {type(exc).__name__}") from None


DEFAULT_MASKER = Masker()

__all__ = ["Masker", "DEFAULT_MASKER", "MaskingFailed", "withheld", "WITHHELD_PREFIX", "MASK_BUDGET_S"]
