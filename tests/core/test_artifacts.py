"""The manifest's pure vocabulary: roles, URI normalisation, the URI key, checksum comparison."""

from __future__ import annotations

import pytest

from rundossier.core.artifacts import Role, changed, check_role, normalize_uri, uri_key


@pytest.mark.parametrize(("given", "role"), [("input", Role.INPUT), ("OUTPUT", Role.OUTPUT), (" output ", Role.OUTPUT)])
def test_roles(given: str, role: Role) -> None:
    assert check_role(given) is role


@pytest.mark.parametrize("bad", ["in", "", "write", "inputs"])
def test_a_bad_role_names_the_two_there_are(bad: str) -> None:
    with pytest.raises(ValueError, match="'input' or 'output'"):
        check_role(bad)


@pytest.mark.parametrize(
    ("uri", "stored"),
    [
        ("/data/x.csv", "file:///data/x.csv"),
        ("s3://b/k", "s3://b/k"),
        ("  gs://b/k ", "gs://b/k"),
        ("relative/path", "relative/path"),
        ("postgresql://db/schema.table", "postgresql://db/schema.table"),
    ],
)
def test_normalize_uri(uri: str, stored: str) -> None:
    assert normalize_uri(uri) == stored


def test_an_empty_uri_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a URI"):
        normalize_uri("   ")


def test_uri_key_is_fixed_size_and_tells_uris_apart() -> None:
    keys = {uri_key(u) for u in ("s3://a", "s3://b", "s3://a/" + "x" * 10000, "s3://\udcff")}
    assert len(keys) == 4 and {len(k) for k in keys} == {32}
    assert uri_key("s3://a") == uri_key("s3://a")


@pytest.mark.parametrize(
    ("before", "after", "result"),
    [("sha256:1", "sha256:2", True), ("sha256:1", "sha256:1", False), (None, "x", False), ("x", None, False)],
)
def test_changed(before: str | None, after: str | None, result: bool) -> None:
    assert changed(before, after) is result
