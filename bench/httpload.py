"""An HTTP/1.1 load generator in its own process: requests encoded up front, written to
keep-alive sockets, each response read by its Content-Length. Two ways to load:

* closed loop (`rate=None`): every connection sends its next request as soon as the last
  one is answered — the server's ceiling;
* open loop (`rate=R`): requests are due at R a second whatever the server does, and a
  request's latency counts from when it was due, so a stalled server cannot hide its
  stall by slowing the generator down (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import random
import time
from dataclasses import dataclass, field

import numpy as np

DRAIN_S = 2.0  # after the run, at most this long for requests still queued to go out


@dataclass(frozen=True, slots=True)
class LoadResult:
    sent: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    statuses: dict[int, int]
    errors: int  # broken connections
    unsent: int = 0  # open loop: due but never sent, the server being too far behind

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


def encode(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: bench", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _load(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    connections: int,
    seconds: float,
    rate: float | None,
    warmup: float,
    seed: int,
) -> LoadResult:
    rng = random.Random(seed)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    sent = 0
    due: asyncio.Queue[float] = asyncio.Queue()
    start = time.perf_counter() + warmup
    stop = start + seconds

    async def connection() -> None:
        nonlocal errors, sent
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                if rate is None:
                    at = time.perf_counter()
                    if at >= stop:
                        return
                else:
                    at = await due.get()
                    if at < 0 or time.perf_counter() > stop + DRAIN_S:
                        return  # what is still due was never sent: `LoadResult.unsent`
                writer.write(requests[rng.randrange(len(requests))])
                sent += 1
                try:
                    status = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                done = time.perf_counter()
                if at >= start:  # the warm-up is not counted
                    latencies.append((done - at) * 1000)
                    statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    async def schedule() -> None:
        assert rate is not None
        interval = 1.0 / rate
        t = time.perf_counter()
        while t < stop:
            now = time.perf_counter()
            while t <= now and t < stop:
                due.put_nowait(t)
                t += interval
            await asyncio.sleep(max(0.0, min(t - now, 0.002)))
        for _ in range(connections):
            due.put_nowait(-1.0)

    tasks = [asyncio.create_task(connection()) for _ in range(connections)]
    if rate is not None:
        tasks.append(asyncio.create_task(schedule()))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    unsent = sum(1 for _ in range(due.qsize()) if due.get_nowait() >= 0)
    return LoadResult(sent, min(elapsed, seconds), latencies, statuses, errors, unsent)


def _child(conn: mp.connection.Connection, args: tuple, kwargs: dict) -> None:  # type: ignore[type-arg]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    conn.send(asyncio.run(_load(*args, **kwargs)))
    conn.close()


def run_load(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    connections: int = 32,
    seconds: float = 10.0,
    rate: float | None = None,
    warmup: float = 1.0,
    seed: int = 1,
) -> LoadResult:
    """Load `host:port` from a separate process and return what it measured."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child,
        args=(
            child,
            (host, port, requests),
            {
                "connections": connections,
                "seconds": seconds,
                "rate": rate,
                "warmup": warmup,
                "seed": seed,
            },
        ),
    )
    proc.start()
    child.close()
    result: LoadResult = parent.recv()
    proc.join()
    return result
