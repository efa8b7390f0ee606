"""Errors of the telemetry package.

TelemetryError
├── UnknownDeviceType      a device type that has no row in the metric table
├── TopicError             a topic that does not follow the v1 scheme
└── StoreError             anything a TelemetryStore backend raises
    ├── StoreUnavailable   the store cannot be reached or is overloaded: retry later
    ├── StoreRejected      the store refused the data itself: retrying will not help
    └── StoreQueryError    a read failed or was malformed
"""

from __future__ import annotations


class TelemetryError(Exception):
    """Root of every error raised by `telemetry`."""


class UnknownDeviceType(TelemetryError):
    def __init__(self, device_type: str, known: list[str]) -> None:
        super().__init__(f"unknown device type {device_type!r}; known types: {', '.join(known)}")
        self.device_type = device_type


class TopicError(TelemetryError):
    def __init__(self, topic: str, why: str) -> None:
        super().__init__(f"topic {topic!r}: {why}")
        self.topic = topic
        self.why = why


class StoreError(TelemetryError):
    def __init__(self, backend: str, message: str) -> None:
        super().__init__(f"{backend} store: {message}")
        self.backend = backend


class StoreUnavailable(StoreError):
    """Transient: the caller keeps the data and retries with backoff."""


class StoreRejected(StoreError):
    """Permanent for this data: the caller dead-letters it rather than retrying forever."""


class StoreQueryError(StoreError):
    """A query failed."""
