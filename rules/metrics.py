"""Prometheus metrics of one rules evaluator, on a registry of its own (no global state)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class RulesMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.pass_seconds = Histogram(
            "fleetcare_rules_pass_seconds",
            "Time of one evaluation pass (compare with the interval).",
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120),
            registry=r,
        )
        self.devices = Gauge("fleetcare_rules_devices", "Devices in this partition.", registry=r)
        self.evaluations = Counter(
            "fleetcare_rules_evaluations", "Rule evaluations (rule × device).", registry=r
        )
        self.fired = Counter("fleetcare_rules_alerts_fired", "Alerts fired.", ["rule"], registry=r)
        self.resolved = Counter("fleetcare_rules_alerts_resolved", "Alerts resolved.", registry=r)
        self.pending = Gauge(
            "fleetcare_rules_alerts_pending_changes",
            "Rules that became pending in the last pass.",
            registry=r,
        )
        self.orders = Counter(
            "fleetcare_rules_work_orders",
            "Work orders the alerts opened or joined.",
            ["how"],
            registry=r,
        )
        self.failed = Counter(
            "fleetcare_rules_passes_failed",
            "Passes that could not finish: the database or store was unreachable.",
            registry=r,
        )
        self.general_alarms = Counter(
            "fleetcare_general_alarms",
            "The general detector's alarms in the daily scoring pass: raised (a job to "
            "review) or dismissed (the family's fault namer was sure it was nothing).",
            ["outcome"],
            registry=r,
        )
        self.general_verdicts = Counter(
            "fleetcare_general_verdicts",
            "Technicians' verdicts on the general detector's jobs, stored for the namers.",
            registry=r,
        )
        self.air_reports = Counter(
            "fleetcare_air_reports_queued",
            "Households' monthly air report messages queued (once per device and month).",
            registry=r,
        )
        self.last_pass = Gauge(
            "fleetcare_rules_last_pass_timestamp_seconds",
            "When the last pass finished (alert on staleness).",
            registry=r,
        )
