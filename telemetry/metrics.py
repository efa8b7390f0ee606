"""The device contract's metric table: one row per metric, one table per device type.

Adding a metric or a device type is adding a row here; payload models, the JSON Schema,
the embedded store's columns and the InfluxDB field types all derive from this table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from telemetry.errors import UnknownDeviceType

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


def _f(name: str, unit: str, lo: float, hi: float, description: str) -> Metric:
    return Metric(
        name=name, unit=unit, kind=MetricKind.FLOAT, minimum=lo, maximum=hi, description=description
    )


def _i(name: str, unit: str, lo: float, hi: float, description: str) -> Metric:
    return Metric(
        name=name, unit=unit, kind=MetricKind.INT, minimum=lo, maximum=hi, description=description
    )


PURIFIER = DeviceType(
    name="purifier",
    title="Air purifier",
    description="Room air purifier with a HEPA/carbon filter and a PM2.5 sensor.",
    metrics=(
        _f("pm25", "µg/m³", 0, 2000, "Indoor PM2.5 concentration measured by the unit."),
        _i("fan_rpm", "rpm", 0, 5000, "Fan motor speed."),
        _i(
            "fan_level", "level", 0, 10, "Fan speed step chosen by the user or auto mode (0 = off)."
        ),
        Metric(
            name="mode",
            unit="",
            kind=MetricKind.ENUM,
            choices=("off", "auto", "sleep", "manual", "turbo"),
            description="Operating mode.",
        ),
        _f(
            "motor_current_ma",
            "mA",
            0,
            5000,
            "Fan motor current; rises at fixed rpm as the filter loads.",
        ),
        _f("power_w", "W", 0, 500, "Electrical power drawn."),
        _f("temperature_c", "°C", -30, 70, "Air temperature at the intake."),
        _f("humidity_pct", "%", 0, 100, "Relative humidity at the intake."),
        _f(
            "filter_life_pct",
            "%",
            0,
            100,
            "Filter life the device itself reports (from rated hours).",
        ),
        _f("filter_used_hours", "h", 0, 200_000, "Fan run time since the last filter change."),
    ),
)

WATER_PURIFIER = DeviceType(
    name="water_purifier",
    title="Water purifier",
    description="Under-sink reverse-osmosis purifier: sediment, carbon and RO stages.",
    metrics=(
        _f("tds_in_ppm", "ppm", 0, 5000, "Total dissolved solids of the feed water."),
        _f("tds_out_ppm", "ppm", 0, 5000, "Total dissolved solids of the product water."),
        _f("flow_lpm", "L/min", 0, 20, "Product water flow while drawing."),
        _f("volume_total_l", "L", 0, 10_000_000, "Product water volume since installation."),
        _f("pressure_kpa", "kPa", 0, 1500, "Feed pressure after the booster pump."),
        _f("pump_current_ma", "mA", 0, 10_000, "Booster pump current."),
        _f("water_temp_c", "°C", 0, 100, "Feed water temperature."),
        Metric(
            name="leak",
            unit="",
            kind=MetricKind.BOOL,
            description="Leak sensor under the unit is wet.",
        ),
        _f("filter_life_sediment_pct", "%", 0, 100, "Sediment stage life the device reports."),
        _f("filter_life_carbon_pct", "%", 0, 100, "Carbon stage life the device reports."),
        _f("filter_life_ro_pct", "%", 0, 100, "RO membrane life the device reports."),
    ),
)

AIR_CONDITIONER = DeviceType(
    name="air_conditioner",
    title="Air conditioner",
    description="Inverter split air conditioner with a return-air dust filter.",
    metrics=(
        Metric(
            name="mode",
            unit="",
            kind=MetricKind.ENUM,
            choices=("off", "cool", "heat", "dry", "fan", "auto"),
            description="Operating mode.",
        ),
        _f("setpoint_c", "°C", 10, 35, "Target room temperature."),
        _f("room_temp_c", "°C", -30, 70, "Return-air (room) temperature."),
        _f("outdoor_temp_c", "°C", -50, 70, "Outdoor ambient temperature at the condenser."),
        _f("humidity_pct", "%", 0, 100, "Room relative humidity."),
        _f("compressor_hz", "Hz", 0, 200, "Inverter compressor frequency."),
        _f("power_w", "W", 0, 10_000, "Electrical power drawn by the whole unit."),
        _f("suction_pressure_kpa", "kPa", 0, 3000, "Refrigerant suction (low side) pressure."),
        _f("discharge_pressure_kpa", "kPa", 0, 6000, "Refrigerant discharge (high side) pressure."),
        _f("coil_temp_c", "°C", -40, 100, "Indoor coil temperature."),
        _f("supply_air_temp_c", "°C", -20, 80, "Supply (outlet) air temperature."),
        _i("indoor_fan_rpm", "rpm", 0, 3000, "Indoor fan speed."),
        _f(
            "filter_used_hours",
            "h",
            0,
            200_000,
            "Indoor fan run time since the filter was cleaned.",
        ),
    ),
)

DEVICE_TYPES: Mapping[str, DeviceType] = MappingProxyType(
    {t.name: t for t in (PURIFIER, WATER_PURIFIER, AIR_CONDITIONER)}
)


def device_type(name: str) -> DeviceType:
    """The row for `name`, or `UnknownDeviceType` listing the known ones."""
    try:
        return DEVICE_TYPES[name]
    except KeyError:
        raise UnknownDeviceType(name, sorted(DEVICE_TYPES)) from None
