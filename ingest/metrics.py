"""Prometheus metrics of one ingest worker, on a registry of its own (no global state)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# fine from 0.1 s to 1 s, where a healthy worker's batches and acknowledgements fall (the
# default max_batch_age_ms is 200): a p99 read from coarse buckets jumps at their edges
_LATENCY: tuple[float, ...] = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
_LATENCY += (0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 1, 1.5, 2.5, 5, 10, 30)


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.received = Counter(
            "fleetcare_ingest_received", "MQTT messages received.", ["kind"], registry=r
        )
        self.stored = Counter(
            "fleetcare_ingest_stored", "Messages newly stored.", ["kind"], registry=r
        )
        self.duplicates = Counter(
            "fleetcare_ingest_duplicates",
            "Messages already stored (redeliveries, replays).",
            registry=r,
        )
        self.repeats_settled = Counter(
            "fleetcare_ingest_ledger_duplicates",
            "Duplicates found in the key ledger: messages another worker of the shared "
            "subscription stored first (counted in duplicates too).",
            registry=r,
        )
        self.dead_letters = Counter(
            "fleetcare_ingest_dead_letters",
            "Messages kept as dead letters.",
            ["reason"],
            registry=r,
        )
        self.status_updates = Counter(
            "fleetcare_ingest_status", "Status messages applied.", registry=r
        )
        self.acked = Counter(
            "fleetcare_ingest_acknowledged",
            "Messages acknowledged to the broker after a durable write.",
            registry=r,
        )
        self.batch_seconds = Histogram(
            "fleetcare_ingest_batch_seconds",
            "Time to make one batch durable (store + database).",
            buckets=_LATENCY,
            registry=r,
        )
        self.store_seconds = Histogram(
            "fleetcare_ingest_store_seconds",
            "Time the telemetry store takes to write one batch (part of the batch time).",
            buckets=_LATENCY,
            registry=r,
        )
        self.rules_seconds = Histogram(
            "fleetcare_ingest_rules_seconds",
            "Time the per-message rules take over one stored batch (after its "
            "acknowledgement: not part of the batch time).",
            buckets=_LATENCY,
            registry=r,
        )
        self.rules_backlog = Gauge(
            "fleetcare_ingest_rules_backlog",
            "Stored batches waiting for the per-message rules.",
            registry=r,
        )
        self.rules_skipped = Counter(
            "fleetcare_ingest_rules_skipped",
            "Stored batches the per-message rules left to the evaluator (backlog full).",
            registry=r,
        )
        self.batch_size = Histogram(
            "fleetcare_ingest_batch_size",
            "Messages per batch.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
            registry=r,
        )
        self.ack_latency = Histogram(
            "fleetcare_ingest_ack_latency_seconds",
            "From receipt to acknowledgement (oldest of each batch).",
            buckets=_LATENCY,
            registry=r,
        )
        self.pending = Gauge(
            "fleetcare_ingest_pending_messages",
            "Received but not yet acknowledged (queue depth).",
            registry=r,
        )
        self.oldest_pending = Gauge(
            "fleetcare_ingest_oldest_pending_seconds",
            "Age of the oldest unacknowledged message (lag).",
            registry=r,
        )
        self.store_up = Gauge(
            "fleetcare_ingest_store_up",
            "1 while the stores accept writes, 0 during an outage.",
            registry=r,
        )
        self.connected = Gauge("fleetcare_ingest_mqtt_connected", "1 while connected.", registry=r)
        self.connects = Counter(
            "fleetcare_ingest_connects", "Successful (re)connections.", registry=r
        )
        self.resend_requests = Counter(
            "fleetcare_ingest_resend_requests",
            "Reconnections after which devices were asked to resend (ingest.resend_window_s).",
            registry=r,
        )
        self.failures = Counter(
            "fleetcare_ingest_flush_failures",
            "Failed flush attempts (retried).",
            ["error"],
            registry=r,
        )
        self.store_up.set(1)
