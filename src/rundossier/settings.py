"""Settings: every rundossier setting, read and validated in one place (pydantic-settings).

Sources, highest first: explicit arguments (`Recorder.from_env(db_url=...)`), then an
integration's layer (airflow.cfg's `[rundossier]` section, the Prefect Block's fields), then the
`RUNDOSSIER_*` environment, then the defaults. Empty values count as unset in every source.

The variables and their defaults are a contract (docs/configuration.md, generated from the
fields' descriptions below):

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
    RUNDOSSIER_ARTIFACT_HASH_MAX_BYTES  67108864 (files up to this size without a checksum of their
                                      filesystem get a sha256 when recorded as artifacts; 0: never)
    RUNDOSSIER_OTEL              off (on: runs and step tries become OpenTelemetry spans; needs the
                                      `otel` extra; see docs/otel.md)
    RUNDOSSIER_TRACE_URL_TEMPLATE unset (a link from a run to its trace, e.g.
                                      http://jaeger:16686/trace/{trace_id})
    RUNDOSSIER_API_TOKEN         unset (the token `rundossier serve` requires; checked where it is used)
    RUNDOSSIER_ALLOWED_HOSTS     unset (comma-separated Host names `rundossier serve` answers to)
    RUNDOSSIER_PREFECT_LOGO_URL  unset (the logo of the Prefect Block's card; checked by the Block)

Where the home is, one rule for every command and process: `RUNDOSSIER_HOME` when it is set
(a relative path is taken from the folder the command runs in), otherwise `~/.rundossier`; never
a folder found from the current directory. The demo records there too, so `rundossier demo`,
`runs`, `show`, `trace` and `serve` see the same runs from any folder. (Airflow's plugin defaults
to `$AIRFLOW_HOME/rundossier` instead, see integrations/airflow/config.py; `home` in airflow.cfg.)
`Settings.where()` says which home is in use, for messages that report an empty result.

A bad value raises `ConfigError` with the message users see (which variable, what is wrong, how
to fix it): the validators raise it themselves, and pydantic lets it through unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from rundossier.core.masking.userpatterns import compile_patterns
from rundossier.errors import ConfigError

ENV_PREFIX = "RUNDOSSIER_"
DEFAULT_HOME = "~/.rundossier"
DEFAULT_MAX_TRACE_BYTES = 10 * 1024 * 1024
MIN_MAX_TRACE_BYTES = 4096
DEFAULT_DB_TIMEOUT_S = 10.0
DEFAULT_WRITE_BUDGET_S = 5.0
DEFAULT_HEARTBEAT_S = 30.0
DEFAULT_ARTIFACT_HASH_MAX_BYTES = 64 * 1024 * 1024

#: the settings an integration's layer (airflow.cfg, the Prefect Block) may set -> their variables
ENV_VARS = {
    name: ENV_PREFIX + name.upper()
    for name in (
        "home",
        "db_url",
        "storage_url",
        "storage_options",
        "max_trace_bytes",
        "mask_patterns",
        "db_timeout",
        "write_budget",
        "heartbeat",
        "retention_cap",
        "artifact_hash_max_bytes",
        "otel",
        "trace_url_template",
    )
}
#: settings of one process only (the server, the Block's logo): the environment or arguments
PROCESS_ENV_VARS = {name: ENV_PREFIX + name.upper() for name in ("api_token", "allowed_hosts", "prefect_logo_url")}
ALL_ENV_VARS = {**ENV_VARS, **PROCESS_ENV_VARS}


def environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The `RUNDOSSIER_*` variables that are set (not empty), by setting name, as raw strings."""
    env = os.environ if environ is None else environ
    return {name: env[var] for name, var in ALL_ENV_VARS.items() if env.get(var) not in (None, "")}


