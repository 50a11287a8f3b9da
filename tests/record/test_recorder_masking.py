"""The recorder masks every text a caller hands it where it enters, and fails closed."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.core.masking import WITHHELD_PREFIX
from rundossier.settings import Settings

TOKEN = "ghp_" + "Zq8Xw2Lk9Vb4Nm7Tr5Yh3Jd6Fs1Gp0Ac4E"
KEY = "sk-proj-" + "Tq3Wz8Kd2Lm5Nx7Rb9Vc4Hs6Jf1Gp0AeYuIoPzXw"


def _rec(tmp_path: Path, **kw: object) -> Recorder:
    settings = Settings.resolve(
        explicit={
            "home": str(tmp_path / "home"),
            "db_url": f"sqlite:///{tmp_path}/r.db",
            "storage_url": f"file://{tmp_path}/blobs",
        }
    )
    return Recorder(settings, live_log_interval=None, **kw)  # type: ignore[arg-type]


def _stored_text(tmp_path: Path) -> str:
    """Every byte rundossier wrote: the database file and every blob, decompressed."""
    out = [(tmp_path / "r.db").read_bytes().decode("utf-8", "replace")]
    for f in (tmp_path / "blobs").rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            out.append(gzip.decompress(data).decode() if f.name.endswith(".gz") else data.decode("utf-8", "replace"))
            out.append(str(f.relative_to(tmp_path)))
    return "\n".join(out)


def test_tags_event_data_ids_and_step_names_are_masked(tmp_path: Path) -> None:
    rec = _rec(tmp_path)
    with pytest.raises(RuntimeError):
        with rec.run("etl", run_key=f"manual token={TOKEN}", tags={"api_key": "plain-value-1", "note": KEY}) as run:
            rec.record_event(
                run,
                "custom",
                f"saw {KEY}",
                data={"password": "plain-value-2", "n": [TOKEN]},
                raw_ref="https://u:plain-value-3@h/x",
            )
            with run.step(f"load {TOKEN}", upstream=[f"extract {KEY}"]):
                raise RuntimeError("boom")
    rec.close()
    stored = _stored_text(tmp_path)
    for secret in (TOKEN[4:], KEY[8:], "plain-value-1", "plain-value-2", "plain-value-3"):
        assert secret not in stored
    steps = rec.store.list_steps(run.run_id)
    assert run.run_key == "manual token=***" and [s.step_id for s in steps] == ["load ghp_***"]
    assert steps[0].upstream == ["extract sk-proj-***"]


def test_a_raising_redactor_withholds_the_trace_and_the_task_exception_passes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(text: str) -> str:
        raise ValueError("no")

    rec = _rec(tmp_path, redactors=[broken])
    err = RuntimeError(f"secret {TOKEN}")
    with pytest.raises(RuntimeError) as info:
        with rec.run("etl") as run, run.step("s"):
            print("a log line")
            raise err
    assert info.value is err
    rec.close()
    stored = _stored_text(tmp_path)
    assert TOKEN[4:] not in stored and WITHHELD_PREFIX in stored
    assert any("broken raised ValueError" in r.getMessage() for r in caplog.records if r.name == "rundossier")


def test_a_catastrophic_user_pattern_is_refused_when_the_recorder_starts(tmp_path: Path) -> None:
    from rundossier.errors import ConfigError

    with pytest.raises(ConfigError, match="backtracks catastrophically"):
        Recorder.from_env(home=str(tmp_path), mask_patterns=["(a|aa)+$"])
