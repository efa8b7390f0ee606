"""Real services for tests: InfluxDB, Mosquitto and PostgreSQL.

A service that cannot be found skips its tests on a developer machine and fails them
under CI=true (scripts/test.sh installs and starts what is missing).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.services import Influxd, influxd_binary
from bench.services import start_influxd as _start_influxd
from fleetcare.brokers import wait_port

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> None:
    """Fail under CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(what)


def free_port() -> int:
    """A loopback port nobody listens on (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def start_influxd(root: Path) -> Influxd:
    if influxd_binary() is None:
        missing("influxd not installed (scripts/test.sh runs apt-get install -y influxdb)")
    return _start_influxd(root)


def system_broker() -> tuple[str, int]:
    host, port = "127.0.0.1", int(os.environ.get("FLEETCARE_TEST_MQTT_PORT", "1883"))
    if not port_open(host, port):
        missing(f"no MQTT broker on {host}:{port}")
    return host, port


def postgres_admin_url() -> str:
    url = os.environ.get(
        "FLEETCARE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    if not port_open("127.0.0.1", 5432) and "127.0.0.1:5432" in url:
        missing("no PostgreSQL on 127.0.0.1:5432")
    return url


def ready(port: int) -> dict[str, Any] | None:
    """The supervisor's /readyz when every part runs, else None."""
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
    except httpx.HTTPError:
        return None
    body: dict[str, Any] = r.json()
    return body if r.status_code == 200 else None


def wait(
    what: str, check: Callable[[], Any], timeout: float = 60.0, context: Callable[[], str] = str
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n{context()}")


__all__ = [
    "IN_CI",
    "Influxd",
    "missing",
    "port_open",
    "start_influxd",
    "system_broker",
    "wait_port",
]


async def within(seconds: float, check: Callable[[], bool]) -> bool:
    """`check` came true within `seconds`, polled every tenth of a second (async tests)."""
    import asyncio

    for _ in range(int(seconds * 10)):
        if check():
            return True
        await asyncio.sleep(0.1)
    return check()


def metric_value(port: int, name: str) -> float:
    """A Prometheus sample's value from the /metrics on `port` (0 when absent or down)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    except httpx.HTTPError:
        return 0.0
    line = [x for x in text.splitlines() if x.startswith(name)]
    return float(line[0].split()[1]) if line else 0.0
