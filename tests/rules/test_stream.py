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
