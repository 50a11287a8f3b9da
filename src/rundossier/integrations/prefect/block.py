"""The RunDossier Block: where rundossier records Prefect flow runs, and the hooks that do it.

    from rundossier.prefect import RunDossier
    RunDossier(storage_url="s3://bucket/dossiers", db_url="postgresql://...").save("prod")

    dossier = RunDossier.load("prod")

    @flow(**dossier.hooks())
    def nightly(): ...

Empty fields fall back to the RUNDOSSIER_* environment variables, then to the embedded defaults
(see the README's configuration table).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from prefect.blocks.core import Block
from prefect.types import SecretDict
from pydantic import Field, SecretStr, field_validator, model_validator

from rundossier.errors import ConfigError
from rundossier.integrations.prefect import hooks as _hooks
from rundossier.integrations.prefect.session import Options
from rundossier.record.guard import guard
from rundossier.settings import ALL_ENV_VARS, Settings, environment

Hook = Callable[[Any, Any, Any], None]

#: the environment variable with the URL Prefect's UI loads the Block's logo from
LOGO_URL_VAR = ALL_ENV_VARS["prefect_logo_url"]
#: where `rundossier serve` serves the logo shipped in the package (no login needed)
LOGO_PATH = "/static/logo.png"


def logo_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The Block type's logo URL: `RUNDOSSIER_PREFECT_LOGO_URL`, read when Prefect imports the Block.

    Prefect's UI shows a block type's logo with an `<img>` whose URL the browser loads, and Prefect
    accepts only http(s) URLs there (no `data:`). The logo ships in the package and rundossier's own
    server serves it at `{ui_base_url}/static/logo.png`: the one address that works both offline and
    with Prefect Cloud, wherever the browsers reach the trace links. Every process that registers
    the block type (the Prefect server at start, `RunDossier(...).save()`) sets the logo to its
    value, so set the variable alike in each; unset means no logo (Prefect shows its own icon).
    """
    # this one setting alone (`Settings.prefect_logo_url`): another bad setting must not stop
    # Prefect from importing the Block; it is reported where it is used
    value = (environment(environ).get("prefect_logo_url") or "").strip()
    if not value:
        return None
    if not value.startswith(("http://", "https://")):
        logging.getLogger("rundossier").warning("%s must be an http(s) URL, got %r: no logo", LOGO_URL_VAR, value)
        return None
    return value


