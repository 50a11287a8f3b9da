"""Policy rules (pure): validation, resolution order (exact > longest glob > default > built-in), config parsing."""

from __future__ import annotations

import pytest

from rundossier.core.retention.policy import (
    BUILTIN,
    BUILTIN_POLICY,
    Policy,
    PolicySet,
    Rule,
    parse_limit,
    policies_from_mapping,
)

RULES = [
    Rule("*", keep_days=60),
    Rule("finance_*", keep_days=7, blob_days=2),
    Rule("finance_daily_*", keep_last=10),
    Rule("finance_daily_report", keep_last=3),
    Rule("ml_?", keep_last=5),
    Rule("[ab]_etl", blob_days=1),
]


@pytest.mark.parametrize(
    ("flow", "rule", "policy", "reason"),
    [
        ("finance_daily_report", "finance_daily_report", (60, 3, 0), "exact rule for 'finance_daily_report'"),
        (
            "finance_daily_x",
            "finance_daily_*",
            (60, 10, 0),
            "longest matching glob 'finance_daily_*' (of 2 matching globs)",
        ),
        ("finance_weekly", "finance_*", (7, 100, 2), "longest matching glob 'finance_*'"),
        ("ml_a", "ml_?", (60, 5, 0), "longest matching glob 'ml_?'"),
        ("ml_ab", "*", (60, 100, 0), "default rule '*'"),
        ("b_etl", "[ab]_etl", (60, 100, 1), "longest matching glob '[ab]_etl'"),
        ("Finance_weekly", "*", (60, 100, 0), "default rule '*'"),  # case-sensitive
        ("a/b c", "*", (60, 100, 0), "default rule '*'"),
    ],
)
def test_resolution_order(flow: str, rule: str, policy: tuple[int, int, int], reason: str) -> None:
    r = PolicySet(RULES).resolve(flow)
    assert r.rule is not None and r.rule.pattern == rule
    assert (r.policy.keep_days, r.policy.keep_last, r.policy.blob_days) == policy
    assert r.reason == reason


def test_unset_limits_come_from_the_default_rule_then_the_built_in() -> None:
    r = PolicySet(RULES).resolve("finance_weekly")
    assert r.fields_from == {"keep_days": "finance_*", "keep_last": BUILTIN, "blob_days": "finance_*"}
    r = PolicySet(RULES).resolve("finance_daily_report")
    assert r.fields_from == {"keep_days": "*", "keep_last": "finance_daily_report", "blob_days": BUILTIN}


def test_without_rules_the_built_in_default_applies() -> None:
    r = PolicySet([]).resolve("anything")
    assert r.policy == BUILTIN_POLICY == Policy(30, 100, 0)
    assert r.rule is None and r.reason.startswith("built-in default (30 days or last 100 runs)")


def test_glob_ties_are_broken_by_the_pattern_not_by_order() -> None:
    a, b = Rule("x_*_z", keep_last=1), Rule("x_y_*", keep_last=2)
    assert PolicySet([a, b]).resolve("x_y_z").rule == PolicySet([b, a]).resolve("x_y_z").rule == a


def test_a_pattern_equal_to_the_flow_id_is_exact_even_with_glob_characters() -> None:
    r = PolicySet([Rule("weird[1]", keep_last=4)]).resolve("weird[1]")
    assert r.policy.keep_last == 4 and r.reason == "exact rule for 'weird[1]'"


@pytest.mark.parametrize(
    ("policy", "text"),
    [
        (Policy(30, 100, 0), "30 days or last 100 runs"),
        (Policy(1, 0, 0), "1 day"),
        (Policy(0, 1, 0), "last 1 run"),
        (Policy(0, 0, 0), "forever"),
        (Policy(30, 0, 7), "30 days; traces and logs 7 days"),
        (Policy(7, 0, 30), "7 days"),
    ],
)
def test_describe(policy: Policy, text: str) -> None:
    assert policy.describe() == text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keep_days": -1}, "keep_days must be a whole number of days from 0 (no limit) to 36500"),
        ({"keep_last": 1.5}, "keep_last must be a whole number of runs"),
        ({"blob_days": True}, "blob_days must be"),
        ({"keep_days": 36501}, "keep_days must be"),
        ({"keep_last": "10"}, "keep_last must be"),
    ],
)
def test_bad_limits_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Rule("x", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "must not be empty"),
        (" x", "whitespace"),
        ("a\nb", "control character"),
        ("x" * 251, "at most 250"),
        (3, "string"),
    ],
)
def test_bad_patterns_are_refused(pattern: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Rule(pattern)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "value"),
    [("30", 30), (" 7 ", 7), ("off", 0), ("None", 0), ("0", 0), ("", None), (None, None), (12, 12)],
)
def test_parse_limit(raw: object, value: int | None) -> None:
    assert parse_limit("keep_days", raw) == value


@pytest.mark.parametrize("raw", ["thirty", "-3", "1e3"])
def test_parse_limit_refuses_words_it_does_not_know(raw: str) -> None:
    with pytest.raises(ValueError, match="keep_last must be"):
        parse_limit("keep_last", raw)


def test_rules_from_an_airflow_cfg_section() -> None:
    section = {
        "db_url": "sqlite:///x.db",  # other keys of the section are ignored
        "retention_keep_days": "14",
        "retention_keep_last": "off",
        "retention_overrides": '{"finance_*": {"keep_days": 7}, "nightly": {"keep_last": "20", "blob_days": 2}}',
    }
    rules = policies_from_mapping(section, source="airflow.cfg")
    assert [(r.pattern, r.keep_days, r.keep_last, r.blob_days, r.source) for r in rules] == [
        ("*", 14, 0, None, "airflow.cfg"),
        ("finance_*", 7, None, None, "airflow.cfg"),
        ("nightly", None, 20, 2, "airflow.cfg"),
    ]


def test_an_empty_section_gives_no_rules() -> None:
    assert policies_from_mapping({"retention_overrides": "", "storage_url": "file:///x"}) == []


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"retention_keep_days": "many"}, "retention_keep_days: keep_days must be a number of days"),
        ({"retention_overrides": "{not json"}, "retention_overrides must be a JSON object"),
        ({"retention_overrides": "[1]"}, "must map flow patterns to limits"),
        ({"retention_overrides": {"x": 3}}, r"retention_overrides\['x'\] must be an object"),
        ({"retention_overrides": {"x": {"keep_dayz": 3}}}, "unknown keys \\['keep_dayz'\\]"),
        ({"retention_overrides": {"x": {"keep_days": -2}}}, r"retention_overrides\['x'\]: keep_days must be"),
        ({"retention_keep_forever": "1"}, "unknown retention setting 'retention_keep_forever'"),
    ],
)
def test_malformed_configuration_names_the_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        policies_from_mapping(section)


def test_rule_json_shape() -> None:
    assert Rule("finance_*", keep_days=7, source="cli").to_json() == {
        "flow_pattern": "finance_*",
        "kind": "glob",
        "keep_days": 7,
        "keep_last": None,
        "blob_days": None,
        "source": "cli",
        "updated_at": None,
    }
    assert [Rule(p).kind for p in ("*", "a*", "a")] == ["default", "glob", "exact"]
