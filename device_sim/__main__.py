"""`python -m device_sim`: the simulator on its own (what `fleetcare sim` runs)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from pathlib import Path

from device_sim.fleet import Fleet, FleetSpec
from device_sim.runner import Chaos, Connectivity, RunOptions, run
from device_sim.transport import PerDeviceOptions
from telemetry.connection import MqttSettings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m device_sim",
        description="Simulate air purifiers, water purifiers and air conditioners over MQTT.",
    )
    p.add_argument("--devices", type=int, default=100)
    p.add_argument(
        "--mode",
        choices=("accelerated", "realtime", "backfill"),
        default="accelerated",
        help="backfill: the history up to now as fast as the engine takes it, then stop",
    )
    p.add_argument("--processes", type=int, default=1, help="publisher processes")
    p.add_argument(
        "--per-device",
        action="store_true",
        help="one connection per device with its own credentials and Last Will",
    )
    p.add_argument("--device-secret", default="fleetcare-sim")
    p.add_argument("--max-backlog", type=int, default=None)
    p.add_argument(
        "--speed",
        type=float,
        default=3600.0,
        help="simulated seconds per wall second (3600: an hour a second)",
    )
    p.add_argument(
        "--report-interval",
        type=float,
        default=900.0,
        help="simulated seconds between a device's reports",
    )
    p.add_argument("--start-days-ago", type=float, default=180.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, default=None, help="stop after N wall seconds")
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    p.add_argument("--prefix", default="fleetcare")
    p.add_argument("--truth", type=Path, default=Path("ground-truth.jsonl"))
    p.add_argument("--duplicates", type=float, default=0.0, help="chaos: share sent twice")
    p.add_argument("--out-of-order", type=float, default=0.0, help="chaos: share sent late")
    p.add_argument("--malformed", type=float, default=0.0, help="chaos: share sent broken")
    p.add_argument("--outages-per-day", type=float, default=0.0)
    p.add_argument("--outage-hours", type=float, default=4.0)
    p.add_argument("--buffer", type=int, default=500)
    p.add_argument("--clock-skew", type=float, default=0.0)
    p.add_argument(
        "--faults-per-year",
        type=float,
        default=0.0,
        help="faults per device per year, onsets spread over the simulated window",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    fleet = Fleet.create(
        FleetSpec(
            devices=args.devices,
            seed=args.seed,
            start=time.time() - args.start_days_ago * 86400,
            faults_per_device_year=args.faults_per_year,
            fault_window_days=max(args.start_days_ago, 1.0),
        )
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stats = run(
        fleet,
        MqttSettings(url=args.broker, topic_prefix=args.prefix),
        RunOptions(
            mode=args.mode,
            processes=args.processes,
            per_device=PerDeviceOptions(secret=args.device_secret) if args.per_device else None,
            max_backlog=args.max_backlog,
            speed=args.speed,
            report_interval_s=args.report_interval,
            duration_s=args.duration,
            chaos=Chaos(
                duplicate=args.duplicates, out_of_order=args.out_of_order, malformed=args.malformed
            ),
            connectivity=Connectivity(
                outages_per_day=args.outages_per_day,
                outage_hours=args.outage_hours,
                buffer=args.buffer,
                clock_skew_s=args.clock_skew,
            ),
        ),
        stop,
    )
    fleet.truth.save(args.truth)
    print(f"sent {stats.sent}, acknowledged {stats.acknowledged}; ground truth in {args.truth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
