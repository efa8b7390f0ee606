"""Ingest end to end through a real Mosquitto into real stores."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from db.database import Database
from db.errors import NotFound
from fleet.registry import Device, DeviceRegistry
from fleet.state import DeviceStateRepository
from fleetcare.brokers import MosquittoProcess, free_port
from fleetcare.wiring import open_database
from ingest.dead_letters import DeadLetterRepository
from ingest.metrics import IngestMetrics
from telemetry.backends import create_store
from telemetry.store import TelemetryStore
from tests.ingest.helpers import (
    Running,
    fleet_messages,
    now_ms,
    publish,
    publish_in_thread,
    running_worker,
    settings_for,
    telemetry,
    topic,
    wait_until,
    worker_connected,
)
from tests.services import Influxd


def store_settings(kind: str, influxd: Influxd | None) -> dict[str, object]:
    if kind == "influxdb":
        assert influxd is not None
        return {
            "backend": "influxdb",
            "influx_url": influxd.url,
            "influx_database": f"e2e_{uuid.uuid4().hex[:8]}",
        }
    return {"backend": "embedded"}


@pytest.fixture(params=["embedded", "influxdb"])
def backend(request: pytest.FixtureRequest) -> dict[str, object]:
    influxd = request.getfixturevalue("influxd") if request.param == "influxdb" else None
    return store_settings(request.param, influxd)


async def test_published_telemetry_lands_in_the_store_with_device_state(
    tmp_path: Path, mosquitto: MosquittoProcess, backend: dict[str, object]
) -> None:
    s = settings_for(tmp_path, mosquitto.port, store=backend)
    async with running_worker(s) as w:
        publish(
            mosquitto.port,
            [
                (
                    "fleetcare/v1/purifier/p-00001/status",
                    b'{"v":1,"state":"online","firmware":"3.1.0","boot":1}',
                )
            ],
            retain=True,
        )
        publish(mosquitto.port, fleet_messages(2000, devices=20))
        await wait_until(lambda: _count(w.store, 2000), 30, "2000 stored")
        latest = await w.store.latest(["p-00001"])
        assert latest["p-00001"].metrics["pm25"] > 0
        await wait_until(lambda: _state_has(w.db, "p-00001", 100), 10, "state written")
        state = DeviceStateRepository(w.db).get("p-00001")
        assert state.online and state.firmware == "3.1.0"
        assert state.messages_total == 100
        assert state.latest_metrics["pm25"] == latest["p-00001"].metrics["pm25"]
        publish(mosquitto.port, [("fleetcare/v1/purifier/p-00001/status", b"offline")], retain=True)
        await wait_until(lambda: _offline(w.db, "p-00001"), 10, "offline from status")


async def _scrape_ok(port: int) -> bool:
    def get() -> bool:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return False
        return "fleetcare_ingest_mqtt_connected 1.0" in text

    return await asyncio.to_thread(get)


async def _count(store: TelemetryStore, n: int) -> bool:
    return await store.count() >= n


async def wait_worker_up(port: int, store: TelemetryStore, log: Path) -> None:
    """Publish one warm-up message (always the same key) until a worker stored it: before
    the worker's first connection no session exists to queue it."""
    deadline = time.monotonic() + 30
    while await store.count() < 1:
        if time.monotonic() > deadline:
            raise AssertionError(f"worker did not come up: {log.read_text()[-2000:]}")
        publish(port, [telemetry("warmup", 0, ts=now_ms() - 1000)])
        await asyncio.sleep(0.5)


async def _state_has(db: Database, device_id: str, messages: int) -> bool:
    try:
        st = await asyncio.to_thread(DeviceStateRepository(db).get, device_id)
    except NotFound:
        return False
    return st.messages_total == messages


async def _offline(db: Database, device_id: str) -> bool:
    st = await asyncio.to_thread(DeviceStateRepository(db).get, device_id)
    return not st.online and st.online_source == "status"


