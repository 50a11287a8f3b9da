"""Every command given bad input: a bad time, an unknown run id, a storage URL with an unknown
scheme, a database that does not answer, a damaged trace. Each prints one line on stderr that says
what is wrong and how to fix it, exits with the code the help's epilog documents, and shows a
traceback only with --debug.

A database that does not answer is a loopback port that accepts connections and says nothing
(tests/tcpproxy.py), with RUNDOSSIER_DB_TIMEOUT=1 bounding the wait."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.cli.main import EPILOG, EXIT_CONFIG, EXIT_ERROR, EXIT_NOT_FOUND, EXIT_USAGE, build_parser, main
from tests.tcpproxy import TcpProxy

RUN = "RUN"  # replaced by the id of a recorded failed run


@pytest.fixture
def failed_run(_isolated_home: Path) -> str:
    rec = Recorder.from_env()
    with pytest.raises(RuntimeError):
        with rec.run("bad_input_flow") as run, run.step("boom"):
            raise RuntimeError("it broke")
    return run.run_id


@pytest.fixture
def silent_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with TcpProxy(1) as proxy:
        proxy.stall()
        monkeypatch.setenv("RUNDOSSIER_DB_URL", f"postgresql://rd:pw-never-shown@127.0.0.1:{proxy.port}/rd")
        monkeypatch.setenv("RUNDOSSIER_DB_TIMEOUT", "1")
        yield


def _run(argv: list[str], run_id: str) -> int:
    argv = [run_id if a == RUN else a for a in argv]
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        return int(exc.code or 0)


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    "argv,words",
    [
        (["runs", "--since", "last tuesday"], ["--since", "6h", "ISO-8601"]),
        (["runs", "--since", "6x"], ["--since", "6h"]),
        (["failures", "--since=-3d"], ["--since", "3d"]),
        (["retention", "sweep", "--orphan-grace", "a day"], ["--orphan-grace", "24h"]),
        (["runs", "--status", "boom"], ["unknown status"]),
    ],
)
def test_a_bad_time_or_value_is_a_usage_error(
    failed_run: str, capsys: pytest.CaptureFixture[str], argv: list[str], words: list[str]
) -> None:
    assert _run(argv, failed_run) == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert all(w in line for w in words), line


@pytest.mark.parametrize(
    "argv",
    [["show", "run_01M92F8B878VNFE9KKFHQ39QQF"], ["trace", "run_nope"], ["show", "nope", "--json"]],
)
def test_an_unknown_run_id_is_not_found(failed_run: str, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert _run(argv, failed_run) == EXIT_NOT_FOUND
    line = _one_line(capsys.readouterr().err)
    assert "no run with id" in line and "rundossier.db" in line  # which store was searched


def test_an_unknown_step_is_not_found(failed_run: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["trace", RUN, "--step", "nope"], failed_run) == EXIT_NOT_FOUND
    assert "nope" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "argv",
    [
        ["trace", RUN],
        ["retention", "show"],
        ["retention", "sweep", "--dry-run"],
        ["demo", "--no-serve"],
        ["serve", "--port", "1"],  # refused before it binds anything
    ],
)
def test_a_storage_url_with_an_unknown_scheme_is_a_configuration_error(
    failed_run: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    monkeypatch.setenv("RUNDOSSIER_STORAGE_URL", "nosuchfs://bucket/prefix")
    assert _run(argv, failed_run) == EXIT_CONFIG
    line = _one_line(capsys.readouterr().err)
    assert "unknown protocol 'nosuchfs'" in line and "s3://bucket/prefix" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["runs"],
        ["show", RUN],
        ["trace", RUN],
        ["failures"],
        ["retention", "show"],
        ["retention", "sweep"],
        ["db", "upgrade"],
    ],
)
def test_a_database_that_does_not_answer_is_one_line_within_the_timeout(
    failed_run: str, silent_database: None, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert _run(argv, failed_run) == EXIT_ERROR
    line = _one_line(capsys.readouterr().err)
    assert "StoreUnavailable" in line and "RUNDOSSIER_DB_URL" in line and "pw-never-shown" not in line


def test_a_damaged_trace_is_one_line_naming_the_blob(failed_run: str, capsys: pytest.CaptureFixture[str]) -> None:
    rec = Recorder.from_env()
    uri = rec.store.get_run(failed_run).trace_uri or ""
    rec.blobs.put(rec.blobs.key_for(uri), b"not gzip at all")
    assert _run(["trace", RUN], failed_run) == EXIT_ERROR
    line = _one_line(capsys.readouterr().err)
    assert "BlobCorrupt" in line and uri in line and "restore it from a backup" in line


def test_debug_adds_the_traceback(failed_run: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["--debug", "show", "run_nope"], failed_run) == EXIT_NOT_FOUND
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_the_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    help_text = build_parser().format_help()
    assert EPILOG in help_text
    for code in (EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_CONFIG):
        assert f"\n  {code}  " in help_text
    cli = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    for code in ("0 ok", "1 error", "2 usage", "3 not found", "4 configuration"):
        assert code in cli


def test_the_console_script_prints_one_line_and_no_traceback(failed_run: str, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("rundossier")
    env = {**os.environ, "RUNDOSSIER_STORAGE_URL": "nosuchfs://bucket/prefix"}
    done = subprocess.run([str(exe), "trace", failed_run], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_CONFIG and done.stdout == ""
    line = _one_line(done.stderr)
    assert line.startswith("error: ConfigError: storage URL 'nosuchfs://bucket/prefix' uses unknown protocol")
    debug = subprocess.run(
        [str(exe), "trace", failed_run, "--debug"], env=env, capture_output=True, text=True, timeout=120
    )
    assert debug.returncode == EXIT_CONFIG and "Traceback (most recent call last)" in debug.stderr
