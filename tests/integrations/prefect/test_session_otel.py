"""The trace context Prefect's run telemetry keeps on a flow run (its `__OTEL_TRACEPARENT` label)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from rundossier.integrations.prefect.session import prefect_traceparent

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"__OTEL_TRACEPARENT": PARENT, "prefect.flow.id": "x"}, PARENT),
        ({"prefect.flow.id": "x"}, None),
        ({"__OTEL_TRACEPARENT": 7}, None),
        (None, None),
    ],
)
def test_prefect_traceparent(labels: Any, expected: str | None) -> None:
    assert prefect_traceparent(SimpleNamespace(labels=labels)) == expected
    assert prefect_traceparent(object()) is None
