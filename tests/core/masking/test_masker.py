"""Masker: user patterns checked at start and bounded in time, the budget, fields and data."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import pytest

from rundossier.core.masking import MASK, WITHHELD_PREFIX, Masker, withheld
from rundossier.errors import ConfigError
from rundossier.settings import Settings

GH = "ghp_" + "abcdefghijklmnopqrstuvwxyz0123456789"


# --- user patterns: refused at start when they backtrack catastrophically ----------------------


# (the regex engine runs `(a+)+$` or `^(x+x+)+y$` in linear time: those are not refused)
@pytest.mark.parametrize("pattern", [r"(a|a)*$", r"(a|aa)+$", r"(x|xx)+y$", r"(\w|\w)*$", r"(\d|[0-9])+$"])
def test_catastrophic_pattern_is_refused_at_start_naming_it(pattern: str) -> None:
    with pytest.raises(ConfigError, match="backtracks catastrophically") as info:
        Masker(patterns=["fine-[0-9]+", pattern])
    assert repr(pattern) in str(info.value)
    with pytest.raises(ConfigError, match="backtracks catastrophically"):
        Settings.resolve(environ={"RUNDOSSIER_MASK_PATTERNS": f'["{pattern}"]'.replace("\\", "\\\\")})


def test_the_issue_pattern_no_longer_hangs_a_task() -> None:
    # RUNDOSSIER_MASK_PATTERNS='["(a+)+$"]' and a message of 40 `a`s hung the task under `re`
    settings = Settings.resolve(environ={"RUNDOSSIER_MASK_PATTERNS": '["(a+)+$"]'})
    m = Masker(settings.mask_patterns)
    assert m.mask("a" * 40) == MASK
    assert m.mask("b" + "a" * 40 + "!") == "b" + "a" * 40 + "!"


def test_ordinary_patterns_pass_the_start_check() -> None:
    patterns = [r"emp-\d{4}", r"(?i)ssn=(?P<secret>\d{3}-\d{2}-\d{4})", r"(?<=acct )\d+", r"[A-Z]{2}\d{20}"]
    m = Masker(patterns=patterns)
    assert m.mask("emp-1234 SSN=123-45-6789 acct 998877") == "*** SSN=*** acct ***"


# --- every pass bounded in time ------------------------------------------------------------------


def test_a_pattern_slow_on_one_input_is_interrupted_and_the_text_withheld(caplog: pytest.LogCaptureFixture) -> None:
    # the probe does not try Greek letters: this one passes the start check, then meets its input
    m = Masker(patterns=[r"(\u03b4|\u03b4)*$"], budget_s=0.2)
    secret = "δ" * 40 + "! password=hunter2"
    out = m.mask(secret)
    assert out == withheld("mask pattern 1 ran past the masking time budget")
    assert "hunter2" not in out
    assert m.mask("no greek here") == "no greek here"
    assert [r.getMessage() for r in caplog.records if r.name == "rundossier"][0].startswith(
        "rundossier withheld a text it could not mask (mask pattern 1 ran past"
    )


class FakeClock:
    """A clock the test moves: a redactor 'takes' as long as the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_slow_redactor_withholds_the_text_after_the_budget() -> None:
    clock = FakeClock()

    def slow(text: str) -> str:
        clock.now += 5.0
        return text

    m = Masker(redactors=[slow], budget_s=1.0, clock=clock)
    out = m.mask("password=hunter2")
    assert out.startswith(WITHHELD_PREFIX) and "ran past the masking time budget" in out
    assert "hunter2" not in out


def test_the_budget_grows_with_the_text() -> None:
    clock = FakeClock()

    def slow(text: str) -> str:
        clock.now += 1.5  # over 1 s, but within 1 s + 1 s per MiB for 1 MiB of text
        return text

    m = Masker(redactors=[slow], budget_s=1.0, budget_per_mib_s=1.0, clock=clock)
    assert m.mask("x" * (1 << 20)) == "x" * (1 << 20)
    assert m.mask("x").startswith(WITHHELD_PREFIX)


