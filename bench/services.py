"""What benchmarks and drills stand on: InfluxDB 1.x started on a free loopback port with
its data in a directory, a private PostgreSQL server the same way (one a drill may stop),
a fresh database on a shared PostgreSQL, a process's memory and Prometheus metrics."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
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


def postgres_bin_dir() -> Path | None:
    """Debian keeps initdb and pg_ctl out of PATH, under /usr/lib/postgresql/<version>."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parts)
    return versions[-1].parent if versions else None


@dataclass
class PostgresServer:
    """A PostgreSQL server of our own (initdb in `root`, trust auth, loopback only), so a
    drill can stop and restart it without touching the machine's. PostgreSQL refuses to
    run as root: as root, the server runs as the `postgres` account."""

    root: Path
    port: int
    bin_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {out.stdout}{out.stderr}")

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.root / "data"), "-U", "postgres", "-A", "trust")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "start", "-w", "-D", str(self.root / "data"),
            "-l", str(self.root / "postgres.log"), "-o", options,
        )  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.root / "data"))

    def remove(self) -> None:
        """Stop it if it runs, and delete its files."""
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.root.parent, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """A new PostgreSQL server in a new temp dir (its own, as the postgres account must
    reach it: pytest's tmp_path is root's alone), on a free port. `remove()` when done."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL not installed: apt-get install -y postgresql")
    top = Path(tempfile.mkdtemp(prefix="fleetcare-pg-"))
    top.chmod(0o755)
    server = PostgresServer(root=top / "pg", port=free_port(), bin_dir=bin_dir)
    server.init()
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
        host = admin.url.host
        socket = admin.url.query.get("host", "the default socket")
        yield url, f"{host}:{admin.url.port or 5432}" if host else f"Unix socket {socket}"
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


def scrape(port: int, timeout: float = 5.0) -> dict[str, float]:
    """A Prometheus text page as {sample name with labels: value} ({} when unreachable)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=timeout).text
    except httpx.HTTPError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, in seconds (0 when gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
