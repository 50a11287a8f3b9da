"""Fixtures for blob tests: a moto S3 server shared by the session (logic in tests/s3server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

try:
    from s3server import moto_s3_server
except ImportError:  # tests/ became a package
    from tests.s3server import moto_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL (http://127.0.0.1:PORT) of a moto S3 server running as a subprocess."""
    with moto_s3_server() as endpoint:
        yield endpoint
