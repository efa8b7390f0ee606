"""A load generator far faster than what it loads: MQTT 3.1.1 PUBLISH packets encoded
up front and written straight to the socket from a separate process."""

from __future__ import annotations

import multiprocessing as mp
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def connect_packet(client_id: str, keepalive: int = 60) -> bytes:
    body = _utf8("MQTT") + bytes([4, 0x02]) + keepalive.to_bytes(2, "big") + _utf8(client_id)
    return b"\x10" + _varint(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int, qos: int = 1) -> bytes:
    body = _utf8(topic) + (packet_id.to_bytes(2, "big") if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + _varint(len(body)) + body


def bench_payload(device_id: str, seq: int, ts: int) -> bytes:
    """~200 bytes, like a purifier's report."""
    return orjson.dumps(
        {
            "v": 1,
            "device_id": device_id,
            "ts": ts,
            "seq": seq,
            "boot": 1,
            "metrics": {
                "pm25": 12.5 + seq % 40,
                "fan_rpm": 1200 + seq % 300,
                "motor_current_ma": 350.25,
                "mode": "auto",
                "temperature_c": 22.5,
                "humidity_pct": 45.0,
                "filter_used_hours": 812.5,
            },
        }
    )


def messages(
    n: int, devices: int, *, start_seq: int = 0, prefix: str = "fleetcare", ts0: int | None = None
) -> Iterator[tuple[str, bytes]]:
    # device time relative to this chunk (its last message is "now"), so a paced run that
    # encodes 1,000 at a time stays inside ingest's clock-skew window
    ts0 = ts0 if ts0 is not None else int(time.time() * 1000) - n
    for i in range(start_seq, start_seq + n):
        device_id = f"bench-{i % devices:06d}"
        yield (
            f"{prefix}/v1/purifier/{device_id}/telemetry",
            bench_payload(device_id, i // devices, ts0 + (i - start_seq)),
        )


def encode(n: int, devices: int, start_seq: int = 0) -> bytes:
    return b"".join(
        publish_packet(t, p, (i % 65535) + 1)
        for i, (t, p) in enumerate(messages(n, devices, start_seq=start_seq))
    )


class _Acks:
    """PUBACKs read so far (4 bytes each)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.closed = False


def _drain(sock: socket.socket, stop: threading.Event, acks: _Acks) -> None:
    """Read and count PUBACKs. `select`, not a socket timeout: that would apply to the
    sender's `sendall` too, which blocks for long when the broker pushes back."""
    while not stop.is_set():
        try:
            readable, _, _ = select.select([sock], [], [], 0.5)
            if readable:
                data = sock.recv(1 << 16)
                if not data:
                    acks.closed = True
                    return
                acks.bytes += len(data)
        except (OSError, ValueError):
            acks.closed = True
            return


def _produce(
    port: int,
    n: int,
    devices: int,
    start_seq: int,
    rate: float | None,
    ready: Any,
    go: Any,
    client_id: str,
) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_packet(client_id))
    sock.recv(4)  # CONNACK
    stop, acks = threading.Event(), _Acks()
    reader = threading.Thread(target=_drain, args=(sock, stop, acks), daemon=True)
    reader.start()
    blob = encode(n, devices, start_seq) if rate is None else b""
    ready.set()
    go.wait()
    if rate is None:
        sock.sendall(blob)
    else:  # paced: encode 1,000 messages at a time, just in time
        started, step = time.monotonic(), 1000
        for k, first in enumerate(range(start_seq, start_seq + n, step)):
            delay = started + k * step / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendall(encode(min(step, start_seq + n - first), devices, first))
    # Close only once the broker acknowledged every message: closing with PUBACKs still
    # unread sends a reset, and the broker drops what it had not read yet (messages
    # never acknowledged, so nothing the engine owed; but the bench would wait for them)
    deadline = time.monotonic() + 300
    while acks.bytes < 4 * n and not acks.closed and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    reader.join(2)
    sock.close()


class Producer:
    """A separate process; `start()` returns once it is connected and has encoded its
    packets, `go()` makes it send (all at once, or `rate` messages a second)."""

    def __init__(
        self,
        port: int,
        n: int,
        devices: int,
        *,
        start_seq: int = 0,
        rate: float | None = None,
        client_id: str = "bench-loadgen",
    ) -> None:
        ctx = mp.get_context("fork")
        self._ready, self._go = ctx.Event(), ctx.Event()
        self._proc = ctx.Process(
            target=_produce,
            args=(port, n, devices, start_seq, rate, self._ready, self._go, client_id),
            daemon=True,
        )

    def start(self) -> None:
        self._proc.start()
        if not self._ready.wait(300):
            raise RuntimeError("load generator could not connect")

    def go(self) -> float:
        t0 = time.time()
        self._go.set()
        return t0

    def join(self, timeout: float | None = None) -> None:
        self._proc.join(timeout)
