"""A device type's metric table: what each metric is, its unit, kind and physical range.

The tables are not written here: each comes from a product profile (`telemetry.profile`),
and payload models, the JSON Schema, the stores' columns and fields derive from them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class MetricKind(StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    ENUM = "enum"


@dataclass(frozen=True, kw_only=True, slots=True)
class Metric:
    """One measurement a device reports; `minimum`/`maximum` bound physically valid values."""

    name: str
    unit: str
    kind: MetricKind
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    cadence_s: float | None = None  # how often the device reports it, when it says
    counter: bool = False  # only grows, until the device resets it (a usage counter)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"metric name {self.name!r} must match {_NAME.pattern}")
        if self.kind is MetricKind.ENUM and not self.choices:
            raise ValueError(f"enum metric {self.name!r} needs choices")
        if self.kind in (MetricKind.FLOAT, MetricKind.INT) and (
            self.minimum is None or self.maximum is None or self.minimum > self.maximum
        ):
            raise ValueError(f"numeric metric {self.name!r} needs minimum <= maximum")


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceType:
    """A kind of appliance: its name in topics and its metrics."""

    name: str
    title: str
    description: str
    metrics: tuple[Metric, ...]
    by_name: Mapping[str, Metric] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"device type {self.name!r} must match {_NAME.pattern}")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"device type {self.name!r} repeats a metric name")
        object.__setattr__(self, "by_name", MappingProxyType({m.name: m for m in self.metrics}))
