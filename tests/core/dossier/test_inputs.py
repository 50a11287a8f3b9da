"""Artifacts as evidence: the failed try's inputs that were missing, empty, or changed since the
flow's last success become signals of its dossier."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rundossier.core.dossier import Baseline, build_dossier
from rundossier.core.dossier.inputs import MAX_INPUT_SIGNALS, input_signals
from tests.core.dossier.streams import OK_RUN_ID, run, step, t


@dataclass
class Art:
    uri: str
    present: bool | None = True
    size: int | None = 10
    checksum: str | None = "sha256:a"
    step_id: str = "load"
    try_number: int | None = 1
    role: str = "input"


@pytest.mark.parametrize(
    ("now", "before", "codes"),
    [
        (Art("s3://x", present=False, size=None, checksum=None), [], ["input_missing"]),
        (Art("s3://x", size=0), [], ["input_empty"]),
        (Art("s3://x", checksum="sha256:b"), [Art("s3://x")], ["input_changed"]),
        (Art("s3://x"), [Art("s3://x")], []),  # unchanged
        (Art("s3://x", checksum=None), [Art("s3://x")], []),  # unknown now: no claim
        (Art("s3://x", checksum="sha256:b"), [Art("s3://y")], []),  # not read last time
        (Art("s3://x", checksum="sha256:b"), [Art("s3://x", step_id="other")], []),  # another step's read
        (Art("s3://x", present=False, role="output"), [], []),  # an output is not an input
        (Art("s3://x", present=False, try_number=2), [], []),  # another try
        (Art("s3://x", present=None, size=None), [], []),  # not looked up
    ],
)
def test_input_signals(now: Art, before: list[Art], codes: list[str]) -> None:
    assert [s.code for s in input_signals("load", 1, [now], before)] == codes


def test_a_change_names_both_sizes_and_the_uri() -> None:
    (signal,) = input_signals("load", 1, [Art("s3://lake/x", size=3, checksum="etag:2")], [Art("s3://lake/x")])
    assert signal.text == "input s3://lake/x changed since the last successful run read it (10 -> 3 bytes)"
    assert (signal.step_id, signal.try_number) == ("load", 1)


def test_signals_are_bounded() -> None:
    many = [Art(f"s3://x/{i}", present=False) for i in range(50)]
    assert len(input_signals("load", 1, many)) == MAX_INPUT_SIGNALS


def test_the_dossier_of_a_failed_run_carries_its_input_signals() -> None:
    inputs = [Art("file:///d/fx_rates.csv", present=False, size=None, checksum=None), Art("file:///d/orders.csv")]
    failed = run(status="failed", root_step_id="load", root_try_number=1, finished_at=t(41))
    load = step("load", status="failed", started_at=22, finished_at=41, error_type="FileNotFoundError")
    ok = run(run_id=OK_RUN_ID, status="success", finished_at=t(30))
    baseline = Baseline(ok, [step("load", run_id=OK_RUN_ID, started_at=2, finished_at=20)], [], [
        Art("file:///d/orders.csv", checksum="sha256:old")
    ])  # fmt: skip
    d = build_dossier(failed, [load], [], baseline=baseline, now=t(50), inputs=inputs)
    codes = [(s.code, s.text) for s in d.signals if s.code.startswith("input_")]
    assert codes == [
        ("input_missing", "input file:///d/fx_rates.csv did not exist when the step read it"),
        ("input_changed", "input file:///d/orders.csv changed since the last successful run read it (10 -> 10 bytes)"),
    ]
    fine = build_dossier(run(status="success", finished_at=t(41)), [step("load", started_at=22, finished_at=41)], [],
                         now=t(50), inputs=inputs)  # fmt: skip
    assert not [s for s in fine.signals if s.code.startswith("input_")]
