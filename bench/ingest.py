"""`fleetcare bench ingest`: FleetCare ingest against the bare paho ceiling, in one run.

Every scenario uses a fresh Mosquitto (generated config) on a free port, the same load
generator (pre-encoded packets from a separate process), the same ~200-byte payloads over
`devices` ids, and runs its consumer as a separate process. A run is timed from the moment
the generator starts sending until the consumer has the last message (bare subscriber) or
has acknowledged it after a durable write (FleetCare).
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bench.loadgen import Producer, bench_payload
from bench.report import emit
from bench.services import Influxd, cpu_seconds, rss_mb, scrape, start_influxd
from fleetcare.brokers import MosquittoProcess, free_port, start_mosquitto

console = Console()

POINTS_PER_MESSAGE = len(orjson.loads(bench_payload("d", 0, 0))["metrics"])
THINGSBOARD_PER_CORE_S = 3333 / (0.20 * 4)


@dataclass
class Result:
    scenario: str
    messages: int
    seconds: float
    rss_mb: float | None = None
    check: str = ""
    # CPU seconds of the whole engine over the run: broker, workers and a store server
    cpu_s: float | None = None
    # the ingest workers' own CPU seconds: steadier than a rate on a shared machine
    worker_cpu_s: float | None = None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def _metric(port: int, name: str) -> float:
    """The sum of a metric's samples (over its labels); -1 when it is not there."""
    found = [v for k, v in scrape(port, timeout=2).items() if k.startswith(name)]
    return sum(found) if found else -1


class Worker:
    """`fleetcare ingest` as a separate process."""

    def __init__(
        self,
        root: Path,
        broker: MosquittoProcess,
        store_env: dict[str, str],
        client_id: str,
        protocol: str,
    ) -> None:
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "FLEETCARE_DATA_DIR": str(root),
            "FLEETCARE_MQTT__URL": broker.url,
            "FLEETCARE_MQTT__PROTOCOL": protocol,
            "FLEETCARE_INGEST__CLIENT_ID": client_id,
            "FLEETCARE_INGEST__METRICS_PORT": str(self.metrics_port),
            "FLEETCARE_INGEST__SILENCE_CHECK_S": "3600",
            "FLEETCARE_LOG__LEVEL": "WARNING",
            **store_env,
        }
        self.log = (root / f"{client_id}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fleetcare", "ingest"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_connected(self) -> None:
        deadline = time.monotonic() + 60
        while _metric(self.metrics_port, "fleetcare_ingest_mqtt_connected") != 1:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"worker did not connect; see {self.log.name}")
            time.sleep(0.1)
        time.sleep(0.5)  # subscriptions follow the CONNACK

    def acked(self) -> float:
        return _metric(self.metrics_port, "fleetcare_ingest_acknowledged_total")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


def _bare(
    broker: MosquittoProcess,
    n: int,
    devices: int,
    protocol: str,
    kind: str = "bare",
    extra: list[str] | None = None,
) -> float:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.consumers",
            kind,
            str(broker.port),
            str(n),
            *(extra or [protocol]),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{kind} consumer failed")
    producer = Producer(broker.port, n, devices)
    producer.start()
    t0 = producer.go()
    result = orjson.loads(proc.stdout.readline())
    proc.wait(30)
    producer.join(30)
    return float(result["last"] - t0)


def _ingest(
    root: Path,
    broker: MosquittoProcess,
    n: int,
    devices: int,
    store_env: dict[str, str],
    protocol: str,
    workers: int = 1,
    store_pid: int | None = None,
) -> tuple[float, float, list[Worker], tuple[float, float]]:
    """Seconds, peak worker RSS, the workers, and the CPU seconds spent on the run by the
    broker, the workers and the store server (`store_pid`) together, and by the workers."""
    ws = [Worker(root, broker, store_env, f"bench-ingest-{i}", protocol) for i in range(workers)]
    for w in ws:
        w.wait_connected()
    assert broker.proc is not None
    engine = [broker.proc.pid, *(w.proc.pid for w in ws), *([store_pid] if store_pid else [])]
    producer = Producer(broker.port, n, devices)
    producer.start()
    rss = 0.0
    cpu0 = sum(cpu_seconds(pid) for pid in engine)
    worker0 = sum(cpu_seconds(w.proc.pid) for w in ws)
    t0 = producer.go()
    while True:
        done = sum(max(0.0, w.acked()) for w in ws)
        rss = max(rss, *(rss_mb(w.proc.pid) for w in ws))
        if done >= n:
            break
        if any(w.proc.poll() is not None for w in ws):
            raise RuntimeError("a worker died; see its log in " + str(root))
        time.sleep(0.2)  # scraping /metrics costs the worker CPU: not too often
    elapsed = time.time() - t0
    cpu = sum(cpu_seconds(pid) for pid in engine) - cpu0
    worker = sum(cpu_seconds(w.proc.pid) for w in ws) - worker0
    producer.join(30)
    return elapsed, rss, ws, (cpu, worker)


