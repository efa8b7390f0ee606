"""Wiring of the rules evaluator: catalog from settings, store, database, the loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from prometheus_client import start_http_server

from db.database import Database
from fleet.profiles import LiveProfiles, ProfileRepository
from fleetcare.outage import OUTAGE_ERRORS, Outage
from fleetcare.settings import Settings, SettingsError
from fleetcare.wiring import catalog_from, model_registry
from models.filter_life import schema
from models.health import full_schema as health_schema
from models.registry import RegistryError
from models.scoring import FilterLifeScoring
from rules.evaluator import Evaluator, PassReport
from rules.metrics import RulesMetrics
from rules.outputs import engine_outputs
from telemetry.backends import create_store
from telemetry.profile import ProfileSet
from telemetry.store import TelemetryStore

log = logging.getLogger("fleetcare.rules")


def _observe(m: RulesMetrics, r: PassReport) -> None:
    m.pass_seconds.observe(r.seconds)
    m.devices.set(r.devices)
    m.evaluations.inc(r.evaluations)
    for rule, n in r.fired_rules.items():
        m.fired.labels(rule).inc(n)
    m.resolved.inc(r.resolved)
    m.pending.set(r.pending)
    m.orders.labels("opened").inc(r.orders_opened)
    m.orders.labels("joined").inc(r.orders_joined)
    m.last_pass.set_to_current_time()


def partition_of(text: str) -> tuple[int, int]:
    k, n = (int(x) for x in text.split("/"))
    return k, n


def _scoring(
    settings: Settings, db: Database, store: TelemetryStore, profiles: ProfileSet
) -> FilterLifeScoring | None:
    """The active filter-life version's daily scoring, or None (logged) when none is
    trained yet: the rules still run, without predictions."""
    registry = model_registry(settings)
    try:
        model, meta = registry.load("filter_life", features=schema())
    except RegistryError as exc:
        log.warning("no filter-life predictions", extra={"kv": {"why": str(exc)}})
        return None
    health = None
    try:
        health = registry.load("health", features=health_schema())
    except RegistryError as exc:
        log.warning("no anomaly scores", extra={"kv": {"why": str(exc)}})
    return FilterLifeScoring(
        db,
        store,
        model,
        meta.version,
        partition=partition_of(settings.rules.partition),
        health=health[0] if health else None,
        health_version=health[1].version if health else None,
        profiles=profiles,
    )


async def _score(scoring: FilterLifeScoring, metrics: RulesMetrics) -> None:
    """The daily scoring pass, logged and counted."""
    r = await scoring.run()
    log.info(
        "filter-life scoring pass",
        extra={
            "kv": {
                "devices": r.devices,
                "predictions": r.predictions,
                "version": scoring.version,
                "seconds": round(r.seconds, 3),
                "general_devices": r.general_devices,
                "general_alarms": r.general_alarms,
                "general_dismissed": r.general_dismissed,
                "general_verdicts": r.general_verdicts,
            }
        },
    )
    metrics.general_alarms.labels("raised").inc(r.general_alarms - r.general_dismissed)
    metrics.general_alarms.labels("dismissed").inc(r.general_dismissed)
    metrics.general_verdicts.inc(r.general_verdicts)


async def _air_reports(
    db: Database, store: TelemetryStore, profiles: ProfileSet, metrics: RulesMetrics
) -> None:
    """Queue last month's air report messages not queued yet (once per device and
    month). A fault here is logged; it never stops the evaluation (an outage is still an
    outage, handled as the pass's own)."""
    from service.air_report import AirReports

    try:
        queued = await AirReports(db, store, profiles).issue()
    except OUTAGE_ERRORS:
        raise
    except Exception:
        log.exception("air reports not queued")
        return
    metrics.air_reports.inc(queued)
    if queued:
        log.info("air reports queued", extra={"kv": {"messages": queued}})


async def run_evaluator(
    settings: Settings, stop: asyncio.Event, *, once: bool = False
) -> PassReport | None:
    """Evaluate every `interval_s` until `stop` (or once); returns the last pass."""
    from fleetcare.wiring import open_database

    db = open_database(settings)
    live = LiveProfiles(ProfileRepository(db), ttl=settings.ingest.profiles_refresh_s)
    profiles = live.get()
    catalog = catalog_from(settings.rules, profiles)
    metrics = RulesMetrics()
    if settings.rules.metrics_port and not once:
        try:
            start_http_server(settings.rules.metrics_port, "0.0.0.0", registry=metrics.registry)
        except OSError as exc:
            raise SettingsError(
                f"cannot serve /metrics on port {settings.rules.metrics_port} ({exc.strerror}): "
                "give each evaluator its own FLEETCARE_RULES__METRICS_PORT (0 turns it off)"
            ) from exc
    last: PassReport | None = None
    async with create_store(settings.store, settings.data_dir, profiles.types) as store:
        evaluator = Evaluator(
            db=db,
            store=store,
            catalog=catalog,
            outputs=engine_outputs(db),
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
        scoring = _scoring(settings, db, store, profiles)
        scored_day = reported_day = None
        outage = Outage(log, "evaluation pass")
        while not stop.is_set():
            try:
                # the profile refresh and the daily scoring read the database and the
                # store too: an outage there is the same outage as a failed pass
                newer = await asyncio.to_thread(live.get)
                if newer.fingerprint != profiles.fingerprint:  # a profile version was imported
                    profiles = newer
                    await store.use_types(profiles.types)
                    evaluator.catalog = catalog = catalog_from(settings.rules, profiles)
                    if scoring is not None:
                        scoring.profiles = profiles
                    log.info(
                        "product profiles in force",
                        extra={"kv": {"profiles": ", ".join(p.label for p in profiles.values())}},
                    )
                today = datetime.now(UTC).date()
                if scoring is not None and scored_day != today:
                    # once a day, before the rules read them: fold yesterday in, predict
                    await _score(scoring, metrics)
                    scored_day = today
                if reported_day != today and evaluator.partition[0] == 0:
                    await _air_reports(
                        db, store, profiles, metrics
                    )  # the first evaluator tells them
                    reported_day = today
                last = await evaluator.run_pass()
            except OUTAGE_ERRORS as exc:
                # an outage: the next pass sees everything this one missed, and the
                # alerts this one fired before it failed are read back as firing (no
                # second alert, no second job)
                if once:
                    raise
                metrics.failed.inc()
                outage.failed(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), settings.rules.interval_s)
                continue
            outage.ok()
            _observe(metrics, last)
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
