"""How simulated devices connect: the wire codec, per-device logins with a real Last Will,
several publisher processes, and a broker that goes away mid-run."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from device_sim import wire
from device_sim.credentials import password_lines
from device_sim.fleet import Fleet, FleetSpec
from device_sim.link import LinkRefused
from device_sim.runner import Connectivity, RunOptions, RunStats, run
from device_sim.transport import PerDeviceOptions
from fleet.credentials import acl_file
from fleetcare.brokers import MosquittoProcess, start_mosquitto
from telemetry.connection import MqttSettings


def test_the_packet_reader_splits_any_stream_of_packets() -> None:
    packets = [
        wire.puback(7),
        b"\x90\x03\x00\x01\x01",  # SUBACK
        b"\x32" + wire.varint(2 + 3 + 2 + 300) + wire.utf8("a/b") + b"\x00\x09" + b"x" * 300,
        b"\xd0\x00",  # PINGRESP
        wire.puback(65000),
    ]
    stream = b"".join(packets)
    for size in (1, 3, 7, len(stream)):  # however TCP happens to cut it
        reader = wire.PacketReader()
        got = []
        for i in range(0, len(stream), size):
            got += reader.feed(stream[i : i + size])
        assert [t for t, _, _ in got] == [4, 9, 3, 13, 4]
        msg = wire.parse_publish(got[2][1], got[2][2])
        assert (msg.topic, msg.packet_id, msg.qos, msg.payload) == ("a/b", 9, 1, b"x" * 300)
        assert got[4][2] == (65000).to_bytes(2, "big")


def test_remaining_length_uses_seven_bits_a_byte() -> None:
    assert wire.varint(0) == b"\x00"
    assert wire.varint(127) == b"\x7f"
    assert wire.varint(128) == b"\x80\x01"
    assert wire.varint(16_383) == b"\xff\x7f"
    assert wire.varint(2_097_152) == b"\x80\x80\x80\x01"


def secured_broker(tmp_path: Path, devices: list[str], secret: str) -> MosquittoProcess:
    """Mosquitto with per-device passwords (hashed by mosquitto_passwd) and the device ACL,
    plus an `engine` user that reads everything."""
    data = tmp_path / "secure"
    data.mkdir()
    passwords = data / "passwords"
    passwords.write_text("\n".join([*password_lines(secret, devices), "engine:engine-pw"]) + "\n")
    subprocess.run(["mosquitto_passwd", "-U", str(passwords)], check=True)
    acl = data / "acl"
    acl.write_text(
        "user engine\ntopic read fleetcare/#\n\n" + acl_file("fleetcare", engine_user=None)
    )
    return start_mosquitto(
        data,
        extra=f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n",
    )


class Recorder:
    """The engine's view: every message on fleetcare/# with its retain flag."""

    def __init__(self, port: int, username: str | None = "engine") -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        if username:
            self.client.username_pw_set(username, "engine-pw")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("fleetcare/#", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload))

    def on(self, suffix: str) -> list[tuple[str, bytes]]:
        with self.lock:
            return [(t, p) for t, p in self.messages if t.endswith(suffix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_per_device_connections_log_in_as_the_device_and_outages_fire_the_last_will(
    tmp_path: Path,
) -> None:
    fleet = Fleet.create(FleetSpec(devices=12, seed=21, start=time.time() - 5 * 86400))
    secret = "s3cret"
    broker = secured_broker(tmp_path, fleet.ids, secret)
    recorder = Recorder(broker.port)
    try:
        time.sleep(0.3)
        options = RunOptions(
            speed=3 * 86400,
            report_interval_s=900,
            duration_s=2.5,
            per_device=PerDeviceOptions(secret=secret),
            connectivity=Connectivity(outages_per_day=2.0, outage_hours=3.0),
        )
        stats = run(fleet, MqttSettings(url=broker.url), options)
        time.sleep(0.5)
    finally:
        recorder.close()
        broker.stop()
    assert stats.outages > 5
    assert stats.acknowledged == stats.sent
    telemetry = recorder.on("/telemetry")
    assert len(telemetry) == stats.sent
    # the simulator itself says `offline` only at the end, as the clean goodbye of each
    # device still connected; every other `offline` is a Will the broker published
    offline_at_end = 0
    for device_id, truth in fleet.truth.devices.items():
        mine = [t for t, p in recorder.on(f"/{device_id}/status") if p == b"offline"]
        ended_offline = bool(truth.outages) and truth.outages[-1][1] > fleet.t
        offline_at_end += ended_offline
        assert len(mine) == len(truth.outages) + (0 if ended_offline else 1), device_id
        online = [t for t, p in recorder.on(f"/{device_id}/status") if p.startswith(b"{")]
        assert len(online) == 1 + len(truth.outages) - ended_offline  # announced on connect
    offline = [t for t, p in recorder.on("/status") if p == b"offline"]
    assert len(offline) == stats.outages + len(fleet.ids) - offline_at_end


def test_a_device_with_the_wrong_password_is_refused_with_the_reason(tmp_path: Path) -> None:
    fleet = Fleet.create(FleetSpec(devices=2, seed=22, start=time.time() - 86400))
    broker = secured_broker(tmp_path, fleet.ids, "right")
    try:
        options = RunOptions(duration_s=1, per_device=PerDeviceOptions(secret="wrong"))
        with pytest.raises(LinkRefused, match="not authorised"):
            run(fleet, MqttSettings(url=broker.url), options)
    finally:
        broker.stop()


def test_several_processes_publish_one_fleet_with_the_same_ground_truth(
    mosquitto: MosquittoProcess,
) -> None:
    """Each process runs the whole fleet and publishes its share: every device is published
    once, and a device's outages and skew do not depend on how many processes there were."""
    # backfill both over the same history: the last report falls mid-interval from now
    start = time.time() - 3 * 86400 - 900
    spec = FleetSpec(devices=30, seed=23, start=start, faults_per_device_year=2.0)
    conn = Connectivity(outages_per_day=1.0, outage_hours=2.0, clock_skew_s=5.0)
    mqtt = MqttSettings(url=mosquitto.url)

    def backfill(processes: int) -> tuple[Fleet, RunStats, Recorder]:
        recorder = Recorder(mosquitto.port, username=None)
        fleet = Fleet.create(spec)
        options = RunOptions(
            mode="backfill",
            report_interval_s=1800,
            connectivity=conn,
            processes=processes,
            client_id=f"sim-{processes}",
        )
        stats = run(fleet, mqtt, options)
        time.sleep(0.3)
        recorder.close()
        return fleet, stats, recorder

    one, stats_one, _ = backfill(1)
    two, stats_two, recorder_two = backfill(2)
    assert stats_two.acknowledged == stats_two.sent > 1000
    assert len(recorder_two.on("/telemetry")) == stats_two.sent
    senders = {t.split("/")[3] for t, _ in recorder_two.on("/telemetry")}
    installed = {d for d in two.ids if (two.truth.devices[d].installed_at or 0) < two.t}
    assert senders == installed and len(installed) >= 20  # the rest come later in the year
    for device_id in one.ids:
        a, b = one.truth.devices[device_id], two.truth.devices[device_id]
        assert a.clock_skew_ms == b.clock_skew_ms
        assert a.faults == b.faults
        assert a.outages == b.outages
        assert (a.gaps, a.unit, a.installed_at) == (b.gaps, b.unit, b.installed_at)
    assert stats_one.outages == stats_two.outages > 0


@pytest.mark.serial  # its backlog bound is read from the broker's $SYS counts, in time
def test_backfill_waits_for_a_slow_engine_and_loses_nothing(mosquitto: MosquittoProcess) -> None:
    """The engine's durable session is away: the broker queues for it, and the backfill
    stops at the backlog bound instead of flooding the queue. When the engine drains the
    queue, the backfill finishes the history; every reading arrives."""
    filter_ = "fleetcare/v1/+/+/telemetry"
    got: list[bytes] = []
    engine = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id="engine", clean_session=False
    )
    engine.on_message = lambda _c, _u, m: got.append(m.payload)
    engine.connect("127.0.0.1", mosquitto.port)
    engine.subscribe(filter_, qos=1)
    engine.loop_start()
    time.sleep(0.3)
    engine.disconnect()  # its session stays: messages queue for it
    engine.loop_stop()

    fleet = Fleet.create(FleetSpec(devices=10, seed=24, start=time.time() - 10 * 86400 - 450))
    options = RunOptions(mode="backfill", report_interval_s=900, max_backlog=2000)
    stats = RunStats()
    runner = threading.Thread(
        target=run, args=(fleet, MqttSettings(url=mosquitto.url), options, None, stats)
    )
    runner.start()
    deadline = time.time() + 30
    while stats.waits == 0 and time.time() < deadline:
        time.sleep(0.1)
    # it may pause early while the broker's figures catch up (a few $SYS intervals);
    # then it holds still
    held, still_since = stats.sent, time.time()
    while time.time() - still_since < 3.0 and time.time() < deadline:
        time.sleep(0.1)
        if stats.sent != held:
            held, still_since = stats.sent, time.time()
    # at the bound, give or take a round or two (the broker reports its count every second)
    assert stats.waits > 0 and 2000 - 10 <= held <= 2000 + 30, held
    assert runner.is_alive()

    engine.connect("127.0.0.1", mosquitto.port)  # the engine is back and drains the queue
    engine.loop_start()
    runner.join(timeout=120)
    assert not runner.is_alive()
    deadline = time.time() + 20
    while len(got) < stats.sent and time.time() < deadline:
        time.sleep(0.1)
    engine.disconnect()
    engine.loop_stop()
    assert stats.sent == stats.taken - stats.unsent == stats.acknowledged  # the whole history
    assert stats.taken > 8 * (10 * 96 + 1)  # ten units, a few installed during the days
    assert len(got) == stats.sent


def test_a_broker_restart_mid_run_loses_no_acknowledged_reading(
    mosquitto: MosquittoProcess,
) -> None:
    """The connection comes back by itself and resends what the broker had not
    acknowledged; every reading the simulator counts as sent arrives (some twice, QoS 1)."""
    seen: set[bytes] = set()
    lock = threading.Lock()

    def on_message(_c: object, _u: object, m: paho.MQTTMessage) -> None:
        with lock:
            seen.add(m.topic.encode() + m.payload)

    engine = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id="engine", clean_session=False
    )
    engine.on_message = on_message
    engine.reconnect_delay_set(0.1, 1)
    engine.connect("127.0.0.1", mosquitto.port)
    engine.subscribe("fleetcare/v1/+/+/telemetry", qos=1)
    engine.loop_start()
    time.sleep(0.3)

    fleet = Fleet.create(FleetSpec(devices=50, seed=25, start=time.time() - 30 * 86400))
    stats = RunStats()
    options = RunOptions(speed=86400, report_interval_s=900, duration_s=6)
    runner = threading.Thread(
        target=run, args=(fleet, MqttSettings(url=mosquitto.url), options, None, stats)
    )
    runner.start()
    time.sleep(2)
    before = stats.sent
    mosquitto.restart()
    runner.join(timeout=120)
    deadline = time.time() + 20
    while len(seen) < stats.sent and time.time() < deadline:
        time.sleep(0.1)
    engine.disconnect()
    engine.loop_stop()
    assert before > 0 and stats.sent > before  # it went on after the restart
    assert stats.acknowledged == stats.sent
    assert len(seen) == stats.sent


