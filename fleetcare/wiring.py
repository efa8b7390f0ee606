"""Build the engine's parts from settings (the composition root's one place for it)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import glob
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import start_http_server

from db.database import Database
from fleet.profiles import LiveProfiles, ProfileRepository
from fleet.registry import DeviceRegistry, Enrolment
from fleet.state import DeviceStateRepository
from fleetcare.settings import RulesSettings, Settings, SettingsError
from ingest.dead_letters import DeadLetterRepository
from ingest.decode import Decoder
from ingest.key_ledger import KeyLedger
from ingest.metrics import IngestMetrics
from ingest.processor import BatchObserver, BatchProcessor, FirmwareCache, RegistryCache
from ingest.worker import IngestWorker
from models.registry import ModelRegistry
from rules.catalog import Catalog, load_catalog
from telemetry.backends import create_store
from telemetry.profile import ProfileSet, shipped
from telemetry.store import KeyedByTime, TelemetryStore
from telemetry.topics import TopicScheme

log = logging.getLogger("fleetcare")


def open_database(settings: Settings) -> Database:
    db = Database.from_settings(settings.db, settings.data_dir)
    db.prepare(settings.db.auto_migrate)
    return db


def rule_files(settings: RulesSettings) -> list[Path]:
    found: list[Path] = []
    for pattern in settings.files:
        matches = sorted(glob.glob(pattern))
        found += [Path(m) for m in matches] if matches else [Path(pattern)]
    return found


def profiles_in_force(settings: Settings) -> ProfileSet:
    """The product profiles in force: shipped, with newer imported versions on top."""
    return ProfileRepository(open_database(settings)).current()


def catalog_from(settings: RulesSettings, profiles: ProfileSet | None = None) -> Catalog:
    """The rule catalog for `profiles` (default: the shipped ones) and the rule files."""
    catalog = load_catalog(rule_files(settings), profiles=profiles)
    for e in catalog.errors:
        log.error(
            "bad rule skipped", extra={"kv": {"where": f"{e.file}:{e.line}", "why": e.reason}}
        )
    return catalog


def _stream_rules(settings: Settings, db: Database) -> list[BatchObserver]:
    from rules.stream import StreamChecks

    rules = settings.rules
    return [
        StreamChecks(
            db,
            catalog_from(rules),
            firing_memory_s=rules.at_ingest_memory_s,
            catalog_for=lambda profiles: catalog_from(rules, profiles),
        )
    ]


def model_registry(settings: Settings) -> ModelRegistry:
    """The trained models' versions, in the data directory."""
    return ModelRegistry(Path(settings.data_dir) / "models")


def make_decoder(settings: Settings, profiles: ProfileSet | None = None) -> Decoder:
    """How messages are checked; `profiles` default to the shipped ones."""
    o = settings.ingest
    return Decoder(
        TopicScheme(settings.mqtt.topic_prefix),
        max_payload_bytes=o.max_payload_bytes,
        max_future_ms=int(o.max_future_s * 1000),
        max_past_ms=int(o.max_past_s * 1000),
        profiles=profiles if profiles is not None else shipped(),
    )


@dataclass
class IngestParts:
    worker: IngestWorker
    store: TelemetryStore
    db: Database
    metrics: IngestMetrics


def build_ingest(
    settings: Settings,
    store: TelemetryStore,
    db: Database,
    metrics: IngestMetrics | None = None,
    *,
    rules: bool | None = None,
) -> IngestWorker:
    """The ingest worker; with `rules` (default: settings.rules.at_ingest) the rules that
    can fire from one message are checked on each stored batch. It starts with the
    profiles in force, and follows newly imported versions."""
    metrics = metrics or IngestMetrics()
    state = DeviceStateRepository(db)
    required = settings.ingest.require_registered
    registry = RegistryCache(
        DeviceRegistry(db), settings.ingest.registry_cache_s, required=required
    )
    processor = BatchProcessor(
        decoder=make_decoder(settings),
        store=store,
        dead_letters=DeadLetterRepository(
            db, max_payload_bytes=settings.ingest.dead_letter_max_bytes
        ),
        state=state,
        metrics=metrics,
        registry=registry,
        dedupe_capacity=settings.ingest.dedupe_cache,
        observers=_stream_rules(settings, db)
        if (settings.rules.at_ingest if rules is None else rules)
        else (),
        observer_backlog=settings.ingest.rules_backlog,
        firmware=FirmwareCache(state, settings.ingest.registry_cache_s),
        ledger=_key_ledger(settings, store, db),
    )
    return IngestWorker(
        mqtt=settings.mqtt,
        options=settings.ingest,
        processor=processor,
        state=state,
        metrics=metrics,
        enrolment=None if required else Enrolment(DeviceRegistry(db)),
        profiles=LiveProfiles(ProfileRepository(db), ttl=0),
    )


def _key_ledger(settings: Settings, store: TelemetryStore, db: Database) -> KeyLedger | None:
    o = settings.ingest
    wanted = o.key_ledger if o.key_ledger is not None else bool(o.shared_group)
    if not wanted or not isinstance(store, KeyedByTime):
        return None
    return KeyLedger(db, o.key_ledger_s)


async def run_ingest(settings: Settings, stop: asyncio.Event) -> None:
    """`fleetcare ingest`: one worker until `stop` is set."""
    lean_process()
    db = await asyncio.to_thread(open_database, settings)
    metrics = IngestMetrics()
    if settings.ingest.metrics_port:
        try:
            start_http_server(
                settings.ingest.metrics_port,
                settings.ingest.metrics_host,
                registry=metrics.registry,
            )
        except OSError as exc:
            raise SettingsError(
                f"cannot serve /metrics on {settings.ingest.metrics_host}:"
                f"{settings.ingest.metrics_port} ({exc.strerror}): another worker on this host? "
                "give each its own --metrics-port (0 turns metrics off)"
            ) from exc
        log.info(
            "metrics at /metrics",
            extra={
                "kv": {
                    "url": f"http://{settings.ingest.metrics_host}:{settings.ingest.metrics_port}/metrics"
                }
            },
        )
    async with AsyncExitStack() as stack:
        store = create_store(settings.store, settings.data_dir)
        await _open_store_with_retry(store, stop)
        stack.push_async_callback(store.close)
        worker = build_ingest(settings, store, db, metrics)
        log.info(
            "ingest worker starting",
            extra={"kv": {"store": store.name, "db": db.safe_url, "client_id": worker.client_id}},
        )
        await worker.run(stop)
    db.dispose()
    log.info("ingest worker stopped")


def lean_process() -> None:
    """Tune the interpreter for a long-running worker with a hot path (measured under
    `fleetcare bench ingest`, docs/benchmarks.md):

    * the cycle collector: what is loaded by now lives as long as the process (frozen:
      never scanned again), and each message's short-lived objects are freed by
      reference counting, so the youngest generation is collected every 50,000
      allocations instead of 700 (each full pass walked the worker's caches);
    * glibc's malloc arenas: each thread that allocates gets its own (up to 8 per core),
      and memory freed in one is not reused by another; two hold the worker's threads."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to tune
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 2)


M_ARENA_MAX = -8  # glibc's malloc.h


async def _open_store_with_retry(store: TelemetryStore, stop: asyncio.Event) -> None:
    from telemetry.errors import StoreError

    delay, warned = 0.5, False
    while True:
        try:
            await store.open()
            if warned:
                log.info("store reachable", extra={"kv": {"store": store.name}})
            return
        except StoreError as exc:
            if not warned:
                log.error("store unreachable at start; retrying", extra={"kv": {"error": str(exc)}})
                warned = True
            if stop.is_set():
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)