def _count_embedded(root: Path) -> int:
    import sqlite3

    with sqlite3.connect(root / "telemetry.sqlite3") as conn:
        return int(conn.execute("SELECT count(*) FROM r_purifier").fetchone()[0])


def _count_influx(server: Influxd, db: str) -> int:
    r = httpx.post(
        f"{server.url}/query",
        params={"db": db, "rp": "fleetcare"},
        data={"q": "SELECT count(seq) FROM purifier"},
        timeout=60,
    )
    series = r.json()["results"][0].get("series") or [{"values": [[0, 0]]}]
    return int(series[0]["values"][0][1])


def run_bench(
    *,
    messages: int,
    devices: int,
    scenarios: list[str],
    naive_messages: int,
    rss_minutes: float,
    protocol: str,
    output: Path | None,
) -> list[Result]:
    work = Path(tempfile.mkdtemp(prefix="fleetcare-bench-"))
    influxd: Influxd | None = None
    results: list[Result] = []
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    )

    def fresh_broker(name: str) -> MosquittoProcess:
        return start_mosquitto(work / name)

    try:
        with progress:
            task = progress.add_task("ingest benchmark", total=len(scenarios))
            for scenario in scenarios:
                progress.update(task, description=f"scenario: {scenario}")
                broker = fresh_broker(scenario)
                root = work / f"{scenario}-data"
                root.mkdir()
                try:
                    if scenario == "bare-v5":
                        results.append(
                            Result(
                                "bare paho subscriber, count only, MQTT 5",
                                messages,
                                _bare(broker, messages, devices, "5"),
                            )
                        )
                    elif scenario == "embedded-v5":
                        secs, rss, ws, cpu = _ingest(root, broker, messages, devices, {}, "5")
                        for w in ws:
                            w.stop()
                        results.append(
                            Result(
                                "FleetCare ingest -> embedded (SQLite), MQTT 5",
                                messages,
                                secs,
                                rss,
                                f"stored {_count_embedded(root)}",
                                *cpu,
                            )
                        )
                    elif scenario == "bare":
                        results.append(
                            Result(
                                "(a) bare paho subscriber, count only",
                                messages,
                                _bare(broker, messages, devices, protocol),
                            )
                        )
                    elif scenario == "embedded":
                        secs, rss, ws, cpu = _ingest(root, broker, messages, devices, {}, protocol)
                        for w in ws:
                            w.stop()
                        stored = _count_embedded(root)
                        results.append(
                            Result(
                                "(b) FleetCare ingest -> embedded (SQLite)",
                                messages,
                                secs,
                                rss,
                                f"stored {stored}",
                                *cpu,
                            )
                        )
                    elif scenario in ("influxdb", "naive"):
                        if influxd is None:
                            influxd = start_influxd(work / "influxd")
                        db = f"bench_{uuid.uuid4().hex[:6]}"
                        if scenario == "naive":
                            httpx.post(
                                f"{influxd.url}/query", data={"q": f'CREATE DATABASE "{db}"'}
                            )
                            secs = _bare(
                                broker,
                                naive_messages,
                                devices,
                                protocol,
                                "naive",
                                [influxd.url, db],
                            )
                            results.append(
                                Result(
                                    "(d) naive: one InfluxDB request per message",
                                    naive_messages,
                                    secs,
                                )
                            )
                        else:
                            env = {
                                "FLEETCARE_STORE__BACKEND": "influxdb",
                                "FLEETCARE_STORE__INFLUX_URL": influxd.url,
                                "FLEETCARE_STORE__INFLUX_DATABASE": db,
                            }
                            secs, rss, ws, cpu = _ingest(
                                root,
                                broker,
                                messages,
                                devices,
                                env,
                                protocol,
                                store_pid=influxd.proc.pid if influxd.proc else None,
                            )
                            for w in ws:
                                w.stop()
                            results.append(
                                Result(
                                    "(b) FleetCare ingest -> InfluxDB 1.6",
                                    messages,
                                    secs,
                                    rss,
                                    f"stored {_count_influx(influxd, db)}",
                                    *cpu,
                                )
                            )
                    elif scenario == "shared":
                        secs, rss, ws, cpu = _ingest(
                            root, broker, messages, devices, {}, protocol, workers=2
                        )
                        split = [int(w.acked()) for w in ws]
                        for w in ws:
                            w.stop()
                        results.append(
                            Result(
                                "(c) two FleetCare workers, $share -> embedded",
                                messages,
                                secs,
                                rss,
                                f"stored {_count_embedded(root)}, split {split}",
                                *cpu,
                            )
                        )
                    elif scenario == "rss":
                        results.append(_rss_soak(root, broker, rss_minutes, protocol, progress))
                    else:
                        raise ValueError(f"unknown scenario {scenario!r}")
                finally:
                    broker.stop()
                progress.advance(task)
    finally:
        if influxd is not None:
            influxd.stop()
    report = _report(results, messages, devices, protocol)
    emit(report, output)
    return results


