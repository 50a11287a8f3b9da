"""The OpenAPI document says what every operation returns: a schema for each success answer."""

from __future__ import annotations

from pathlib import Path

from rundossier.server import create_app
from rundossier.settings import Settings


def test_every_operation_documents_its_success_answer(tmp_path: Path) -> None:
    doc = create_app(Settings.resolve(explicit={"home": str(tmp_path)})).openapi()
    undocumented = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ok = op["responses"].get("200", {}).get("content", {})
            schemas = [c.get("schema") for c in ok.values()]
            if not schemas or not all(s and s != {} for s in schemas):
                undocumented.append(f"{method.upper()} {path}")
    assert undocumented == []
    run = doc["components"]["schemas"]["RunOut"]
    assert list(run["properties"])[:3] == ["run_id", "orchestrator", "flow_id"]
    assert "dossier" in doc["components"]["schemas"]["RunDetail"]["properties"]


def test_time_parameters_are_strings_that_say_what_they_accept(tmp_path: Path) -> None:
    doc = create_app(Settings.resolve(explicit={"home": str(tmp_path)})).openapi()
    for path, name in (("/api/runs", "since"), ("/api/runs", "until"), ("/api/failures", "since")):
        (param,) = [p for p in doc["paths"][path]["get"]["parameters"] if p["name"] == name]
        types = {s.get("type") for s in param["schema"].get("anyOf", [param["schema"]])}
        assert types == {"string", "null"}
        assert "6h" in param["description"] and "ISO-8601" in param["description"]
