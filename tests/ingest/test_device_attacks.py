"""A device with valid credentials attacks the engine over MQTT, against a Mosquitto run
with the password and ACL files `fleetcare devices provision` writes, and the real
ingest worker logged in with the engine's account: every reading of every other device
is still stored once."""

from __future__ import annotations

import asyncio
import getpass
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fleetcare.brokers import MosquittoProcess, mosquitto_available, start_mosquitto
from fleetcare.settings import Settings
from ingest.dead_letters import DeadLetterRepository
from ingest.worker import default_client_id
from telemetry.store import TelemetryStore
from tests.ingest.helpers import now_ms, running_worker, settings_for, telemetry, wait_until
from tests.provisioned import ENGINE, BrokerFiles, add_purifiers, broker_files, provision
from tests.services import free_port, missing

ROOT = Path(__file__).resolve().parents[2]

SHARED = "fleetcare/v1/+/+/telemetry"


class Intruder:
    """A paho client with one device's credentials, whatever client id it likes."""

    def __init__(
        self,
        port: int,
        user: str,
        password: str,
        client_id: str = "",
        protocol: paho.MQTTProtocolVersion = paho.MQTTv311,
    ) -> None:
        self.got: list[str] = []
        self.up = threading.Event()
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or user,
            protocol=protocol,
        )
        self.client.username_pw_set(user, password)
        self.client.on_connect = lambda *a: self.up.set()
        self.client.on_message = lambda c, u, m: self.got.append(m.topic)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.up.wait(10), "the broker did not accept the device's credentials"

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)

    def publish_all(self, messages: list[tuple[str, bytes]]) -> None:
        infos = [self.client.publish(t, p, qos=1) for t, p in messages]
        for info in infos:
            info.wait_for_publish(10)
            assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[MosquittoProcess, dict[str, str], Settings]]:
    """ap-1 (the attacker) and ap-2 (its victim), provisioned; the broker runs the
    generated files; settings for an ingest worker with the engine's account."""
    if not mosquitto_available():
        missing("mosquitto")
    files = broker_files(tmp_path)
    add_purifiers(files, "ap-1", "ap-2")
    passwords = provision(files, "ap-1", "ap-2")
    pw, acl = files.passwords, files.acl
    broker = start_mosquitto(tmp_path / "broker", auth=(pw, acl))
    settings = settings_for(
        tmp_path,
        broker.port,
        mqtt={"username": ENGINE[0], "password": ENGINE[1]},
        ingest={"client_id": None},
    )
    try:
        yield broker, passwords, settings
    finally:
        broker.stop()


def victim_readings(n: int, *, device_type: str = "purifier") -> list[tuple[str, bytes]]:
    base = now_ms() - n
    metrics = {"room_temp_c": 24.0} if device_type == "air_conditioner" else {"pm25": 12.0}
    return [
        telemetry("ap-2", i, ts=base + i, device_type=device_type, **metrics)
        for i in range(1, n + 1)
    ]


async def _stored(store: TelemetryStore, device_id: str, n: int) -> bool:
    got = await store.count(device_id=device_id)
    return got >= n


async def test_a_device_cannot_take_the_engines_turn_of_the_shared_subscription(
    fleet: tuple[MosquittoProcess, dict[str, str], Settings],
) -> None:
    """Four connections with ap-1's credentials join the shared-subscription group under
    its default name (and subscribe to the whole fleet): the broker lets them, so the
    engine's group must be one a device cannot name."""
    broker, passwords, settings = fleet
    thieves = [
        Intruder(broker.port, "ap-1", passwords["ap-1"], client_id=f"ap-1-{k}") for k in range(4)
    ]
    victim = Intruder(broker.port, "ap-2", passwords["ap-2"])
    try:
        async with running_worker(settings) as w:
            for t in thieves:
                t.subscribe(f"$share/fleetcare-ingest/{SHARED}")
                t.subscribe(f"$share/fleetcare-ingest/{SHARED.replace('telemetry', 'event')}")
                t.subscribe(SHARED)
            await asyncio.sleep(0.5)
            victim.publish_all(victim_readings(500))
            await wait_until(lambda: _stored(w.store, "ap-2", 500), 30, "all 500 stored")
            await asyncio.sleep(0.5)
            assert await w.store.count(device_id="ap-2") == 500
            assert all(t.got == [] for t in thieves)  # the ACL still hides them from ap-1
    finally:
        for c in (*thieves, victim):
            c.close()


