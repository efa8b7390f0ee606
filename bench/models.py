"""`fleetcare bench models`: the models' two speed targets.

* **Scoring**: one daily filter-life scoring pass (`models.scoring.FilterLifeScoring`)
  over N devices (default 100,000) within 60 s on 2 cores. A simulated fleet's day of
  telemetry, hourly, is written to an embedded store and its devices to the registry
  (not timed); the timed part is the pass itself: the day's aggregates from the store,
  the wear state, the model, the predictions and the state written to the database.
* **Training**: `FilterLife.fit` on a simulated year of M devices (default 10,000)
  within 10 minutes. Simulating the year (the training data) is timed apart.

The pass includes the health model: every device is judged against its own baselines.
So that the detector and the classifier run on every device, the store holds two days;
the first (not timed) forms the baselines, with the health model set to judge after one
day instead of seven; the second is the timed pass.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from bench.report import emit, heading
from bench.rules_replay import stored_readings
from db.database import Database
from device_sim.fleet import Fleet, FleetSpec
from device_sim.imperfection import Imperfection
from fleetcare.registry_gen import generate
from models.evaluation.faults import simulate_faults
from models.evaluation.filter_life import simulate
from models.filter_life import FilterLife
from models.health import HealthModel
from models.scoring import FilterLifeScoring
from service.registry import ServiceRegistry, parse_doc
from telemetry.backends import StoreSettings, create_store

console = Console()
DAY0 = datetime(2026, 7, 1, tzinfo=UTC)
HEALTH_DEVICES, HEALTH_DAYS = 1000, 120


def train_health(devices: int, days: int) -> tuple[HealthModel, float]:
    run = simulate_faults(devices, seed=12, days=days, start=DAY0 - timedelta(days=days))
    began = time.perf_counter()
    return HealthModel().fit(run.history), time.perf_counter() - began


def train(devices: int, days: int) -> tuple[FilterLife, float, float]:
    began = time.perf_counter()
    run = simulate(devices, seed=11, days=days, start=DAY0 - timedelta(days=days))
    simulated = time.perf_counter() - began
    began = time.perf_counter()
    model = FilterLife().fit(run.snapshots)
    return model, simulated, time.perf_counter() - began


async def scoring_pass(
    model: FilterLife, health: HealthModel, devices: int, db_url: str | None, root: Path
) -> dict[str, float]:
    db = Database(db_url or f"sqlite:///{root / 'fc.sqlite3'}")
    db.upgrade()
    fleet = Fleet.create(
        FleetSpec(
            devices=devices,
            seed=3,
            start=DAY0.timestamp(),
            initial_wear=0.9,
            imperfection=Imperfection().always_online(),  # N devices, every one reporting
        )
    )
    ServiceRegistry(db).load(parse_doc(generate(fleet)))
    seeded = time.perf_counter()
    async with create_store(StoreSettings(backend="embedded"), str(root / "ts")) as store:
        for hour in range(48):
            t = DAY0.timestamp() + (hour + 1) * 3600
            fleet.advance(t)
            await store.write(stored_readings(fleet, t))
        seed_s = time.perf_counter() - seeded
        scoring = FilterLifeScoring(
            db,
            store,
            model,
            "bench",
            catch_up_days=2,
            health=replace(health, warmup=1),
            health_version="bench",
        )
        await scoring.run(DAY0 + timedelta(days=1, minutes=5))  # forms the baselines
        report = await scoring.run(DAY0 + timedelta(days=2, minutes=5))
    db.dispose()
    return {
        "devices": report.devices,
        "predictions": report.predictions,
        "judged": report.scores,
        "anomalous": report.anomalous,
        "seconds": report.seconds,
        "seed_seconds": seed_s,
    }


def run_models_bench(
    *,
    devices: int,
    train_devices: int,
    days: int,
    db_url: str | None,
    output: Path | None,
    health_devices: int = HEALTH_DEVICES,
    health_days: int = HEALTH_DAYS,
) -> str:
    console.print(f"training on {train_devices} simulated devices × {days} days …")
    model, simulated_s, fit_s = train(train_devices, days)
    console.print(f"training health on {health_devices} devices × {health_days} days …")
    health, health_fit_s = train_health(health_devices, health_days)
    console.print(f"scoring {devices} devices (seeding the store is not timed) …")
    with tempfile.TemporaryDirectory() as tmp:
        s = asyncio.run(scoring_pass(model, health, devices, db_url, Path(tmp)))
    where = "PostgreSQL" if db_url and db_url.startswith("postgresql") else "SQLite"
    text = "\n".join(
        [
            *heading("Models"),
            f"| daily scoring pass, {s['devices']:,.0f} devices ({s['predictions']:,.0f} stage "
            f"predictions, {s['judged']:,.0f} devices judged for health; embedded store, "
            f"{where}) "
            f"| {s['seconds']:.1f} s | ≤ 60 s |",
            f"| training (`FilterLife.fit`) on {train_devices:,} devices × {days} days "
            f"| {fit_s:.0f} s | ≤ 600 s |",
            f"| training health (`HealthModel.fit`) on {health_devices:,} devices × "
            f"{health_days} days, half with a fault | {health_fit_s:.0f} s | – |",
            f"| simulating the training data (apart from training) | {simulated_s:.0f} s | – |",
            "",
            f"Seeding the store with two days (hourly readings) took "
            f"{s['seed_seconds']:.0f} s and is not part of the pass; nor is the first "
            "day's pass, which forms the health baselines. With baselines of one day "
            "(the bench's shortcut) many devices read as anomalous; the model's false-alert "
            "rate is in docs/model-quality.md.",
            "",
        ]
    )
    return emit(text, output)
