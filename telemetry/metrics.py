"""The device types the engine ships with, and their metric tables.

Each table comes from a shipped product profile (`telemetry/profiles/*.yaml`, read by
`telemetry.profile`). Code that must follow the profiles a running engine knows (new
families, new versions) takes a `ProfileSet` instead; this is the set it starts from.
"""

from __future__ import annotations

from collections.abc import Mapping

from telemetry.device_types import DeviceType, Metric, MetricKind
from telemetry.profile import shipped

DEVICE_TYPES: Mapping[str, DeviceType] = shipped().types


def device_type(name: str) -> DeviceType:
    """The shipped metric table of `name`, or `UnknownDeviceType` listing the known ones."""
    return shipped().device_type(name)


__all__ = ["DEVICE_TYPES", "DeviceType", "Metric", "MetricKind", "device_type"]
