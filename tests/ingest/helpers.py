"""Helpers for ingest tests: payloads, a real paho publisher, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from db.database import Database
from fleetcare.settings import Settings, load_settings
from fleetcare.wiring import build_ingest, open_database
from ingest.metrics import IngestMetrics
from telemetry.backends import create_store
from telemetry.store import TelemetryStore


def now_ms() -> int:
    return int(time.time() * 1000)


def topic(device_type: str, device_id: str, kind: str = "telemetry") -> str:
    return f"fleetcare/v1/{device_type}/{device_id}/{kind}"


def telemetry(
    device_id: str,
    seq: int,
    *,
    boot: int = 1,
    ts: int | None = None,
    device_type: str = "purifier",
    **metrics: Any,
) -> tuple[str, bytes]:
    body = {
        "v": 1,
        "device_id": device_id,
        "ts": ts if ts is not None else now_ms(),
        "seq": seq,
        "boot": boot,
        "metrics": metrics or {"pm25": 10.0 + seq % 50},
    }
    return topic(device_type, device_id), orjson.dumps(body)


def fleet_messages(n: int, devices: int = 100, boot: int = 1) -> list[tuple[str, bytes]]:
    base = now_ms() - n
    return [telemetry(f"p-{i % devices:05d}", i, boot=boot, ts=base + i) for i in range(n)]


def publish(
    url_port: int,
    messages: Sequence[tuple[str, bytes]],
    *,
    qos: int = 1,
    retain: bool = False,
    timeout: float = 120.0,
    client_id: str = "",
) -> None:
    """Publish with a real paho client and wait until the broker acknowledged all."""
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", url_port)
    client.loop_start()
    try:
        infos = [client.publish(t, p, qos=qos, retain=retain) for t, p in messages]
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                raise TimeoutError("publish not acknowledged")
    finally:
        client.disconnect()
        client.loop_stop()


def publish_in_thread(
    port: int, messages: Sequence[tuple[str, bytes]], **kw: Any
) -> threading.Thread:
    t = threading.Thread(target=publish, args=(port, messages), kwargs=kw, daemon=True)
    t.start()
    return t


async def wait_until(
    cond: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


def settings_for(tmp_path: Path, port: int, **over: Any) -> Settings:
    ingest = {
        "client_id": f"test-ingest-{tmp_path.name}",
        "metrics_port": 0,
        "silence_check_s": 3600,
        "state_flush_s": 0.2,
        "backoff_max_s": 1.0,
        **over.pop("ingest", {}),
    }
    return load_settings(
        None,
        data_dir=str(tmp_path / "data"),
        mqtt={"url": f"mqtt://127.0.0.1:{port}", **over.pop("mqtt", {})},
        ingest=ingest,
        **over,
    )


@dataclass
class Running:
    settings: Settings
    store: TelemetryStore
    db: Database
    metrics: IngestMetrics
    stop: asyncio.Event
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[Running]:
    db = open_database(settings)
    store = create_store(settings.store, settings.data_dir)
    await store.open()
    metrics = IngestMetrics()
    worker = build_ingest(settings, store, db, metrics)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_until(lambda: worker_connected(metrics), 10, "worker connected")
    try:
        yield Running(settings, store, db, metrics, stop, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        await store.close()
        db.dispose()


async def worker_connected(metrics: IngestMetrics) -> bool:
    await asyncio.sleep(0.2)  # subscriptions follow the CONNACK
    return metrics.connected._value.get() == 1
