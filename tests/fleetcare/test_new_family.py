"""A family onboarded as data only, end to end on the real services (Mosquitto, InfluxDB,
PostgreSQL): its devices' messages are stored, its profile's rules raise alerts (a
threshold, a fault code, a consumable due, offline), the alerts open jobs, dispatch sends
the technician who can do the family with the part in stock, and the app's health card
and the console's evidence chart show the profile's metrics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient

from api.accounts import Accounts, Role
from fleetcare.apiserver import build_api
from fleetcare.brokers import MosquittoProcess
from fleetcare.wiring import catalog_from
from rules.alerts import AlertStore
from rules.evaluator import Evaluator
from service.dispatch import Dispatcher
from service.lifecycle import State
from service.orders import WorkOrders
from service.registry import ServiceRegistry, parse_doc
from tests.ingest.helpers import now_ms, publish, settings_for, telemetry, topic, wait_until
from tests.ingest.test_ingest_e2e import _acked, running_worker
from tests.services import Influxd

EVERY_DAY = {d: ["00:00", "23:59"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
REGISTRY: dict[str, list[dict[str, Any]]] = {
    "outlets": [{"id": "o-1", "name": "Minhang", "timezone": "Asia/Shanghai"}],
    "territories": [{"id": "t-1", "name": "Gumei", "outlet_id": "o-1"}],
    "customers": [{"id": "c-1", "name": "Zhou", "timezone": "Asia/Shanghai", "language": "zh-CN"}],
    "parts": [
        {"sku": "DH-FILTER-01", "name": "Washable filter", "price_cents": 3900},
        {"sku": "DH-SENSOR-01", "name": "Humidity sensor", "price_cents": 5900},
        {"sku": "DH-COMP-01", "name": "Compressor", "price_cents": 59900},
    ],
    "technicians": [
        {
            "id": "tech-ac",
            "name": "Sun",
            "outlet_id": "o-1",
            "timezone": "Asia/Shanghai",
            "working_hours": EVERY_DAY,
            "skills": [{"device_type": "air_conditioner"}],
            "territories": ["t-1"],
        },
        {
            "id": "tech-dh",
            "name": "Qian",
            "outlet_id": "o-1",
            "timezone": "Asia/Shanghai",
            "working_hours": EVERY_DAY,
            "skills": [{"device_type": "dehumidifier"}],
            "territories": ["t-1"],
        },
    ],
    "stock": [
        {"outlet_id": "o-1", "sku": "DH-FILTER-01", "qty": 4},
        {"outlet_id": "o-1", "sku": "DH-SENSOR-01", "qty": 2},
        {"outlet_id": "o-1", "sku": "DH-COMP-01", "qty": 1},
    ],
    "devices": [
        {
            "id": "dh-1",
            "device_type": "dehumidifier",
            "model": "DH-20L",
            "serial": "SN-DH-1",
            "customer_id": "c-1",
            "territory_id": "t-1",
            "address": "8 Gumei Rd",
        }
    ],
}


def reading(seq: int, **metrics: Any) -> tuple[str, bytes]:
    return telemetry("dh-1", seq, device_type="dehumidifier", **metrics)


async def test_a_family_known_only_from_its_profile_goes_from_message_to_job_to_app(
    tmp_path: Path, mosquitto: MosquittoProcess, influxd: Influxd, postgres_url: str
) -> None:
    s = settings_for(
        tmp_path,
        mosquitto.port,
        db={"url": postgres_url},
        store={"backend": "influxdb", "influx_url": influxd.url, "influx_database": "newfamily"},
    )
    async with running_worker(s) as w:
        ServiceRegistry(w.db).load(parse_doc(REGISTRY))
        normal = {"running": True, "humidity_pct": 58.0, "power_w": 480.0, "fan_level": 2}
        publish(
            mosquitto.port,
            [
                reading(1, **normal, compressor_current_a=3.1, filter_hours=120.0),
                reading(2, **normal, compressor_current_a=9.4, filter_hours=121.0),  # threshold
                reading(3, **normal, compressor_current_a=3.0, filter_hours=512.0),  # filter due
                (
                    topic("dehumidifier", "dh-1", "event"),
                    orjson.dumps(
                        {
                            "v": 1,
                            "device_id": "dh-1",
                            "ts": now_ms(),
                            "seq": 4,
                            "boot": 1,
                            "event": "error_code",
                            "data": {"code": "E1"},
                        }
                    ),
                ),
            ],
        )
        await wait_until(lambda: _acked(w.metrics, 4), 20, "stored")
        assert await w.store.count(device_type="dehumidifier") == 3

        async def alerted() -> bool:
            return len(AlertStore(w.db).find(device_id="dh-1", limit=10)) >= 3

        await wait_until(alerted, 20, "the profile's per-message rules fired at ingest")
        fired = {a.rule_id for a in AlertStore(w.db).find(device_id="dh-1", limit=10)}
        assert {
            "dehumidifier_overcurrent",
            "dehumidifier_filter_due",
            "dehumidifier_code_e1",
        } <= fired

        # a day later the unit has gone quiet: the evaluator says it is offline
        publish(mosquitto.port, [(topic("dehumidifier", "dh-1", "status"), b"offline")])
        await asyncio.sleep(1.0)
        evaluator = Evaluator(
            db=w.db, store=w.store, catalog=catalog_from(s.rules), device_time=False
        )
        await evaluator.run_pass(datetime.now(UTC) + timedelta(hours=25))
        fired = {a.rule_id for a in AlertStore(w.db).find(device_id="dh-1", limit=20)}
        assert "dehumidifier_offline" in fired

    orders = WorkOrders(w.db)
    jobs = {o.problem_kind: o for o in orders.find(limit=20)}
    assert set(jobs) == {"compressor_fault", "filter_replacement", "sensor_fault"}
    for job in jobs.values():
        assert job.device_type == "dehumidifier"
        o = job
        if job.state is State.PROPOSED:  # approved: its SLA clock starts
            o = orders.transition(job.id, State.OPEN, actor="ops", reason="telemetry confirms it")
        assert o.due_at is not None
    report = Dispatcher(w.db).run()
    assert report.assigned == 3, report.unassignable
    for o in orders.find(limit=20):
        assert o.technician_id == "tech-dh"  # the one who does dehumidifiers

    key = Accounts(w.db).create("ops-1", name="Ops", role=Role.OPS).key
    with TestClient(build_api(s)) as api:
        auth = {"Authorization": f"Bearer {key}"}
        card = api.get(
            "/api/v1/devices/dh-1/health", headers={**auth, "Accept-Language": "zh-CN"}
        ).json()["card"]
        assert [line["label"] for line in card][:3] == ["湿度", "目标湿度", "滤网"]
        assert card[0]["metric"] == "humidity_pct" and card[0]["value"] == 58.0
        chart = api.get("/api/v1/devices/dh-1/telemetry", headers=auth)
        assert chart.status_code == 200, chart.text
        series = {x["metric"]: x for x in chart.json()["series"]}
        assert list(series) == ["humidity_pct", "power_w", "airflow_m3h", "compressor_current_a"]
        # the readings from InfluxDB, in the chart's buckets
        assert [p["value"] for p in series["humidity_pct"]["points"] if p["value"]] == [58.0]
