"""The ingest worker's MQTT client reads QoS 1 messages straight from their packets and
acknowledges a batch in one write; whatever it does not handle itself goes through paho."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetcare.brokers import MosquittoProcess
from ingest.dead_letters import DeadLetterRepository
from ingest.mqtt import Client
from tests.ingest.helpers import (
    fleet_messages,
    running_worker,
    settings_for,
    topic,
    wait_until,
)


def _client(protocol: int) -> tuple[Client, list[tuple[str, bytes, int]], list[Any]]:
    client = Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="t",
        protocol=protocol,
        manual_ack=True,
    )
    raw: list[tuple[str, bytes, int]] = []
    slow: list[Any] = []
    client.on_raw_publish = lambda t, p, m: raw.append((t, p, m))
    client.on_message = lambda _c, _u, msg: slow.append(msg)
    return client, raw, slow


def _publish_packet(
    topic_b: bytes, mid: int, payload: bytes, *, qos: int = 1, props: bytes | None = None
) -> dict[str, Any]:
    body = struct.pack("!H", len(topic_b)) + topic_b
    if qos:
        body += struct.pack("!H", mid)
    if props is not None:
        body += props
    return {"command": 0x30 | (qos << 1), "packet": bytearray(body + payload)}


def _handle(client: Client, packet: dict[str, Any]) -> None:
    client._in_packet = packet
    assert client._handle_publish() == paho.MQTTErrorCode.MQTT_ERR_SUCCESS


def test_a_qos_1_publish_is_read_from_its_packet() -> None:
    client, raw, slow = _client(paho.MQTTv311)
    _handle(client, _publish_packet(b"fleetcare/v1/purifier/p-1/telemetry", 513, b'{"v":1}'))
    assert raw == [("fleetcare/v1/purifier/p-1/telemetry", b'{"v":1}', 513)]
    assert type(raw[0][1]) is bytes
    assert slow == []


def test_mqtt_5_properties_are_skipped_whatever_their_length() -> None:
    client, raw, slow = _client(paho.MQTTv5)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("k" * 40, "v" * 200)]  # a property block longer than 127 bytes
    props.MessageExpiryInterval = 60
    packed = props.pack()
    assert packed[0] & 0x80  # its length takes two bytes
    _handle(client, _publish_packet(b"a/b", 7, b"payload", props=packed))
    _handle(client, _publish_packet(b"a/b", 8, b"p2", props=b"\x00"))
    assert raw == [("a/b", b"payload", 7), ("a/b", b"p2", 8)]
    assert slow == []


def test_what_the_shortcut_does_not_handle_goes_through_paho() -> None:
    client, raw, slow = _client(paho.MQTTv311)
    _handle(client, _publish_packet(b"q0/topic", 0, b"x", qos=0))  # nothing to acknowledge
    _handle(client, _publish_packet(b"bad\xff/topic", 9, b"y"))  # paho says what is wrong
    assert raw == []
    assert [(m.qos, m.payload) for m in slow] == [(0, b"x"), (1, b"y")]
    v5, raw5, slow5 = _client(paho.MQTTv5)
    _handle(v5, _publish_packet(b"", 10, b"z", props=b"\x03\x23\x00\x01"))  # a topic alias
    assert raw5 == []
    assert len(slow5) == 1


def test_a_batch_is_acknowledged_in_one_write() -> None:
    client, _, _ = _client(paho.MQTTv311)
    client.ack_many([1, 2, 65535])
    (queued,) = list(client._out_packet)
    assert bytes(queued["packet"]) == bytes.fromhex("40020001400200024002ffff")


async def test_mqtt_5_messages_with_properties_are_stored_and_dead_lettered_byte_for_byte(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    s = settings_for(tmp_path, mosquitto.port)
    s = s.model_copy(update={"mqtt": s.mqtt.model_copy(update={"protocol": "5"})})
    good = fleet_messages(500, devices=20)
    bad = (topic("purifier", "p-00001"), b'{"v":1,"device_id":"p-00001"}')
    async with running_worker(s) as w:
        pub = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        pub.connect("127.0.0.1", mosquitto.port)
        pub.loop_start()
        try:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = [("trace", "x" * 300)]
            props.ContentType = "application/json"
            infos = [pub.publish(t, p, qos=1, properties=props) for t, p in [*good, bad]]
            for info in infos:
                info.wait_for_publish(30)
        finally:
            pub.disconnect()
            pub.loop_stop()
        await wait_until(lambda: _count_is(w.store, 500), 30, "500 stored")
        letters = DeadLetterRepository(w.db).list(limit=10)
    assert [(d.reason, d.topic, d.payload) for d in letters] == [("missing_field", *bad)]


async def _count_is(store: Any, n: int) -> bool:
    return bool(await store.count() >= n)
