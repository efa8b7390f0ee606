"""Real services for tests: InfluxDB, Mosquitto and PostgreSQL.

A service that cannot be found skips its tests on a developer machine and fails them
under CI=true (scripts/test.sh installs and starts what is missing).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleetcare.brokers import free_port, wait_port

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> None:
    """Fail under CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(what)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


INFLUXD_CONFIG = """
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  index-version = "tsi1"
  query-log-enabled = false
[coordinator]
  write-timeout = "10s"
[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  max-row-limit = 0
[logging]
  level = "warn"
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"""


@dataclass
class Influxd:
    root: Path
    port: int
    rpc_port: int
    binary: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = self.root / "influxdb.conf"
        config.write_text(
            INFLUXD_CONFIG.format(root=self.root, port=self.port, rpc_port=self.rpc_port)
        )
        log = (self.root / "influxd.log").open("ab")
        self.proc = subprocess.Popen(
            [self.binary, "-config", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + 30
        import httpx

        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 204:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"influxd did not start: {(self.root / 'influxd.log').read_text()}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def influxd_binary() -> str | None:
    return shutil.which("influxd") or ("/usr/bin/influxd" if Path("/usr/bin/influxd").exists() else None)


def start_influxd(root: Path) -> Influxd:
    binary = influxd_binary()
    if binary is None:
        missing("influxd not installed (scripts/test.sh runs apt-get install -y influxdb)")
        raise AssertionError("unreachable")
    root.mkdir(parents=True, exist_ok=True)
    server = Influxd(root=root, port=free_port(), rpc_port=free_port(), binary=binary)
    server.start()
    return server


def system_broker() -> tuple[str, int]:
    host, port = "127.0.0.1", int(os.environ.get("FLEETCARE_TEST_MQTT_PORT", "1883"))
    if not port_open(host, port):
        missing(f"no MQTT broker on {host}:{port}")
    return host, port


def postgres_admin_url() -> str:
    url = os.environ.get("FLEETCARE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    if not port_open("127.0.0.1", 5432) and "127.0.0.1:5432" in url:
        missing("no PostgreSQL on 127.0.0.1:5432")
    return url


__all__ = ["IN_CI", "Influxd", "missing", "port_open", "start_influxd", "system_broker", "wait_port"]
