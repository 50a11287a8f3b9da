"""airflow.cfg `[rundossier]` -> the plugin's configuration (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rundossier.errors import ConfigError
from rundossier.integrations.airflow.config import DEFAULT_LISTENER_TIMEOUT, build, section_from

ENV = {"AIRFLOW_HOME": "/srv/airflow"}


def test_the_embedded_default_lives_under_airflow_home():
    cfg = build({}, ENV)
    assert cfg.settings.home == Path("/srv/airflow/rundossier")
    assert cfg.settings.db_url == "sqlite:////srv/airflow/rundossier/rundossier.db"
    assert cfg.settings.storage_url == "file:///srv/airflow/rundossier/blobs"
    assert (cfg.enabled, cfg.listener_timeout, cfg.retention) == (True, DEFAULT_LISTENER_TIMEOUT, {})


def test_without_airflow_home_airflows_own_default_is_used():
    assert build({}, {}).settings.home == Path("~/airflow/rundossier").expanduser()


@pytest.mark.parametrize(
    ("section", "env", "expected_home"),
    [
        ({}, {"RUNDOSSIER_HOME": "/data/rd"}, "/data/rd"),  # an explicit RUNDOSSIER_HOME still counts
        ({"home": "/cfg/rd"}, {"RUNDOSSIER_HOME": "/data/rd"}, "/cfg/rd"),  # airflow.cfg beats the env
    ],
)
def test_home_precedence(section, env, expected_home):
    assert build(section, {**ENV, **env}).settings.home == Path(expected_home)


def test_the_section_beats_the_rundossier_environment():
    cfg = build(
        {"db_url": "postgresql+psycopg://rd@db/rd", "storage_url": "s3://bucket/rd"},
        {**ENV, "RUNDOSSIER_DB_URL": "sqlite:////tmp/other.db", "RUNDOSSIER_MAX_TRACE_BYTES": "65536"},
    )
    assert cfg.settings.db_url == "postgresql+psycopg://rd@db/rd"
    assert cfg.settings.storage_url == "s3://bucket/rd"
    assert cfg.settings.max_trace_bytes == 65536  # not in the section: the environment's


def test_airflow_env_vars_override_the_cfg_file():
    section = section_from(
        {"db_url": "sqlite:////from/cfg.db", "listener_timeout": "3"},
        {"AIRFLOW__RUNDOSSIER__DB_URL": "sqlite:////from/env.db", "AIRFLOW__RUNDOSSIER__ENABLED": "False"},
    )
    assert section == {"db_url": "sqlite:////from/env.db", "listener_timeout": "3", "enabled": "False"}
    cfg = build(section, ENV)
    assert (cfg.settings.db_url, cfg.enabled, cfg.listener_timeout) == ("sqlite:////from/env.db", False, 3.0)


def test_retention_keys_are_kept_for_the_retention_feature():
    cfg = build({"retention_keep_days": "30", "retention_blob_days": "7"}, ENV)
    assert cfg.retention == {"keep_days": "30", "blob_days": "7"}


@pytest.mark.parametrize(("raw", "expected"), [("True", True), ("false", False), ("0", False), ("yes", True)])
def test_enabled_reads_airflow_booleans(raw, expected):
    assert build({"enabled": raw}, ENV).enabled is expected


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"db_urll": "sqlite:///x"}, "unknown key(s) db_urll in airflow.cfg [rundossier]; known: home, db_url"),
        ({"enabled": "maybe"}, "[rundossier] enabled must be true or false, got 'maybe'"),
        ({"listener_timeout": "soon"}, "[rundossier] listener_timeout must be a number of seconds"),
        ({"listener_timeout": "0"}, "[rundossier] listener_timeout must be positive"),
        ({"storage_options": "{bad json"}, "RUNDOSSIER_STORAGE_OPTIONS must be a JSON object"),
        ({"db_url": "not a url"}, "is not a SQLAlchemy URL"),
    ],
)
def test_bad_values_say_which_key_and_how_to_fix_it(section, message):
    with pytest.raises(ConfigError) as err:
        build(section, ENV)
    assert message in str(err.value)
