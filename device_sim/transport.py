"""How simulated devices reach the broker: multiplexed or one connection per device.

- `Multiplexed`: one connection carries many devices' topics (scale). A device going
  offline is announced by the simulator on the device's behalf (retained `offline`), since
  the shared connection stays up.
- `PerDevice`: each device has its own connection, client id and credentials (realism,
  up to a few thousand), with a real Last Will: an outage drops the connection without
  DISCONNECT and the *broker* publishes the retained `offline`.

Both subscribe to the devices' `cmd` topics (and the fleet-wide one) and queue what
arrives for the runner. Both keep what their devices recently sent, as firmware keeps a
ring buffer, to resend it when the engine asks (`resend`, after a broker lost messages).
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from device_sim import wire
from device_sim.credentials import device_password
from device_sim.link import Hub, Link, LinkConfig
from telemetry.connection import MqttSettings
from telemetry.errors import TopicError
from telemetry.payload import CommandPayload
from telemetry.topics import TopicKind, TopicScheme

log = logging.getLogger("device_sim")
OFFLINE = b"offline"  # the Last Will body (the contract accepts plain online/offline)


def online_status() -> bytes:
    return orjson.dumps({"v": 1, "state": "online", "boot": 1, "firmware": "sim-1.0"})


@dataclass(frozen=True, kw_only=True)
class PerDeviceOptions:
    """Each device logs in as itself: user name = device id, password derived from a
    fleet secret (`device_sim.credentials`), so a broker can be provisioned to match."""

    secret: str = "fleetcare-sim"
    keepalive: int = 60


# messages kept for a resend: at least the engine's default window (120 s) at the rates
# tests and demos run; a large benchmark fleet keeps less than that
RECENT_MAX = 200_000


class Transport(Protocol):
    commands: queue.Queue[tuple[str, CommandPayload]]

    def resend(self, since: float) -> int: ...

    def start(self, devices: list[tuple[str, str]]) -> None: ...
    def publish(
        self,
        device_type: str,
        device_id: str,
        kind: TopicKind,
        payload: bytes,
        *,
        retain: bool = False,
        counted: bool = False,
    ) -> None: ...
    def went_offline(self, device_type: str, device_id: str) -> None: ...
    def came_back(self, device_type: str, device_id: str) -> None: ...
    def flush(self) -> None: ...
    def acked(self) -> int: ...
    def acked_counted(self) -> int: ...
    def published(self) -> int: ...
    def wait_acked(self, timeout: float) -> bool: ...
    def close(self) -> None: ...


class _Commands:
    """Parses what arrives on `cmd` topics; a device ignores what it cannot parse."""

    def __init__(self, scheme: TopicScheme) -> None:
        self.scheme = scheme
        self.commands: queue.Queue[tuple[str, CommandPayload]] = queue.Queue()
        self._topics: dict[tuple[str, str, TopicKind], bytes] = {}
        # (wall time sent, device type, device id, kind, payload) of what devices sent
        # (broken ones too: firmware does not know they are broken), not their status
        self.recent: deque[tuple[float, str, str, TopicKind, bytes]] = deque(maxlen=RECENT_MAX)
        self._resending = False

    def remember(self, device_type: str, device_id: str, kind: TopicKind, payload: bytes) -> None:
        if not self._resending:
            self.recent.append((time.time(), device_type, device_id, kind, payload))

    def resend(self, since: float) -> int:
        """Publish again what was sent from `since` (wall time); not counted again (and not
        kept again: a second request resends the originals, not the copies)."""
        again = [m for m in self.recent if m[0] >= since]
        self._resending = True
        try:
            for _, device_type, device_id, kind, payload in again:
                self.publish(device_type, device_id, kind, payload, counted=False)
        finally:
            self._resending = False
        self.flush()
        return len(again)

    def publish(self, *args: Any, **kwargs: Any) -> None:  # each transport's own
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def topic(self, device_type: str, device_id: str, kind: TopicKind) -> bytes:
        key = (device_type, device_id, kind)
        t = self._topics.get(key)
        if t is None:
            t = self._topics[key] = wire.utf8(self.scheme.topic(device_type, device_id, kind))
        return t

    def on_message(self, _link: Link, msg: wire.Incoming) -> None:
        try:
            topic = self.scheme.parse(msg.topic)
            command = CommandPayload.model_validate_json(msg.payload)
        except (TopicError, ValidationError) as exc:
            log.warning("ignored a command", extra={"kv": {"topic": msg.topic, "error": str(exc)}})
            return
        self.commands.put((topic.device_id, command))


class Multiplexed(_Commands):
    def __init__(self, mqtt: MqttSettings, client_id: str, *, window: int = 20_000) -> None:
        super().__init__(TopicScheme(mqtt.topic_prefix))
        addr = mqtt.address()
        self.hub = Hub()
        self.link = Link(
            self.hub,
            LinkConfig(
                host=addr.host,
                port=addr.port,
                client_id=client_id,
                username=mqtt.username,
                password=mqtt.password.get_secret_value() if mqtt.password else None,
                keepalive=mqtt.keepalive_s,
                window=window,
            ),
            on_message=self.on_message,
        )
        self.devices: list[tuple[str, str]] = []

    def start(self, devices: list[tuple[str, str]]) -> None:
        self.devices = devices
        self.link.connect()
        self.link.subscribe(self.scheme.filter(TopicKind.CMD))
        status = online_status()
        for device_type, device_id in devices:
            self.link.publish(
                self.topic(device_type, device_id, TopicKind.STATUS), status, retain=True
            )
        self.link.flush()

    def publish(
        self,
        device_type: str,
        device_id: str,
        kind: TopicKind,
        payload: bytes,
        *,
        retain: bool = False,
        counted: bool = False,
    ) -> None:
        if kind is not TopicKind.STATUS:
            self.remember(device_type, device_id, kind, payload)
        self.link.publish(
            self.topic(device_type, device_id, kind), payload, retain=retain, counted=counted
        )

    def went_offline(self, device_type: str, device_id: str) -> None:
        # the shared connection stays up, so say what the device's Last Will would
        self.publish(device_type, device_id, TopicKind.STATUS, OFFLINE, retain=True)

    def came_back(self, device_type: str, device_id: str) -> None:
        self.publish(device_type, device_id, TopicKind.STATUS, online_status(), retain=True)

    def flush(self) -> None:
        self.link.flush()

    def acked(self) -> int:
        return self.link.acked

    def acked_counted(self) -> int:
        return self.link.acked_counted

    def published(self) -> int:
        return self.link.published

    def wait_acked(self, timeout: float) -> bool:
        return self.link.wait_acked(timeout)

    def close(self) -> None:
        for device_type, device_id in self.devices:
            self.went_offline(device_type, device_id)
        self.link.close(timeout=10)
        self.hub.close()


class PerDevice(_Commands):
    def __init__(self, mqtt: MqttSettings, options: PerDeviceOptions) -> None:
        super().__init__(TopicScheme(mqtt.topic_prefix))
        self.mqtt, self.options = mqtt, options
        self.hub = Hub()
        self.links: dict[str, Link] = {}
        self.types: dict[str, str] = {}

    def _link(self, device_type: str, device_id: str) -> Link:
        addr = self.mqtt.address()
        status_topic = self.scheme.topic(device_type, device_id, TopicKind.STATUS)

        def announce(link: Link) -> None:  # on every (re)connect, like firmware does
            link.publish(wire.utf8(status_topic), online_status(), retain=True)

        link = Link(
            self.hub,
            LinkConfig(
                host=addr.host,
                port=addr.port,
                client_id=device_id,
                username=device_id,
                password=device_password(self.options.secret, device_id),
                will=wire.Will(status_topic, OFFLINE),
                keepalive=self.options.keepalive,
                window=200,
            ),
            on_message=self.on_message,
            on_connect=announce,
        )
        link.subscribe(self.scheme.topic(device_type, device_id, TopicKind.CMD))
        link.subscribe(self.scheme.broadcast())
        return link

    def start(self, devices: list[tuple[str, str]]) -> None:
        for device_type, device_id in devices:
            self.types[device_id] = device_type
            link = self.links[device_id] = self._link(device_type, device_id)
            link.connect()  # LinkRefused names the device and the broker's reason
            link.flush()

    def publish(
        self,
        device_type: str,
        device_id: str,
        kind: TopicKind,
        payload: bytes,
        *,
        retain: bool = False,
        counted: bool = False,
    ) -> None:
        if kind is not TopicKind.STATUS:
            self.remember(device_type, device_id, kind, payload)
        self.links[device_id].publish(
            self.topic(device_type, device_id, kind), payload, retain=retain, counted=counted
        )

    def went_offline(self, device_type: str, device_id: str) -> None:
        link = self.links[device_id]
        # the outage starts between messages: what was sent is delivered, so the counts
        # stay exact (a message cut off mid-flight would be resent after the reconnect)
        link.wait_acked(2.0)
        link.drop()  # no DISCONNECT: the broker publishes the Last Will

    def came_back(self, device_type: str, device_id: str) -> None:
        link = self.links[device_id]
        try:
            link.connect()
        except OSError:
            link.wanted = True  # the broker is away: reconnect on a later flush

    def flush(self) -> None:
        for link in self.links.values():
            link.flush()

    def acked(self) -> int:
        return sum(link.acked for link in self.links.values())

    def acked_counted(self) -> int:
        return sum(link.acked_counted for link in self.links.values())

    def published(self) -> int:
        return sum(link.published for link in self.links.values())

    def wait_acked(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(
            link.wait_acked(max(0.0, deadline - time.monotonic())) for link in self.links.values()
        )

    def close(self) -> None:
        # a device switched off cleanly says so itself (a clean DISCONNECT fires no Will)
        for device_id, link in self.links.items():
            if link.connected:
                topic = self.topic(self.types[device_id], device_id, TopicKind.STATUS)
                link.publish(topic, OFFLINE, retain=True)
        self.wait_acked(10)
        for link in self.links.values():
            link.close(timeout=0)
        self.hub.close()