async def test_mqtt_5_consumers_store_the_same(tmp_path: Path, mosquitto: MosquittoProcess) -> None:
    """MQTT 5: clean start off, a session expiry and our own Receive Maximum."""
    s = settings_for(tmp_path, mosquitto.port, ingest={"receive_maximum": 500})
    s = s.model_copy(update={"mqtt": s.mqtt.model_copy(update={"protocol": "5"})})
    async with running_worker(s) as w:
        publish(mosquitto.port, fleet_messages(3000, devices=30))
        await wait_until(lambda: _count(w.store, 3000), 30, "3000 stored")
        assert await w.store.count() == 3000


async def test_device_replays_and_redeliveries_are_stored_once(
    tmp_path: Path, mosquitto: MosquittoProcess, backend: dict[str, object]
) -> None:
    s = settings_for(tmp_path, mosquitto.port, store=backend)
    msgs = fleet_messages(500, devices=10)
    async with running_worker(s) as w:
        publish(mosquitto.port, msgs)
        await wait_until(lambda: _count(w.store, 500), 30, "500 stored")
        publish(mosquitto.port, msgs[:300] + msgs[::7])  # a device replaying its buffer
        await wait_until(lambda: _acked(w.metrics, 500 + 300 + len(msgs[::7])), 30, "all acked")
        assert await w.store.count() == 500
    assert w.metrics.duplicates._value.get() == 300 + len(msgs[::7])


async def test_a_repeat_reaching_the_other_worker_is_a_duplicate_whatever_its_time(
    tmp_path: Path, mosquitto: MosquittoProcess, influxd: Influxd
) -> None:
    """Two workers share the subscription into InfluxDB, which keeps one point per device
    and time. A device sends 200 readings, then every key again with another device time,
    then every key again as it was: the broker hands each copy to either worker, and
    every key is stored once, as first sent, and every repeat counted a duplicate."""
    store = store_settings("influxdb", influxd)
    one, two = (
        settings_for(tmp_path, mosquitto.port, store=store, ingest={"client_id": f"w-{k}"})
        for k in "ab"
    )
    base = now_ms() - 1_000_000
    first = [telemetry("p-1", i, ts=base + 1000 * i) for i in range(1, 201)]
    moved = [telemetry("p-1", i, ts=base + 1000 * i + 500) for i in range(1, 201)]
    async with running_worker(one) as a, running_worker(two) as b:
        workers = (a, b)

        async def acked(n: int) -> bool:
            return sum(w.metrics.acked._value.get() for w in workers) >= n

        publish(mosquitto.port, first)
        await wait_until(lambda: acked(200), 30, "the first copies acknowledged")
        # Mosquitto deals a group's messages in turn: reversed, and one new message
        # between, the copies meet the other worker than the first time
        extra = telemetry("p-1", 201, ts=base + 201_000)
        publish(mosquitto.port, [*moved[::-1], extra, *first])
        await wait_until(lambda: acked(601), 30, "every copy acknowledged")
        frame = await a.store.history("purifier", "p-1", base, base + 1_000_000)
        assert frame.columns["seq"] == list(range(1, 202))
        assert frame.ts == [base + 1000 * i for i in range(1, 202)]
        assert await a.store.count(device_id="p-1") == 201
    stored = [w.metrics.stored.labels("telemetry")._value.get() for w in workers]
    assert all(stored), f"the broker gave one worker everything: {stored}"  # both exercised
    assert sum(stored) == 201
    assert sum(w.metrics.duplicates._value.get() for w in workers) == 400
    assert sum(w.metrics.repeats_settled._value.get() for w in workers) > 0


async def _acked(metrics: IngestMetrics, n: int) -> bool:
    return metrics.acked._value.get() >= n


