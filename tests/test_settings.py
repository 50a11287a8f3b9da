"""Settings: one model, its sources in order, and the messages users see for bad values."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from rundossier.errors import ConfigError
from rundossier.settings import ALL_ENV_VARS, ENV_VARS, Settings, environment

#: variables the docs name that are not settings: the test scripts' own
TEST_VARIABLES = {"RUNDOSSIER_REQUIRE_PG", "RUNDOSSIER_TEST_REDIS_URL"}


def test_the_defaults_live_under_home(tmp_path: Path) -> None:
    s = Settings.resolve(environ={"RUNDOSSIER_HOME": str(tmp_path)})
    assert s.home == tmp_path.resolve()
    assert s.db_url == f"sqlite:///{tmp_path.resolve()}/rundossier.db"
    assert s.storage_url == f"file://{tmp_path.resolve()}/blobs"
    assert s.spool_dir == tmp_path.resolve() / "spool"
    assert (s.storage_options, s.max_trace_bytes, s.mask_patterns) == ({}, 10 * 1024 * 1024, ())
    assert (s.db_timeout, s.write_budget, s.heartbeat, s.retention_cap) == (10.0, 5.0, 30.0, False)
    assert (s.api_token, s.allowed_hosts, s.prefect_logo_url) == (None, (), None)


def test_without_home_the_default_is_in_the_users_home_folder() -> None:
    assert Settings.resolve(environ={}).home == Path("~/.rundossier").expanduser().resolve()


def test_explicit_beats_the_layer_which_beats_the_environment_which_beats_the_default() -> None:
    env = {"RUNDOSSIER_DB_URL": "sqlite:////env.db", "RUNDOSSIER_HEARTBEAT": "7", "RUNDOSSIER_DB_TIMEOUT": "3"}
    layer = {"db_url": "sqlite:////layer.db", "heartbeat": 8}
    s = Settings.resolve(explicit={"db_url": "sqlite:////explicit.db"}, layer=layer, environ=env)
    assert (s.db_url, s.heartbeat, s.db_timeout, s.write_budget) == ("sqlite:////explicit.db", 8.0, 3.0, 5.0)


def test_empty_values_count_as_unset_in_every_source() -> None:
    env = {"RUNDOSSIER_DB_URL": "", "RUNDOSSIER_HEARTBEAT": "7"}
    s = Settings.resolve(explicit={"heartbeat": None}, layer={"heartbeat": ""}, environ=env)
    assert s.heartbeat == 7.0 and s.db_url.endswith("/rundossier.db")


def test_settings_built_directly_read_the_same_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ALL_ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RUNDOSSIER_HOME", str(tmp_path))
    monkeypatch.setenv("RUNDOSSIER_MASK_PATTERNS", '["acct-[0-9]+"]')
    monkeypatch.setenv("RUNDOSSIER_STORAGE_OPTIONS", '{"anon": true}')
    monkeypatch.setenv("RUNDOSSIER_ALLOWED_HOSTS", "rd.example.com,other")
    monkeypatch.setenv("RUNDOSSIER_RETENTION_CAP", "on")
    assert Settings() == Settings.resolve()
    assert Settings(heartbeat=2).heartbeat == 2.0  # arguments beat the environment
    s = Settings()
    assert s.mask_patterns == ("acct-[0-9]+",) and s.storage_options == {"anon": True}
    assert s.allowed_hosts == ("rd.example.com", "other") and s.retention_cap is True


def test_the_docs_name_only_real_settings_and_their_table_has_every_setting() -> None:
    """The configuration table of the docs is generated from the model (scripts/docs_hooks.py): one
    row per setting; every `RUNDOSSIER_*` variable the user docs name is a setting."""
    root = Path(__file__).parents[1]
    spec = importlib.util.spec_from_file_location("docs_hooks", root / "scripts" / "docs_hooks.py")
    assert spec and spec.loader
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    rows = [line for line in hooks.settings_table().splitlines() if line.startswith("| `RUNDOSSIER_")]
    assert [row.split("`")[1] for row in rows] == list(ALL_ENV_VARS.values())
    assert all(row.rstrip(" |").split("|")[-1].strip() for row in rows)  # each has a meaning
    config = (root / "docs" / "configuration.md").read_text()
    assert hooks.SETTINGS_MARKER in config
    pages = [root / "README.md", *(root / "docs").glob("*.md")]
    named = {v for p in pages for v in re.findall(r"(?<![A-Z_])RUNDOSSIER_[A-Z_]*", p.read_text())}
    assert named - {"RUNDOSSIER_"} <= set(ALL_ENV_VARS.values()) | TEST_VARIABLES
    assert set(ENV_VARS) < set(ALL_ENV_VARS)


def test_the_process_settings_come_from_the_environment() -> None:
    env = {
        "RUNDOSSIER_API_TOKEN": "s3cret-token-0123456789",
        "RUNDOSSIER_ALLOWED_HOSTS": "a.example, ,b.example",
        "RUNDOSSIER_PREFECT_LOGO_URL": "https://rd.example.com/static/logo.png",
    }
    s = Settings.resolve(environ=env)
    assert s.api_token == "s3cret-token-0123456789" and "s3cret" not in repr(s)
    assert s.allowed_hosts == ("a.example", "b.example")
    assert s.prefect_logo_url == "https://rd.example.com/static/logo.png"
    assert environment(env) == {
        "api_token": env["RUNDOSSIER_API_TOKEN"],
        "allowed_hosts": "a.example, ,b.example",
        "prefect_logo_url": env["RUNDOSSIER_PREFECT_LOGO_URL"],
    }


def test_a_path_without_a_scheme_is_a_local_folder(tmp_path: Path) -> None:
    s = Settings.resolve(explicit={"storage_url": str(tmp_path / "blobs") + "/"}, environ={})
    assert s.storage_url == f"file://{(tmp_path / 'blobs').resolve()}"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"RUNDOSSIER_DB_URL": "not a url"},
            "RUNDOSSIER_DB_URL='not a url' is not a SQLAlchemy URL; "
            "use sqlite:////abs/path.db or postgresql+psycopg://user@host/db",
        ),
        ({"RUNDOSSIER_STORAGE_OPTIONS": "{bad"}, "RUNDOSSIER_STORAGE_OPTIONS must be a JSON object such as"),
        ({"RUNDOSSIER_STORAGE_OPTIONS": "[1]"}, "RUNDOSSIER_STORAGE_OPTIONS must be a JSON object, not list"),
        ({"RUNDOSSIER_MAX_TRACE_BYTES": "lots"}, "RUNDOSSIER_MAX_TRACE_BYTES must be an integer, got 'lots'"),
        ({"RUNDOSSIER_MAX_TRACE_BYTES": "100"}, "RUNDOSSIER_MAX_TRACE_BYTES must be at least 4096, got 100"),
        ({"RUNDOSSIER_MASK_PATTERNS": "acct-1"}, "RUNDOSSIER_MASK_PATTERNS must be a JSON list of regular expressions"),
        ({"RUNDOSSIER_MASK_PATTERNS": "[1]"}, "RUNDOSSIER_MASK_PATTERNS must be a list of strings"),
        ({"RUNDOSSIER_DB_TIMEOUT": "soon"}, "RUNDOSSIER_DB_TIMEOUT must be a number of seconds, got 'soon'"),
        ({"RUNDOSSIER_WRITE_BUDGET": "-1"}, "RUNDOSSIER_WRITE_BUDGET must be positive, got -1.0"),
        ({"RUNDOSSIER_HEARTBEAT": "0"}, "RUNDOSSIER_HEARTBEAT must be positive, got 0.0"),
        ({"RUNDOSSIER_RETENTION_CAP": "sometimes"}, "RUNDOSSIER_RETENTION_CAP must be on or off, got 'sometimes'"),
        ({"RUNDOSSIER_OTEL": "maybe"}, "RUNDOSSIER_OTEL must be on or off, got 'maybe'"),
        (
            {"RUNDOSSIER_TRACE_URL_TEMPLATE": "http://jaeger:16686/trace/"},
            "RUNDOSSIER_TRACE_URL_TEMPLATE='http://jaeger:16686/trace/' must contain {trace_id}",
        ),
        (
            {"RUNDOSSIER_TRACE_URL_TEMPLATE": "http://t/{trace_id}?span={span_id}"},
            "is not a template with only {trace_id}",
        ),
    ],
)
def test_a_bad_value_fails_at_start_with_a_message_that_says_which_and_how(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.resolve(environ=env)
    assert message in str(err.value)


def test_an_unknown_setting_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown rundossier setting 'db_ulr'; known: home, db_url, storage_url"):
        Settings.resolve(explicit={"db_ulr": "sqlite://"}, environ={})


def test_the_home_does_not_depend_on_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".rundossier").mkdir()  # a project-local folder is not picked up: one rule everywhere
    monkeypatch.chdir(tmp_path)
    assert Settings.resolve(environ={}).home == Path("~/.rundossier").expanduser().resolve()


def test_a_relative_home_is_taken_from_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.resolve(environ={"RUNDOSSIER_HOME": "data/rd"})
    assert s.home == tmp_path.resolve() / "data" / "rd" and s.home.is_absolute()
    assert s.db_url == f"sqlite:///{tmp_path.resolve()}/data/rd/rundossier.db"


def test_where_names_the_home_and_how_to_change_the_default(tmp_path: Path) -> None:
    default = Settings.resolve(environ={}).where()
    assert str(Path("~/.rundossier").expanduser().resolve()) in default and "RUNDOSSIER_HOME" in default
    assert Settings.resolve(environ={"RUNDOSSIER_HOME": str(tmp_path)}).where() == f"home {tmp_path.resolve()}"


@pytest.mark.parametrize(
    ("explicit", "layer", "env", "expected"),
    [
        ({}, {}, {}, False),
        ({}, {}, {"RUNDOSSIER_OTEL": "on"}, True),
        ({}, {"otel": "off"}, {"RUNDOSSIER_OTEL": "on"}, False),
        ({"otel": True}, {"otel": "off"}, {}, True),
    ],
)
def test_otel_follows_the_precedence_of_every_setting(
    explicit: dict[str, object], layer: dict[str, object], env: dict[str, str], expected: bool
) -> None:
    assert Settings.resolve(explicit=explicit, layer=layer, environ=env).otel is expected


def test_the_trace_viewer_url_fills_the_template() -> None:
    s = Settings.resolve(environ={"RUNDOSSIER_TRACE_URL_TEMPLATE": "https://grafana/explore?traceId={trace_id}"})
    assert s.trace_viewer_url("ab" * 16) == "https://grafana/explore?traceId=" + "ab" * 16
    assert s.trace_viewer_url(None) is None
    assert Settings.resolve(environ={}).trace_viewer_url("ab" * 16) is None
