"""Three malformed messages the demo sends once, so that dead letters show up in it."""

from __future__ import annotations

import time

import aiomqtt

from telemetry.connection import MqttSettings
from telemetry.topics import TopicKind, TopicScheme

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


async def publish_bad(mqtt: MqttSettings) -> int:
    """Publish the three (aiomqtt: a one-off async client is what it is good at)."""
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
