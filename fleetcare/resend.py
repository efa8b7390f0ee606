"""Ask the whole fleet to publish again what it sent since a moment: the by-hand form of
what an ingest worker asks for itself after a reconnect. For a loss no worker saw, e.g.
the messages queued for a worker removed for good (docs/deploy.md, "Scaling ingest
down"). What arrives twice is stored once, so asking too far back costs only traffic."""

from __future__ import annotations

import time

from fleetcare.commands import engine_client
from telemetry.connection import MqttSettings
from telemetry.payload import CommandPayload
from telemetry.topics import TopicScheme


async def ask_fleet_resend(mqtt: MqttSettings, since_s: float) -> str:
    """Publish `resend` (since `since_s`, wall-clock epoch seconds) at QoS 1 on the
    fleet-wide command topic with the engine's account; returns the topic once the broker
    has acknowledged it."""
    if since_s > time.time():
        raise ValueError("the resend would start in the future: give a past moment")
    scheme = TopicScheme(mqtt.topic_prefix)
    body = CommandPayload(cmd="resend", args={"since_ms": int(since_s * 1000)})
    async with engine_client(mqtt, f"fleetcare-resend-{int(time.time())}") as client:
        await client.publish(scheme.broadcast(), body.model_dump_json(exclude_none=True), qos=1)
    return scheme.broadcast()
