"""What the app is built from: passed in by whoever builds it (`fleetcare api`, the demo,
a test), never read from the environment here."""

from __future__ import annotations

from dataclasses import dataclass

from telemetry.store import TelemetryStore
from workorders.db import Database


@dataclass(frozen=True)
class ApiContext:
    db: Database
    store: TelemetryStore
    rate_per_minute: int = 600  # per key; a burst may use a minute's worth at once
