"""`fleetcare bench anomaly`: the general streaming detector's speed and size targets.

* a streaming update ≤ 20 µs per point, amortised (one process, one series at a time,
  one channel and three channels);
* state ≤ 1 KB per device × metric (the packed bytes the evaluator stores);
* a scoring pass over N devices (default 100,000) ≤ 60 s on 2 cores: each device's state
  restored from bytes, a day of hourly readings of each metric scored, the state packed
  again, in two worker processes (the evaluator's partitioning by device).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console

from bench.report import emit, heading
from models.anomaly import StreamingDetector

console = Console()
START = datetime(2026, 7, 1, tzinfo=UTC).timestamp()
HOUR = 3600.0


def _day(rng: np.random.Generator, devices: int, metrics: int, day: int) -> np.ndarray:
    """(devices, 24, metrics): a daily rhythm per device and metric, with noise."""
    hours = np.arange(24)
    phase = rng.uniform(0, 2 * np.pi, (devices, 1, metrics))
    base = rng.uniform(10, 100, (devices, 1, metrics))
    rhythm = np.sin(2 * np.pi * hours[None, :, None] / 24 + phase)
    return base * (1 + 0.2 * rhythm) + rng.normal(0, 1, (devices, 24, metrics))


def _pass(args: tuple[int, int, int, int]) -> tuple[float, int, int]:
    """One worker's share: warm states over `warm_days` (not timed), then the timed day.
    Returns (seconds, points, state bytes of the first device)."""
    seed, devices, metrics, warm_days = args
    rng = np.random.default_rng(seed)
    states = [StreamingDetector(metrics).to_bytes() for _ in range(devices)]
    for day in range(warm_days + 1):
        data = _day(rng, devices, metrics, day)
        t0 = START + day * 86400.0
        began = time.perf_counter()
        for d in range(devices):
            det = StreamingDetector.from_bytes(states[d])
            rows = data[d]
            for h in range(24):
                det.update(t0 + h * HOUR, rows[h])
            states[d] = det.to_bytes()
        seconds = time.perf_counter() - began
    return seconds, devices * 24 * metrics, len(states[0])


def _update_cost(metrics: int, points: int) -> float:
    """µs per point per channel, one detector streaming `points` rows."""
    rng = np.random.default_rng(1)
    x = 50 + rng.normal(0, 1, (points, metrics))
    det = StreamingDetector(metrics)
    began = time.perf_counter()
    for i in range(points):
        det.update(START + i * 300.0, x[i])
    return (time.perf_counter() - began) / (points * metrics) * 1e6


def run_anomaly_bench(
    *, devices: int, metrics: int, workers: int, warm_days: int, output: Path | None
) -> str:
    console.print("streaming updates, one series at a time …")
    one = _update_cost(1, 200_000)
    three = _update_cost(3, 50_000)
    console.print(f"scoring pass: {devices:,} devices × {metrics} metric(s), {workers} workers …")
    share = [
        (i, devices // workers + (i < devices % workers), metrics, warm_days)
        for i in range(workers)
    ]
    began = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        results = list(pool.map(_pass, share))
    wall = time.perf_counter() - began
    timed = max(r[0] for r in results)
    points = sum(r[1] for r in results)
    size = results[0][2]
    per_metric = size / metrics
    text = "\n".join(
        [
            *heading("Streaming anomaly detector"),
            f"| streaming update, one channel (200,000 points) | {one:.1f} µs/point | ≤ 20 µs |",
            f"| streaming update, three channels with their relations (50,000 rows) "
            f"| {three:.1f} µs/point | ≤ 20 µs |",
            f"| state per device × metric ({metrics} metric(s) per device, packed) "
            f"| {per_metric:,.0f} bytes | ≤ 1,024 bytes |",
            f"| scoring pass: {devices:,} devices × {metrics} metric(s) × 24 hourly points "
            f"({points:,} points; state restored, scored, packed) on {workers} processes "
            f"| {timed:.1f} s | ≤ 60 s |",
            "",
            f"The pass's wall time including {warm_days} warm-up day(s) per worker (not timed) "
            f"and process start: {wall:.0f} s. Host: {os.cpu_count()} CPUs.",
            "",
        ]
    )
    return emit(text, output)
