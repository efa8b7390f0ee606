"""Helpers both backends share: query checks and value conversion by metric kind."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from telemetry.device_types import DeviceType, Metric, MetricKind
from telemetry.errors import UnknownDeviceType
from telemetry.records import Aggregation, MetricValue, RangeQuery, SeriesFrame

Types = Mapping[str, DeviceType]  # the metric tables a store knows, by device type


def device_row(types: Types, type_name: str) -> DeviceType:
    try:
        return types[type_name]
    except KeyError:
        raise UnknownDeviceType(type_name, sorted(types)) from None


def check_metrics(types: Types, type_name: str, metrics: Sequence[str]) -> list[Metric]:
    """The metric rows for `metrics`, or ValueError naming the unknown one."""
    dt = device_row(types, type_name)
    out = []
    for name in metrics:
        if name not in dt.by_name:
            raise ValueError(f"{type_name} has no metric {name!r}; known: {', '.join(dt.by_name)}")
        out.append(dt.by_name[name])
    return out


def check_numeric(types: Types, type_name: str, metrics: Sequence[str]) -> list[Metric]:
    """The rows for `metrics`, or ValueError naming one that cannot be averaged."""
    rows = check_metrics(types, type_name, metrics)
    for m in rows:
        if m.kind not in (MetricKind.FLOAT, MetricKind.INT):
            raise ValueError(f"{type_name}.{m.name} is {m.kind.value}: only numbers aggregate")
    return rows


def check_where(
    types: Types, type_name: str, where: Sequence[tuple[str, str, float]] | None
) -> list[tuple[str, str, float]]:
    """Window filters `(metric, ">" or "<", number)`, all to hold; checked, as they are
    put into a query."""
    out = []
    for metric, op, value in where or ():
        check_numeric(types, type_name, [metric])
        if op not in (">", "<"):
            raise ValueError(f"a window filter compares with > or <, not {op!r}")
        out.append((metric, op, float(value)))
    return out


def check_query(types: Types, query: RangeQuery) -> list[Metric]:
    rows = check_metrics(types, query.device_type, query.metrics)
    if query.aggregation is not Aggregation.LAST:
        for m in rows:
            if m.kind not in (MetricKind.FLOAT, MetricKind.INT):
                raise ValueError(
                    f"{query.aggregation} needs a numeric metric; {m.name!r} is {m.kind}: use last"
                )
    return rows


def convert(metric: Metric, value: Any) -> MetricValue | None:
    """A stored value as the metric's Python type (SQLite keeps bools as 0/1, InfluxDB
    returns whole floats as JSON integers)."""
    if value is None:
        return None
    match metric.kind:
        case MetricKind.FLOAT:
            return float(value)
        case MetricKind.INT:
            return int(value)
        case MetricKind.BOOL:
            return bool(value)
        case _:
            return str(value)


def aggregate_value(metric: Metric, agg: Aggregation, value: Any) -> MetricValue | None:
    if value is None:
        return None
    if agg is Aggregation.MEAN:
        return float(value)
    return convert(metric, value)


def drop_empty(frame: SeriesFrame) -> SeriesFrame:
    """Leave out buckets where every column is null (InfluxDB's fill(none))."""
    keep = [
        i for i in range(len(frame.ts)) if any(c[i] is not None for c in frame.columns.values())
    ]
    if len(keep) == len(frame.ts):
        return frame
    return SeriesFrame(
        ts=[frame.ts[i] for i in keep],
        columns={k: [v[i] for i in keep] for k, v in frame.columns.items()},
    )