async def test_every_reject_is_dead_lettered_and_good_messages_around_it_are_stored(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    s = settings_for(tmp_path, mosquitto.port, ingest={"max_future_s": 60, "max_past_s": 86400})
    now = now_ms()
    good = [telemetry("p-1", i) for i in range(10)]
    bad = {
        "not_json": (topic("purifier", "p-1"), b"not json"),
        "not_utf8": (topic("purifier", "p-1"), b"\xff\xfe\xfa"),
        "missing_field": (topic("purifier", "p-1"), b'{"v":1,"device_id":"p-1"}'),
        "wrong_type": (
            topic("purifier", "p-1"),
            telemetry("p-1", 97)[1].replace(b'"seq":97', b'"seq":"x"'),
        ),
        "unknown_field": (topic("purifier", "p-1"), telemetry("p-1", 98)[1][:-1] + b',"x":1}'),
        "non_finite": (
            topic("purifier", "p-1"),
            b'{"v":1,"device_id":"p-1","ts":%d,"seq":90,"boot":1,"metrics":{"pm25":NaN}}' % now,
        ),
        "out_of_range": telemetry("p-1", 91, pm25=1e6),
        "oversized": (topic("purifier", "p-1"), b"{" + b" " * 20_000 + b"}"),
        "device_mismatch": (topic("purifier", "p-2"), telemetry("p-1", 92)[1]),
        "unknown_device_type": (topic("toaster", "t-1"), telemetry("t-1", 1)[1]),
        "ts_future": telemetry("p-1", 93, ts=now + 3_600_000),
        "ts_past": telemetry("p-1", 94, ts=now - 2 * 86_400_000),
        "unsupported_version": (
            topic("purifier", "p-1"),
            telemetry("p-1", 95)[1].replace(b'"v":1', b'"v":9'),
        ),
        "bad_topic": ("fleetcare/v1/purifier/bad id!/telemetry", telemetry("p-1", 96)[1]),
    }
    stream = []
    for i, msg in enumerate(bad.values()):
        stream += [good[i % 10], msg]
    async with running_worker(s) as w:
        publish(mosquitto.port, stream)
        await wait_until(lambda: _acked(w.metrics, len(stream)), 30, "stream processed")
        assert await w.store.count() == 10
        letters = DeadLetterRepository(w.db).list(limit=100)
        received = w.metrics.received
        # the good ones repeat (`good[i % 10]`): the repeats are counted as such
        assert received.labels("telemetry")._value.get() == 10
        assert received.labels("rejected")._value.get() == len(bad)
        assert received.labels("duplicate")._value.get() == len(bad) - 10
    assert {d.reason for d in letters} == set(bad)
    for d in letters:
        assert d.count == 1 and d.detail and d.status == "pending"
        assert (d.topic, d.payload) == bad[d.reason]


async def test_a_message_influxdb_refuses_is_dead_lettered_and_the_rest_of_its_batch_stored(
    tmp_path: Path, mosquitto: MosquittoProcess, influxd: Influxd
) -> None:
    """Ingest accepts a day of history, the retention policy keeps one hour: InfluxDB
    refuses the old point (400, partial write) and the batch is bisected down to it."""
    backend = {**store_settings("influxdb", influxd), "influx_retention_duration": "1h"}
    s = settings_for(
        tmp_path,
        mosquitto.port,
        store=backend,
        ingest={"max_past_s": 86400, "max_batch_age_ms": 2000, "idle_flush_ms": 500},
    )
    async with running_worker(s) as w:
        msgs = [telemetry(f"p-{i}", i) for i in range(20)]
        msgs.insert(7, telemetry("p-old", 1, ts=now_ms() - 3 * 3_600_000))
        publish(mosquitto.port, msgs)
        await wait_until(lambda: _acked(w.metrics, 21), 30, "processed")
        assert await w.store.count() == 20
        [letter] = DeadLetterRepository(w.db).list()
    assert letter.reason == "store_rejected"
    assert letter.device_id == "p-old"
    assert "retention policy" in letter.detail


async def test_a_field_type_conflict_dead_letters_everything_it_blocks_and_loses_nothing(
    tmp_path: Path, mosquitto: MosquittoProcess, influxd: Influxd
) -> None:
    """InfluxDB fixes a field's type per measurement and shard: after someone writes pm25
    as text, every float pm25 is refused until the shard rolls over. Each refused message
    is kept as a dead letter that says why (replayable once the shard is fixed)."""
    import httpx

    backend = store_settings("influxdb", influxd)
    s = settings_for(tmp_path, mosquitto.port, store=backend)
    async with running_worker(s) as w:
        poison = f'purifier,device_id=intruder pm25="oops" {(now_ms() - 5000) * 1_000_000}'
        r = httpx.post(
            f"{influxd.url}/write",
            params={"db": str(backend["influx_database"]), "rp": "fleetcare"},
            content=poison.encode(),
        )
        assert r.status_code == 204
        msgs = [telemetry(f"p-{i}", i) for i in range(12)]
        msgs.append(telemetry("ac-1", 1, device_type="air_conditioner", power_w=800.0))
        publish(mosquitto.port, msgs)
        await wait_until(lambda: _acked(w.metrics, 13), 30, "processed")
        assert await w.store.count(device_type="air_conditioner") == 1
        letters = DeadLetterRepository(w.db).list(limit=100)
    assert sorted(d.device_id for d in letters) == sorted(f"p-{i}" for i in range(12))
    assert {d.reason for d in letters} == {"store_rejected"}
    assert all("field type conflict" in d.detail for d in letters)


async def test_a_device_is_registered_on_its_first_message_and_the_api_sees_it(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    """Without `require_registered`, a device that publishes is in the registry (with the
    type its topic names) once its state is written: ops find it in the API without a
    `fleetcare devices add`. A registered device keeps its registration."""
    from fastapi.testclient import TestClient

    from api.accounts import Accounts, Role
    from fleetcare.apiserver import build_api

    s = settings_for(tmp_path, mosquitto.port)
    db = open_database(s)
    DeviceRegistry(db).register([Device("ac-known", "air_conditioner", model="KFR-35")])
    key = Accounts(db).create("ops-1", name="Ops", role=Role.OPS).key
    async with running_worker(s) as w:
        publish(
            mosquitto.port,
            [
                telemetry("wp-new", 1, device_type="water_purifier", tds_out_ppm=12.0),
                telemetry("ac-known", 1, device_type="air_conditioner", power_w=800.0),
            ],
        )

        async def registered() -> bool:
            return {"wp-new", "ac-known"} <= {d.id for d in DeviceRegistry(w.db).list()}

        await wait_until(registered, 20, "both devices in the registry")
    registry = DeviceRegistry(db)
    assert registry.get("wp-new").device_type == "water_purifier"
    assert registry.get("ac-known").model == "KFR-35"  # left as it was
    with TestClient(build_api(s)) as api:
        auth = {"Authorization": f"Bearer {key}"}
        listed = api.get("/api/v1/devices", headers=auth)
        assert listed.status_code == 200, listed.text
        assert "wp-new" in {d["id"] for d in listed.json()}
        health = api.get("/api/v1/devices/wp-new/health", headers=auth)
        assert health.status_code == 200, health.text
    db.dispose()


async def test_unregistered_devices_are_dead_lettered_when_the_registry_is_enforced(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    s = settings_for(
        tmp_path, mosquitto.port, ingest={"require_registered": True, "registry_cache_s": 0}
    )
    db = open_database(s)
    DeviceRegistry(db).register(
        [Device("p-known", "purifier"), Device("ac-mislabelled", "air_conditioner")]
    )
    async with running_worker(s) as w:
        publish(
            mosquitto.port,
            [telemetry("p-known", 1), telemetry("p-stranger", 1), telemetry("ac-mislabelled", 1)],
        )
        await wait_until(lambda: _acked(w.metrics, 3), 20, "processed")
        assert await w.store.count() == 1
        reasons = {d.device_id: d.reason for d in DeadLetterRepository(w.db).list()}
    assert reasons == {"p-stranger": "unregistered", "ac-mislabelled": "type_mismatch"}


def _worker_process(
    tmp_path: Path, port: int, log: Path, metrics_port: int = 0
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FLEETCARE_DATA_DIR": str(tmp_path / "data"),
        "FLEETCARE_MQTT__URL": f"mqtt://127.0.0.1:{port}",
        "FLEETCARE_INGEST__CLIENT_ID": "kill9-worker",
        "FLEETCARE_INGEST__METRICS_PORT": str(metrics_port),
        "FLEETCARE_LOG__FORMAT": "json",
    }
    out = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetcare", "ingest"], env=env, stdout=out, stderr=subprocess.STDOUT
    )
    out.close()
    return proc


@pytest.mark.slow
async def test_kill_9_mid_stream_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    log = tmp_path / "worker.log"
    s = settings_for(tmp_path, mosquitto.port)
    store = create_store(s.store, s.data_dir)
    proc = _worker_process(tmp_path, mosquitto.port, log)
    try:
        await store.open()
        await wait_worker_up(mosquitto.port, store, log)
        msgs = fleet_messages(50_000, devices=1000, boot=2)
        sender = publish_in_thread(mosquitto.port, msgs)
        await wait_until(lambda: _count(store, 5_000), 60, "mid-stream")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = await store.count()
        assert killed_at < 50_001, "the kill must land mid-stream"
        proc = _worker_process(tmp_path, mosquitto.port, log)
        sender.join(120)
        await wait_until(lambda: _count(store, 50_001), 120, "all 50k stored after restart")
        await asyncio.sleep(2)
        assert await store.count() == 50_001
        for device in ("p-00000", "p-00999"):
            h = await store.history("purifier", device, 0, now_ms() + 1, ["pm25"])
            assert len(h) == 50
            assert (
                len({(b, q) for b, q in zip(h.columns["boot"], h.columns["seq"], strict=True)})
                == 50
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-2000:]
        await store.close()


@pytest.mark.slow
async def test_influxdb_down_for_10_seconds_loses_nothing(
    tmp_path: Path, mosquitto: MosquittoProcess, influxd: Influxd
) -> None:
    s = settings_for(tmp_path, mosquitto.port, store=store_settings("influxdb", influxd))
    async with running_worker(s) as w:
        first = fleet_messages(3000, devices=50)
        publish(mosquitto.port, first)
        await wait_until(lambda: _count(w.store, 3000), 30, "first part stored")
        influxd.stop()
        try:
            second = fleet_messages(6000, devices=50, boot=2)
            sender = publish_in_thread(mosquitto.port, second)
            await asyncio.sleep(10)
            assert w.metrics.store_up._value.get() == 0
            assert w.metrics.acked._value.get() <= 3000 + 1000  # nothing acked while down
        finally:
            influxd.start()
        sender.join(60)
        await wait_until(lambda: _count(w.store, 9000), 60, "everything stored after recovery")
        assert await w.store.count() == 9000
        assert w.metrics.store_up._value.get() == 1


@pytest.mark.slow
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "plain"])
async def test_broker_restart_reconnects_and_continues(
    tmp_path: Path, mosquitto: MosquittoProcess, shared: bool
) -> None:
    """Plain subscriptions survive a Mosquitto restart in the persisted session, so even
    messages published before the worker is back are delivered. Mosquitto 2.0.11 does not
    restore $share subscriptions from persistence (docs/architecture.md): the worker
    resubscribes on reconnect and continues from there."""
    s = settings_for(
        tmp_path, mosquitto.port, ingest={"shared_group": "fleetcare-ingest" if shared else None}
    )
    async with running_worker(s) as w:
        publish(mosquitto.port, fleet_messages(1000, devices=10))
        await wait_until(lambda: _count(w.store, 1000), 30, "before restart")
        mosquitto.restart()
        if shared:
            await wait_until(lambda: _reconnected(w.metrics), 30, "reconnected")
        publish(mosquitto.port, fleet_messages(1000, devices=10, boot=2))
        await wait_until(lambda: _count(w.store, 2000), 60, "after restart")
        assert await w.store.count() == 2000


