"""Airflow configuration: the `[rundossier]` section of airflow.cfg as a rundossier Settings layer.

    [rundossier]
    db_url = postgresql+psycopg://rundossier@db/rundossier
    storage_url = s3://my-bucket/rundossier
    storage_options = {"client_kwargs": {"region_name": "eu-west-1"}}
    listener_timeout = 10

Each key can also come from Airflow's environment form, `AIRFLOW__RUNDOSSIER__DB_URL=...`, which
beats airflow.cfg as everywhere in Airflow. The section beats the `RUNDOSSIER_*` environment.
With neither, the embedded default lives under `$AIRFLOW_HOME/rundossier` (not `~/.rundossier`),
so the scheduler, the workers and the API server of one machine share one history.

Keys (besides the Settings ones: home, db_url, storage_url, storage_options, max_trace_bytes,
mask_patterns, db_timeout):
    enabled            true; false keeps the plugin loaded but inert (no listeners, no UI)
    listener_timeout   seconds a listener call may take before it lets the task go on (10)
    retention_*        read by the retention feature (`AirflowConfig.retention`), not here
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rundossier.errors import ConfigError
from rundossier.settings import ENV_VARS, Settings, environment

SECTION = "rundossier"
ENV_PREFIX = "AIRFLOW__RUNDOSSIER__"
RETENTION_PREFIX = "retention_"
DEFAULT_LISTENER_TIMEOUT = 10.0
#: keys only the Airflow integration reads
PLUGIN_KEYS = ("enabled", "listener_timeout")
_TRUE = {"1", "true", "yes", "on", "t", "y"}
_FALSE = {"0", "false", "no", "off", "f", "n"}


@dataclass(frozen=True)
class AirflowConfig:
    """What the plugin runs with: rundossier Settings plus the plugin's own switches."""

    settings: Settings
    enabled: bool = True
    listener_timeout: float = DEFAULT_LISTENER_TIMEOUT
    #: the `retention_*` keys as written (without the prefix), for the retention feature
    retention: dict[str, str] = field(default_factory=dict)


def airflow_home(environ: Mapping[str, str] | None = None) -> Path:
    """`$AIRFLOW_HOME`, or Airflow's own default `~/airflow` (Airflow's variable, read here)."""
    env = os.environ if environ is None else environ
    return Path(os.path.expanduser(env.get("AIRFLOW_HOME") or "~/airflow"))


def section_from(cfg_section: Mapping[str, Any] | None, environ: Mapping[str, str]) -> dict[str, str]:
    """airflow.cfg's `[rundossier]` values with `AIRFLOW__RUNDOSSIER__*` variables on top."""
    values = {str(k).lower(): str(v) for k, v in (cfg_section or {}).items()}
    for var, value in environ.items():
        if var.startswith(ENV_PREFIX) and len(var) > len(ENV_PREFIX):
            values[var[len(ENV_PREFIX) :].lower()] = value
    return values


def build(section: Mapping[str, str], environ: Mapping[str, str] | None = None) -> AirflowConfig:
    """The plugin's configuration from a `[rundossier]` section (pure; errors say which key)."""
    env = os.environ if environ is None else environ
    layer: dict[str, Any] = {}
    retention: dict[str, str] = {}
    unknown: list[str] = []
    for key, value in section.items():
        if key in ENV_VARS:
            layer[key] = value
        elif key.startswith(RETENTION_PREFIX):
            retention[key[len(RETENTION_PREFIX) :]] = value
        elif key not in PLUGIN_KEYS:
            unknown.append(key)
    if unknown:
        known = ", ".join([*ENV_VARS, *PLUGIN_KEYS, RETENTION_PREFIX + "*"])
        raise ConfigError(f"unknown key(s) {', '.join(sorted(unknown))} in airflow.cfg [{SECTION}]; known: {known}")
    if not layer.get("home") and "home" not in environment(env):
        layer["home"] = str(airflow_home(env) / "rundossier")
    try:
        settings = Settings.resolve(layer=layer, environ=env)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (set in airflow.cfg [{SECTION}], AIRFLOW__RUNDOSSIER__* or RUNDOSSIER_*)") from None
    return AirflowConfig(
        settings=settings,
        enabled=_boolean("enabled", section.get("enabled", "true")),
        listener_timeout=_seconds("listener_timeout", section.get("listener_timeout", DEFAULT_LISTENER_TIMEOUT)),
        retention=retention,
    )


def load(environ: Mapping[str, str] | None = None) -> AirflowConfig:
    """Read Airflow's configuration in this process (worker, scheduler or API server)."""
    # Airflow's own variables (AIRFLOW_HOME, AIRFLOW__RUNDOSSIER__*) are read here; the
    # RUNDOSSIER_* ones only through rundossier.settings
    env = os.environ if environ is None else environ
    return build(section_from(_cfg_section(), env), env)


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the plugin should do anything here; cheap (no Settings), false on a bad value."""
    env = os.environ if environ is None else environ
    raw = section_from(_cfg_section(), env).get("enabled", "true")
    try:
        return _boolean("enabled", raw)
    except ConfigError:
        return True  # the full load reports the bad value where it can be seen


def _cfg_section() -> dict[str, Any]:
    conf: Any
    try:  # the Task SDK's parser in workers; the same airflow.cfg everywhere else
        from airflow.sdk.configuration import conf  # type: ignore[no-redef]
    except ImportError:  # pragma: no cover - Airflow without the Task SDK
        from airflow.configuration import conf  # type: ignore[no-redef]
    try:
        return dict(conf.getsection(SECTION) or {})
    except Exception:  # noqa: BLE001 - a parser without the section API: env vars still apply
        return {}


def _boolean(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"[{SECTION}] {key} must be true or false, got {value!r}")


def _seconds(key: str, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"[{SECTION}] {key} must be a number of seconds, got {value!r}") from None
    if not seconds > 0:
        raise ConfigError(f"[{SECTION}] {key} must be positive, got {value!r}")
    return seconds


__all__ = ["AirflowConfig", "SECTION", "airflow_home", "build", "enabled", "load", "section_from"]
