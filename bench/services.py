"""InfluxDB 1.x started on a free loopback port with its data in a directory (tests, bench)."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

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
