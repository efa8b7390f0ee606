"""TelemetryStore backends, one module each, and a factory from settings."""

from __future__ import annotations

from collections.abc import Mapping

from telemetry.backends.settings import StoreSettings
from telemetry.device_types import DeviceType
from telemetry.store import TelemetryStore

__all__ = ["StoreSettings", "create_store"]


def create_store(
    settings: StoreSettings, data_dir: str, types: Mapping[str, DeviceType] | None = None
) -> TelemetryStore:
    """Build (but do not open) the configured backend, knowing `types` (default: the
    shipped device types)."""
    if settings.backend == "influxdb":
        from telemetry.backends.influxdb import InfluxStore

        return InfluxStore(settings, types)
    from pathlib import Path

    from telemetry.backends.embedded import EmbeddedStore

    path = settings.path or str(Path(data_dir) / "telemetry.sqlite3")
    return EmbeddedStore(path, durable=settings.durable, types=types)
