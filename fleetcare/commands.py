"""Send the device-command outbox over MQTT: each pending command to its device's `cmd`
topic at QoS 1, marked sent only after the broker acknowledged it (aiomqtt's publish
returns then), so a crash resends rather than loses. A device handles a repeated command
the same as once (a filter fitted twice is one fitted filter)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiomqtt

from fleet.commands import CommandOutbox
from fleetcare.outage import OUTAGE_ERRORS, Outage
from telemetry.connection import MqttSettings
from telemetry.payload import CommandPayload
from telemetry.topics import TopicKind, TopicScheme

log = logging.getLogger("fleetcare.commands")


def engine_client(mqtt: MqttSettings, identifier: str) -> aiomqtt.Client:
    """An aiomqtt client logged in with the engine's account (and TLS when set)."""
    addr = mqtt.address()
    return aiomqtt.Client(
        addr.host,
        addr.port,
        identifier=mqtt.private_name(identifier),
        username=mqtt.username,
        password=mqtt.password.get_secret_value() if mqtt.password else None,
        tls_context=mqtt.tls_context(),
    )


async def send_pending(outbox: CommandOutbox, client: aiomqtt.Client, scheme: TopicScheme) -> int:
    """One pass over the outbox; returns how many were sent."""
    pending = await asyncio.to_thread(outbox.pending)
    sent: list[int] = []
    try:
        for c in pending:
            body = CommandPayload(cmd=c.cmd, args=c.args, id=c.correlation)
            topic = scheme.topic(c.device_type, c.device_id, TopicKind.CMD)
            await client.publish(topic, body.model_dump_json(exclude_none=True), qos=1)
            sent.append(c.id)
    finally:
        await asyncio.to_thread(outbox.mark_sent, sent)
    return len(sent)


async def run_command_publisher(
    outbox: CommandOutbox, mqtt: MqttSettings, stop: asyncio.Event, *, interval_s: float = 1.0
) -> None:
    """Until `stop`: send what is pending every `interval_s`; reconnect when the broker goes."""
    scheme = TopicScheme(mqtt.topic_prefix)
    outage = Outage(log, "command sending")
    while not stop.is_set():
        try:
            async with engine_client(mqtt, "fleetcare-commands") as client:
                while not stop.is_set():
                    try:
                        n = await send_pending(outbox, client, scheme)
                    except OUTAGE_ERRORS as exc:  # pending commands wait in the database
                        outage.failed(exc)
                        n = 0
                    else:
                        outage.ok()
                    if n:
                        log.info("commands sent", extra={"kv": {"count": n}})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), interval_s)
        except aiomqtt.MqttError as exc:
            log.warning("command publisher: broker unavailable", extra={"kv": {"error": str(exc)}})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)
