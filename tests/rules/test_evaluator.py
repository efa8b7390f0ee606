"""The periodic evaluator on a real store and both databases: alerts fire and resolve,
open one work order, survive a restart mid-`for`, and stay single under racing
evaluators; silences and inhibitions hold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from db.database import Database
from fleet.state import DeviceStateRepository, StateUpdate
from rules.alerts import AlertStore
from rules.catalog import Catalog
from rules.evaluator import Evaluator, in_partition
from rules.spec import Rule
from service.lifecycle import Origin, State
from service.orders import OrderRequest, WorkOrders
from telemetry.backends import StoreSettings, create_store
from telemetry.records import Reading
from telemetry.store import TelemetryStore

T0 = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
M = timedelta(minutes=1)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TelemetryStore]:
    s = create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts"))
    async with s:
        yield s


def catalog(*rows: dict[str, Any]) -> Catalog:
    c = Catalog()
    for row in rows:
        rule = Rule.model_validate(row)
        c.rules[rule.id] = rule
    return c


LEAK_PRESSURE = {
    "id": "pump_weak",
    "device_type": "water_purifier",
    "title": "Pump weak",
    "severity": "critical",
    "problem_kind": "pump_failure",
    "when": {
        "threshold": {
            "metric": "pressure_kpa",
            "over": "30m",
            "agg": "mean",
            "below": 400,
            "clear": 500,
        }
    },
    "for": "20m",
    "work_order": {"open": "auto", "priority": 3},
    "wording": {"en": "Your pump is weak."},
}
PM_HIGH = {
    "id": "pm_high",
    "device_type": "purifier",
    "title": "PM high",
    "problem_kind": "air_quality",
    "when": {"threshold": {"metric": "pm25", "above": 75, "clear": 50}},
    "work_order": {"open": "review"},
}


async def feed(
    store: TelemetryStore, db: Database, device: str, device_type: str, at: datetime, **metrics: Any
) -> None:
    """A reading in the store and the device's state, as ingest would leave them."""
    ts = int(at.timestamp() * 1000)
    seq = int(at.timestamp())
    reading = Reading(device_type, device, 1, seq, ts, metrics)
    await store.write([reading])
    DeviceStateRepository(db).apply([StateUpdate.of_reading(reading, at)])


async def pressure(store: TelemetryStore, db: Database, start: datetime, minutes: int,
                   kpa: float) -> None:  # fmt: skip
    for i in range(minutes):
        await feed(store, db, "wp-1", "water_purifier", start + i * M, pressure_kpa=kpa)


async def test_a_windowed_rule_fires_after_for_and_opens_one_job_straight_to_dispatch(
    world: Database, store: TelemetryStore
) -> None:
    ev = Evaluator(db=world, store=store, catalog=catalog(LEAK_PRESSURE))
    await pressure(store, world, T0, 30, 350.0)
    first = await ev.run_pass(T0 + 30 * M)
    assert (first.pending, first.fired) == (1, 0)  # true, waiting out `for: 20m`
    await pressure(store, world, T0 + 30 * M, 20, 350.0)
    fired = await ev.run_pass(T0 + 50 * M)
    assert (fired.fired, fired.orders_opened) == (1, 1)
    (alert,) = AlertStore(world).find(state="firing")
    assert alert.pending_since == T0 + 30 * M and alert.customer_id == "c-sms"
    assert alert.evidence["value"] == 350.0 and alert.evidence["raise_at"] == 400
    assert (alert.evidence["over"], alert.evidence["agg"]) == ("30m", "mean")
    order = WorkOrders(world).get(alert.work_order_id or 0)
    assert order.state is State.OPEN and order.priority == 3  # `auto`: no review
    assert order.problem_kind == "pump_failure" and order.origin is Origin.AUTO

    again = await ev.run_pass(T0 + 51 * M)
    assert again.fired == 0 and len(AlertStore(world).find()) == 1  # still the one alert

    await pressure(store, world, T0 + 51 * M, 40, 560.0)  # repaired
    resolved = await ev.run_pass(T0 + 91 * M)
    assert resolved.resolved == 1
    assert AlertStore(world).get(alert.id).state == "resolved"
    kinds = [h["kind"] for h in AlertStore(world).history(alert.id)]
    assert kinds == ["fired", "work_order", "resolved"]


async def test_a_review_rule_proposes_the_job_for_ops(
    world: Database, store: TelemetryStore
) -> None:
    await feed(store, world, "ap-1", "purifier", T0, pm25=120.0)
    report = await Evaluator(db=world, store=store, catalog=catalog(PM_HIGH)).run_pass(T0)
    assert report.orders_opened == 1
    (order,) = WorkOrders(world).find()
    assert order.state is State.PROPOSED and order.evidence_count == 1


