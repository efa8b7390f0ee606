"""The households' air reports from the command line, and the evaluator queuing last
month's messages by itself once a day."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from db.tables import notifications
from fleetcare.rules_runner import run_evaluator
from fleetcare.settings import Settings, load_settings
from fleetcare.wiring import open_database
from service.air_report import AirReports
from service.registry import ServiceRegistry, parse_doc
from telemetry.backends import create_store
from tests.fleetcare.command_line import fleetcare_in
from tests.service.test_air_report import home_value, readings
from tests.world import WORLD

SHANGHAI = ZoneInfo("Asia/Shanghai")


def seeded(data_dir: Path) -> tuple[Settings, str]:
    """The test world, and Li's purifier ap-1 reporting all last month. The month."""
    settings = load_settings(None, data_dir=str(data_dir))
    db = open_database(settings)
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    db.dispose()
    month = AirReports.last_month(datetime.now(UTC), "Asia/Shanghai")

    async def seed() -> None:
        async with create_store(settings.store, settings.data_dir) as store:
            await store.write(readings("ap-1", home_value, SHANGHAI, month))

    asyncio.run(seed())
    return settings, f"{month:%Y-%m}"


def test_ops_read_a_homes_report_on_the_command_line(tmp_path: Path) -> None:
    fc, _ = fleetcare_in(tmp_path / "data")
    _, month = seeded(tmp_path / "data")
    out = fc("reports", "air", "ap-1", "--month", month, "--language", "en")
    assert "Indoor PM2.5" in out and "18:00-22:00" in out
    assert "Fewer than 10 homes" in out  # Li has only one neighbour's purifier
    doc = json.loads(fc("reports", "air", "ap-1", "--month", month, "--json"))
    assert doc["metrics"][0]["days_out"] == 1
    bad = fc("reports", "air", "wp-1", code=1)
    assert "declares no `air_quality`" in bad


def test_the_evaluator_queues_last_months_reports_once(tmp_path: Path) -> None:
    settings, month = seeded(tmp_path / "data")

    async def one_pass() -> None:
        await run_evaluator(settings, asyncio.Event(), once=True)

    asyncio.run(one_pass())
    asyncio.run(one_pass())  # a second evaluator start queues nothing twice
    db = open_database(settings)
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(notifications.c.customer_id, notifications.c.data).where(
                notifications.c.kind == "air_report"
            )
        ).all()
    db.dispose()
    assert [(r.customer_id, r.data["month"], r.data["device_id"]) for r in rows] == [
        ("c-app", month, "ap-1")
    ]