def test_asked_to_resend_the_fleet_publishes_again_what_it_sent_since_then(
    mosquitto: MosquittoProcess,
) -> None:
    """`fleetcare devices resend` mid-run: each device publishes again, once, every
    message it sent since the moment asked for, and nothing from before it."""
    from fleetcare.resend import ask_fleet_resend

    mqtt = MqttSettings(url=mosquitto.url)
    recorder = Recorder(mosquitto.port, username=None)

    def readings() -> list[bytes]:
        return [p for t, p in recorder.on("/telemetry")] + [p for t, p in recorder.on("/event")]

    fleet = Fleet.create(FleetSpec(devices=20, seed=26, start=time.time() - 30 * 86400))
    stats = RunStats()
    options = RunOptions(speed=86400, report_interval_s=900, duration_s=5)
    runner = threading.Thread(target=run, args=(fleet, mqtt, options, None, stats))
    time.sleep(0.3)
    runner.start()
    time.sleep(1.5)
    before = set(readings())  # arrived, so sent, before `since`
    since = time.time()
    # what was sent before `since` but is still on its way counts as before: a busy
    # machine delivers late, so wait well past any delivery before calling the rest after
    time.sleep(1.0)
    settled = set(readings())
    time.sleep(1.0)
    after = set(readings()) - settled  # sent after `since`, before the request
    asyncio.run(ask_fleet_resend(mqtt, since))
    runner.join(timeout=60)
    time.sleep(0.5)
    recorder.close()
    got = readings()
    assert stats.acknowledged == stats.sent and stats.resent > 0
    assert len(got) - len(set(got)) == stats.resent  # each resent once
    counts = Counter(got)
    twice = {p for p, n in counts.items() if n == 2}
    assert len(twice) == stats.resent and max(counts.values()) == 2
    assert before and not before & twice  # nothing from before `since`
    assert after and after <= twice  # everything since
