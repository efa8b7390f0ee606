"""`fleetcare bench sim`: the simulator's memory and speed at fleet scale.

Measured in a fresh process so its RSS is the simulator's own: fleet state for N devices,
the physics cost of a simulated day (vectorised, 5-minute steps), building one round of
readings. Then publish rates into a fresh Mosquitto, broker-acknowledged at QoS 1:
multiplexed from one and from two processes, and one connection per device.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from bench.report import emit

console = Console()

_CHILD = r"""
import json, sys, time, threading
from pathlib import Path
from device_sim.fleet import Fleet, FleetSpec

def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0

devices, port, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
base = rss_mb()
start = time.time() - 30 * 86400
fleet = Fleet.create(FleetSpec(devices=devices, seed=1, start=start, initial_wear=0.5))
created = rss_mb()
t0 = time.perf_counter(); fleet.advance(start + 86400); day_s = time.perf_counter() - t0
t0 = time.perf_counter(); readings = fleet.readings(); round_s = time.perf_counter() - t0
after = rss_mb()
print(json.dumps({"base": base, "created": created, "after": after, "day_s": day_s,
                  "round_s": round_s}))
"""


def _publish_rate(
    port: int, seconds: float, *, devices: int, processes: int = 1, per_device: bool = False
) -> tuple[int, float]:
    from device_sim.fleet import Fleet, FleetSpec
    from device_sim.runner import RunOptions, run
    from device_sim.transport import PerDeviceOptions
    from telemetry.connection import MqttSettings

    # a month of history to publish: the rate, not the catch-up with now, is what ends it
    fleet = Fleet.create(FleetSpec(devices=devices, seed=2, start=time.time() - 30 * 86400))
    options = RunOptions(
        speed=86400 * 30,
        report_interval_s=600,
        duration_s=seconds,
        processes=processes,
        per_device=PerDeviceOptions() if per_device else None,
        client_id=f"bench-sim-{processes}-{per_device}",
    )
    stats = run(fleet, MqttSettings(url=f"mqtt://127.0.0.1:{port}"), options)
    return stats.acknowledged, stats.elapsed_s


def _drive_engine(root: Path) -> tuple[float, float, int]:
    """One ingest worker (embedded store), fed first by the pre-encoded load generator of
    `bench ingest`, then by the simulator backfilling 1,000 devices' history: msg/s of
    each, into fresh brokers, plus the readings the simulator sent."""
    from bench.ingest import Worker, _ingest
    from device_sim.fleet import Fleet, FleetSpec
    from device_sim.runner import RunOptions, run
    from fleetcare.brokers import start_mosquitto
    from telemetry.connection import MqttSettings

    n = 150_000
    broker = start_mosquitto(root / "broker-loadgen")
    try:
        (root / "loadgen").mkdir()
        elapsed, _rss, workers, _ = _ingest(root / "loadgen", broker, n, 10_000, {}, "3.1.1")
        for w in workers:
            w.stop()
    finally:
        broker.stop()
    loadgen_rate = n / elapsed

    broker = start_mosquitto(root / "broker-sim")
    try:
        (root / "sim").mkdir()
        worker = Worker(root / "sim", broker, {}, "bench-sim-ingest", "3.1.1")
        worker.wait_connected()
        rounds = n // 1000
        fleet = Fleet.create(
            FleetSpec(devices=1000, seed=3, start=time.time() - rounds * 900 + 450)
        )
        t0 = time.time()
        stats = run(
            fleet,
            MqttSettings(url=broker.url),
            RunOptions(mode="backfill", report_interval_s=900, client_id="bench-sim-engine"),
        )
        deadline = time.time() + 300
        while worker.acked() < stats.sent and time.time() < deadline:
            time.sleep(0.2)
        sim_rate = worker.acked() / (time.time() - t0)
        worker.stop()
    finally:
        broker.stop()
    return loadgen_rate, sim_rate, stats.sent


def run_sim_bench(*, devices: int, seconds: float, output: Path | None) -> str:
    from fleetcare.brokers import start_mosquitto

    broker = start_mosquitto(Path(tempfile.mkdtemp(prefix="fleetcare-sim-bench-")))
    rates: dict[str, tuple[int, float]] = {}
    try:
        started = time.time()
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(devices), str(broker.port), str(seconds)],
            capture_output=True,
            text=True,
            check=True,
        )
        many = min(devices, 20_000)
        rates["one process, multiplexed"] = _publish_rate(broker.port, seconds, devices=many)
        rates["two processes, multiplexed"] = _publish_rate(
            broker.port, seconds, devices=many, processes=2
        )
        rates["1,000 devices, one connection each"] = _publish_rate(
            broker.port, seconds, devices=1000, per_device=True
        )
    finally:
        broker.stop()
    loadgen_rate, sim_rate, sim_sent = _drive_engine(
        Path(tempfile.mkdtemp(prefix="fleetcare-sim-engine-"))
    )
    wall = time.time() - started
    r = json.loads(out.stdout.strip().splitlines()[-1])
    state_mb = r["created"] - r["base"]
    cmd = "fleetcare " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    report = "\n".join(
        [
            f"### Simulator, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "",
            f"Command: `{cmd}`  ",
            f"{devices} devices (40 % purifiers, 30 % water purifiers, 30 % air conditioners); "
            f"{wall:.0f} s wall in all; {os.cpu_count()} cores shared with the broker.",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| fleet state for {devices} devices (RSS added) | {state_mb:.0f} MB |",
            f"| process RSS after a simulated day and a round of readings | {r['after']:.0f} MB |",
            f"| physics of one simulated day (288 five-minute steps) | {r['day_s']:.1f} s |",
            f"| one round of readings ({devices} messages' metrics) | {r['round_s']:.2f} s |",
            *(
                f"| publish rate, {name}, QoS 1, broker-acknowledged ({n:,} in {secs:.1f} s) "
                f"| {n / secs:,.0f} msg/s |"
                for name, (n, secs) in rates.items()
            ),
            f"| one ingest worker (embedded) fed by the pre-encoded load generator, 150,000 "
            f"messages | {loadgen_rate:,.0f} msg/s |",
            f"| the same worker fed by the simulator, backfill, 1,000 devices "
            f"({sim_sent:,} readings) | {sim_rate:,.0f} msg/s "
            f"(**{sim_rate / loadgen_rate:.2f}×** the load generator) |",
            "",
        ]
    )
    emit(report, output)
    return report
