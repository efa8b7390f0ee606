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

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import orjson

from telemetry.device_types import DeviceType, MetricKind
from telemetry.records import Event, Reading

EVENT_MEASUREMENT = "device_event"
_SUB_MS = 1_000_000


_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """SplitMix64's finaliser: neighbouring inputs, far-apart outputs."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


@lru_cache(maxsize=4096)  # a fleet's devices share few (boot, block) pairs: most are (n, 0)
def _block_shift(boot: int, block: int) -> int:
    return _mix(((boot & 0xFFFFFFFF) << 32) ^ block)


def point_time_ns(ts_ms: int, seq: int, boot: int = 0) -> int:
    """The device time in ns, the key (boot, seq) in the sub-millisecond digits.
    Consecutive seqs of one boot and block of 10^6 never share digits; a different boot
    or block is shifted by a hash, so two keys meet in one millisecond of one device only
    by a one-in-a-million chance, not whenever a device reboots or wraps past 10^6."""
    return ts_ms * _SUB_MS + (seq + _block_shift(boot, seq // _SUB_MS)) % _SUB_MS


def escape_key(value: str) -> str:
    """Measurement, tag key/value or field key: escape commas, equals signs and spaces."""
    return value.replace("\\", "\\\\").replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def escape_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_FLOAT, _INT, _BOOL, _ENUM = range(4)
_KIND_CODE = {
    MetricKind.FLOAT: _FLOAT,
    MetricKind.INT: _INT,
    MetricKind.BOOL: _BOOL,
    MetricKind.ENUM: _ENUM,
}


@dataclass(slots=True)
class Formatters:
    """How each metric of each type is written (a field's type is fixed per measurement),
    and each device's line head, escaped once: formatting was a tenth of a worker's time."""

    kinds: dict[str, dict[str, int]]
    heads: dict[tuple[str, str], str] = field(default_factory=dict)


def formatters(types: Mapping[str, DeviceType]) -> Formatters:
    return Formatters(
        {name: {m.name: _KIND_CODE[m.kind] for m in dt.metrics} for name, dt in types.items()}
    )


def reading_line(r: Reading, formatters: Formatters) -> str:
    """One reading as a line. `KeyError` names a type or metric `formatters` lacks."""
    kinds = formatters.kinds[r.device_type]
    head = formatters.heads.get((r.device_type, r.device_id))
    if head is None:
        if len(formatters.heads) > 200_000:
            formatters.heads.clear()
        head = formatters.heads[(r.device_type, r.device_id)] = (
            f"{r.device_type},device_id={escape_key(r.device_id)} boot="
        )
    parts = [head, str(r.boot), "i,seq=", str(r.seq), "i"]
    for k, v in r.metrics.items():
        kind = kinds[k]
        if kind == _FLOAT:  # repr of a float is exact; numpy's float repr is not a number
            parts.append(f",{k}={v!r}" if type(v) is float else f",{k}={float(v)!r}")
        elif kind == _INT:
            parts.append(f",{k}={int(v)}i")
        elif kind == _BOOL:
            parts.append(f",{k}=true" if v else f",{k}=false")
        else:
            parts.append(f",{k}={escape_string(str(v))}")
    parts.append(f" {point_time_ns(r.ts, r.seq, r.boot)}")
    return "".join(parts)


def event_line(e: Event) -> str:
    data = escape_string(orjson.dumps(dict(e.data)).decode())
    return (
        f"{EVENT_MEASUREMENT},device_id={escape_key(e.device_id)},device_type={e.device_type} "
        f"boot={e.boot}i,seq={e.seq}i,name={escape_string(e.name)},data={data} "
        f"{point_time_ns(e.ts, e.seq, e.boot)}"
    )
