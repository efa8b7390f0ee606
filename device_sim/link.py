"""MQTT connections for simulated devices: many of them, one reader thread.

One thread (the `Hub`) reads every connection's socket and handles what the broker sends:
PUBACKs (counted, and the message leaves the in-flight set), commands (queued for the
runner, acknowledged), ping responses. Everything that *writes* happens on the runner's
thread in `Link.flush`, so a broker that pushes back on a big write can never deadlock
against our own reader. A link that loses its connection reconnects on the next flush and
resends what was not acknowledged, in order, flagged DUP: QoS 1 as the spec means it.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from device_sim import wire

log = logging.getLogger("device_sim.link")
RETRY_S = (0.2, 0.5, 1.0, 2.0, 5.0)


class LinkRefused(Exception):
    """The broker answered CONNECT with a refusal: wrong credentials, not authorised..."""

    def __init__(self, client_id: str, code: int) -> None:
        self.client_id, self.code = client_id, code
        reason = wire.CONNACK_REASONS.get(code, f"code {code}")
        super().__init__(f"broker refused {client_id!r}: {reason}")


@dataclass(frozen=True, kw_only=True)
class LinkConfig:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    will: wire.Will | None = None
    keepalive: int = 60
    window: int = 20_000  # unacknowledged QoS 1 messages before publish waits


OnMessage = Callable[["Link", wire.Incoming], None]


class Link:
    """One MQTT connection. Publish with `publish`, push bytes out with `flush`."""

    def __init__(
        self,
        hub: Hub,
        config: LinkConfig,
        on_message: OnMessage | None = None,
        on_connect: Callable[[Link], None] | None = None,
    ) -> None:
        self.hub, self.config = hub, config
        self.on_message, self.on_connect = on_message, on_connect
        self.sock: socket.socket | None = None
        self.published = 0
        self.acked = 0
        self.acked_counted = 0  # acknowledged messages published with counted=True
        self.reconnects = 0
        self.wanted = False  # should be connected: reconnect when lost
        self._out = bytearray()
        self._inflight: dict[int, tuple[bytes, bool]] = {}  # packet id -> (packet, counted)
        self._next_id = 0
        self._subscriptions: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._acked_cond = threading.Condition(self._lock)
        self._reader = wire.PacketReader()
        self._last_sent = 0.0
        self._retry_at = 0.0
        self._failures = 0

    # -- connection ----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.sock is not None

    def connect(self, timeout: float = 10.0) -> None:
        """Connect (blocking until CONNACK); raises `LinkRefused` or `OSError`."""
        self.wanted = True
        c = self.config
        sock = socket.create_connection((c.host, c.port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(
                wire.connect(
                    c.client_id,
                    keepalive=c.keepalive,
                    username=c.username,
                    password=c.password,
                    will=c.will,
                )
            )
            ack = b""
            while len(ack) < 4:
                chunk = sock.recv(4 - len(ack))
                if not chunk:
                    raise ConnectionError(f"broker closed the connection of {c.client_id!r}")
                ack += chunk
            if ack[0] != 0x20 or ack[3] != 0:
                raise LinkRefused(c.client_id, ack[3])
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        self._reader = wire.PacketReader()
        with self._lock:
            resend = [wire.as_duplicate(p) for p, _ in self._inflight.values()]
            self._out.clear()
            for i, (topic_filter, qos) in enumerate(self._subscriptions):
                self._out += wire.subscribe(65535 - i, topic_filter, qos)
            for p in resend:
                self._out += p
        self.sock = sock
        self._failures = 0
        self._last_sent = time.monotonic()
        self.hub.register(self)
        if self.on_connect is not None:
            self.on_connect(self)

    def drop(self) -> None:
        """Vanish without DISCONNECT, as a device losing power or network does: the broker
        publishes our Last Will. Stays down until `connect` is called again."""
        self.wanted = False
        self._lost()

    def close(self, timeout: float = 10.0) -> bool:
        """Send what is queued, wait for the acknowledgements, say goodbye. True when
        everything published was acknowledged."""
        done = self.wait_acked(timeout)
        self.wanted = False
        if self.sock is not None:
            with self._lock:
                self._out += wire.DISCONNECT
            self.flush()
        self._lost()
        return done

    def _lost(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            self.hub.unregister(sock)
            with contextlib.suppress(OSError):
                sock.close()
            if self.wanted:
                self._failures += 1
                self._retry_at = time.monotonic() + RETRY_S[min(self._failures, len(RETRY_S)) - 1]
                log.warning("connection lost", extra={"kv": {"client": self.config.client_id}})

    # -- writing (runner thread) ---------------------------------------------------------
    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        with self._lock:
            self._subscriptions.append((topic_filter, qos))
            self._out += wire.subscribe(65535 - len(self._subscriptions) + 1, topic_filter, qos)

    def publish(
        self, topic: bytes, payload: bytes, *, retain: bool = False, counted: bool = False
    ) -> None:
        """Queue a QoS 1 PUBLISH (`topic` length-prefixed, see `wire.utf8`). Waits while
        `window` messages are unacknowledged: backpressure from the broker. Acks of
        `counted` messages are tallied apart (`acked_counted`): the caller's own books."""
        while len(self._inflight) >= self.config.window:
            self.flush()
            with self._acked_cond:
                if len(self._inflight) >= self.config.window:
                    self._acked_cond.wait(0.05)
        with self._lock:
            pid = self._next_id = self._next_id % 65000 + 1
            if pid in self._inflight:  # 65k outstanding would be a broker that never acks
                raise RuntimeError(f"{self.config.client_id}: packet id {pid} still in flight")
            packet = wire.publish(topic, payload, pid, retain=retain)
            self._inflight[pid] = (packet, counted)
            if self.sock is not None:
                self._out += packet
            self.published += 1
        if len(self._out) >= 1 << 16:
            self.flush()

    def flush(self) -> None:
        """Write what is queued; reconnect first if the connection was lost."""
        if self.sock is None:
            if self.wanted and time.monotonic() >= self._retry_at:
                try:
                    self.connect(timeout=5)
                except (OSError, LinkRefused) as exc:
                    self._failures += 1
                    self._retry_at = (
                        time.monotonic() + RETRY_S[min(self._failures, len(RETRY_S)) - 1]
                    )
                    log.debug("reconnect failed", extra={"kv": {"error": str(exc)}})
            return
        now = time.monotonic()
        with self._lock:
            if not self._out and now - self._last_sent > self.config.keepalive / 2:
                self._out += wire.PINGREQ
            data = bytes(self._out)
            self._out.clear()
        if not data:
            return
        try:
            self.sock.sendall(data)
            self._last_sent = now
        except (OSError, AttributeError):  # AttributeError: the reader dropped it meanwhile
            self._lost()

    def wait_acked(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._inflight and time.monotonic() < deadline:
            self.flush()
            with self._acked_cond:
                self._acked_cond.wait(0.02)
        return not self._inflight

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    # -- reading (hub thread) ------------------------------------------------------------
    def _on_data(self, data: bytes) -> None:
        for ptype, flags, body in self._reader.feed(data):
            if ptype == wire.PacketType.PUBACK:
                with self._acked_cond:
                    done = self._inflight.pop(int.from_bytes(body[:2], "big"), None)
                    if done is not None:
                        self.acked += 1
                        self.acked_counted += done[1]
                    self._acked_cond.notify_all()
            elif ptype == wire.PacketType.PUBLISH:
                msg = wire.parse_publish(flags, body)
                if msg.qos and msg.packet_id is not None:
                    with self._lock:
                        self._out += wire.puback(msg.packet_id)
                if self.on_message is not None:
                    self.on_message(self, msg)
            elif ptype == wire.PacketType.SUBACK and b"\x80" in body[2:]:
                log.warning("subscription refused", extra={"kv": {"client": self.config.client_id}})


class Hub:
    """The one thread that reads all links' sockets."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._changes: list[tuple[bool, socket.socket, Link | None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mqtt-hub", daemon=True)
        self._thread.start()

    def register(self, link: Link) -> None:
        assert link.sock is not None
        with self._lock:
            self._changes.append((True, link.sock, link))

    def unregister(self, sock: socket.socket) -> None:
        with self._lock:
            self._changes.append((False, sock, None))

    def _apply(self) -> None:
        with self._lock:
            changes, self._changes = self._changes, []
        for add, sock, link in changes:
            try:
                if add:
                    self._selector.register(sock, selectors.EVENT_READ, link)
                else:
                    self._selector.unregister(sock)
            except (KeyError, ValueError, OSError):
                pass  # closed before we saw it

    def _run(self) -> None:
        while not self._stop.is_set():
            self._apply()
            if not self._selector.get_map():
                time.sleep(0.01)
                continue
            for key, _ in self._selector.select(0.05):
                link: Link = key.data
                if link.sock is not key.fileobj:
                    continue  # replaced by a reconnect
                try:
                    data = link.sock.recv(1 << 18)
                except OSError:
                    data = b""
                if data:
                    link._on_data(data)
                else:
                    with contextlib.suppress(KeyError, ValueError):
                        self._selector.unregister(key.fileobj)
                    link._lost()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._selector.close()