class RunDossier(Block):
    """Records flow runs and task runs: failure traces and step logs to storage, run history to a database.

    Attach `hooks()` to a flow; `task_hooks()` to a task also records its tries live.
    """

    _block_type_name = "RunDossier"
    _block_type_slug = "rundossier"
    _documentation_url = "https://pypi.org/project/rundossier/"  # type: ignore[assignment]
    _logo_url = logo_url()  # type: ignore[assignment]
    _description = (
        "Where rundossier records your flow runs: full failure traces and step logs in storage, run history "
        "(runs, steps, tries) in a database. Attach its hooks to a flow in one line."
    )
    _code_example = """
    from prefect import flow
    from rundossier.prefect import RunDossier

    dossier = RunDossier.load("BLOCK_NAME")

    @flow(**dossier.hooks())
    def nightly():
        ...
    """

    storage_url: str | None = Field(
        default=None,
        title="Storage URL",
        description=(
            "fsspec URL where traces and step logs are written, e.g. s3://bucket/dossiers or "
            "file:///var/lib/rundossier; empty means RUNDOSSIER_STORAGE_URL."
        ),
    )
    storage_options: SecretDict | None = Field(
        default=None,
        title="Storage options",
        description=(
            'fsspec options for that storage, e.g. {"key": "...", "secret": "...", '
            '"client_kwargs": {"endpoint_url": "http://minio:9000"}}; kept secret.'
        ),
    )
    db_url: SecretStr | None = Field(
        default=None,
        title="Database URL",
        description=(
            "SQLAlchemy URL of the run history database, e.g. postgresql://user:pass@host/db; "
            "empty means RUNDOSSIER_DB_URL."
        ),
    )
    ui_base_url: str | None = Field(
        default=None,
        title="UI base URL",
        description=(
            "Where rundossier's web UI and API are served, e.g. https://rundossier.example.com; "
            "failed flow runs get a link to their trace there."
        ),
    )
    keep_days: int | None = Field(
        default=None, ge=1, description="Retention default for the flows using this Block: keep runs this many days."
    )
    keep_last: int | None = Field(
        default=None,
        ge=1,
        description="Retention default for the flows using this Block: keep at least this many runs.",
    )
    blob_days: int | None = Field(
        default=None,
        ge=1,
        description="Retention default for the flows using this Block: keep traces and logs this many days.",
    )
    mask_patterns: list[str] = Field(
        default_factory=list,
        description=(
            "Extra regular expressions masked in traces and logs before they are written "
            "(a named group `secret` masks only that part)."
        ),
    )
    max_trace_bytes: int | None = Field(
        default=None,
        ge=4096,
        description="Size cap of one trace in bytes (middle frames are dropped above it); empty means 10 MiB.",
    )
    home: str | None = Field(
        default=None,
        description=(
            "Directory of the local spool, where traces and rows wait while storage or the database "
            "is down; empty means RUNDOSSIER_HOME or ~/.rundossier."
        ),
    )
    otel: bool | None = Field(
        default=None,
        title="OpenTelemetry spans",
        description=(
            "Emit each flow run and task run try as an OpenTelemetry span through the TracerProvider "
            "you configured (needs rundossier[otel]); empty means RUNDOSSIER_OTEL (off by default)."
        ),
    )
    trace_url_template: str | None = Field(
        default=None,
        title="Trace URL template",
        description=(
            "Link from a run to its trace in your trace viewer, e.g. http://jaeger:16686/trace/{trace_id}; "
            "empty means RUNDOSSIER_TRACE_URL_TEMPLATE."
        ),
    )
    hook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="The longest a hook holds up a flow or task run; work that runs over goes on in the background.",
    )
    api_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        description=(
            "How long, after a flow run ends, rundossier may read its task runs back from Prefect's API "
            "(in the background)."
        ),
    )

    @field_validator("ui_base_url")
    @classmethod
    def _check_ui_base_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"ui_base_url must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_settings(self) -> RunDossier:
        try:
            Settings.resolve(layer=self.settings_layer(), environ={})
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    # -- configuration -----------------------------------------------------------------------------
    def settings_layer(self) -> dict[str, Any]:
        """This Block's recorder settings (only the fields that are set)."""
        layer: dict[str, Any] = {
            "storage_url": self.storage_url,
            "storage_options": self.storage_options.get_secret_value() if self.storage_options else None,
            "db_url": self.db_url.get_secret_value() if self.db_url else None,
            "max_trace_bytes": self.max_trace_bytes,
            "mask_patterns": list(self.mask_patterns) or None,
            "home": self.home,
            "otel": self.otel,
            "trace_url_template": self.trace_url_template,
        }
        return {k: v for k, v in layer.items() if v not in (None, "", {})}

    def retention_defaults(self) -> dict[str, int | None]:
        """The retention defaults this Block gives the flows that use it."""
        return {"keep_days": self.keep_days, "keep_last": self.keep_last, "blob_days": self.blob_days}

    def settings(self) -> Settings:
        """The recorder settings in force: this Block, then RUNDOSSIER_* variables, then defaults."""
        return Settings.resolve(layer=self.settings_layer())

    def _runtime(self) -> _hooks.Runtime:
        options = Options(
            ui_base_url=self.ui_base_url,
            hook_timeout_s=self.hook_timeout_seconds,
            api_timeout_s=self.api_timeout_seconds,
            block_name=getattr(self, "_block_document_name", None),
            retention=self.retention_defaults(),
        )
        return _hooks.Runtime(self.settings_layer(), options)

    # -- hooks ---------------------------------------------------------------------------------------
    def hooks(self) -> dict[str, list[Hook]]:
        """The flow hooks, as keyword arguments of `@flow`: `@flow(**dossier.hooks())`."""
        return {
            "on_running": [self.on_running],
            "on_completion": [self.on_completion],
            "on_failure": [self.on_failure],
            "on_crashed": [self.on_crashed],
            "on_cancellation": [self.on_cancellation],
        }

    def task_hooks(self) -> dict[str, list[Hook]]:
        """The task hooks, as keyword arguments of `@task`: each try recorded live."""
        return {
            "on_running": [self.on_running],
            "on_completion": [self.on_completion],
            "on_failure": [self.on_failure],
        }

    def on_running(self, flow_or_task: Any, run: Any, state: Any) -> None:
        """Flow or task hook: the run (or task try) starts."""
        self._dispatch("running", flow_or_task, run, state)

    def on_completion(self, flow_or_task: Any, run: Any, state: Any) -> None:
        """Flow or task hook: the run (or task try) completed."""
        self._dispatch("completion", flow_or_task, run, state)

    def on_failure(self, flow_or_task: Any, run: Any, state: Any) -> None:
        """Flow or task hook: the run (or task try) failed; its trace is written."""
        self._dispatch("failure", flow_or_task, run, state)

    def on_crashed(self, flow: Any, flow_run: Any, state: Any) -> None:
        """Flow hook: the flow run crashed (recorded as reported; no invented traceback)."""
        self._dispatch("crashed", flow, flow_run, state)

    def on_cancellation(self, flow: Any, flow_run: Any, state: Any) -> None:
        """Flow hook: the flow run was cancelled."""
        self._dispatch("cancellation", flow, flow_run, state)

    def _dispatch(self, event: str, obj: Any, run: Any, state: Any) -> None:
        with guard(f"run the {event} hook"):  # a hook never raises into Prefect
            from prefect.tasks import Task

            rt = self._runtime()
            if isinstance(obj, Task):
                _hooks.task_hook(rt, event, obj, run, state)
            else:
                _hooks.flow_hook(rt, event, obj, run, state)

    @staticmethod
    def wait(timeout: float | None = None) -> bool:
        """Wait for rundossier's background work (task runs read back after a flow run ended)."""
        return _hooks.wait(timeout)


__all__ = ["RunDossier"]
