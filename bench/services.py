"""What benchmarks stand on: InfluxDB 1.x started on a free loopback port with its data
in a directory (tests, bench), a fresh PostgreSQL database, a process's memory."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from fleetcare.brokers import free_port

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
    extra_http: str = ""  # more [http] settings, e.g. auth-enabled = true

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = self.root / "influxdb.conf"
        text = INFLUXD_CONFIG.format(root=self.root, port=self.port, rpc_port=self.rpc_port)
        config.write_text(text.replace("[logging]", f"  {self.extra_http}\n[logging]"))
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
    return shutil.which("influxd") or (
        "/usr/bin/influxd" if Path("/usr/bin/influxd").exists() else None
    )


def start_influxd(root: Path) -> Influxd:
    binary = influxd_binary()
    if binary is None:
        raise FileNotFoundError("influxd not installed: apt-get install -y influxdb")
    root.mkdir(parents=True, exist_ok=True)
    server = Influxd(root=root, port=free_port(), rpc_port=free_port(), binary=binary)
    server.start()
    return server


@contextmanager
def fresh_postgres(admin_url: str, prefix: str) -> Iterator[tuple[str, str]]:
    """A new database on the server `admin_url` reaches, dropped afterwards (connections
    left open to it are ended first): yields its URL and where it is (host:port)."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = admin.url.set(database=name).render_as_string(hide_password=False)
        yield url, f"{admin.url.host}:{admin.url.port or 5432}"
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def rss_mb(*pids: int) -> float:
    """Resident memory of these processes together, in MB (0 for one that is gone)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024
