"""The engine's long-running parts outlive a PostgreSQL outage: a round of their loop
fails, the part goes on, says so once, and resumes when the database is back, with
nothing they had to do lost (it waits in the database). A real PostgreSQL server of the
test's own is stopped and started under them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa

from bench.services import PostgresServer, postgres_bin_dir, start_postgres
from db.database import Database
from db.tables import device_commands
from fleet.commands import CommandOutbox
from fleetcare.brokers import free_port, mosquitto_available, start_mosquitto
from fleetcare.commands import run_command_publisher
from fleetcare.notifier import make_outbox, run_notifier
from fleetcare.rules_runner import run_evaluator
from fleetcare.settings import NotifySettings, load_settings
from telemetry.connection import MqttSettings
from tests.services import metric_value, missing, within


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    if postgres_bin_dir() is None:
        missing("PostgreSQL server binaries not installed (scripts/test.sh installs them)")
    server = start_postgres()
    try:
        yield server
    finally:
        server.remove()


def migrated(server: PostgresServer) -> Database:
    db = Database(server.url)
    db.upgrade()
    return db


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


async def test_the_notifier_outlives_a_database_outage(
    postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    db = migrated(postgres)
    outbox, _ = make_outbox(db, NotifySettings())
    caplog.set_level(logging.INFO, logger="fleetcare.notifier")
    stop = asyncio.Event()
    task = asyncio.create_task(run_notifier(outbox, stop, interval_s=0.1))
    try:
        await asyncio.sleep(0.5)
        postgres.stop()
        assert await within(10, lambda: "notification delivery failed" in " ".join(said(caplog)))
        await asyncio.sleep(0.5)  # more failed rounds: still one message, still running
        assert not task.done()
        postgres.start()
        assert await within(10, lambda: "notification delivery works again" in said(caplog))
    finally:
        stop.set()
        await task
        db.dispose()
    assert said(caplog).count("notification delivery failed; retrying every interval") == 1


async def test_the_command_sender_outlives_a_database_outage_and_then_sends(
    postgres: PostgresServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if not mosquitto_available():
        missing("mosquitto not installed (scripts/test.sh installs it)")
    broker = start_mosquitto(tmp_path / "broker")
    db = migrated(postgres)
    received: list[str] = []
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="wp-1")
    device.on_message = lambda _c, _u, m: received.append(m.topic)
    device.connect("127.0.0.1", broker.port)
    device.subscribe("fleetcare/v1/water_purifier/wp-1/cmd", qos=1)
    device.loop_start()
    caplog.set_level(logging.INFO, logger="fleetcare.commands")
    stop = asyncio.Event()
    settings = MqttSettings(url=broker.url)
    task = asyncio.create_task(
        run_command_publisher(CommandOutbox(db), settings, stop, interval_s=0.1)
    )
    try:
        await asyncio.sleep(1.0)  # connected, nothing pending
        postgres.stop()
        assert await within(10, lambda: "command sending failed" in " ".join(said(caplog)))
        assert not task.done()
        postgres.start()
        assert await within(10, lambda: "command sending works again" in said(caplog))
        with db.engine.begin() as conn:  # decided after the outage: it still goes out
            conn.execute(
                sa.insert(device_commands).values(
                    device_id="wp-1",
                    device_type="water_purifier",
                    cmd="repair",
                    args={},
                    created_at=datetime.now(UTC),
                    sent_at=None,
                )
            )
        assert await within(10, lambda: received == ["fleetcare/v1/water_purifier/wp-1/cmd"])
    finally:
        stop.set()
        await task
        device.loop_stop()
        device.disconnect()
        db.dispose()
        broker.stop()
    assert said(caplog).count("command sending failed; retrying every interval") == 1


def test_the_dispatcher_outlives_a_database_outage(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    migrated(postgres).dispose()
    log = tmp_path / "dispatch.log"
    env = {**os.environ, "FLEETCARE_DB__URL": postgres.url}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetcare", "--data-dir", str(tmp_path / "data"),
             "orders", "dispatch", "--every", "1"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def logged(text: str) -> bool:
        return text in log.read_text(errors="replace")

    def waited(seconds: float, check: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not check():
            time.sleep(0.1)
        return check()

    try:
        assert waited(30, lambda: logged("dispatching")), log.read_text()
        time.sleep(1.5)  # a round or two
        postgres.stop()
        assert waited(10, lambda: logged("dispatch round failed")), log.read_text()
        time.sleep(2)  # more failed rounds
        assert proc.poll() is None, log.read_text()
        postgres.start()
        assert waited(15, lambda: logged("dispatch round works again")), log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert log.read_text().count("dispatch round failed") == 1


async def test_the_evaluator_outlives_a_database_outage_whatever_it_was_reading(
    postgres: PostgresServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Whether a pass or the refresh of product profiles before it meets the outage,
    that pass fails, not the evaluator (a dead one would leave faults unalerted until
    the supervisor's restart got through)."""
    port = free_port()
    settings = load_settings(
        None,
        data_dir=str(tmp_path / "data"),
        rules={"metrics_port": port, "interval_s": 0.1},
        db={"url": postgres.url},
        ingest={"profiles_refresh_s": 0.1},  # every pass asks for new profile versions
    )
    migrated(postgres).dispose()
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="fleetcare.rules")
    task = asyncio.create_task(run_evaluator(settings, stop))
    try:
        await asyncio.sleep(1.0)  # up, and passing
        postgres.stop()
        failed = "fleetcare_rules_passes_failed_total"
        assert await within(10, lambda: metric_value(port, failed) >= 3)
        assert not task.done()
        postgres.start()
        assert await within(10, lambda: "evaluation pass works again" in said(caplog))
        assert not task.done()
    finally:
        stop.set()
        await task
    assert said(caplog).count("evaluation pass failed; retrying every interval") == 1


def test_the_api_answers_503_with_retry_after_while_the_database_is_away(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """A client did nothing wrong when PostgreSQL is away: 503 and when to come back, not
    a 500; the same request works once the database is back."""
    from service.registry import ServiceRegistry, parse_doc
    from tests.api.conftest import client_for, world_keys
    from tests.world import WORLD

    db = migrated(postgres)
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    ops = {"Authorization": f"Bearer {world_keys(db)['ops']}"}
    with client_for(db, tmp_path) as client:
        assert client.get("/api/v1/orders", headers=ops).status_code == 200
        postgres.stop()
        try:
            r = client.get("/api/v1/orders", headers=ops)
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"] == "5"
            assert "service database is unreachable" in r.json()["detail"]
            assert client.get("/readyz").status_code == 503
        finally:
            postgres.start()
        assert client.get("/api/v1/orders", headers=ops).status_code == 200
    db.dispose()
