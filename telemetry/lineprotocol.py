"""InfluxDB line protocol encoding of readings and events.

Schema (chosen for cardinality at 1M devices, docs/architecture.md):
measurement = device type; the only tag is `device_id` (one series per device); every
metric plus `boot` and `seq` are fields. InfluxDB keeps one point per series and time,
so the message's key (boot, seq) goes into the sub-millisecond digits of the device time
(`point_time_ns`): a redelivered message lands on the same point (an idempotent
overwrite), and two messages in one millisecond do not collide, whether they differ in
seq or in boot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import orjson

from telemetry.device_types import DeviceType, MetricKind
from telemetry.records import Event, MetricValue, Reading

EVENT_MEASUREMENT = "device_event"
_SUB_MS = 1_000_000


_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """SplitMix64's finaliser: neighbouring inputs, far-apart outputs."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def point_time_ns(ts_ms: int, seq: int, boot: int = 0) -> int:
    """The device time in ns, the key (boot, seq) in the sub-millisecond digits.
    Consecutive seqs of one boot and block of 10^6 never share digits; a different boot
    or block is shifted by a hash, so two keys meet in one millisecond of one device only
    by a one-in-a-million chance, not whenever a device reboots or wraps past 10^6."""
    block = _mix(((boot & 0xFFFFFFFF) << 32) ^ (seq // _SUB_MS))
    return ts_ms * _SUB_MS + (seq + block) % _SUB_MS


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
        f"boot={r.boot}i,seq={r.seq}i{sep}{fields} {point_time_ns(r.ts, r.seq, r.boot)}"
    )


def event_line(e: Event) -> str:
    data = escape_string(orjson.dumps(dict(e.data)).decode())
    return (
        f"{EVENT_MEASUREMENT},device_id={escape_key(e.device_id)},device_type={e.device_type} "
        f"boot={e.boot}i,seq={e.seq}i,name={escape_string(e.name)},data={data} "
        f"{point_time_ns(e.ts, e.seq, e.boot)}"
    )
