"""The paho-mqtt consumer client: fixed id, persistent session, QoS 1, manual acks."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from telemetry.connection import MqttSettings

SESSION_EXPIRY_S = 7 * 24 * 3600  # MQTT 5: keep our session (and its queue) a week offline


_PUBACK = struct.Struct("!BBH")  # PUBACK, remaining length 2, packet id (3.1.1 and 5)
RawHandler = Callable[[str, bytes, int], None]


class Client(paho.Client):
    """paho's client with the ingest worker's hot path made lean; everything else is
    paho's. Measured on the ingest bench (docs/benchmarks.md):

    * no topic-trie walk per message when no per-filter callback is registered: paho's
      `_handle_on_message` matches every topic against the callbacks of
      `message_callback_add` (about 6 % of the worker's CPU), which the engine never
      registers. One that registers any gets paho's own path back.
    * `on_raw_publish(topic, payload, packet_id)`, when set, takes each QoS 1 PUBLISH of
      a manually acknowledged session straight from the packet: no `MQTTMessage`, no
      properties object, no log formatting. Anything else (QoS 0 or 2, a topic alias, a
      topic that is not UTF-8, a short packet) goes through paho, which judges it.
    * `ack_many(packet_ids)` queues the PUBACKs of a whole batch as one write: paho's
      `ack` costs a wake-up of its loop and a socket write per message.
    """

    _filtered = False
    on_raw_publish: RawHandler | None = None

    def _handle_publish(self) -> MQTTErrorCode:
        handler = self.on_raw_publish
        header: int = self._in_packet["command"]
        if handler is None or not self._manual_ack or (header & 0x06) != 0x02:  # QoS 1 only
            return super()._handle_publish()
        packet: bytes | bytearray = self._in_packet["packet"]
        n = len(packet)
        slen = int.from_bytes(packet[0:2], "big") if n >= 2 else 0
        pos = 2 + slen + 2  # the topic, then the packet id
        if slen == 0 or n < pos:
            return super()._handle_publish()
        if self._protocol == paho.MQTTv5:  # skip the properties (their length is a varint)
            props, shift = 0, 0
            while True:
                if pos >= n or shift > 21:
                    return super()._handle_publish()
                byte = packet[pos]
                pos += 1
                props |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            pos += props
            if pos > n:
                return super()._handle_publish()
        try:
            topic = packet[2 : 2 + slen].decode()
        except UnicodeDecodeError:
            return super()._handle_publish()
        mid = int.from_bytes(packet[2 + slen : 4 + slen], "big")
        with self._in_callback_mutex:
            try:
                handler(topic, bytes(memoryview(packet)[pos:]), mid)
            except Exception as exc:
                self._easy_log(paho.MQTT_LOG_ERR, "Caught exception in on_raw_publish: %s", exc)
                if not self.suppress_exceptions:
                    raise
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, packet_ids: Sequence[int]) -> None:
        """PUBACK each of `packet_ids` (QoS 1 messages of a manually acknowledged
        session), all in one write."""
        if packet_ids:
            pack = _PUBACK.pack
            body = b"".join([pack(paho.PUBACK, 2, mid) for mid in packet_ids])
            self._packet_queue(paho.PUBACK, body, 0, 1)

    def message_callback_add(self, sub: str, callback: Any) -> None:
        self._filtered = True
        super().message_callback_add(sub, callback)

    def _handle_on_message(self, message: paho.MQTTMessage) -> None:
        on_message = self.on_message
        if self._filtered or on_message is None:
            super()._handle_on_message(message)
            return
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)
            except Exception as exc:
                self._easy_log(paho.MQTT_LOG_ERR, "Caught exception in on_message: %s", exc)
                if not self.suppress_exceptions:
                    raise


def make_client(
    settings: MqttSettings,
    client_id: str,
    *,
    manual_ack: bool,
    persistent: bool = True,
) -> Client:
    v5 = settings.protocol == "5"
    client = Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
        reconnect_on_failure=True,
    )
    if settings.username:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if (ctx := settings.tls_context()) is not None:
        client.tls_set_context(ctx)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client


def connect_properties(settings: MqttSettings, receive_maximum: int, persistent: bool) -> Any:
    if settings.protocol != "5":
        return None
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = SESSION_EXPIRY_S if persistent else 0
    props.ReceiveMaximum = receive_maximum
    return props


def connect_async(
    client: paho.Client,
    settings: MqttSettings,
    *,
    receive_maximum: int = 65535,
    persistent: bool = True,
) -> None:
    addr = settings.address()
    kwargs: dict[str, Any] = {"keepalive": settings.keepalive_s}
    if settings.protocol == "5":
        kwargs["clean_start"] = not persistent
        kwargs["properties"] = connect_properties(settings, receive_maximum, persistent)
    client.connect_async(addr.host, addr.port, **kwargs)


def subscribe_all(client: paho.Client, settings: MqttSettings, filters: list[str]) -> None:
    if settings.protocol == "5":
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in filters])
    else:
        client.subscribe([(f, 1) for f in filters])


OnMessage = Callable[[paho.Client, Any, paho.MQTTMessage], None]
