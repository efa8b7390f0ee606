"""A small built-in device publisher for the demo (the simulator of issue 3 replaces it).

One aiomqtt connection per device, like real appliances: retained `online` status, an
`offline` Last Will, QoS 1 telemetry with a random walk, and — once — a few malformed
messages so the demo shows dead letters.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field

import aiomqtt
import orjson

from telemetry.connection import MqttSettings
from telemetry.metrics import DEVICE_TYPES, MetricKind
from telemetry.topics import TopicKind, TopicScheme

TYPES = list(DEVICE_TYPES)


@dataclass
class DemoDevice:
    device_type: str
    device_id: str
    values: dict[str, float | int | bool | str] = field(default_factory=dict)
    seq: int = 0
    boot: int = 1

    def step(self, rng: random.Random) -> dict[str, float | int | bool | str]:
        for m in DEVICE_TYPES[self.device_type].metrics:
            lo, hi = m.minimum or 0.0, m.maximum or 1.0
            if m.kind is MetricKind.ENUM:
                self.values.setdefault(m.name, m.choices[1])
            elif m.kind is MetricKind.BOOL:
                self.values[m.name] = False
            else:
                span = hi - lo
                cur = float(self.values.get(m.name, lo + span * rng.uniform(0.01, 0.04)))
                cur = min(hi, max(lo, cur + rng.gauss(0, span * 0.005)))
                self.values[m.name] = round(cur, 2) if m.kind is MetricKind.FLOAT else int(cur)
        return dict(self.values)


def fleet(n: int) -> list[DemoDevice]:
    short = {"purifier": "ap", "water_purifier": "wp", "air_conditioner": "ac"}
    return [DemoDevice(TYPES[i % 3], f"demo-{short[TYPES[i % 3]]}-{i:04d}") for i in range(n)]


BAD_MESSAGES = [
    ("purifier", "demo-ap-bad", b"this is not json"),
    (
        "purifier",
        "demo-ap-bad",
        b'{"v":1,"device_id":"demo-ap-bad","ts":%d,"seq":1,"boot":1,"metrics":{"pm25":99999}}',
    ),
    (
        "purifier",
        "demo-ap-bad",
        b'{"v":1,"device_id":"someone-else","ts":%d,"seq":2,"boot":1,"metrics":{"pm25":12}}',
    ),
]


async def run_device(
    dev: DemoDevice,
    mqtt: MqttSettings,
    interval: float,
    stop: asyncio.Event,
    seed: int,
    sent: dict[str, int],
) -> None:
    scheme = TopicScheme(mqtt.topic_prefix)
    status = scheme.topic(dev.device_type, dev.device_id, TopicKind.STATUS)
    topic = scheme.topic(dev.device_type, dev.device_id, TopicKind.TELEMETRY)
    addr = mqtt.address()
    rng = random.Random(seed)
    will = aiomqtt.Will(status, b"offline", qos=1, retain=True)
    while not stop.is_set():
        try:
            async with aiomqtt.Client(
                addr.host, addr.port, identifier=dev.device_id, will=will, keepalive=30
            ) as client:
                await client.publish(
                    status,
                    orjson.dumps(
                        {"v": 1, "state": "online", "boot": dev.boot, "firmware": "1.4.2"}
                    ),
                    qos=1,
                    retain=True,
                )
                await asyncio.sleep(rng.uniform(0, interval))
                while not stop.is_set():
                    dev.seq += 1
                    payload = {
                        "v": 1,
                        "device_id": dev.device_id,
                        "ts": int(time.time() * 1000),
                        "seq": dev.seq,
                        "boot": dev.boot,
                        "metrics": dev.step(rng),
                    }
                    await client.publish(topic, orjson.dumps(payload), qos=1)
                    sent["telemetry"] = sent.get("telemetry", 0) + 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=interval)
                await client.publish(status, b"offline", qos=1, retain=True)
        except aiomqtt.MqttError:
            await asyncio.sleep(1)


async def publish_bad(mqtt: MqttSettings) -> int:
    scheme = TopicScheme(mqtt.topic_prefix)
    addr = mqtt.address()
    now = int(time.time() * 1000)
    async with aiomqtt.Client(addr.host, addr.port, identifier="demo-bad-publisher") as client:
        for device_type, device_id, body in BAD_MESSAGES:
            payload = body % now if b"%d" in body else body
            await client.publish(
                scheme.topic(device_type, device_id, TopicKind.TELEMETRY), payload, qos=1
            )
    return len(BAD_MESSAGES)