def test_mask_many_over_budget_withholds_every_text() -> None:
    clock = FakeClock()

    def slow(text: str) -> str:
        clock.now += 0.6
        return text

    m = Masker(redactors=[slow], budget_s=1.0, clock=clock)
    out = m.mask_many(["a", "b", "c"])  # one budget for the call: the third runs past it
    assert all(o.startswith(WITHHELD_PREFIX) and "ran past the masking time budget" in o for o in out)


def test_a_raising_user_pattern_withholds_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    m = Masker(patterns=[r"acct-\d+"])

    def boom(text: str, timeout: float) -> str:
        raise RecursionError(text)

    monkeypatch.setattr(type(m._patterns[0]), "sub", lambda self, text, timeout: boom(text, timeout))
    assert m.mask("acct-12 password=x") == withheld("mask pattern 1 raised RecursionError")


def test_a_stored_reason_never_holds_the_pattern_text() -> None:
    # a user may list a literal secret as a pattern: messages name it by number only
    m = Masker(patterns=["hunter2", r"(\u03b4|\u03b4)*$"], budget_s=0.1)
    out = m.mask("hunter2 " + "δ" * 40 + "!")
    assert out == withheld("mask pattern 2 ran past the masking time budget")


# --- fields and structured data --------------------------------------------------------------------


def test_mask_fields_masks_each_and_keeps_none() -> None:
    assert Masker().mask_fields("load " + GH, None, "plain") == ("load ghp_***", None, "plain")


def test_mask_data_masks_keys_values_and_secret_named_keys() -> None:
    m = Masker()
    data = {
        "password": "hunter2",
        "db": {"api_key": 12345, "host": "db", "port": 5432},
        "note": "uses " + GH,
        GH: "as a key",
        "max_tokens": 256,
        "auth": ["airflow", "s3cr3t"],
        "author": "alice",
        "list": ["token=abc", 1, None, True],
        "when": datetime(2026, 1, 1, tzinfo=UTC),
        "empty": "",
    }
    out = m.mask_data(data)
    assert out == {
        "password": MASK,
        "db": {"api_key": MASK, "host": "db", "port": 5432},
        "note": "uses ghp_***",
        "ghp_***": "as a key",
        "max_tokens": 256,
        "auth": [MASK, MASK],
        "author": "alice",
        "list": ["token=***", 1, None, True],
        "when": datetime(2026, 1, 1, tzinfo=UTC),  # no finding in its str(): kept as it is
        "empty": "",
    }
    assert m.mask_data(None) is None and m.mask_data("password=x") == "password=***"


def test_mask_data_masks_the_str_of_other_objects_only_when_needed() -> None:
    class Conn:
        def __str__(self) -> str:
            return "postgresql://etl:hunter2@db/wh"

    assert Masker().mask_data({"conn": Conn()}) == {"conn": "postgresql://etl:***@db/wh"}


def test_mask_data_withholds_what_it_cannot_read() -> None:
    class Broken(Mapping[str, str]):
        def __getitem__(self, k: str) -> str:
            raise KeyError(k)

        def __iter__(self) -> Iterator[str]:
            raise RuntimeError("password=hunter2")

        def __len__(self) -> int:
            return 1

    out = Masker().mask_data(Broken())
    assert out == withheld("data could not be read (RuntimeError)")
    deep: list[object] = []
    cur = deep
    for _ in range(60):
        nxt: list[object] = []
        cur.append(nxt)
        cur = nxt
    cur.append("password=hunter2")
    assert "hunter2" not in repr(Masker().mask_data(deep))


def test_warnings_are_once_per_cause(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rundossier")
    m = Masker(redactors=[lambda t: None])
    for _ in range(5):
        m.mask("x")
    assert m.withheld == 5
    assert len([r for r in caplog.records if r.name == "rundossier"]) == 1
