"""MQTT 3.1.1 packets, encoded and decoded by hand: the subset a device needs.

paho builds a message object, takes locks and runs callbacks for every publish, and its
network thread tops out far below what a fleet needs (docs/architecture.md, "Simulator's
MQTT"). A device's packets are simple enough to build as bytes, so a simulator process
can publish tens of thousands a second. Spec: MQTT Version 3.1.1, OASIS Standard, section 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class PacketType(IntEnum):
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    SUBSCRIBE = 8
    SUBACK = 9
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14


# CONNACK return codes (3.2.2.3), in words a user can act on
CONNACK_REASONS = {
    1: "the broker does not speak MQTT 3.1.1",
    2: "the client identifier was rejected",
    3: "the broker is unavailable",
    4: "bad user name or password",
    5: "not authorised (also what Mosquitto answers a wrong user name or password)",
}
PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"
DUP = 0x08


@dataclass(frozen=True)
class Will:
    """What the broker publishes for a client that drops without saying goodbye."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def varint(n: int) -> bytes:
    """The remaining-length encoding (7 bits a byte, high bit = more follows)."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return len(b).to_bytes(2, "big") + b


def connect(
    client_id: str,
    *,
    keepalive: int = 60,
    clean: bool = True,
    username: str | None = None,
    password: str | None = None,
    will: Will | None = None,
) -> bytes:
    flags = 0x02 if clean else 0
    payload = utf8(client_id)
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        payload += utf8(will.topic) + utf8(will.payload)
    if username is not None:
        flags |= 0x80
        payload += utf8(username)
        if password is not None:
            flags |= 0x40
            payload += utf8(password)
    body = utf8("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big") + payload
    return b"\x10" + varint(len(body)) + body


def publish(topic: bytes, payload: bytes, packet_id: int, *, retain: bool = False) -> bytes:
    """A QoS 1 PUBLISH; `topic` already length-prefixed (see `utf8`), as a device caches it."""
    body_len = len(topic) + 2 + len(payload)
    first = 0x32 | (0x01 if retain else 0)
    return b"".join(
        (bytes((first,)), varint(body_len), topic, packet_id.to_bytes(2, "big"), payload)
    )


def publish_qos0(topic: bytes, payload: bytes, *, retain: bool = False) -> bytes:
    return (
        bytes((0x30 | (0x01 if retain else 0),))
        + varint(len(topic) + len(payload))
        + topic
        + payload
    )


def as_duplicate(packet: bytes) -> bytes:
    """The same PUBLISH, flagged as a resend after a reconnect (3.3.1.1)."""
    return bytes((packet[0] | DUP,)) + packet[1:]


def puback(packet_id: int) -> bytes:
    return b"\x40\x02" + packet_id.to_bytes(2, "big")


def subscribe(packet_id: int, topic_filter: str, qos: int = 1) -> bytes:
    body = packet_id.to_bytes(2, "big") + utf8(topic_filter) + bytes((qos,))
    return b"\x82" + varint(len(body)) + body


@dataclass(frozen=True)
class Incoming:
    """A PUBLISH from the broker."""

    topic: str
    payload: bytes
    qos: int
    packet_id: int | None
    retain: bool


class PacketReader:
    """Splits a byte stream into packets: `feed` bytes, get (type, flags, body) back."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        buf = self._buf
        buf += data
        out: list[tuple[int, int, bytes]] = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            first = buf[pos]
            # PUBACK, the common case: fixed 4 bytes
            if first == 0x40 and buf[pos + 1] == 2:
                if end - pos < 4:
                    break
                out.append((4, 0, bytes(buf[pos + 2 : pos + 4])))
                pos += 4
                continue
            length, shift, i = 0, 0, pos + 1
            while True:
                if i >= end:
                    length = -1
                    break
                byte = buf[i]
                length |= (byte & 0x7F) << shift
                i += 1
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise ValueError("malformed remaining length from the broker")
            if length < 0 or end - i < length:
                break
            out.append((first >> 4, first & 0x0F, bytes(buf[i : i + length])))
            pos = i + length
        del buf[:pos]
        return out


def parse_publish(flags: int, body: bytes) -> Incoming:
    qos = (flags >> 1) & 0x03
    n = int.from_bytes(body[:2], "big")
    topic = body[2 : 2 + n].decode()
    rest = body[2 + n :]
    packet_id = None
    if qos:
        packet_id, rest = int.from_bytes(rest[:2], "big"), rest[2:]
    return Incoming(topic, bytes(rest), qos, packet_id, bool(flags & 0x01))
