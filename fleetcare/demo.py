"""`fleetcare demo`: broker, ingest worker and publishing devices in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console

from fleetcare.brokers import AmqttBroker, mosquitto_available, start_mosquitto
from fleetcare.publisher import fleet, publish_bad, run_device
from fleetcare.settings import Settings
from fleetcare.wiring import build_ingest, open_database
from ingest.metrics import IngestMetrics
from telemetry.backends import create_store
from workorders.dead_letters import DeadLetterRepository
from workorders.device_state import DeviceStateRepository

log = logging.getLogger("fleetcare.demo")
console = Console()


def _value(metrics: IngestMetrics, counter: str, *labels: str) -> float:
    total = 0.0
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == counter + "_total" and all(
                v in sample.labels.values() for v in labels
            ):
                total += sample.value
    return total


async def run_demo(
    settings: Settings,
    stop: asyncio.Event,
    *,
    devices: int,
    interval: float,
    duration: float | None,
    broker_url: str | None,
) -> None:
    await asyncio.to_thread(Path(settings.data_dir).mkdir, parents=True, exist_ok=True)
    mosquitto = amqtt = None
    ingest_opts = settings.ingest.model_copy(
        update={"client_id": "fleetcare-demo-ingest", "metrics_port": 0}
    )
    if broker_url and broker_url != "amqtt":
        mqtt = settings.mqtt.model_copy(update={"url": broker_url})
        kind = f"broker at {broker_url}"
    elif mosquitto_available() and broker_url != "amqtt":
        tmp = Path(tempfile.mkdtemp(prefix="fleetcare-mosquitto-"))
        mosquitto = start_mosquitto(tmp)
        mqtt = settings.mqtt.model_copy(update={"url": mosquitto.url})
        kind = f"Mosquitto on {mosquitto.url} (config {mosquitto.config_path})"
    else:
        amqtt = AmqttBroker()
        await amqtt.start()
        mqtt = settings.mqtt.model_copy(update={"url": amqtt.url})
        # amqtt speaks 3.1.1 only and has no shared subscriptions
        ingest_opts = ingest_opts.model_copy(update={"shared_group": None})
        kind = f"in-process amqtt broker on {amqtt.url} (no mosquitto on the PATH)"
    settings = settings.model_copy(update={"mqtt": mqtt, "ingest": ingest_opts})
    # `fleetcare sim` started with the same data dir finds the demo's broker here
    broker_file = Path(settings.data_dir) / "broker.url"
    await asyncio.to_thread(broker_file.write_text, mqtt.url + "\n")
    db = await asyncio.to_thread(open_database, settings)
    store = create_store(settings.store, settings.data_dir)
    await store.open()
    metrics = IngestMetrics()
    worker = build_ingest(settings, store, db, metrics)
    data_dir = await asyncio.to_thread(os.path.abspath, settings.data_dir)
    console.print(
        f"[bold]FleetCare demo[/bold]\n  broker: {kind}\n"
        f"  telemetry store: {store.name} in {data_dir}\n"
        f"  database: {db.safe_url}\n  devices: {devices}, one report every "
        f"{interval:g} s\n  Ctrl-C to stop.\n"
        "  Age a simulated fleet through it from another terminal (same directory):\n"
        "    fleetcare sim --devices 1000 --speed 3600\n"
    )
    worker_stop, pub_stop = asyncio.Event(), asyncio.Event()
    worker_task = asyncio.create_task(worker.run(worker_stop))
    sent: dict[str, int] = {}
    fleet_devices = fleet(devices)
    pubs = [
        asyncio.create_task(run_device(d, mqtt, interval, pub_stop, i, sent))
        for i, d in enumerate(fleet_devices)
    ]
    started = time.monotonic()
    bad_sent = False
    state = DeviceStateRepository(db)
    dead = DeadLetterRepository(db)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(5.0, duration or 5.0))
            elapsed = time.monotonic() - started
            if not bad_sent and elapsed > 1:
                await publish_bad(mqtt)
                bad_sent = True
            stored = _value(metrics, "fleetcare_ingest_stored")
            letters = await asyncio.to_thread(dead.counts)
            online = await asyncio.to_thread(state.counts)
            sample = fleet_devices[0]
            latest = (await store.latest([sample.device_id])).get(sample.device_id)
            shown = ""
            if latest:
                shown = ", ".join(f"{k}={v}" for k, v in list(latest.metrics.items())[:4])
            console.print(
                f"[{elapsed:5.0f}s] published {sent.get('telemetry', 0)}  stored {stored:.0f}  "
                f"duplicates {_value(metrics, 'fleetcare_ingest_duplicates'):.0f}  "
                f"dead letters {sum(letters.values())} {dict(letters) or ''}  "
                f"online {online['online']}/{online['online'] + online['offline']}"
            )
            if shown:
                console.print(f"        {sample.device_id}: {shown}")
            if duration is not None and elapsed >= duration:
                break
    finally:
        pub_stop.set()
        await asyncio.gather(*pubs, return_exceptions=True)
        await asyncio.sleep(0.3)
        worker_stop.set()
        await worker_task
        count = await store.count()
        await store.close()
        db.dispose()
        broker_file.unlink(missing_ok=True)
        if mosquitto:
            mosquitto.stop()
        if amqtt:
            await amqtt.stop()
        console.print(
            f"\nstopped. {count} readings in the store; see them with "
            f"`fleetcare --data-dir {settings.data_dir} devices list` and "
            f"`fleetcare --data-dir {settings.data_dir} deadletters list`."
        )
