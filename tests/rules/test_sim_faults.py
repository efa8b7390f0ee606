"""End to end with the simulator: every injected fault of a kind a built-in rule covers
raises the right alert and opens one job (on units that match their datasheet: the rules'
fixed thresholds miss a fault on a unit far enough off it, which the model evaluation
measures); a healthy fleet, as imperfect as a real one, over a simulated month stays
under one false alert per 1,000 device-days."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.rules_replay import PROBLEM_OF, ReplayResult, replay
from db.database import Database
from device_sim.fleet import Fleet, FleetSpec
from device_sim.imperfection import Imperfection
from rules.catalog import load_catalog
from service.orders import WorkOrders
from telemetry.backends import StoreSettings, create_store

START = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
DAY = 86400.0
# the faults the built-in rules diagnose today, and the device type they strike
COVERED = {
    "motor_wear": "purifier",
    "pm_sensor_stuck": "purifier",
    "ro_membrane_failure": "water_purifier",
    "pump_failure": "water_purifier",
    "leak": "water_purifier",
    "fan_bearing_wear": "air_conditioner",
    "refrigerant_leak": "air_conditioner",
}
# autumn: air conditioners switch from cooling to heating, the hardest month for the
# refrigerant-leak pattern (it watches suction pressure while cooling)
AUTUMN = datetime(2026, 10, 1, tzinfo=UTC).timestamp()


async def run(tmp_path: Path, fleet: Fleet, days: float) -> tuple[ReplayResult, Database]:
    db = Database(f"sqlite:///{tmp_path / 'fc.sqlite3'}")
    db.upgrade()
    async with create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts")) as store:
        result = await replay(fleet, db=db, store=store, catalog=load_catalog(), days=days)
    return result, db


async def test_every_covered_fault_on_datasheet_units_raises_its_alert_and_opens_one_job(
    tmp_path: Path,
) -> None:
    # the wiring from fault to alert to one job: units exactly on their datasheet (a unit
    # drawing 7 % less current than nominal hides a worn motor from the fixed threshold)
    spec = FleetSpec(devices=24, seed=5, start=START, imperfection=Imperfection.clean())
    fleet = Fleet.create(spec)
    pools = {g.device_type: list(g.ids) for g in fleet.groups.values()}
    faulty = {}
    for fault, device_type in COVERED.items():
        device = pools[device_type].pop(0)
        fleet.inject(device, fault, START + DAY)
        faulty[device] = fault
    result, db = await run(tmp_path, fleet, days=16)
    found = {d.device_id: d for d in result.detections}
    for device, fault in faulty.items():
        d = found[device]
        assert d.alert_at is not None, f"{fault} on {device} raised no alert"
        assert (d.alert_at - d.onset) / DAY < 15
    orders = Counter((o.device_id, o.problem_kind) for o in WorkOrders(db).find(limit=1000))
    for device, fault in faulty.items():
        assert orders[(device, PROBLEM_OF[fault])] == 1, f"{fault}: one job, not more"
    assert [(a.rule_id, a.device_id, a.value) for a in result.false_alerts] == []
    per_rule = Counter((a.rule_id, a.device_id) for a in result.alerts)
    assert max(per_rule.values()) == 1  # no storms: one alert per rule and device
    db.dispose()


@pytest.mark.timeout(300)
async def test_a_healthy_fleet_raises_under_one_false_alert_per_1000_device_days(
    tmp_path: Path,
) -> None:
    fleet = Fleet.create(FleetSpec(devices=40, seed=11, start=AUTUMN))
    result, db = await run(tmp_path, fleet, days=30)
    print(  # the figure, for docs/benchmarks.md
        f"healthy fleet: {len(result.false_alerts)} false alerts in "
        f"{result.device_days:.0f} device-days = {result.false_per_1000_device_days:.2f} per 1,000"
    )
    assert result.device_days == 1200
    assert result.false_per_1000_device_days < 1.0, [
        (a.rule_id, a.device_id, a.value) for a in result.false_alerts
    ]
    db.dispose()
