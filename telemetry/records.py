"""Value types that cross the TelemetryStore boundary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

MetricValue = float | int | bool | str


@dataclass(frozen=True, slots=True)
class Reading:
    """One accepted telemetry message. `(device_id, boot, seq)` is its identity."""

    device_type: str
    device_id: str
    boot: int
    seq: int
    ts: int  # device time, epoch ms
    metrics: Mapping[str, MetricValue]


@dataclass(frozen=True, slots=True)
class Event:
    """One accepted device event (fault code, filter replaced, ...)."""

    device_type: str
    device_id: str
    boot: int
    seq: int
    ts: int
    name: str
    data: Mapping[str, MetricValue | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did. `duplicates` is None where the backend cannot tell (InfluxDB)."""

    written: int
    duplicates: int | None = None


@dataclass(frozen=True, slots=True)
class Latest:
    """The newest value of each metric a device has reported, and when it last reported."""

    device_id: str
    device_type: str
    ts: int
    metrics: Mapping[str, MetricValue]


class Aggregation(StrEnum):
    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    LAST = "last"


@dataclass(frozen=True, slots=True)
class Agg:
    """A numeric metric over a window: how many values, their mean, minimum and maximum."""

    count: int
    mean: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class SeriesFrame:
    """Column-oriented rows ordered by time: `ts[i]` with `columns[name][i]`."""

    ts: list[int]
    columns: dict[str, list[MetricValue | None]]

    def __len__(self) -> int:
        return len(self.ts)

    def rows(self) -> list[dict[str, MetricValue | None]]:
        names = list(self.columns)
        return [{"ts": t, **{n: self.columns[n][i] for n in names}} for i, t in enumerate(self.ts)]


@dataclass(frozen=True, slots=True, kw_only=True)
class RangeQuery:
    """Downsampled range: buckets of `every_ms` aligned to the epoch, half-open `[start, end)`."""

    device_type: str
    device_id: str
    metrics: tuple[str, ...]
    start: int
    end: int
    every_ms: int
    aggregation: Aggregation = Aggregation.MEAN

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.every_ms <= 0:
            raise ValueError("every_ms must be positive")
        if not self.metrics:
            raise ValueError("name at least one metric")
