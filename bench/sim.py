"""`fleetcare bench sim`: the simulator's memory and speed at fleet scale.

Measured in a fresh process so its RSS is the simulator's own: fleet state for N devices,
the physics cost of a simulated day (vectorised, 5-minute steps), building one round of
readings, and the publish rate of one runner process into a fresh Mosquitto.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

console = Console()

_CHILD = r"""
import json, sys, time, threading
from pathlib import Path
from device_sim.fleet import Fleet, FleetSpec
from device_sim.runner import RunOptions, run
from telemetry.connection import MqttSettings

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
del readings
pub = Fleet.create(FleetSpec(devices=min(devices, 20000), seed=2, start=time.time() - 86400))
stats = run(pub, MqttSettings(url=f"mqtt://127.0.0.1:{port}"),
            RunOptions(speed=86400 * 30, report_interval_s=600, duration_s=seconds))
print(json.dumps({"base": base, "created": created, "after": after, "day_s": day_s,
                  "round_s": round_s, "sent": stats.sent, "acknowledged": stats.acknowledged,
                  "seconds": stats.elapsed_s}))
"""


def run_sim_bench(*, devices: int, seconds: float, output: Path | None) -> str:
    from fleetcare.brokers import start_mosquitto

    broker = start_mosquitto(Path(tempfile.mkdtemp(prefix="fleetcare-sim-bench-")))
    try:
        started = time.time()
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(devices), str(broker.port), str(seconds)],
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.time() - started
    finally:
        broker.stop()
    r = json.loads(out.stdout.strip().splitlines()[-1])
    state_mb = r["created"] - r["base"]
    cmd = "fleetcare " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    report = "\n".join(
        [
            f"### Simulator, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "",
            f"Command: `{cmd}`  ",
            f"{devices} devices (40 % purifiers, 30 % water purifiers, 30 % air conditioners); "
            f"one process; {wall:.0f} s wall in all.",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| fleet state for {devices} devices (RSS added) | {state_mb:.0f} MB |",
            f"| process RSS after a simulated day and a round of readings | {r['after']:.0f} MB |",
            f"| physics of one simulated day (288 five-minute steps) | {r['day_s']:.1f} s |",
            f"| one round of readings ({devices} messages' metrics) | {r['round_s']:.2f} s |",
            f"| publish rate of one runner into Mosquitto, QoS 1, broker-acknowledged "
            f"({r['acknowledged']} in {r['seconds']:.1f} s) | "
            f"{r['acknowledged'] / r['seconds']:,.0f} msg/s |",
            "",
        ]
    )
    console.print(report)
    if output is not None:
        with output.open("a") as f:
            f.write(report + "\n")
    return report