class _Environment(PydanticBaseSettingsSource):
    """`RUNDOSSIER_*` for `Settings()`: the raw strings of `environment()`, parsed by the validators
    below (not pydantic-settings' own env source, which would JSON-decode lists first)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every variable at once

    def __call__(self) -> dict[str, Any]:
        return environment()


class Settings(BaseSettings):
    """Validated settings. Build with `Settings.resolve(...)` (or `Settings()`: the environment)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid", validate_default=True)

    # the descriptions are the configuration reference of the docs (scripts/docs_hooks.py renders
    # them; `default_text` is what an empty default stands for)
    home: Path = Field(Path(DEFAULT_HOME), description="where the embedded defaults and the spool live")
    db_url: str = Field(
        "",
        description="SQLAlchemy URL: SQLite, or `postgresql://user:pass@host/db` (psycopg 3)",
        json_schema_extra={"default_text": "sqlite:///$RUNDOSSIER_HOME/rundossier.db"},
    )
    storage_url: str = Field(
        "",
        description="fsspec URL: `file://`, `s3://bucket/prefix`, `memory://`",
        json_schema_extra={"default_text": "file://$RUNDOSSIER_HOME/blobs"},
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description='JSON of fsspec options, e.g. `{"client_kwargs": {"endpoint_url": "http://minio:9000"}}`',
    )
    max_trace_bytes: int = Field(DEFAULT_MAX_TRACE_BYTES, description="trace size cap (at least 4096)")
    mask_patterns: tuple[str, ...] = Field(
        (),
        description="JSON list of extra regular expressions to mask (a named group `secret` masks only that "
        "part); checked at start, run with a time budget",
    )
    db_timeout: float = Field(
        DEFAULT_DB_TIMEOUT_S,
        description="seconds a read waits for a locked database (a write waits at most the write budget)",
    )
    write_budget: float = Field(
        DEFAULT_WRITE_BUDGET_S,
        description="seconds a task may wait, in all, on a database or storage that fails or does not answer; "
        "then its writes go to the spool",
    )
    heartbeat: float = Field(
        DEFAULT_HEARTBEAT_S,
        description="seconds between lease renewals of running runs and steps; one not renewed for 4 intervals "
        "(2 minutes) is shown as `crashed`",
    )
    retention_cap: bool = Field(
        False, description="`on`: trim a flow to its policy's newest K runs as runs finish (see Retention)"
    )
    artifact_hash_max_bytes: int = Field(
        DEFAULT_ARTIFACT_HASH_MAX_BYTES,
        description="files up to this size get a sha256 when their filesystem has no checksum of its own "
        "(artifacts); 0: never",
    )
    otel: bool = Field(
        False,
        description="`on`: runs and step tries become OpenTelemetry spans in the tracing you configured (needs "
        "`pip install 'rundossier[otel]'`; see docs/otel.md)",
    )
    trace_url_template: str | None = Field(
        None,
        description="the run page links a run's trace there, e.g. `http://jaeger:16686/trace/{trace_id}`",
    )
    api_token: str | None = Field(
        default=None, repr=False, description="the token `rundossier serve` requires on a non-loopback address"
    )
    allowed_hosts: tuple[str, ...] = Field(
        (),
        description="comma-separated names `rundossier serve` answers to besides the loopback ones (checked "
        "when it has no token, or when names are given); `*`: any",
    )
    prefect_logo_url: str | None = Field(
        None, description="the logo URL of the RunDossier Block's card in Prefect's UI (http or https)"
    )

    @property
    def write_timeout(self) -> float:
        """How long one write waits for a locked database: never longer than the write budget."""
        return min(self.db_timeout, self.write_budget)

    def where(self) -> str:
        """The home as messages name it; when it is the default, how to pick another."""
        if self.home == _default_home():
            return f"home {self.home}, the default: set RUNDOSSIER_HOME to use another"
        return f"home {self.home}"

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
        """Explicit arguments over an integration's layer (Block, airflow.cfg) over the environment
        (`os.environ` unless `environ` is given) over the defaults."""
        # every field is given (its default at least), so the environment source of `Settings()`
        # adds nothing here: `environ` is the one environment read
        values = {name: f.get_default(call_default_factory=True) for name, f in cls.model_fields.items()}
        values.update(environment(environ))
        for source in (layer, explicit):
            for name, value in (source or {}).items():
                if name not in ALL_ENV_VARS:
                    raise ConfigError(f"unknown rundossier setting {name!r}; known: {', '.join(ALL_ENV_VARS)}")
                if value is not None and value != "":
                    values[name] = value
        return cls(**values)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """`Settings(**explicit)`: the arguments, then `RUNDOSSIER_*` (no .env or secret files)."""
        return (init_settings, _Environment(settings_cls))

    # -- validators: raw values (strings from the environment or airflow.cfg, or typed values) ------
    @field_validator("home", mode="before")
    @classmethod
    def _home(cls, value: Any) -> Path:
        return Path(os.path.expanduser(str(value))).resolve() if value else _default_home()

    @field_validator("db_url", mode="before")
    @classmethod
    def _db_url(cls, value: Any, info: ValidationInfo) -> str:
        db_url = str(value or f"sqlite:///{info.data['home'] / 'rundossier.db'}")
        if "://" not in db_url:
            raise ConfigError(
                f"RUNDOSSIER_DB_URL={db_url!r} is not a SQLAlchemy URL; "
                "use sqlite:////abs/path.db or postgresql+psycopg://user@host/db"
            )
        return db_url

    @field_validator("storage_url", mode="before")
    @classmethod
    def _storage_url(cls, value: Any, info: ValidationInfo) -> str:
        storage_url = str(value or f"file://{info.data['home'] / 'blobs'}")
        if "://" not in storage_url:
            storage_url = f"file://{Path(storage_url).expanduser().resolve()}"
        return storage_url.rstrip("/")

    @field_validator("storage_options", mode="before")
    @classmethod
    def _storage_options(cls, value: Any) -> dict[str, Any]:
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

    @field_validator("max_trace_bytes", mode="before")
    @classmethod
    def _max_trace_bytes(cls, value: Any) -> int:
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"RUNDOSSIER_MAX_TRACE_BYTES must be an integer, got {value!r}") from None
        if n < MIN_MAX_TRACE_BYTES:
            raise ConfigError(f"RUNDOSSIER_MAX_TRACE_BYTES must be at least {MIN_MAX_TRACE_BYTES}, got {n}")
        return n

    @field_validator("artifact_hash_max_bytes", mode="before")
    @classmethod
    def _hash_max_bytes(cls, value: Any) -> int:
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"RUNDOSSIER_ARTIFACT_HASH_MAX_BYTES must be an integer, got {value!r}") from None
        if n < 0:
            raise ConfigError(f"RUNDOSSIER_ARTIFACT_HASH_MAX_BYTES must be 0 (never hash) or more, got {n}")
        return n

    @field_validator("mask_patterns", mode="before")
    @classmethod
    def _mask_patterns(cls, value: Any) -> tuple[str, ...]:
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

    @field_validator("db_timeout", "write_budget", "heartbeat", mode="before")
    @classmethod
    def _seconds(cls, value: Any, info: ValidationInfo) -> float:
        var = ALL_ENV_VARS[str(info.field_name)]
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{var} must be a number of seconds, got {value!r}") from None
        if seconds <= 0:
            raise ConfigError(f"{var} must be positive, got {seconds}")
        return seconds

    @field_validator("retention_cap", "otel", mode="before")
    @classmethod
    def _on_off(cls, value: Any, info: ValidationInfo) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{ALL_ENV_VARS[str(info.field_name)]} must be on or off, got {value!r}")

    @field_validator("otel", mode="after")
    @classmethod
    def _otel_installed(cls, value: bool) -> bool:
        if value and importlib.util.find_spec("opentelemetry") is None:
            raise ConfigError(
                "RUNDOSSIER_OTEL is on but OpenTelemetry is not installed: "
                "pip install 'rundossier[otel]' (or turn RUNDOSSIER_OTEL off)"
            )
        return value

    @field_validator("trace_url_template", mode="before")
    @classmethod
    def _trace_url_template(cls, value: Any) -> str | None:
        if value in (None, ""):
            return None
        template = str(value)
        if "{trace_id}" not in template:
            raise ConfigError(
                f"RUNDOSSIER_TRACE_URL_TEMPLATE={template!r} must contain {{trace_id}}, "
                "e.g. http://jaeger:16686/trace/{trace_id}"
            )
        try:
            template.format(trace_id="0" * 32)
        except (IndexError, KeyError, ValueError) as exc:
            raise ConfigError(
                f"RUNDOSSIER_TRACE_URL_TEMPLATE={template!r} is not a template with only {{trace_id}}: {exc}"
            ) from None
        return template

    def trace_viewer_url(self, trace_id: str | None) -> str | None:
        """The link to a run's trace in the user's trace viewer (None without a template or a trace id)."""
        if not trace_id or self.trace_url_template is None:
            return None
        return self.trace_url_template.format(trace_id=trace_id)

    @field_validator("api_token", "prefect_logo_url", mode="before")
    @classmethod
    def _optional_text(cls, value: Any) -> str | None:
        return str(value) if value not in (None, "") else None

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _host_names(cls, value: Any) -> tuple[str, ...]:
        names = value.split(",") if isinstance(value, str) else list(value or ())
        return tuple(str(h) for h in names if str(h).strip())  # checked by `rundossier serve`


def _default_home() -> Path:
    """`~/.rundossier` of the user running the process, as an absolute path."""
    return Path(os.path.expanduser(DEFAULT_HOME)).resolve()


__all__ = ["Settings", "ENV_VARS", "ALL_ENV_VARS", "DEFAULT_MAX_TRACE_BYTES", "environment"]
