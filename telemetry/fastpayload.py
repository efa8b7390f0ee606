"""A compiled decoder for the telemetry payload: the hot path's shortcut past pydantic.

The pydantic models (`telemetry.payload`) are the contract: they name what a payload
breaks, and the dead letters carry their words. Validating every message with them cost
the ingest worker about a tenth of its time. The decoder here is built from the same
metric table with msgspec, which decodes and checks a payload in one pass of compiled
code. It only ever says "valid, and these are the values" or "ask the models": it is
stricter than or equal to the models (a payload it accepts, they accept with the same
values; `tests/telemetry/test_fastpayload.py` holds it to that), so a message it
refuses goes through the models and gets their reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
from msgspec import Meta

from telemetry.device_types import DeviceType, Metric, MetricKind
from telemetry.topics import DEVICE_ID_PATTERN

_EPOCH_MS = Annotated[int, Meta(ge=0, le=32_503_680_000_000)]
_COUNTER = Annotated[int, Meta(ge=0, le=2**53)]
# msgspec matches with Python's `re`, where `$` also matches before a final newline
assert DEVICE_ID_PATTERN.endswith("$")
_DEVICE_ID = Annotated[str, Meta(pattern=DEVICE_ID_PATTERN[:-1] + r"\Z")]


class FastTelemetry(NamedTuple):
    device_id: str
    ts: int
    seq: int
    boot: int
    metrics: dict[str, Any]


FastDecoder = Callable[[bytes], FastTelemetry | None]


def _metric_type(metric: Metric) -> Any:
    if metric.kind is MetricKind.ENUM:
        return Literal[metric.choices] | None
    if metric.kind is MetricKind.BOOL:
        return bool | None
    # the metric table requires both bounds of a number
    assert metric.minimum is not None
    assert metric.maximum is not None
    if metric.kind is MetricKind.FLOAT:
        return Annotated[float, Meta(ge=metric.minimum, le=metric.maximum)] | None
    # an int bound must be an int; rounding inwards keeps exactly the same ints valid
    return Annotated[int, Meta(ge=math.ceil(metric.minimum), le=math.floor(metric.maximum))] | None


def build_fast_decoder(dt: DeviceType) -> FastDecoder:
    """`decode(payload)`: the payload's values when it is valid telemetry of `dt` (the
    metrics it reported, nulls left out), or None when the pydantic model must judge it."""
    names = tuple(m.name for m in dt.metrics)
    # an absent metric and an explicit null both mean "not measured": both become None
    metrics_type: Any = msgspec.defstruct(
        f"{dt.name}_metrics",
        [(m.name, _metric_type(m), None) for m in dt.metrics],
        forbid_unknown_fields=True,
    )
    envelope: Any = msgspec.defstruct(
        f"{dt.name}_telemetry",
        [
            ("v", Literal[1]),
            ("device_id", _DEVICE_ID),
            ("ts", _EPOCH_MS),
            ("seq", _COUNTER),
            ("boot", _COUNTER),
            ("metrics", metrics_type),
        ],
        forbid_unknown_fields=True,
    )
    decoder = msgspec.json.Decoder(envelope)
    values = msgspec.structs.astuple
    failed = (msgspec.ValidationError, msgspec.DecodeError)

    def decode(payload: bytes) -> FastTelemetry | None:
        try:
            msg = decoder.decode(payload)
        except failed:
            return None
        metrics = {k: v for k, v in zip(names, values(msg.metrics), strict=True) if v is not None}
        return FastTelemetry(msg.device_id, msg.ts, msg.seq, msg.boot, metrics)

    return decode
