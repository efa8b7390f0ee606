"""InfluxDB line protocol encoding of readings and events.

Schema (chosen for cardinality at 1M devices, docs/architecture.md):
measurement = device type; the only tag is `device_id` (one series per device); every
metric plus `boot` and `seq` are fields. The timestamp is the device time in ns with
`seq mod 10^6` in the sub-millisecond digits, so a redelivered message lands on the same
point (idempotent overwrite) and two messages in one millisecond do not collide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import orjson

from telemetry.device_types import DeviceType, MetricKind
from telemetry.records import Event, MetricValue, Reading

EVENT_MEASUREMENT = "device_event"
_SUB_MS = 1_000_000


def point_time_ns(ts_ms: int, seq: int) -> int:
    return ts_ms * _SUB_MS + seq % _SUB_MS


def escape_key(value: str) -> str:
    """Measurement, tag key/value or field key: escape commas, equals signs and spaces."""
    return value.replace("\\", "\\\\").replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def escape_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _float(v: MetricValue) -> str:
    return repr(float(v))


def _int(v: MetricValue) -> str:
    return f"{int(v)}i"


def _bool(v: MetricValue) -> str:
    return "true" if v else "false"


def _str(v: MetricValue) -> str:
    return escape_string(str(v))


_FORMAT: dict[MetricKind, Callable[[MetricValue], str]] = {
    MetricKind.FLOAT: _float,
    MetricKind.INT: _int,
    MetricKind.BOOL: _bool,
    MetricKind.ENUM: _str,
}
Formatters = dict[str, dict[str, Callable[[MetricValue], str]]]


def formatters(types: Mapping[str, DeviceType]) -> Formatters:
    """How each metric of each type is written: a field's type is fixed per measurement."""
    return {name: {m.name: _FORMAT[m.kind] for m in dt.metrics} for name, dt in types.items()}


def reading_line(r: Reading, formatters: Formatters) -> str:
    fmt = formatters[r.device_type]
    fields = ",".join(f"{k}={fmt[k](v)}" for k, v in r.metrics.items())
    sep = "," if fields else ""
    return (
        f"{r.device_type},device_id={escape_key(r.device_id)} "
        f"boot={r.boot}i,seq={r.seq}i{sep}{fields} {point_time_ns(r.ts, r.seq)}"
    )


def event_line(e: Event) -> str:
    data = escape_string(orjson.dumps(dict(e.data)).decode())
    return (
        f"{EVENT_MEASUREMENT},device_id={escape_key(e.device_id)},device_type={e.device_type} "
        f"boot={e.boot}i,seq={e.seq}i,name={escape_string(e.name)},data={data} "
        f"{point_time_ns(e.ts, e.seq)}"
    )
