"""The device contract (topics, payloads, metric table) and the TelemetryStore protocol."""

from telemetry.metrics import DEVICE_TYPES, DeviceType, Metric, MetricKind
from telemetry.records import Aggregation, Event, Latest, RangeQuery, Reading, SeriesFrame
from telemetry.store import TelemetryStore
from telemetry.topics import TopicKind, TopicScheme

__all__ = [
    "DEVICE_TYPES",
    "Aggregation",
    "DeviceType",
    "Event",
    "Latest",
    "Metric",
    "MetricKind",
    "RangeQuery",
    "Reading",
    "SeriesFrame",
    "TelemetryStore",
    "TopicKind",
    "TopicScheme",
]
