"""Drive a fleet in accelerated time and publish it over MQTT (multiplexed connection).

Simulated time runs `speed` times faster than the wall clock from a start in the past, and
never ahead of the wall clock (the engine rejects device time from the future): a fleet
started 180 days ago at x3600 ages half a year in ~72 minutes, then goes on in real time.

Chaos publishes duplicates, out-of-order and malformed messages at set rates and counts
them in the ground truth, so ingest can be checked against it. Commands on the devices'
`cmd` topics (e.g. `filter_replaced`) change the simulated devices: the service loop
closes on the device.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from device_sim.fleet import Fleet
from telemetry.connection import MqttSettings
from telemetry.errors import TopicError
from telemetry.payload import CommandPayload
from telemetry.topics import TopicKind, TopicScheme

log = logging.getLogger("device_sim")
MAX_UNACKED = 20_000
MALFORMED_KINDS = ("not_json", "out_of_range", "device_mismatch", "non_finite")


@dataclass(frozen=True, kw_only=True)
class Chaos:
    """Rates (0..1 per message) of what misbehaving devices and networks do."""

    duplicate: float = 0.0
    out_of_order: float = 0.0
    malformed: float = 0.0

    def __post_init__(self) -> None:
        for name in ("duplicate", "out_of_order", "malformed"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"chaos {name} must be between 0 and 1")


@dataclass(frozen=True, kw_only=True)
class Connectivity:
    """Devices losing their connection: they buffer readings (bounded, oldest dropped) and
    replay them in order when back; their clocks may be off by a few seconds."""

    outages_per_day: float = 0.0  # per device, per simulated day
    outage_hours: float = 4.0  # mean simulated length (exponential)
    buffer: int = 500  # readings a device keeps while offline
    clock_skew_s: float = 0.0  # standard deviation of each device's clock offset

    def __post_init__(self) -> None:
        if self.outages_per_day < 0 or self.outage_hours <= 0 or self.buffer < 1:
            raise ValueError("outages_per_day >= 0, outage_hours > 0 and buffer >= 1")
        if not 0 <= self.clock_skew_s <= 120:
            raise ValueError("clock_skew_s between 0 and 120 (ingest rejects 10 min ahead)")


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    speed: float = 3600.0
    report_interval_s: float = 900.0  # simulated seconds between a device's reports
    duration_s: float | None = None  # wall seconds; None = until stopped
    client_id: str = "fleetcare-sim"
    chaos: Chaos = field(default_factory=Chaos)
    connectivity: Connectivity = field(default_factory=Connectivity)

    def __post_init__(self) -> None:
        if self.speed <= 0 or self.report_interval_s <= 0:
            raise ValueError("speed and report interval must be positive")


@dataclass
class RunStats:
    sent: int = 0  # distinct valid telemetry messages
    acknowledged: int = 0  # of those, acknowledged by the broker
    duplicates: int = 0
    out_of_order: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    commands: int = 0
    outages: int = 0
    dropped: int = 0  # readings lost from full on-device buffers
    still_buffered: int = 0  # readings held by devices still offline at the end
    reports: int = 0
    sim_time: float = 0.0
    elapsed_s: float = 0.0  # wall time until everything sent was acknowledged


class Publisher:
    """One paho connection publishing for many devices (QoS 1), counting broker acks, and
    receiving their commands."""

    def __init__(self, mqtt: MqttSettings, client_id: str) -> None:
        self.scheme = TopicScheme(mqtt.topic_prefix)
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
        )
        if mqtt.username:
            password = mqtt.password.get_secret_value() if mqtt.password else None
            self.client.username_pw_set(mqtt.username, password)
        self.client.max_inflight_messages_set(1000)
        self.acked = 0
        self.published = 0
        self.commands: queue.Queue[tuple[str, CommandPayload]] = queue.Queue()
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        addr = mqtt.address()
        self.client.connect(addr.host, addr.port, keepalive=mqtt.keepalive_s)
        self.client.subscribe(self.scheme.filter(TopicKind.CMD), qos=1)
        self.client.loop_start()
        self._subscribed.wait(10)

    def _on_publish(self, *_args: object) -> None:
        with self._lock:
            self.acked += 1

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        try:
            topic = self.scheme.parse(msg.topic)
            command = CommandPayload.model_validate_json(msg.payload)
        except (TopicError, ValidationError) as exc:  # a device ignores what it cannot parse
            log.warning("ignored a command", extra={"kv": {"topic": msg.topic, "error": str(exc)}})
            return
        self.commands.put((topic.device_id, command))

    def publish(
        self,
        device_type: str,
        device_id: str,
        kind: TopicKind,
        payload: bytes,
        *,
        retain: bool = False,
    ) -> None:
        # backpressure: never more than MAX_UNACKED waiting on the broker (paho's own queue
        # is unbounded), so a fast simulation runs as fast as the broker and engine take it
        while self.published - self.acked >= MAX_UNACKED:
            time.sleep(0.001)
        self.published += 1
        self.client.publish(
            self.scheme.topic(device_type, device_id, kind), payload, qos=1, retain=retain
        )

    def wait_all_acked(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.acked < self.published and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.acked >= self.published

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _malformed(kind: str, payload: dict[str, Any]) -> bytes:
    """The same message as a broken device or link would send it."""
    doc = dict(payload)
    metrics = dict(doc["metrics"])
    # a number, so that the value itself is what is wrong (a text metric would be a schema error)
    first = next(
        k for k, v in metrics.items() if isinstance(v, float | int) and not isinstance(v, bool)
    )
    if kind == "not_json":
        return orjson.dumps(doc)[:-7]
    if kind == "out_of_range":
        metrics[first] = 1e9
        doc["metrics"] = metrics
        return orjson.dumps(doc)
    if kind == "device_mismatch":
        doc["device_id"] = doc["device_id"] + "-x"
        return orjson.dumps(doc)
    metrics[first] = float("nan")  # non_finite: JSON's NaN literal, as some firmware sends
    doc["metrics"] = metrics
    return json.dumps(doc).encode()


class _Sender:
    """Publishes one round of readings, with chaos and connectivity loss, keeping counts."""

    def __init__(self, pub: Publisher, options: RunOptions, fleet: Fleet, stats: RunStats) -> None:
        self.pub, self.chaos, self.conn, self.stats = (
            pub,
            options.chaos,
            options.connectivity,
            stats,
        )
        self.truth = fleet.truth
        self.rng = random.Random(fleet.spec.seed)
        self.delayed: list[tuple[str, str, bytes]] = []
        self.offline_until: dict[str, float] = {}
        self.buffers: dict[str, deque[bytes]] = {}
        self.p_outage = self.conn.outages_per_day * options.report_interval_s / 86400
        self.skew_ms: dict[str, int] = {}
        if self.conn.clock_skew_s:
            for device_id, truth in self.truth.devices.items():
                skew = int(self.rng.gauss(0, self.conn.clock_skew_s * 1000))
                self.skew_ms[device_id] = truth.clock_skew_ms = skew

    def _connected(self, device_type: str, device_id: str, t: float) -> bool:
        """Whether the device can publish now; starts and ends its outages."""
        until = self.offline_until.get(device_id)
        if until is not None:
            if t < until:
                return False
            del self.offline_until[device_id]  # back: online again, replay in order
            self.pub.publish(
                device_type,
                device_id,
                TopicKind.STATUS,
                orjson.dumps({"v": 1, "state": "online"}),
                retain=True,
            )
            for body in self.buffers.pop(device_id, deque()):
                self.pub.publish(device_type, device_id, TopicKind.TELEMETRY, body)
                self.stats.sent += 1
            return True
        if self.p_outage and self.rng.random() < self.p_outage:
            length = self.rng.expovariate(1 / (self.conn.outage_hours * 3600))
            self.offline_until[device_id] = t + length
            self.truth.devices[device_id].outages.append([t, t + length])
            self.stats.outages += 1
            # what the broker's Last Will says when a device drops
            self.pub.publish(device_type, device_id, TopicKind.STATUS, b"offline", retain=True)
            return False
        return True

    def round(self, readings: list[tuple[str, str, dict[str, Any], int, int]], ts: int) -> None:
        late, self.delayed = self.delayed, []
        c = self.chaos
        t = ts / 1000
        for device_type, device_id, metrics, boot, seq in readings:
            doc = {
                "v": 1,
                "device_id": device_id,
                "ts": ts + self.skew_ms.get(device_id, 0),
                "seq": seq,
                "boot": boot,
                "metrics": metrics,
            }
            if not self._connected(device_type, device_id, t):
                buffer = self.buffers.setdefault(device_id, deque(maxlen=self.conn.buffer))
                if len(buffer) == buffer.maxlen:
                    self.stats.dropped += 1  # the oldest goes, as on real devices
                    self.truth.devices[device_id].dropped += 1
                buffer.append(orjson.dumps(doc))
                continue
            if c.malformed and self.rng.random() < c.malformed:
                kind = MALFORMED_KINDS[self.rng.randrange(len(MALFORMED_KINDS))]
                self.stats.malformed[kind] = self.stats.malformed.get(kind, 0) + 1
                self.pub.publish(device_type, device_id, TopicKind.TELEMETRY, _malformed(kind, doc))
                continue
            body = orjson.dumps(doc)
            self.stats.sent += 1
            if c.out_of_order and self.rng.random() < c.out_of_order:
                self.stats.out_of_order += 1
                self.delayed.append((device_type, device_id, body))  # goes after the next round
                continue
            self.pub.publish(device_type, device_id, TopicKind.TELEMETRY, body)
            if c.duplicate and self.rng.random() < c.duplicate:
                self.stats.duplicates += 1
                self.pub.publish(device_type, device_id, TopicKind.TELEMETRY, body)
        for device_type, device_id, body in late:
            self.pub.publish(device_type, device_id, TopicKind.TELEMETRY, body)

    def flush(self) -> None:
        for device_type, device_id, body in self.delayed:
            self.pub.publish(device_type, device_id, TopicKind.TELEMETRY, body)
        self.delayed = []
        self.stats.still_buffered = sum(len(b) for b in self.buffers.values())


def _apply_commands(fleet: Fleet, pub: Publisher, stats: RunStats) -> None:
    while True:
        try:
            device_id, command = pub.commands.get_nowait()
        except queue.Empty:
            return
        if device_id not in fleet.truth.devices:
            continue
        if command.cmd == "filter_replaced":
            fleet.replace_filters([device_id], stage=str(command.args.get("stage", "main")))
            stats.commands += 1
        elif command.cmd == "repair":
            fleet.repair([device_id], str(command.args.get("fault", "")))
            stats.commands += 1
        else:
            log.warning("unknown command", extra={"kv": {"device": device_id, "cmd": command.cmd}})


def run(
    fleet: Fleet,
    mqtt: MqttSettings,
    options: RunOptions,
    stop: threading.Event | None = None,
    stats: RunStats | None = None,
) -> RunStats:
    """Publish the fleet until `stop` is set or `duration_s` passes; returns the counts
    (pass `stats` to watch them while it runs)."""
    stop = stop or threading.Event()
    pub = Publisher(mqtt, options.client_id)
    stats = stats if stats is not None else RunStats()
    sender = _Sender(pub, options, fleet, stats)
    for device_id, truth in fleet.truth.devices.items():
        pub.publish(
            truth.device_type,
            device_id,
            TopicKind.STATUS,
            orjson.dumps({"v": 1, "state": "online", "boot": 1, "firmware": "sim-1.0"}),
            retain=True,
        )
    wall0, sim0 = time.time(), fleet.t
    next_report = fleet.t
    last_log = 0.0
    try:
        while not stop.is_set():
            now = time.time()
            if options.duration_s is not None and now - wall0 >= options.duration_s:
                break
            _apply_commands(fleet, pub, stats)
            target = min(sim0 + (now - wall0) * options.speed, now)
            while next_report <= target and not stop.is_set():
                if options.duration_s is not None and time.time() - wall0 >= options.duration_s:
                    break
                fleet.advance(next_report)
                sender.round(fleet.readings(), int(next_report * 1000))
                stats.reports += 1
                next_report += options.report_interval_s
            if now - last_log >= 5:
                last_log = now
                log.info(
                    "fleet",
                    extra={
                        "kv": {
                            "sim_time": time.strftime("%Y-%m-%d %H:%M", time.gmtime(fleet.t)),
                            "sent": stats.sent,
                            "stages_exhausted": sum(
                                len(d.exhaustions) for d in fleet.truth.devices.values()
                            ),
                        }
                    },
                )
            stop.wait(0.05)
    finally:
        sender.flush()
        statuses = len(fleet.truth.devices)
        all_acked = pub.wait_all_acked()
        telemetry_acked = max(0, pub.acked - statuses)  # statuses were published first
        for device_id, truth in fleet.truth.devices.items():
            pub.publish(truth.device_type, device_id, TopicKind.STATUS, b"offline", retain=True)
        pub.wait_all_acked(timeout=10)
        pub.close()
    stats.elapsed_s = time.time() - wall0
    # everything acknowledged, or (broker gone) what was, counted from the broker's PUBACKs
    stats.acknowledged = stats.sent if all_acked else min(stats.sent, telemetry_acked)
    stats.sim_time = fleet.t
    truth_summary = fleet.truth
    truth_summary.published = stats.acknowledged
    truth_summary.duplicates = stats.duplicates
    truth_summary.out_of_order = stats.out_of_order
    truth_summary.malformed = dict(stats.malformed)
    truth_summary.dropped = stats.dropped
    truth_summary.still_buffered = stats.still_buffered
    return stats
