"""User mask patterns (`RUNDOSSIER_MASK_PATTERNS`): compiled, checked at start, run in bounded time.

A user's regular expression can backtrack catastrophically: `(a|a)*$` on forty `a`s runs for
hours, and CPython's `re` cannot be interrupted (it holds the GIL; no thread can stop it). So
patterns are compiled with the `regex` package, which takes a `timeout` on every match: a pass
that runs out of time raises `TimeoutError`, and the `Masker` withholds the text.

On top of that, `compile_patterns` rejects at start, with a `ConfigError` naming the pattern,
one that backtracks catastrophically on a short probe: each character the pattern spells out
(and `a`, `A`, `0`, space, `_`, `-`, `.`, `/`, `=`), repeated, then a character that ends the
match (`!`, a newline, NUL). A probe that does not finish in `PROBE_SECONDS` means the pattern
is exponential on ordinary text. The probe is a heuristic (a pattern may still be slow on some
other input); the timeout on every pass is the guarantee.

The whole match, or only its named group `secret`, becomes `MASK`; empty matches and text
already masked are left alone. Patterns use Python's `re` syntax (the `regex` package accepts
it; named groups, look-arounds and flags behave the same).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import regex

from rundossier.core.masking.builtin import MASK, is_masked
from rundossier.errors import ConfigError

#: how long one probe of a pattern may take before the pattern is called catastrophic
PROBE_SECONDS = 0.2
PROBE_LENGTH = 40
_PROBE_CHARS = "aA0 _-./="
_PROBE_ENDS = ("!", "\n", "\x00")
# `re` flags that mean the same in `regex` (a compiled `re.Pattern` may be given)
_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE | re.ASCII


@dataclass(frozen=True)
class UserPattern:
    """One compiled user pattern; `number` (1-based) names it in messages that get stored, so
    the pattern's text (which may spell a secret out) is never written next to the data."""

    number: int
    rx: regex.Pattern[str]
    replace: Callable[[regex.Match[str]], str]

    def sub(self, text: str, timeout: float) -> str:
        """`text` masked by this pattern; raises TimeoutError after `timeout` seconds."""
        return self.rx.sub(self.replace, text, timeout=max(timeout, 1e-3))


def compile_patterns(patterns: Iterable[str | re.Pattern[str]]) -> tuple[UserPattern, ...]:
    """Compile and check every pattern; ConfigError (naming the pattern) on the first bad one."""
    if isinstance(patterns, str | re.Pattern):
        patterns = (patterns,)
    out = []
    for number, p in enumerate(patterns, 1):
        rx = _compile(p)
        _probe(p, rx)
        out.append(UserPattern(number, rx, _replacer(rx)))
    return tuple(out)


def _compile(p: object) -> regex.Pattern[str]:
    flags: int
    if isinstance(p, re.Pattern):
        if not isinstance(p.pattern, str):
            raise ConfigError(f"mask pattern {p.pattern!r} is a bytes regex; give a str regex")
        source, flags = p.pattern, p.flags & _FLAGS
    elif isinstance(p, str):
        source, flags = p, 0
    else:
        raise ConfigError(f"mask pattern {p!r} is not a string; give a regex as a str")
    try:
        re.compile(source, flags)  # Python's syntax is the contract: refuse what `re` refuses
        return regex.compile(source, flags)
    except (re.error, regex.error, RecursionError, OverflowError, ValueError) as exc:
        raise ConfigError(f"mask pattern {source!r} is not a valid regular expression: {exc}") from None


def _probe(p: object, rx: regex.Pattern[str]) -> None:
    source = p.pattern if isinstance(p, re.Pattern) else str(p)
    chars = dict.fromkeys(c for c in source + _PROBE_CHARS if c.isprintable())
    for c in chars:
        for end in _PROBE_ENDS:
            text = c * PROBE_LENGTH + end
            try:
                rx.search(text, timeout=PROBE_SECONDS)
            except TimeoutError:
                raise ConfigError(
                    f"mask pattern {source!r} backtracks catastrophically: searching "
                    f"{PROBE_LENGTH} {c!r} characters followed by {end!r} did not finish in "
                    f"{PROBE_SECONDS} s. Rewrite it without a repetition inside a repetition "
                    "that can match the same text two ways (e.g. `(a+)+` -> `a+`, `(a|a)*` -> `a*`)"
                ) from None


def _replacer(rx: regex.Pattern[str]) -> Callable[[regex.Match[str]], str]:
    if "secret" in rx.groupindex:

        def replace_group(m: regex.Match[str]) -> str:
            s, e = m.span("secret")
            if s == e or is_masked(m.string[s:e]):  # group absent (-1, -1) or empty/masked
                return m.group(0)
            return m.string[m.start() : s] + MASK + m.string[e : m.end()]

        return replace_group

    def replace_all(m: regex.Match[str]) -> str:
        whole = m.group(0)
        return whole if is_masked(whole) else MASK

    return replace_all


__all__ = ["UserPattern", "compile_patterns", "PROBE_SECONDS"]