async def test_a_device_cannot_take_over_the_engines_client_id(
    fleet: tuple[MosquittoProcess, dict[str, str], Settings],
) -> None:
    """ap-1 connects, again and again, under the ingest worker's documented client id:
    the worker's own id is not that one, so it is never disconnected, never asks the
    fleet to resend, and stores every reading."""
    broker, passwords, settings = fleet
    victim = Intruder(broker.port, "ap-2", passwords["ap-2"])
    try:
        async with running_worker(settings) as w:
            for guess in (default_client_id(), "fleetcare-ingest", "fleetcare-commands"):
                Intruder(broker.port, "ap-1", passwords["ap-1"], client_id=guess).close()
            victim.publish_all(victim_readings(300))
            await wait_until(lambda: _stored(w.store, "ap-2", 300), 30, "all 300 stored")
            assert w.metrics.connects._value.get() == 1
            assert await w.store.count(device_id="ap-2") == 300
    finally:
        victim.close()


async def test_a_device_cannot_publish_as_another_type(
    fleet: tuple[MosquittoProcess, dict[str, str], Settings],
) -> None:
    """ap-2 is a registered purifier; the ACL lets it choose the type segment of its own
    topics, so ingest refuses readings under another type (a dead letter that says why)
    even when unregistered devices are accepted, and its registration stays a purifier."""
    broker, passwords, settings = fleet
    assert not settings.ingest.require_registered
    victim = Intruder(broker.port, "ap-2", passwords["ap-2"])
    try:
        async with running_worker(settings) as w:
            victim.publish_all(victim_readings(5, device_type="air_conditioner"))
            dead = DeadLetterRepository(w.db)

            async def five_dead() -> bool:
                return len(dead.list(limit=10)) >= 5

            await wait_until(five_dead, 30, "five dead letters")
            letters = dead.list(limit=10)
            assert {d.reason for d in letters} == {"type_mismatch"}
            assert "registered as purifier" in letters[0].detail
            assert await w.store.count(device_id="ap-2") == 0
            from fleet.registry import DeviceRegistry

            assert DeviceRegistry(w.db).get("ap-2").device_type == "purifier"
    finally:
        victim.close()


def shipped_broker(tmp_path: Path, files: BrokerFiles) -> tuple[MosquittoProcess, int]:
    """The Mosquitto config compose ships (deploy/mosquitto/mosquitto.conf), on loopback
    ports and this test's files: devices on one listener, where the client id is the user
    name; the engine on the other."""
    devices_port, engine_port = free_port(), free_port()
    home = tmp_path / "shipped"
    home.mkdir()
    shipped = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    assert "listener 1883 0.0.0.0" in shipped and "listener 1884 0.0.0.0" in shipped
    conf = (
        shipped.replace("listener 1883 0.0.0.0", f"listener {devices_port} 127.0.0.1")
        .replace("listener 1884 0.0.0.0", f"listener {engine_port} 127.0.0.1")
        .replace("/mosquitto/auth/passwd", str(files.passwords))
        .replace("/mosquitto/auth/acl", str(files.acl))
        .replace("/mosquitto/auth/", f"{home}/")
        .replace("/mosquitto/data/", f"{home}/")
    )
    lines = [line for line in conf.splitlines() if not line.startswith("include_dir")]
    config = home / "mosquitto.conf"
    config.write_text("\n".join([f"user {getpass.getuser()}", *lines]) + "\n")
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker = MosquittoProcess(port=devices_port, data_dir=home, config_path=config, binary=binary)
    broker.start()
    return broker, engine_port


