"""Per-message rules fire at ingest, from a real broker, as soon as the batch holding the
message is stored: no evaluator pass needed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson

from fleetcare.brokers import MosquittoProcess
from fleetcare.wiring import open_database
from tests.ingest.helpers import now_ms, publish, settings_for, telemetry, topic, wait_until
from tests.ingest.test_ingest_e2e import running_worker
from tests.world import WORLD
from workorders.alerts import AlertStore
from workorders.lifecycle import State
from workorders.orders import WorkOrders
from workorders.service_registry import ServiceRegistry, parse_doc


async def test_a_leak_and_a_fault_code_fire_at_ingest_and_open_their_jobs(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    settings = settings_for(tmp_path, mosquitto.port)
    db = open_database(settings)
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    alerts = AlertStore(db)
    async with running_worker(settings):
        started = time.monotonic()
        leak = telemetry("wp-1", 1, device_type="water_purifier", leak=True, tds_out_ppm=9.0)
        e6 = (
            topic("air_conditioner", "ac-1", "event"),
            orjson.dumps(
                {"v": 1, "device_id": "ac-1", "ts": now_ms(), "seq": 1, "boot": 1,
                 "event": "error_code", "data": {"code": "E6", "text": "low refrigerant"}}
            ),
        )  # fmt: skip
        healthy = telemetry("ap-1", 1, pm25=8.0, filter_life_pct=80.0)
        await asyncio.to_thread(publish, mosquitto.port, [leak, e6, healthy])

        async def two_alerts() -> bool:
            return len(await asyncio.to_thread(alerts.find, state="firing")) == 2

        await wait_until(two_alerts, 10, "the leak and E6 alerts")
        latency = time.monotonic() - started
    fired = {a.rule_id: a for a in alerts.find(state="firing")}
    assert set(fired) == {"water_leak", "ac_refrigerant_leak"}
    assert fired["ac_refrigerant_leak"].evidence["code"] == "E6"
    orders = WorkOrders(db)
    for alert in fired.values():
        order = orders.get(alert.work_order_id or 0)
        assert order.state is State.OPEN  # both rules open jobs straight to dispatch
    assert latency < 10
    db.dispose()


async def test_a_message_older_than_its_rules_last_resolution_opens_nothing(
    tmp_path: Path,
) -> None:
    """A leak reading delivered again after its alert was resolved (a crash's redelivery,
    or a device's resend after a broker restart) belongs to the closed episode; a newer
    one is a new leak."""
    from datetime import UTC, datetime

    from rules.catalog import load_catalog
    from rules.evaluator import row_of
    from rules.machine import RuleState
    from rules.stream import StreamChecks
    from telemetry.records import Reading
    from workorders.db import Database

    db = Database(f"sqlite:///{tmp_path / 'fc.sqlite3'}")
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    checks, alerts = StreamChecks(db, load_catalog()), AlertStore(db)
    t0 = 1_780_000_000_000

    def leak(seq: int, ts: int) -> Reading:
        return Reading("water_purifier", "wp-1", 1, seq, ts, {"leak": True, "tds_out_ppm": 9.0})

    await checks.on_batch([leak(1, t0)], [])
    assert [a.rule_id for a in alerts.find(state="firing")] == ["water_leak"]
    # the evaluator resolves it an hour later, and saves the rule's state as inactive
    resolved_at = datetime.fromtimestamp(t0 / 1000 + 3600, UTC)
    alerts.resolve("water_leak", "wp-1", resolved_at, {})
    alerts.save_states([row_of(RuleState("water_leak", "wp-1", evaluated_at=resolved_at))])
    await checks.on_batch([leak(1, t0)], [])  # the same message again
    assert alerts.find(state="firing") == []
    await checks.on_batch([leak(2, t0 + 7_200_000)], [])  # a leak after the resolution
    assert len(alerts.find(state="firing")) == 1 and len(alerts.find()) == 2
    db.dispose()