async def test_a_restart_in_the_middle_of_for_neither_loses_it_nor_fires_twice(
    world: Database, store: TelemetryStore
) -> None:
    await pressure(store, world, T0, 30, 350.0)
    await Evaluator(db=world, store=store, catalog=catalog(LEAK_PRESSURE)).run_pass(T0 + 30 * M)
    # the process dies; a new one starts with the same database
    await pressure(store, world, T0 + 30 * M, 10, 350.0)
    fresh = Evaluator(db=world, store=store, catalog=catalog(LEAK_PRESSURE))
    assert (await fresh.run_pass(T0 + 40 * M)).fired == 0  # 10 of 20 minutes: still pending
    await pressure(store, world, T0 + 40 * M, 10, 350.0)
    assert (await fresh.run_pass(T0 + 50 * M)).fired == 1  # 20 minutes since the first pass
    again = Evaluator(db=world, store=store, catalog=catalog(LEAK_PRESSURE))
    assert (await again.run_pass(T0 + 51 * M)).fired == 0


async def test_two_evaluators_racing_open_one_alert_and_one_job(
    world: Database, store: TelemetryStore
) -> None:
    await feed(store, world, "ap-1", "purifier", T0, pm25=120.0)
    evaluators = [Evaluator(db=world, store=store, catalog=catalog(PM_HIGH)) for _ in range(3)]
    reports = await asyncio.gather(*(e.run_pass(T0) for e in evaluators))
    assert sum(r.fired for r in reports) == 1
    assert len(AlertStore(world).find()) == 1 and len(WorkOrders(world).find()) == 1


async def test_a_silence_keeps_the_alert_but_opens_no_job(
    world: Database, store: TelemetryStore
) -> None:
    AlertStore(world).add_silence(
        customer_id="c-app", ends_at=T0 + timedelta(hours=2), created_by="ops:anna",
        comment="customer on holiday", now=T0 - M,
    )  # fmt: skip
    await feed(store, world, "ap-1", "purifier", T0, pm25=120.0)  # ap-1 is c-app's
    report = await Evaluator(db=world, store=store, catalog=catalog(PM_HIGH)).run_pass(T0)
    assert (report.fired, report.silenced, report.orders_opened) == (1, 1, 0)
    (alert,) = AlertStore(world).find()
    assert alert.silenced_by is not None and WorkOrders(world).find() == []
    # the silence ends while the alert still fires: now the job opens, once
    later = T0 + timedelta(hours=3)
    await feed(store, world, "ap-1", "purifier", later, pm25=130.0)
    evaluator = Evaluator(db=world, store=store, catalog=catalog(PM_HIGH))
    assert (await evaluator.run_pass(later)).orders_opened == 1
    assert (await evaluator.run_pass(later + M)).orders_opened == 0
    assert AlertStore(world).get(alert.id).work_order_id is not None
    assert len(WorkOrders(world).find()) == 1


async def test_an_open_job_for_the_problem_inhibits_a_new_alert_and_gets_its_evidence(
    world: Database, store: TelemetryStore
) -> None:
    existing = WorkOrders(world).open_or_attach(
        OrderRequest(
            device_id="ap-1",
            problem_kind="air_quality",
            origin=Origin.APP,
            source="app",
            title="Smells dusty",
        )
    )
    await feed(store, world, "ap-1", "purifier", T0, pm25=120.0)
    report = await Evaluator(db=world, store=store, catalog=catalog(PM_HIGH)).run_pass(T0)
    assert (report.fired, report.orders_opened, report.inhibited) == (1, 0, 1)
    (alert,) = AlertStore(world).find()
    assert alert.work_order_id == existing.order.id and "already open" in (alert.inhibited_by or "")
    assert WorkOrders(world).get(existing.order.id).evidence_count == 2


async def test_an_offline_device_neither_fires_nor_resolves_its_sensor_alerts(
    world: Database, store: TelemetryStore
) -> None:
    await feed(store, world, "ap-1", "purifier", T0, pm25=120.0)
    DeviceStateRepository(world).apply(
        [StateUpdate("ap-1", "purifier", received_at=T0 + M, online=False, status_ts=0)]
    )
    report = await Evaluator(db=world, store=store, catalog=catalog(PM_HIGH)).run_pass(T0 + M)
    assert report.fired == 0 and AlertStore(world).find() == []


def test_devices_split_over_replicas_by_hash() -> None:
    ids = [f"sim-ap-1-{i:06d}" for i in range(1000)]
    shares = [sum(in_partition(d, (k, 3)) for d in ids) for k in range(3)]
    assert sum(shares) == 1000 and min(shares) > 280  # each device in exactly one
    with pytest.raises(ValueError, match="0 to 2"):
        Evaluator(db=None, store=None, catalog=Catalog(), partition=(3, 3))  # type: ignore[arg-type]
