"""The paho-mqtt consumer client: fixed id, persistent session, QoS 1, manual acks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from telemetry.connection import MqttSettings

SESSION_EXPIRY_S = 7 * 24 * 3600  # MQTT 5: keep our session (and its queue) a week offline


class Client(paho.Client):
    """paho's client without a topic-trie walk per message when no per-filter callback is
    registered: its `_handle_on_message` matches every topic against the callbacks of
    `message_callback_add` (about 6 % of the ingest worker's CPU), which the engine never
    registers; then `on_message` is called directly. One that registers any gets paho's
    own path back."""

    _filtered = False

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
) -> paho.Client:
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
