"""The CLI with hostile history and hostile arguments: recorded text is printed as text (Rich
markup never parsed, control characters made visible), and bad input, a missing database driver,
a damaged blob or a bug give one line on stderr with the documented exit code (the traceback only
with --debug)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.cli import commands
from rundossier.cli.main import EXIT_CONFIG, EXIT_ERROR, EXIT_NOT_FOUND, EXIT_USAGE, main
from rundossier.cli.text import json_safe, visible

#: Rich markup that crashed `runs` and `show`, an OSC 8 hyperlink, clear-screen, a C1 CSI, a bidi override
MESSAGE = (
    "bad [/] and [bold]loud[/bold] :x: \x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\ \x1b[2J\x9b31m \u202eevil"
)
FLOW = "flow[/]\x1b[31m"
STEP = "step[bold]\x07"


class Boom(Exception):
    pass


@pytest.fixture
def hostile(_isolated_home: Path) -> str:
    rec = Recorder.from_env()
    with pytest.raises(Boom):
        with rec.run(FLOW) as run:
            rec.record_event(run, "first_work", f"summary {MESSAGE}", step_id=STEP)
            with run.step(STEP):
                print(f"log {MESSAGE}")
                raise Boom(MESSAGE)
    return run.run_id


def _no_raw_controls(text: str) -> None:
    raw = [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F or c == "\u202e"]
    assert raw == [], f"raw control characters reached the terminal: {raw!r}"


@pytest.mark.parametrize(
    "argv",
    [
        ["runs"],
        ["show", "{run}"],
        ["failures"],
        ["retention", "show"],
        ["trace", "{run}"],
        ["trace", "{run}", "--step", STEP],
    ],
)
def test_recorded_text_is_printed_as_text(hostile: str, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main([a.format(run=hostile) for a in argv]) == 0
    captured = capsys.readouterr()
    out = captured.out
    _no_raw_controls(out + captured.err)
    assert "Traceback" not in captured.err
    if argv[0] in ("runs", "show", "failures"):
        assert "bad [/] and [bold]loud[/bold] :x:" in out  # markup and emoji codes shown as written
        assert "\\x1b]8;;http://evil.example/" in out  # (tables cut the rest of the message)
    if argv[0] == "show":
        assert "\\x1b[2J" in out and "\\x9b31m" in out
    if argv[0] in ("runs", "show", "retention"):
        assert "flow[/]\\x1b[31m" in out
    if argv[0] == "show":
        assert "step[bold]\\x07" in out and "summary bad [/]" in out and "\\u202eevil" in out
    if argv[0] == "trace":
        assert "Boom: bad [/] and [bold]loud[/bold]" in out and "\\x1b[2J" in out


def test_a_trace_written_to_a_file_is_exact(hostile: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "trace.txt"
    assert main(["trace", hostile, "-o", str(target)]) == 0
    text = target.read_text(encoding="utf-8")
    assert f"Boom: {MESSAGE}" in text  # the file keeps every byte; only terminals get escapes


def test_json_output_escapes_every_control_character(hostile: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["runs", "--json"], ["show", hostile, "--json"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        _no_raw_controls(out)
        data = json.loads(out)
        run = data["items"][0] if "items" in data else data
        assert run["error"]["message"] == MESSAGE and run["flow_id"] == FLOW  # the same values, escaped


def test_visible_and_json_safe() -> None:
    assert visible("a\x1b[2Jb\tc\nd\x9b\u202e") == "a\\x1b[2Jb\\tc\\nd\\x9b\\u202e"
    assert visible("a\tb\nc\rd\x00", lines=True) == "a\tb\nc\\rd\\x00"
    assert visible("caf\u00e9 \U0001f600 [/]") == "caf\u00e9 \U0001f600 [/]"
    dumped = json.dumps({"m": "\x9b\u2028\x7f\x1b"}, ensure_ascii=False)
    assert json_safe(dumped) == '{"m": "\\u009b\\u2028\\u007f\\u001b"}'
    assert json.loads(json_safe(dumped)) == {"m": "\x9b\u2028\x7f\x1b"}


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (["runs", "--since", "99999999999d"], EXIT_USAGE, ["--since", "shorter span"]),
        (["failures", "--since", "99999999999d"], EXIT_USAGE, ["--since", "shorter span"]),
        (["runs", "--since", "0001-01-01T00:00:00+14:00"], EXIT_USAGE, ["--since"]),
        (["runs", "--since", "yesterday"], EXIT_USAGE, ["--since", "6h"]),
        (["trace", "run_x", "--step", "s", "--try", str(10**20)], EXIT_USAGE, ["--try", "1 to 2147483647"]),
        (["trace", "run_x", "--step", "s", "--try", "0"], EXIT_USAGE, ["--try"]),
        (["runs", "--limit", str(10**20)], EXIT_USAGE, ["--limit", "1 to 500"]),
        (["failures", "--limit", "-1"], EXIT_USAGE, ["--limit"]),
        (["runs", "--status", "nope"], EXIT_USAGE, ["unknown status 'nope'", "failed", "crashed"]),
        (["runs", "--status", "[/]\x1b[2J"], EXIT_USAGE, ["unknown status", "\\x1b[2J"]),
        (["serve", "--port", "99999"], EXIT_USAGE, ["--port", "1 to 65535"]),
        (["retention", "sweep", "--orphan-grace", "99999999999999d"], EXIT_USAGE, ["--orphan-grace", "24h"]),
        (["runs", "--bogus"], EXIT_USAGE, ["unrecognized arguments: --bogus", "--help"]),
        (["show", "[/]\x1b]8;;x\x1b\\"], EXIT_NOT_FOUND, ["no run with id", "\\x1b]8;;x"]),
    ],
)
def test_bad_input_is_one_line_with_the_documented_exit_code(
    _isolated_home: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, words: list[str]
) -> None:
    try:
        assert main(argv) == code
    except SystemExit as exc:  # argparse's own errors exit through the parser
        assert exc.code == code
    captured = capsys.readouterr()
    line = _one_line(captured.err)
    _no_raw_controls(captured.err)
    for word in words:
        assert word in line


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg2://rd:s3cr3t-pw@127.0.0.1/rd",
        "postgresql+nosuchdriver://rd@127.0.0.1/rd",
        "sqlite+pysqlcipher:///x.db",
    ],
)
def test_a_database_url_whose_driver_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    monkeypatch.setenv("RUNDOSSIER_DB_URL", url)
    assert main(["runs"]) == EXIT_CONFIG
    line = _one_line(capsys.readouterr().err)
    assert "ConfigError" in line and "driver" in line and "pip install 'rundossier[postgres]'" in line
    assert "s3cr3t-pw" not in line


def test_a_damaged_trace_blob_is_one_line_naming_it(hostile: str, capsys: pytest.CaptureFixture[str]) -> None:
    rec = Recorder.from_env()
    uri = rec.store.get_run(hostile).trace_uri or ""
    rec.blobs.put(rec.blobs.key_for(uri), b"\x1f\x8b\x08 not really gzip")
    assert main(["trace", hostile]) == EXIT_ERROR
    line = _one_line(capsys.readouterr().err)
    assert "BlobCorrupt" in line and uri in line and "damaged" in line


def test_a_bug_is_one_line_and_the_traceback_comes_with_debug(
    hostile: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug deep inside")

    monkeypatch.setattr(commands, "_fmt_time", broken)
    assert main(["runs"]) == EXIT_ERROR
    line = _one_line(capsys.readouterr().err)
    assert "unexpected KeyError" in line and "--debug" in line
    for argv in (["--debug", "runs"], ["runs", "--debug"]):
        assert main(argv) == EXIT_ERROR
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "a bug deep inside" in err
        assert err.strip().splitlines()[-1].startswith("error: unexpected KeyError")
