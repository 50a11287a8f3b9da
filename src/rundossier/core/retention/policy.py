"""Retention policies: rules per flow (exact id or glob), validation, and resolution (pure, no I/O).

A rule names a flow pattern and up to three limits; a limit left unset (None) is inherited:

    the flow's rule (exact id  >  longest matching glob)  ->  the default rule "*"  ->  built-in

The built-in default keeps runs 30 days or the last 100 runs of the flow, whichever limit is
reached first, and keeps traces and logs as long as their run. A limit of 0 means "no limit".

    rules = [Rule("*", keep_days=60), Rule("finance_*", keep_days=7, blob_days=2)]
    PolicySet(rules).resolve("finance_daily")
    # Resolution(policy=Policy(keep_days=7, keep_last=100, blob_days=2),
    #            rule=Rule("finance_*", ...), reason="longest matching glob 'finance_*'", ...)

Airflow (`[rundossier]` in airflow.cfg) and the Prefect Block hand their settings to
`policies_from_mapping`, which parses and validates them into the same rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from rundossier.core.timefmt import iso
from rundossier.errors import InvalidInput

DEFAULT_PATTERN = "*"
FIELDS = ("keep_days", "keep_last", "blob_days")
MAX_DAYS = 36_500
MAX_RUNS = 100_000_000
MAX_PATTERN = 250
MAX_SOURCE = 80
#: words accepted (CLI, airflow.cfg) for "no limit"; stored as 0
NO_LIMIT_WORDS = frozenset({"off", "none", "never", "unlimited", "forever", "0"})
GLOB_CHARS = frozenset("*?[")
#: where a field's value came from when no rule set it
BUILTIN = "built-in"
#: airflow.cfg keys (section [rundossier]) that `policies_from_mapping` reads
MAPPING_KEYS = {
    "retention_keep_days": "keep_days",
    "retention_keep_last": "keep_last",
    "retention_blob_days": "blob_days",
}
OVERRIDES_KEY = "retention_overrides"


@dataclass(frozen=True)
class Policy:
    """A complete, effective policy. 0 means no limit on that axis.

    keep_days: delete a finished run once it ended more than this many days ago;
    keep_last: delete finished runs beyond the newest K of the flow;
    blob_days: expire traces and logs (the row stays) once the run ended this many days ago.
    """

    keep_days: int
    keep_last: int
    blob_days: int

    def __post_init__(self) -> None:
        for name in FIELDS:
            check_limit(name, getattr(self, name), allow_none=False)

    def describe(self) -> str:
        """`30 days or last 100 runs; traces and logs 7 days`, for people."""
        parts = []
        if self.keep_days:
            parts.append(f"{self.keep_days} day{'s' if self.keep_days != 1 else ''}")
        if self.keep_last:
            parts.append(f"last {self.keep_last} run{'s' if self.keep_last != 1 else ''}")
        text = " or ".join(parts) if parts else "forever"
        if self.blob_days and (not self.keep_days or self.blob_days < self.keep_days):
            text += f"; traces and logs {self.blob_days} day{'s' if self.blob_days != 1 else ''}"
        return text

    def to_json(self) -> dict[str, int]:
        return {"keep_days": self.keep_days, "keep_last": self.keep_last, "blob_days": self.blob_days}


@dataclass(frozen=True)
class Rule:
    """One stored rule: a flow pattern and the limits it sets (None: inherited)."""

    pattern: str
    keep_days: int | None = None
    keep_last: int | None = None
    blob_days: int | None = None
    source: str | None = None
    updated_at: datetime | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check_pattern(self.pattern)
        for name in FIELDS:
            check_limit(name, getattr(self, name))
        if self.source is not None and (not isinstance(self.source, str) or len(self.source) > MAX_SOURCE):
            raise InvalidInput(f"source must be a string of at most {MAX_SOURCE} characters")

    @property
    def kind(self) -> str:
        """`default` ("*"), `glob` (has * ? or [) or `exact`."""
        if self.pattern == DEFAULT_PATTERN:
            return "default"
        return "glob" if is_glob(self.pattern) else "exact"

    def matches(self, flow_id: str) -> bool:
        if self.pattern == flow_id or self.pattern == DEFAULT_PATTERN:
            return True
        return self.kind == "glob" and fnmatchcase(flow_id, self.pattern)

    def limits(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in FIELDS}

    def to_json(self) -> dict[str, Any]:
        return {
            "flow_pattern": self.pattern,
            "kind": self.kind,
            **self.limits(),
            "source": self.source,
            "updated_at": iso(self.updated_at),
        }

    @classmethod
    def from_row(cls, row: Any) -> Rule:
        """From a RetentionPolicy row (or anything with the same attributes)."""
        return cls(
            pattern=row.flow_pattern,
            keep_days=row.keep_days,
            keep_last=row.keep_last,
            blob_days=row.blob_days,
            source=getattr(row, "source", None),
            updated_at=getattr(row, "updated_at", None),
        )


@dataclass(frozen=True)
class Resolution:
    """The effective policy of one flow and why: which rule was chosen and where each limit came from."""

    flow_id: str
    policy: Policy
    rule: Rule | None
    reason: str
    #: field -> the pattern of the rule that set it, or "built-in"
    fields_from: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "flow_id": self.flow_id,
            "policy": self.policy.to_json(),
            "describe": self.policy.describe(),
            "rule": self.rule.to_json() if self.rule is not None else None,
            "reason": self.reason,
            "fields_from": dict(self.fields_from),
        }


class PolicySet:
    """Rules to resolve against: exact id > longest matching glob > "*" > built-in, per field."""

    def __init__(self, rules: Iterable[Rule] = (), builtin: Policy | None = None) -> None:
        self.builtin = builtin or BUILTIN_POLICY
        self.exact: dict[str, Rule] = {}
        self.globs: list[Rule] = []
        self.default: Rule | None = None
        for rule in rules:
            if rule.kind == "default":
                self.default = rule
            elif rule.kind == "exact":
                self.exact[rule.pattern] = rule
            else:
                self.globs.append(rule)
        # longest pattern first; ties broken by the pattern itself so the choice never depends on order
        self.globs.sort(key=lambda r: (-len(r.pattern), r.pattern))
        self._cache: dict[str, Resolution] = {}

    @property
    def rules(self) -> list[Rule]:
        out = list(self.exact.values()) + list(self.globs)
        if self.default is not None:
            out.append(self.default)
        return sorted(out, key=lambda r: r.pattern)

    def choose(self, flow_id: str) -> tuple[Rule | None, str]:
        """The rule that decides for `flow_id` and the reason it was chosen."""
        rule = self.exact.get(flow_id) or next((g for g in self.globs if g.pattern == flow_id), None)
        if rule is not None:
            return rule, f"exact rule for {flow_id!r}"
        matching = [g for g in self.globs if fnmatchcase(flow_id, g.pattern)]
        if matching:
            best = matching[0]
            others = f" (of {len(matching)} matching globs)" if len(matching) > 1 else ""
            return best, f"longest matching glob {best.pattern!r}{others}"
        if self.default is not None:
            return self.default, "default rule '*'"
        return None, f"built-in default ({self.builtin.describe()})"

    def resolve(self, flow_id: str) -> Resolution:
        cached = self._cache.get(flow_id)
        if cached is not None:
            return cached
        rule, reason = self.choose(flow_id)
        values: dict[str, int] = {}
        origin: dict[str, str] = {}
        for name in FIELDS:
            for layer in (rule, self.default):
                value = getattr(layer, name) if layer is not None else None
                if value is not None:
                    values[name] = value
                    origin[name] = layer.pattern  # type: ignore[union-attr]
                    break
            else:
                values[name] = getattr(self.builtin, name)
                origin[name] = BUILTIN
        resolution = Resolution(flow_id, Policy(**values), rule, reason, origin)
        if len(self._cache) < 100_000:
            self._cache[flow_id] = resolution
        return resolution

    def flows_matched(self, rule: Rule, flow_ids: Iterable[str]) -> list[str]:
        """The flows (of `flow_ids`) whose chosen rule is `rule`."""
        return [f for f in flow_ids if self.choose(f)[0] == rule]


# -- validation ------------------------------------------------------------------------------------


def is_glob(pattern: str) -> bool:
    return any(c in GLOB_CHARS for c in pattern)


def check_pattern(pattern: Any) -> str:
    """A flow pattern: an exact flow id or a glob (`finance_*`); `*` is the default rule."""
    if not isinstance(pattern, str):
        raise InvalidInput(f"a flow pattern must be a string, got {type(pattern).__name__}")
    if not pattern:
        raise InvalidInput("a flow pattern must not be empty; use '*' for the default rule")
    if len(pattern) > MAX_PATTERN:
        raise InvalidInput(f"a flow pattern must be at most {MAX_PATTERN} characters, got {len(pattern)}")
    if pattern != pattern.strip():
        raise InvalidInput(f"flow pattern {pattern!r} starts or ends with whitespace")
    if any(ord(c) < 32 or ord(c) == 127 for c in pattern):
        raise InvalidInput(f"flow pattern {pattern!r} contains a control character")
    return pattern


def limit_bounds(name: str) -> int:
    if name not in FIELDS:
        raise InvalidInput(f"unknown retention setting {name!r}; use one of {', '.join(FIELDS)}")
    return MAX_RUNS if name == "keep_last" else MAX_DAYS


def check_limit(name: str, value: Any, *, allow_none: bool = True) -> int | None:
    """A limit: a whole number from 0 (no limit) up to the bound; None when inherited is allowed."""
    top = limit_bounds(name)
    unit = "runs" if name == "keep_last" else "days"
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise InvalidInput(f"{name} must be a whole number of {unit} from 0 (no limit) to {top}, got {value!r}")
    return value


def parse_limit(name: str, raw: Any) -> int | None:
    """A limit from text (CLI, airflow.cfg): `30`, `off`/`none`/`0` (no limit); empty means unset."""
    if raw is None:
        return None
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text == "":
            return None
        if text in NO_LIMIT_WORDS:
            return 0
        try:
            raw = int(text)
        except ValueError:
            limit_bounds(name)
            unit = "runs" if name == "keep_last" else "days"
            raise InvalidInput(f"{name} must be a number of {unit} or 'off' (no limit), got {raw!r}") from None
    return check_limit(name, raw)


#: 30 days or the last 100 runs; traces and logs live as long as their run
BUILTIN_POLICY = Policy(keep_days=30, keep_last=100, blob_days=0)


# -- rules from configuration (airflow.cfg, a Prefect Block) ----------------------------------------


def policies_from_mapping(settings: Mapping[str, Any], *, source: str | None = None) -> list[Rule]:
    """Rules from flat settings such as airflow.cfg's `[rundossier]` section.

    Reads only `retention_*` keys (others are ignored, so a whole section can be passed):

        retention_keep_days = 30          # the default rule "*"
        retention_keep_last = 100
        retention_blob_days = 7
        retention_overrides = {"finance_*": {"keep_days": 7}, "nightly_etl": {"keep_last": 20}}

    Values may be numbers or text (`off` means no limit); `retention_overrides` is a JSON object
    (or a mapping) from flow pattern to limits. Anything malformed raises ValueError naming the key.
    """
    default: dict[str, int | None] = {}
    rules: dict[str, Rule] = {}
    for key, raw in settings.items():
        if not isinstance(key, str) or not key.startswith("retention_"):
            continue
        if key in MAPPING_KEYS:
            try:
                default[MAPPING_KEYS[key]] = parse_limit(MAPPING_KEYS[key], raw)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        elif key == OVERRIDES_KEY:
            for rule in _overrides(raw, source):
                rules[rule.pattern] = rule
        elif key != "retention_cap":
            known = ", ".join([*MAPPING_KEYS, OVERRIDES_KEY, "retention_cap"])
            raise ValueError(f"unknown retention setting {key!r}; known: {known}")
    if any(v is not None for v in default.values()):
        star = rules.get(DEFAULT_PATTERN)
        merged = {**(star.limits() if star else {}), **{k: v for k, v in default.items() if v is not None}}
        rules[DEFAULT_PATTERN] = _rule(DEFAULT_PATTERN, merged, source)
    return sorted(rules.values(), key=lambda r: r.pattern)


def _rule(pattern: str, limits: Mapping[str, int | None], source: str | None) -> Rule:
    return Rule(
        pattern,
        keep_days=limits.get("keep_days"),
        keep_last=limits.get("keep_last"),
        blob_days=limits.get("blob_days"),
        source=source,
    )


def _overrides(raw: Any, source: str | None) -> list[Rule]:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ValueError(
                f'{OVERRIDES_KEY} must be a JSON object such as {{"finance_*": {{"keep_days": 7}}}}: {exc}'
            ) from None
    if not isinstance(raw, Mapping):
        raise ValueError(f"{OVERRIDES_KEY} must map flow patterns to limits, got {type(raw).__name__}")
    out = []
    for pattern, limits in raw.items():
        where = f"{OVERRIDES_KEY}[{pattern!r}]"
        if not isinstance(limits, Mapping):
            raise ValueError(f'{where} must be an object of limits such as {{"keep_days": 7}}')
        unknown = set(limits) - set(FIELDS)
        if unknown:
            raise ValueError(f"{where} has unknown keys {sorted(unknown)}; use {', '.join(FIELDS)}")
        try:
            parsed = {name: parse_limit(name, limits.get(name)) for name in FIELDS}
            out.append(_rule(check_pattern(pattern), parsed, source))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return out


def merged(rule: Rule, **changes: Any) -> Rule:
    """`rule` with some limits changed (None keeps the current value)."""
    return replace(rule, **{k: v for k, v in changes.items() if v is not None})


__all__ = [
    "Policy",
    "Rule",
    "Resolution",
    "PolicySet",
    "BUILTIN_POLICY",
    "BUILTIN",
    "DEFAULT_PATTERN",
    "FIELDS",
    "MAX_DAYS",
    "MAX_RUNS",
    "MAPPING_KEYS",
    "OVERRIDES_KEY",
    "check_pattern",
    "check_limit",
    "parse_limit",
    "is_glob",
    "policies_from_mapping",
    "merged",
]