async def _reconnected(metrics: IngestMetrics) -> bool:
    return metrics.connects._value.get() >= 2 and await worker_connected(metrics)


async def test_sigterm_flushes_acknowledges_and_exits_zero(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    log = tmp_path / "worker.log"
    proc = _worker_process(tmp_path, mosquitto.port, log)
    s = settings_for(tmp_path, mosquitto.port)
    store = create_store(s.store, s.data_dir)
    await store.open()
    try:
        await wait_worker_up(mosquitto.port, store, log)
        publish(mosquitto.port, fleet_messages(3000, devices=30))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert "stopping" in log.read_text()
        # whatever it did not store it did not acknowledge: a new worker gets the rest
        metrics_port = free_port()
        proc = _worker_process(tmp_path, mosquitto.port, log, metrics_port)
        await wait_until(lambda: _count(store, 3001), 30, "rest stored")
        assert await store.count() == 3001
        # the second worker's Prometheus endpoint accounts for what it did
        await wait_until(lambda: _scrape_ok(metrics_port), 30, "metrics endpoint up")
        text = await asyncio.to_thread(
            lambda: httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        )
        samples = {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines()
            if line and not line.startswith("#")
        }
        assert samples["fleetcare_ingest_mqtt_connected"] == 1
        assert samples["fleetcare_ingest_store_up"] == 1
        # a labelled counter appears once used: absent means this worker had nothing left
        stored = samples.get('fleetcare_ingest_stored_total{kind="telemetry"}', 0.0)
        received = samples.get('fleetcare_ingest_received_total{kind="telemetry"}', 0.0)
        assert received >= stored  # the first worker may already have stored everything
        assert samples["fleetcare_ingest_acknowledged_total"] >= received
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        await store.close()


@pytest.mark.postgres
async def test_postgresql_holds_device_state_and_dead_letters(
    tmp_path: Path, mosquitto: MosquittoProcess, postgres_url: str
) -> None:
    s = settings_for(tmp_path, mosquitto.port, db={"url": postgres_url})
    async with running_worker(s) as w:
        publish(mosquitto.port, [*fleet_messages(200, devices=5), (topic("purifier", "p-x"), b"{")])
        await wait_until(lambda: _acked(w.metrics, 201), 30, "processed")
        assert w.db.dialect == "postgresql"
        await wait_until(lambda: _state_has(w.db, "p-00003", 40), 10, "state written")
        assert [d.reason for d in DeadLetterRepository(w.db).list()] == ["not_json"]


async def test_works_against_the_stock_mosquitto_of_this_machine(tmp_path: Path) -> None:
    """The machine's Mosquitto on 1883 runs Debian's defaults: 20 messages in flight per
    client, 1,000 queued. Acknowledging after durable batches still flows (the idle flush
    takes what the in-flight window allows). Fewer than 1,000 messages, because beyond
    that the stock broker drops QoS 1 messages for a consumer that falls behind."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.services import system_broker

    _, port = system_broker()
    prefix = f"fctest{uuid.uuid4().hex[:8]}"
    client_id = f"fc-test-{uuid.uuid4().hex[:8]}"
    s = settings_for(tmp_path, port, ingest={"client_id": client_id})
    s = s.model_copy(update={"mqtt": s.mqtt.model_copy(update={"topic_prefix": prefix})})
    msgs = [
        (t.replace("fleetcare/", f"{prefix}/", 1), p) for t, p in fleet_messages(900, devices=30)
    ]
    try:
        async with running_worker(s) as w:
            publish(port, msgs)
            await wait_until(lambda: _count(w.store, 900), 60, "900 stored")
            assert await w.store.count() == 900
    finally:  # drop the persistent session we left on the shared machine broker
        c = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
        )
        c.connect("127.0.0.1", port)
        c.disconnect()


async def test_a_profile_version_imported_while_ingest_runs_is_used_without_a_restart(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    """A metric the profile lacks is a dead letter naming the metric and the profile
    version; once a version that declares it is imported, the running worker stores it
    (the embedded store gains a column, the rows before keep their values), and the
    dead letter replays."""
    from fleet.profiles import ProfileRepository
    from ingest.replay import replay
    from telemetry.profile import MetricSpec, shipped

    s = settings_for(tmp_path, mosquitto.port, ingest={"profiles_refresh_s": 0.2})
    dh = shipped()["dehumidifier"].doc
    async with running_worker(s) as w:
        publish(
            mosquitto.port, [telemetry("dh-1", 1, device_type="dehumidifier", humidity_pct=55.0)]
        )
        await wait_until(lambda: _acked(w.metrics, 1), 20, "first reading")
        publish(
            mosquitto.port,
            [telemetry("dh-1", 2, device_type="dehumidifier", humidity_pct=54.0, noise_db=38.0)],
        )
        await wait_until(lambda: _acked(w.metrics, 2), 20, "second reading")
        [letter] = DeadLetterRepository(w.db).list()
        assert letter.reason == "unknown_metric"
        assert "'noise_db' is not in profile dehumidifier v1" in letter.detail

        noise = MetricSpec(name="noise_db", unit="dB", kind="float", range=(0, 120))
        v2 = dh.model_copy(update={"version": 2, "metrics": [*dh.metrics, noise]})
        ProfileRepository(w.db).import_(v2, source="dh-v2.yaml")

        async def noise_stored() -> bool:
            publish(
                mosquitto.port,
                [
                    telemetry(
                        "dh-1", 3, device_type="dehumidifier", humidity_pct=53.0, noise_db=37.5
                    )
                ],
            )
            await asyncio.sleep(0.3)
            latest = (await w.store.latest(["dh-1"])).get("dh-1")
            return latest is not None and latest.metrics.get("noise_db") == 37.5

        await wait_until(noise_stored, 20, "the new metric stored by the running worker")
        history = await w.store.history("dehumidifier", "dh-1", 0, 2**53)
        assert history.columns["humidity_pct"][0] == 55.0  # the row from before, intact
        assert history.columns["noise_db"][0] is None

        report = await replay(
            [letter],
            decoder=w_decoder(w),
            store=w.store,
            dead_letters=DeadLetterRepository(w.db),
            state=DeviceStateRepository(w.db),
        )
        assert report.stored == [letter.id]


def w_decoder(w: Running) -> Any:
    from fleet.profiles import ProfileRepository
    from fleetcare.wiring import make_decoder

    return make_decoder(w.settings, ProfileRepository(w.db).current())


async def test_a_metric_newer_than_the_device_firmware_is_a_dead_letter(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    """The dehumidifier's tank level came with firmware 1.1: a unit that says it runs
    1.0 and reports it is refused with the metric, the release and the firmware named."""
    from tests.ingest.helpers import topic

    s = settings_for(tmp_path, mosquitto.port)
    status = orjson.dumps({"v": 1, "state": "online", "firmware": "1.0"})
    async with running_worker(s) as w:
        publish(mosquitto.port, [(topic("dehumidifier", "dh-old", "status"), status)], retain=True)
        await asyncio.sleep(0.5)
        publish(
            mosquitto.port,
            [
                telemetry("dh-old", 1, device_type="dehumidifier", humidity_pct=50.0),
                telemetry("dh-old", 2, device_type="dehumidifier", tank_level_pct=40.0),
                telemetry("dh-new", 1, device_type="dehumidifier", tank_level_pct=40.0),
            ],
        )
        await wait_until(lambda: _acked(w.metrics, 4), 20, "processed")
        assert await w.store.count(device_type="dehumidifier") == 2
        [letter] = DeadLetterRepository(w.db).list()
    assert letter.device_id == "dh-old" and letter.reason == "unknown_metric"
    assert "tank_level_pct (firmware 1.1)" in letter.detail and "runs firmware 1.0" in letter.detail


async def test_a_message_on_a_misshapen_topic_is_a_dead_letter_that_says_the_shape(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    """Too few or too many levels under fleetcare/v1: kept with the reason, once each;
    the good messages around them are stored once."""
    s = settings_for(tmp_path, mosquitto.port)
    body = telemetry("p-1", 1)[1]
    wrong = ["fleetcare/v1/purifier", "fleetcare/v1/purifier/p-1", "fleetcare/v1/x/y/z/w/telemetry"]
    good = [telemetry("p-1", i) for i in range(2, 12)]
    async with running_worker(s) as w:
        publish(mosquitto.port, [*good[:5], *((t, body) for t in wrong), *good[5:]])
        await wait_until(lambda: _acked(w.metrics, 13), 30, "all 13 processed")
        await asyncio.sleep(0.5)  # a good message received twice would show by now
        assert await w.store.count() == 10
        letters = DeadLetterRepository(w.db).list(limit=10)
    assert sorted(d.topic for d in letters) == sorted(wrong)
    assert {d.reason for d in letters} == {"bad_topic"}
    assert all("{device_type}/{device_id}/{kind}" in d.detail for d in letters)
