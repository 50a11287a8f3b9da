"""A rundossier fault never changes a flow's outcome: storage or database unreachable during a failure."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from prefect import flow

from rundossier import Recorder
from rundossier.prefect import RunDossier
from rundossier.storage.spool import Spool
from tests.s3server import free_port

from .helpers import flow_run_id, run_flow


def _pipeline(examples: Any, dossier: RunDossier | None, name: str) -> Any:
    hooks = dossier.hooks() if dossier is not None else {}

    @flow(name=name, **hooks)
    def pipeline() -> None:
        examples.load(examples.transform(examples.extract()))

    return pipeline


def _frames(exc: BaseException) -> list[str]:
    tb, out = exc.__traceback__, []
    while tb is not None:
        out.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return out


def _outcome(state: Any) -> tuple[Any, ...]:
    """The flow's final state and exception as the caller sees them (frames of the user's code)."""
    exc = state.result(raise_on_failure=False)
    cause = exc.__cause__
    return (state.type, state.message, type(exc), exc.args, _frames(exc)[-1], type(cause), cause.args, _frames(cause))


def test_storage_unreachable_leaves_the_outcome_alone_and_spools_the_trace(examples: Any, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    down = RunDossier(
        storage_url="s3://rundossier-test/blobs",
        storage_options={
            "key": "k",
            "secret": "s",
            "client_kwargs": {"endpoint_url": dead, "region_name": "us-east-1"},
            "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}},
        },
        db_url=f"sqlite:///{tmp_path / 'rd.db'}",
        home=str(tmp_path / "home"),
    )
    plain = run_flow(_pipeline(examples, None, "storage-down-plain"))
    hooked = run_flow(_pipeline(examples, down, "storage-down"))
    assert _outcome(hooked) == _outcome(plain)
    assert _outcome(hooked)[2:5] == (RuntimeError, ("could not load batch 7",), "load")
    assert _outcome(hooked)[-1][-1] == "connect_warehouse"

    rec = Recorder(down.settings())
    run = rec.store.find_run("prefect", "storage-down", flow_run_id(hooked))
    assert run is not None and run.status == "failed" and run.spooled
    assert run.trace_uri.startswith("s3://rundossier-test/blobs/prefect/storage-down/")
    spool = Spool(tmp_path / "home" / "spool")
    traces = [
        gzip.decompress(data).decode()
        for path in spool.pending()
        for key, data in spool.load(path).item.blobs
        if key.endswith("trace.txt.gz")
    ]
    assert any("RuntimeError: could not load batch 7" in t and "in connect_warehouse" in t for t in traces)


@pytest.mark.parametrize(
    ("db_url", "spooled"),
    [
        ("postgresql+psycopg://rd@127.0.0.1:{port}/rd", True),  # nothing listens there
        # a SQLite file that cannot be created: the core does not spool when the store cannot even be built
        ("sqlite:///{tmp}/a-file/rd.db", False),
    ],
)
def test_database_unreachable_leaves_the_outcome_alone(
    examples: Any, tmp_path: Path, db_url: str, spooled: bool
) -> None:
    (tmp_path / "a-file").write_text("a file where the database's directory should be")
    down = RunDossier(
        storage_url=f"file://{tmp_path / 'blobs'}",
        db_url=db_url.format(port=free_port(), tmp=tmp_path),
        home=str(tmp_path / "home"),
    )
    plain = run_flow(_pipeline(examples, None, "db-down-plain"))
    hooked = run_flow(_pipeline(examples, down, "db-down"))
    assert _outcome(hooked) == _outcome(plain)
    if spooled:
        assert Spool(tmp_path / "home" / "spool").has_pending()  # rows and traces wait for the database
