"""The API's Prometheus registry: this process's own collectors and the service domain's
gauges (api/gauges.py), read from the database at each scrape. A registry of the
app's own, not the module-global one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.gauges import read_gauges
from db.database import Database
from db.errors import DomainError

log = logging.getLogger("fleetcare.api.metrics")


class ServiceCollector(Collector):
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "fleetcare_service_db_up", "1 when the service gauges could be read from the database."
        )
        try:
            g = read_gauges(self.db, datetime.now(UTC))
        except (sa.exc.SQLAlchemyError, DomainError) as exc:  # an outage: say so, answer
            log.warning("service gauges unreadable", extra={"kv": {"error": repr(exc)}})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _by("fleetcare_work_orders", "Work orders by state.", "state", g.orders_by_state)
        yield GaugeMetricFamily(
            "fleetcare_work_orders_overdue",
            "Live work orders past their SLA's due time.",
            value=g.overdue,
        )
        yield GaugeMetricFamily(
            "fleetcare_work_orders_oldest_proposed_seconds",
            "How long the oldest auto-generated job has waited for ops' review (0: none).",
            value=g.oldest_proposed_s,
        )
        yield GaugeMetricFamily(
            "fleetcare_device_commands_unsent",
            "Device commands not yet published.",
            value=g.commands_unsent,
        )
        yield GaugeMetricFamily(
            "fleetcare_device_commands_oldest_unsent_seconds",
            "Age of the oldest device command not yet published (0: none).",
            value=g.oldest_unsent_command_s,
        )
        yield _by(
            "fleetcare_notifications",
            "Customer messages not sent: pending or failed.",
            "status",
            g.notifications,
        )
        yield _by(
            "fleetcare_dead_letters_pending",
            "Dead letters waiting for a decision, by reason.",
            "reason",
            g.dead_letters_pending,
        )
        warned = GaugeMetricFamily(
            "fleetcare_quality_warnings",
            "1 for each batch or firmware the quality early warning raised in the last 30 "
            "days (docs/quality.md).",
            labels=["by", "group"],
        )
        for by, group in sorted(g.quality_warnings):
            warned.add_metric([by, group], 1)
        yield warned


def _by(name: str, doc: str, label: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, n in sorted(counts.items()):
        family.add_metric([key], n)
    return family


def api_registry(db: Database) -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(ServiceCollector(db))
    return registry
