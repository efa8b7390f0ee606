"""`fleetcare serve`: the production process set on one host, supervised.

Each part is its own process, started with the same command that runs it alone (so a
container platform can run each one by itself instead): ingest workers on the shared
subscription, rules evaluators partitioned by device, the dispatcher, the device-command
and customer-message senders, and the API. The supervisor migrates the database once
before any of them starts, restarts a part that dies (with backoff), answers
`/healthz` (alive) and `/readyz` (every part running) on its own port, and on SIGTERM
stops them all gracefully: SIGTERM to each, SIGKILL to what is left after the grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from fleetcare.settings import Settings

log = logging.getLogger("fleetcare.serve")
PARTS = ("ingest", "rules", "dispatch", "commands", "notify", "api")
BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # a part that keeps dying waits longer each time
STABLE_S = 60.0  # up this long: its next death starts the backoff again


@dataclass(frozen=True)
class Part:
    name: str  # e.g. ingest-1, rules-0
    args: tuple[str, ...]  # after `fleetcare`
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServePlan:
    ingest_workers: int = 2
    evaluators: int = 1
    api_workers: int = 1
    dispatch_every_s: float = 60.0
    only: frozenset[str] = frozenset(PARTS)


def parts(settings: Settings, plan: ServePlan) -> list[Part]:
    """What runs, each with its own client id, partition and metrics port."""
    out: list[Part] = []
    if "ingest" in plan.only:
        base = settings.ingest.metrics_port
        for k in range(plan.ingest_workers):
            out.append(
                Part(
                    f"ingest-{k}",
                    (
                        "ingest",
                        "--client-id",
                        f"{settings.ingest.client_id or 'fleetcare-ingest'}-{k}",
                        "--metrics-port",
                        str(base + k if base else 0),
                    ),
                )
            )
    if "rules" in plan.only:
        base = settings.rules.metrics_port
        for k in range(plan.evaluators):
            out.append(
                Part(
                    f"rules-{k}",
                    ("evaluate-rules", "--partition", f"{k}/{plan.evaluators}"),
                    {"FLEETCARE_RULES__METRICS_PORT": str(base + k if base else 0)},
                )
            )
    if "dispatch" in plan.only:
        out.append(Part("dispatch", ("orders", "dispatch", "--every", str(plan.dispatch_every_s))))
    if "commands" in plan.only:
        out.append(Part("commands", ("send-commands",)))
    if "notify" in plan.only:
        out.append(Part("notify", ("notify", "send")))
    if "api" in plan.only:
        out.append(Part("api", ("api", "--workers", str(plan.api_workers))))
    return out


@dataclass
class _Running:
    part: Part
    proc: asyncio.subprocess.Process | None = None
    started: float = 0.0
    restarts: int = 0
    failures: int = 0  # in a row, for the backoff
    next_start: float = 0.0


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        plan_parts: Sequence[Part],
        *,
        grace_s: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.running = [_Running(p) for p in plan_parts]
        self.grace_s = grace_s
        # what every part inherits: the resolved data dir and log format (options given to
        # `fleetcare serve` itself), and no second migration
        self.env = {
            **os.environ,
            **(env or {}),
            "FLEETCARE_DATA_DIR": settings.data_dir,
            "FLEETCARE_LOG__FORMAT": settings.log.format,
            "FLEETCARE_LOG__LEVEL": settings.log.level,
            "FLEETCARE_DB__AUTO_MIGRATE": "false",
        }

    def status(self) -> dict[str, object]:
        parts = {
            r.part.name: {
                "state": "running" if r.proc and r.proc.returncode is None else "restarting",
                "pid": r.proc.pid if r.proc and r.proc.returncode is None else None,
                "restarts": r.restarts,
            }
            for r in self.running
        }
        ready = all(p["state"] == "running" for p in parts.values())
        return {"status": "ok" if ready else "unavailable", "parts": parts}

    async def _start(self, r: _Running) -> None:
        r.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fleetcare",
            *r.part.args,
            env={**self.env, **r.part.env},
            start_new_session=True,  # a Ctrl-C in the terminal reaches the supervisor only
            preexec_fn=_die_with_parent,
        )
        r.started = time.monotonic()
        log.info("part started", extra={"kv": {"part": r.part.name, "pid": r.proc.pid}})

    async def run(self, stop: asyncio.Event) -> None:
        for r in self.running:
            await self._start(r)
        try:
            while not stop.is_set():
                now = time.monotonic()
                for r in self.running:
                    if r.proc is None or r.proc.returncode is None:
                        continue
                    if r.next_start == 0.0:  # just died: when to start it again
                        up = now - r.started
                        r.failures = 0 if up >= STABLE_S else r.failures + 1
                        wait = BACKOFF_S[min(r.failures, len(BACKOFF_S) - 1)]
                        r.next_start = now + wait
                        log.error(
                            "part died; restarting",
                            extra={
                                "kv": {
                                    "part": r.part.name,
                                    "exit": r.proc.returncode,
                                    "up_s": round(up, 1),
                                    "restart_in_s": wait,
                                }
                            },
                        )
                    elif now >= r.next_start:
                        r.next_start = 0.0
                        r.restarts += 1
                        await self._start(r)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
        finally:
            await self._stop_all()

    async def _stop_all(self) -> None:
        live = [r.proc for r in self.running if r.proc and r.proc.returncode is None]
        for p in live:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in live)), self.grace_s)
        except TimeoutError:
            for p in live:
                if p.returncode is None:
                    log.error("part did not stop in time; killed", extra={"kv": {"pid": p.pid}})
                    with contextlib.suppress(ProcessLookupError):
                        p.kill()
            await asyncio.gather(*(p.wait() for p in live))
        log.info(
            "all parts stopped",
            extra={"kv": {r.part.name: r.proc.returncode for r in self.running if r.proc}},
        )


def _die_with_parent() -> None:
    """In the child, before it runs: on Linux, SIGTERM it when the supervisor dies without
    stopping it (kill -9), so no part outlives it unsupervised."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


async def serve_health(supervisor: Supervisor, host: str, port: int) -> asyncio.Server:
    """`/healthz` (the supervisor answers: alive) and `/readyz` (every part running: 200,
    else 503), each with the parts' states as JSON."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            path = line.split()[1].decode() if len(line.split()) > 1 else "/"
            body = supervisor.status()
            if path == "/healthz":
                code = 200
            elif path == "/readyz":
                code = 200 if body["status"] == "ok" else 503
            else:
                code, body = 404, {"detail": "try /healthz or /readyz"}
            data = json.dumps(body).encode()
            reason = {200: "OK", 503: "Service Unavailable", 404: "Not Found"}[code]
            writer.write(
                f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
