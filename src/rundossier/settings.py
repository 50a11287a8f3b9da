"""Settings: explicit arguments beat the Block/airflow.cfg layer, which beats RUNDOSSIER_* env vars.

The variables and their defaults are a contract (see README "Configuration"):

    RUNDOSSIER_HOME              ~/.rundossier
    RUNDOSSIER_DB_URL            sqlite:///$RUNDOSSIER_HOME/rundossier.db
    RUNDOSSIER_STORAGE_URL       file://$RUNDOSSIER_HOME/blobs
    RUNDOSSIER_STORAGE_OPTIONS   {}  (JSON object of fsspec options)
    RUNDOSSIER_MAX_TRACE_BYTES   10485760
    RUNDOSSIER_MASK_PATTERNS     []  (JSON list of regular expressions to mask)
    RUNDOSSIER_DB_TIMEOUT        10  (seconds a read waits for a locked database)
    RUNDOSSIER_WRITE_BUDGET      5   (seconds a task may wait, in all, on storage or a database that
                                      fails or does not answer; then writes go to the spool)
    RUNDOSSIER_HEARTBEAT         30  (seconds between lease renewals of running runs and steps; a
                                      row not renewed for 4 intervals is shown as crashed)
    RUNDOSSIER_RETENTION_CAP     off (on: a finished run trims its flow to the newest keep_last runs)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rundossier.core.masking.userpatterns import compile_patterns
from rundossier.errors import ConfigError

ENV_PREFIX = "RUNDOSSIER_"
DEFAULT_MAX_TRACE_BYTES = 10 * 1024 * 1024
MIN_MAX_TRACE_BYTES = 4096
DEFAULT_WRITE_BUDGET_S = 5.0
DEFAULT_HEARTBEAT_S = 30.0

#: setting name -> environment variable
ENV_VARS = {
    "home": "RUNDOSSIER_HOME",
    "db_url": "RUNDOSSIER_DB_URL",
    "storage_url": "RUNDOSSIER_STORAGE_URL",
    "storage_options": "RUNDOSSIER_STORAGE_OPTIONS",
    "max_trace_bytes": "RUNDOSSIER_MAX_TRACE_BYTES",
    "mask_patterns": "RUNDOSSIER_MASK_PATTERNS",
    "db_timeout": "RUNDOSSIER_DB_TIMEOUT",
    "write_budget": "RUNDOSSIER_WRITE_BUDGET",
    "heartbeat": "RUNDOSSIER_HEARTBEAT",
    "retention_cap": "RUNDOSSIER_RETENTION_CAP",
}


@dataclass(frozen=True)
class Settings:
    """Validated settings. Build with `Settings.resolve()`; every field is checked eagerly."""

    home: Path
    db_url: str
    storage_url: str
    storage_options: dict[str, Any] = field(default_factory=dict)
    max_trace_bytes: int = DEFAULT_MAX_TRACE_BYTES
    mask_patterns: tuple[str, ...] = ()
    db_timeout: float = 10.0
    write_budget: float = DEFAULT_WRITE_BUDGET_S
    heartbeat: float = DEFAULT_HEARTBEAT_S
    retention_cap: bool = False

    @property
    def write_timeout(self) -> float:
        """How long one write waits for a locked database: never longer than the write budget."""
        return min(self.db_timeout, self.write_budget)

    @property
    def spool_dir(self) -> Path:
        """Where traces and rows wait when storage or the database is down."""
        return self.home / "spool"

    @classmethod
    def resolve(
        cls,
        explicit: Mapping[str, Any] | None = None,
        layer: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Merge explicit arguments, an integration's layer (Block, airflow.cfg) and the env."""
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        for name, var in ENV_VARS.items():
            if env.get(var) not in (None, ""):
                raw[name] = env[var]
        for source in (layer, explicit):
            for name, value in (source or {}).items():
                if name not in ENV_VARS:
                    raise ConfigError(f"unknown rundossier setting {name!r}; known: {', '.join(ENV_VARS)}")
                if value is not None and value != "":
                    raw[name] = value
        return cls._from_raw(raw)

    @classmethod
    def _from_raw(cls, raw: Mapping[str, Any]) -> Settings:
        home = Path(os.path.expanduser(str(raw.get("home") or "~/.rundossier"))).resolve()
        db_url = str(raw.get("db_url") or f"sqlite:///{home / 'rundossier.db'}")
        if "://" not in db_url:
            raise ConfigError(
                f"RUNDOSSIER_DB_URL={db_url!r} is not a SQLAlchemy URL; "
                "use sqlite:////abs/path.db or postgresql+psycopg://user@host/db"
            )
        storage_url = str(raw.get("storage_url") or f"file://{home / 'blobs'}")
        if "://" not in storage_url:
            storage_url = f"file://{Path(storage_url).expanduser().resolve()}"
        return cls(
            home=home,
            db_url=db_url,
            storage_url=storage_url.rstrip("/"),
            storage_options=_json_object(raw.get("storage_options", {})),
            max_trace_bytes=_max_trace_bytes(raw.get("max_trace_bytes", DEFAULT_MAX_TRACE_BYTES)),
            mask_patterns=_patterns(raw.get("mask_patterns", ())),
            db_timeout=_positive_float("db_timeout", raw.get("db_timeout", 10.0)),
            write_budget=_positive_float("write_budget", raw.get("write_budget", DEFAULT_WRITE_BUDGET_S)),
            heartbeat=_positive_float("heartbeat", raw.get("heartbeat", DEFAULT_HEARTBEAT_S)),
            retention_cap=_flag("retention_cap", raw.get("retention_cap", False)),
        )


def _json_object(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"RUNDOSSIER_STORAGE_OPTIONS must be a JSON object such as "
            f'{{"endpoint_url": "http://127.0.0.1:9000"}}: {exc}'
        ) from None
    if not isinstance(parsed, dict):
        raise ConfigError("RUNDOSSIER_STORAGE_OPTIONS must be a JSON object, not " + type(parsed).__name__)
    return parsed


def _max_trace_bytes(value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"RUNDOSSIER_MAX_TRACE_BYTES must be an integer, got {value!r}") from None
    if n < MIN_MAX_TRACE_BYTES:
        raise ConfigError(f"RUNDOSSIER_MAX_TRACE_BYTES must be at least {MIN_MAX_TRACE_BYTES}, got {n}")
    return n


def _positive_float(name: str, value: Any) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{ENV_VARS[name]} must be a number of seconds, got {value!r}") from None
    if f <= 0:
        raise ConfigError(f"{ENV_VARS[name]} must be positive, got {f}")
    return f


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{ENV_VARS[name]} must be on or off, got {value!r}")


def _patterns(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(
                'RUNDOSSIER_MASK_PATTERNS must be a JSON list of regular expressions, e.g. ["acct-[0-9]+"]'
            ) from None
    if not isinstance(value, list | tuple) or not all(isinstance(p, str) for p in value):
        raise ConfigError("RUNDOSSIER_MASK_PATTERNS must be a list of strings")
    compile_patterns(value)  # invalid or catastrophically backtracking: refused at start
    return tuple(value)


__all__ = ["Settings", "ENV_VARS", "DEFAULT_MAX_TRACE_BYTES"]