def _rss_soak(
    root: Path, broker: MosquittoProcess, minutes: float, protocol: str, progress: Progress
) -> Result:
    """Sustained load over 100k distinct devices; RSS sampled through the run."""
    rate, devices = 3000.0, 100_000
    n = int(rate * minutes * 60)
    w = Worker(root, broker, {}, "bench-rss", protocol)
    w.wait_connected()
    producer = Producer(broker.port, n, devices, rate=rate)
    producer.start()
    t0 = producer.go()
    samples: list[tuple[float, float]] = []
    task = progress.add_task("rss soak", total=n)
    while (done := w.acked()) < n:
        samples.append((time.time() - t0, rss_mb(w.proc.pid)))
        progress.update(task, completed=max(0, done))
        if w.proc.poll() is not None:
            raise RuntimeError("worker died during the soak")
        time.sleep(5)
    elapsed = time.time() - t0
    w.stop()
    producer.join(30)
    first = [r for t, r in samples if 60 <= t < 120] or [samples[0][1]]
    last = [r for t, r in samples if t >= elapsed - 60] or [samples[-1][1]]
    peak = max(r for _, r in samples)
    per_minute = [
        max((r for t, r in samples if m * 60 <= t < (m + 1) * 60), default=0)
        for m in range(int(elapsed // 60) + 1)
    ]
    check = (
        f"RSS by minute (MB): {', '.join(f'{r:.0f}' for r in per_minute if r)}; "
        f"min 1-2 avg {sum(first) / len(first):.0f}, last min avg "
        f"{sum(last) / len(last):.0f}, peak {peak:.0f}; stored {_count_embedded(root)}"
    )
    return Result(
        f"RSS soak: {rate:.0f} msg/s, {devices} devices, {minutes:g} min", n, elapsed, peak, check
    )


def _report(results: list[Result], messages: int, devices: int, protocol: str) -> str:
    ceiling = next((r.rate for r in results if r.scenario.startswith("(a)")), None)
    naive = next((r.rate for r in results if r.scenario.startswith("(d)")), None)
    one = next((r.rate for r in results if "embedded (SQLite)" in r.scenario), None)
    cmd = "fleetcare " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = [
        f"### Ingest, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, MQTT {protocol}, "
        f"throughput scenarios: {messages} messages over {devices} device ids, QoS 1, "
        "~200-byte payloads.",
        "",
        "| scenario | messages | seconds | msg/s | vs (a) | vs one worker | vs (d) "
        "| worker RSS MB | engine CPU s | data points per core-second | worker CPU µs/msg "
        "| check |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        vs_a = f"{r.rate / ceiling:.2f}" if ceiling else ""
        vs_one = f"{r.rate / one:.2f}×" if one and "(c)" in r.scenario else ""
        vs_d = f"{r.rate / naive:.1f}×" if naive and "(b)" in r.scenario else ""
        rss = f"{r.rss_mb:.0f}" if r.rss_mb else ""
        cpu = f"{r.cpu_s:.1f}" if r.cpu_s else ""
        per_core = f"{r.messages * POINTS_PER_MESSAGE / r.cpu_s:,.0f}" if r.cpu_s else ""
        per_msg = f"{r.worker_cpu_s / r.messages * 1e6:.1f}" if r.worker_cpu_s else ""
        lines.append(
            f"| {r.scenario} | {r.messages} | {r.seconds:.2f} | {r.rate:,.0f} | {vs_a} "
            f"| {vs_one} | {vs_d} | {rss} | {cpu} | {per_core} | {per_msg} | {r.check} |"
        )
    lines += [
        "",
        f"Data points: {POINTS_PER_MESSAGE} metrics per message. Engine CPU: the broker, "
        "the ingest workers and the InfluxDB server (the embedded store runs in the "
        "worker), from /proc over the run. For scale, ThingsBoard's published figure is "
        "3,333 data points per second at about 20 % of a 4-vCPU host: about "
        f"{THINGSBOARD_PER_CORE_S:,.0f} per core-second. Worker CPU: the ingest "
        "workers' own CPU time per message (all threads), which moves less than a rate "
        "when the machine is shared.",
    ]
    return "\n".join(lines) + "\n"
