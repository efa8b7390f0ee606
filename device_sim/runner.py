"""Drive a fleet in accelerated time and publish it over MQTT (multiplexed connection).

Simulated time runs `speed` times faster than the wall clock from a start in the past, and
never ahead of the wall clock (the engine rejects device time from the future): a fleet
started 180 days ago at ×3600 ages half a year in ~72 minutes, then goes on in real time.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from device_sim.fleet import Fleet
from telemetry.connection import MqttSettings
from telemetry.topics import TopicKind, TopicScheme

log = logging.getLogger("device_sim")


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    speed: float = 3600.0
    report_interval_s: float = 900.0  # simulated seconds between a device's reports
    duration_s: float | None = None  # wall seconds; None = until stopped
    client_id: str = "fleetcare-sim"

    def __post_init__(self) -> None:
        if self.speed <= 0 or self.report_interval_s <= 0:
            raise ValueError("speed and report interval must be positive")


@dataclass
class RunStats:
    sent: int = 0
    acknowledged: int = 0
    reports: int = 0
    sim_time: float = 0.0


class Publisher:
    """One paho connection publishing for many devices (QoS 1), counting broker acks."""

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
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish
        addr = mqtt.address()
        self.client.connect(addr.host, addr.port, keepalive=mqtt.keepalive_s)
        self.client.loop_start()

    def _on_publish(self, *_args: object) -> None:
        with self._lock:
            self.acked += 1

    def publish(
        self,
        device_type: str,
        device_id: str,
        kind: TopicKind,
        payload: bytes,
        *,
        retain: bool = False,
    ) -> None:
        self.client.publish(
            self.scheme.topic(device_type, device_id, kind), payload, qos=1, retain=retain
        )

    def wait_acked(self, n: int, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.acked < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.acked >= n

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run(
    fleet: Fleet, mqtt: MqttSettings, options: RunOptions, stop: threading.Event | None = None
) -> RunStats:
    """Publish the fleet until `stop` is set or `duration_s` passes; returns the counts."""
    stop = stop or threading.Event()
    pub = Publisher(mqtt, options.client_id)
    stats = RunStats()
    status_msgs = 0
    for device_id in fleet.ids:
        pub.publish(
            fleet.truth.devices[device_id].device_type,
            device_id,
            TopicKind.STATUS,
            orjson.dumps({"v": 1, "state": "online", "boot": 1, "firmware": "sim-1.0"}),
            retain=True,
        )
        status_msgs += 1
    wall0, sim0 = time.time(), fleet.t
    next_report = fleet.t
    last_log = 0.0
    try:
        while not stop.is_set():
            now = time.time()
            if options.duration_s is not None and now - wall0 >= options.duration_s:
                break
            target = min(sim0 + (now - wall0) * options.speed, now)
            while next_report <= target and not stop.is_set():
                fleet.advance(next_report)
                ts = int(next_report * 1000)
                for device_type, device_id, metrics, boot, seq in fleet.readings():
                    payload = {
                        "v": 1,
                        "device_id": device_id,
                        "ts": ts,
                        "seq": seq,
                        "boot": boot,
                        "metrics": metrics,
                    }
                    pub.publish(device_type, device_id, TopicKind.TELEMETRY, orjson.dumps(payload))
                    stats.sent += 1
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
                            "acknowledged": max(0, pub.acked - status_msgs),
                            "filters_exhausted": sum(
                                1 for d in fleet.truth.devices.values() if d.exhaustions
                            ),
                        }
                    },
                )
            stop.wait(0.05)
    finally:
        pub.wait_acked(stats.sent + status_msgs)
        stats.acknowledged = max(0, pub.acked - status_msgs)
        for device_id in fleet.ids:
            pub.publish(
                fleet.truth.devices[device_id].device_type,
                device_id,
                TopicKind.STATUS,
                b"offline",
                retain=True,
            )
        pub.wait_acked(stats.sent + 2 * status_msgs, timeout=10)
        pub.close()
    stats.sim_time = fleet.t
    fleet.truth.published = stats.acknowledged
    return stats
