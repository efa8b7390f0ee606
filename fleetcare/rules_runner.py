"""Wiring of the rules evaluator: catalog from settings, store, database, the loop."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
from pathlib import Path

from fleetcare.settings import RulesSettings, Settings
from rules.catalog import Catalog, load_catalog
from rules.evaluator import Evaluator, PassReport
from rules.outputs import FilterLifeOutputs
from telemetry.backends import create_store

log = logging.getLogger("fleetcare.rules")


def rule_files(settings: RulesSettings) -> list[Path]:
    found: list[Path] = []
    for pattern in settings.files:
        matches = sorted(glob.glob(pattern))
        found += [Path(m) for m in matches] if matches else [Path(pattern)]
    return found


def catalog_from(settings: RulesSettings) -> Catalog:
    catalog = load_catalog(rule_files(settings))
    for e in catalog.errors:
        log.error(
            "bad rule skipped", extra={"kv": {"where": f"{e.file}:{e.line}", "why": e.reason}}
        )
    return catalog


def partition_of(text: str) -> tuple[int, int]:
    k, n = (int(x) for x in text.split("/"))
    return k, n


async def run_evaluator(
    settings: Settings, stop: asyncio.Event, *, once: bool = False
) -> PassReport | None:
    """Evaluate every `interval_s` until `stop` (or once); returns the last pass."""
    from fleetcare.wiring import open_database

    db = open_database(settings)
    catalog = catalog_from(settings.rules)
    last: PassReport | None = None
    async with create_store(settings.store, settings.data_dir) as store:
        evaluator = Evaluator(
            db=db,
            store=store,
            catalog=catalog,
            outputs=FilterLifeOutputs(db),
            partition=partition_of(settings.rules.partition),
            device_time=settings.rules.device_time,
        )
        log.info(
            "rules evaluator starting",
            extra={
                "kv": {
                    "rules": len(catalog.enabled()),
                    "partition": settings.rules.partition,
                    "interval_s": settings.rules.interval_s,
                }
            },
        )
        while not stop.is_set():
            last = await evaluator.run_pass()
            log.info(
                "evaluation pass",
                extra={
                    "kv": {
                        "devices": last.devices,
                        "fired": last.fired,
                        "resolved": last.resolved,
                        "pending": last.pending,
                        "orders_opened": last.orders_opened,
                        "seconds": round(last.seconds, 3),
                    }
                },
            )
            if once:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.rules.interval_s)
    db.dispose()
    return last
