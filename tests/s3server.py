"""Test helper: run moto's S3 server as a subprocess on loopback, and make buckets in it.

s3fs talks real HTTP to it (no in-process mocks). Fake AWS credentials are set in the
subprocess environment only; clients get them through `storage_options(endpoint)`, so nothing
depends on ~/.aws or on the AWS_* variables of the test process.

    with moto_s3_server() as endpoint:
        bucket = create_bucket(endpoint)
        store = BlobStore(f"s3://{bucket}/prefix", storage_options(endpoint))
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REGION = "us-east-1"
FAKE_KEY = "testing"
FAKE_SECRET = "testing"
START_ATTEMPTS = 200
START_INTERVAL = 0.05


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def moto_command(port: int) -> list[str]:
    """The command line that serves moto on 127.0.0.1:port (the venv's `moto_server` script)."""
    script = Path(sys.executable).with_name("moto_server")
    if script.exists():
        return [str(script), "-H", "127.0.0.1", "-p", str(port)]
    found = shutil.which("moto_server")
    if found:
        return [found, "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def storage_options(endpoint: str) -> dict[str, Any]:
    """fsspec/s3fs options that reach the moto server with fake credentials."""
    return {
        "key": FAKE_KEY,
        "secret": FAKE_SECRET,
        "client_kwargs": {"endpoint_url": endpoint, "region_name": REGION},
    }


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=FAKE_KEY,
        AWS_SECRET_ACCESS_KEY=FAKE_SECRET,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


def _answers_http(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=0.5):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


def _tail(log: Any) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode("utf-8", "replace")[-2000:]


@contextlib.contextmanager
def moto_s3_server(tries: int = 3) -> Iterator[str]:
    """Start moto_server on a free loopback port, yield its endpoint URL, stop it afterwards."""
    last_error = ""
    for _ in range(tries):  # another process may grab the free port before moto binds it
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            moto_command(port),
            env=_server_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            for _ in range(START_ATTEMPTS):
                if proc.poll() is not None or _answers_http(endpoint):
                    break
                time.sleep(START_INTERVAL)
            if proc.poll() is None and _answers_http(endpoint):
                yield endpoint
                return
            last_error = (
                f"moto_server exited with {proc.returncode}"
                if proc.poll() is not None
                else f"moto_server did not answer on {endpoint} within {START_ATTEMPTS * START_INTERVAL:.0f} s"
            ) + f"; its output:\n{_tail(log)}"
        finally:
            _stop(proc)
            log.close()
    raise RuntimeError(last_error)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def s3_client(endpoint: str) -> Any:
    """A botocore S3 client for the server; ignores ~/.aws and AWS_* of this process."""
    import botocore.config
    import botocore.session

    session = botocore.session.Session()
    session.set_config_variable("config_file", os.devnull)
    session.set_config_variable("credentials_file", os.devnull)
    return session.create_client(
        "s3",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=FAKE_KEY,
        aws_secret_access_key=FAKE_SECRET,
        config=botocore.config.Config(connect_timeout=3, read_timeout=15, retries={"max_attempts": 2}),
    )


def create_bucket(endpoint: str, prefix: str = "rd-test") -> str:
    """Create a uniquely named bucket on the server and return its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:16]}"
    client = s3_client(endpoint)
    try:
        client.create_bucket(Bucket=name)
    finally:
        client.close()
    return name


__all__ = [
    "moto_s3_server",
    "create_bucket",
    "storage_options",
    "s3_client",
    "free_port",
    "moto_command",
    "REGION",
]
