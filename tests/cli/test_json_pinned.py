"""The CLI's `--json` output, pinned: `runs`, `show` and `failures` for one seeded store, compared
(field names, order, nulls, types) with tests/data/cli_json.json, written from the hand-written
encoders the CLI had before it read through the Reader's models. Volatile values are replaced as
in tests/server/test_wire_json.py.

    WIRE_JSON_WRITE=1 pytest tests/cli/test_json_pinned.py   # rewrite the pinned file
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from rundossier import Recorder
from rundossier.cli.main import main
from tests.seeding import failed_run, history_run, log_run
from tests.server.test_wire_json import Normalizer

PINNED = Path(__file__).resolve().parents[1] / "data" / "cli_json.json"


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_json_output_is_pinned(_isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = Recorder.from_env()
    history_run(rec.store, flow_id="nightly_etl", ago=timedelta(days=1))
    failed = failed_run(rec)
    logged = log_run(rec, 20)
    rec.close()
    got = Normalizer()(
        {
            "runs": _json(capsys, "runs", "--json"),
            "runs_failed": _json(capsys, "runs", "--json", "--status", "failed"),
            "show_failed": _json(capsys, "show", failed, "--json"),
            "show_logged": _json(capsys, "show", logged, "--json"),
            "failures": _json(capsys, "failures", "--json"),
        }
    )
    text = json.dumps(got, indent=1, ensure_ascii=False) + "\n"
    if os.environ.get("WIRE_JSON_WRITE"):
        PINNED.write_text(text, encoding="utf-8")
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    for name in pinned:
        assert json.dumps(got.get(name), indent=1) == json.dumps(pinned[name], indent=1), name
    assert list(got) == list(pinned)