def shipped_fleet(tmp_path: Path) -> tuple[MosquittoProcess, dict[str, str], Settings]:
    """ap-1 and ap-2 provisioned, the shipped config running, and settings for an ingest
    worker on the engine's listener."""
    if not mosquitto_available():
        missing("mosquitto")
    files = broker_files(tmp_path)
    add_purifiers(files, "ap-1", "ap-2")
    passwords = provision(files, "ap-1", "ap-2")
    broker, engine_port = shipped_broker(tmp_path, files)
    settings = settings_for(
        tmp_path,
        engine_port,
        mqtt={"username": ENGINE[0], "password": ENGINE[1]},
        ingest={"client_id": None},
    )
    return broker, passwords, settings


async def test_with_the_shipped_broker_config_a_device_cannot_take_another_devices_id(
    tmp_path: Path,
) -> None:
    """ap-1 connects again and again under ap-2's client id, and under the engine's: on
    the devices' listener the broker uses each device's user name as its client id, so
    neither ap-2 nor the engine is ever disconnected and every reading is stored."""
    broker, passwords, settings = shipped_fleet(tmp_path)
    victim = Intruder(broker.port, "ap-2", passwords["ap-2"])
    dropped = threading.Event()
    victim.client.on_disconnect = lambda *a: dropped.set()
    try:
        async with running_worker(settings) as w:
            for guess in ("ap-2", "ap-2", w_client_id(settings)):
                Intruder(broker.port, "ap-1", passwords["ap-1"], client_id=guess).close()
            victim.publish_all(victim_readings(300))
            await wait_until(lambda: _stored(w.store, "ap-2", 300), 30, "all 300 stored")
            assert not dropped.is_set()
            assert await w.store.count(device_id="ap-2") == 300
            assert w.metrics.connects._value.get() == 1
    finally:
        victim.close()
        broker.stop()


def w_client_id(settings: Settings) -> str:
    """The ingest worker's real client id (which a device could not compute; given here
    to show the devices' listener would not honour it either)."""
    return settings.mqtt.private_name(default_client_id())


async def test_with_the_shipped_broker_config_no_message_is_acknowledged_and_lost(
    tmp_path: Path,
) -> None:
    """What the broker refuses, it refuses to the device's face: a packet over its limit
    disconnects the sender without a PUBACK, so the device keeps the message (an MQTT 5
    device is told the limit when it connects and its library refuses to send it); a
    publish on another device's topic is answered `Not authorized` to an MQTT 5 device.
    A message under the broker's limit but over ingest's is a dead letter that says so."""
    broker, passwords, settings = shipped_fleet(tmp_path)
    own = "fleetcare/v1/purifier/ap-1/telemetry"
    try:
        async with running_worker(settings) as w:
            old = Intruder(broker.port, "ap-1", passwords["ap-1"])
            dropped = threading.Event()
            old.client.on_disconnect = lambda *a: dropped.set()
            huge = old.client.publish(own, b"x" * 300_000, qos=1)
            assert await asyncio.to_thread(dropped.wait, 10), "the sender was not disconnected"
            assert not huge.is_published()  # no PUBACK: the message is still the device's
            old.close()

            new = Intruder(broker.port, "ap-1", passwords["ap-1"], protocol=paho.MQTTv5)
            answers: dict[int, str] = {}
            new.client.on_publish = lambda c, u, mid, rc, p: answers.__setitem__(mid, str(rc))
            theirs = new.client.publish("fleetcare/v1/purifier/ap-2/telemetry", b"{}", qos=1)
            big = new.client.publish(own, b"{" + b" " * 20_000 + b"}", qos=1)
            await asyncio.to_thread(big.wait_for_publish, 10)
            await asyncio.to_thread(theirs.wait_for_publish, 10)
            assert answers[theirs.mid] == "Not authorized"
            new.close()

            dead = DeadLetterRepository(w.db)

            async def one_dead() -> bool:
                return len(dead.list(limit=10)) >= 1

            await wait_until(one_dead, 30, "the 20 KB message kept as a dead letter")
            (letter,) = dead.list(limit=10)
            assert letter.reason == "oversized" and letter.topic == own
            assert len(letter.payload) == 20_002
    finally:
        broker.stop()
