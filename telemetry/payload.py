"""Wire payloads of the v1 device contract, generated from the metric table.

    telemetry  {"v": 1, "device_id", "ts", "seq", "boot", "metrics": {...}}
    event      {"v": 1, "device_id", "ts", "seq", "boot", "event": "fault", "data": {...}}
    status     "online" | "offline" | {"v": 1, "state", "ts"?, "boot"?, "firmware"?}

`ts` is device time in epoch milliseconds; `(device_id, boot, seq)` identifies a message
(telemetry and events share the device's counter).
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model
from typing_extensions import TypedDict

from telemetry.metrics import DEVICE_TYPES, DeviceType, Metric, MetricKind, device_type
from telemetry.topics import DEVICE_ID_PATTERN

DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]
EventName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
Scalar = float | int | bool | str | None
EpochMs = Annotated[int, Field(ge=0, le=32_503_680_000_000, description="Device time, epoch ms.")]
Counter = Annotated[int, Field(ge=0, le=2**53)]

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


def _metric_type(metric: Metric) -> Any:
    desc = f"{metric.description} [{metric.unit}]" if metric.unit else metric.description
    if metric.kind is MetricKind.ENUM:
        return NotRequired[Annotated[Literal[metric.choices] | None, Field(description=desc)]]
    if metric.kind is MetricKind.BOOL:
        return NotRequired[Annotated[bool | None, Field(description=desc)]]
    py_type: type = float if metric.kind is MetricKind.FLOAT else int
    return NotRequired[
        Annotated[py_type | None, Field(ge=metric.minimum, le=metric.maximum, description=desc)]
    ]


def _class_name(dt: DeviceType, suffix: str) -> str:
    return "".join(part.title() for part in dt.name.split("_")) + suffix


class _Envelope(BaseModel):
    model_config = _STRICT

    v: Literal[1] = Field(description="Contract version.")
    device_id: DeviceId
    ts: EpochMs
    seq: Counter = Field(description="Per-device message counter, restarts at boot.")
    boot: Counter = Field(description="Boot counter; with seq it identifies a message.")


class TelemetryPayload(_Envelope):
    """Base of the generated per-type telemetry models."""

    metrics: dict[str, Any]


class EventPayload(_Envelope):
    """A device event: fault code, filter replaced, button press."""

    event: EventName
    data: dict[Annotated[str, StringConstraints(max_length=64)], Scalar] = Field(
        default_factory=dict, max_length=64
    )


class StatusPayload(BaseModel):
    """The JSON form of a status message; plain `online`/`offline` bodies are also accepted."""

    model_config = _STRICT

    v: Literal[1] = 1
    state: Literal["online", "offline"]
    ts: EpochMs | None = None
    boot: Counter | None = None
    firmware: Annotated[str, StringConstraints(max_length=64)] | None = None


class CommandPayload(BaseModel):
    """Engine -> device on `{prefix}/v1/{type}/{id}/cmd`, e.g. a technician replaced a filter:
    `{"v": 1, "cmd": "filter_replaced", "args": {"stage": "ro"}}`."""

    model_config = _STRICT

    v: Literal[1] = 1
    cmd: EventName
    args: dict[Annotated[str, StringConstraints(max_length=64)], Scalar] = Field(
        default_factory=dict, max_length=32
    )
    id: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="Correlation id (e.g. the work order)."
    )


@cache
def metrics_model(type_name: str) -> Any:
    """The `metrics` object of one shipped device type."""
    return _metrics_typed_dict(device_type(type_name))


def _metrics_typed_dict(dt: DeviceType) -> Any:
    """The `metrics` object of a device type: a TypedDict, so validation yields the dict
    of reported metrics directly (no model to dump on the hot path)."""
    make_typed_dict: Any = TypedDict  # built from the metric table at run time
    td: Any = make_typed_dict(
        _class_name(dt, "Metrics"), {m.name: _metric_type(m) for m in dt.metrics}
    )
    td.__doc__ = dt.description
    td.__pydantic_config__ = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    return td


@cache
def telemetry_model(type_name: str) -> type[TelemetryPayload]:
    """The pydantic model of one shipped device type's telemetry payload."""
    return build_telemetry_model(device_type(type_name))


def build_telemetry_model(dt: DeviceType) -> type[TelemetryPayload]:
    """The pydantic model of a device type's telemetry payload, from its metric table."""
    model: type[TelemetryPayload] = create_model(
        _class_name(dt, "Telemetry"),
        __base__=TelemetryPayload,
        __doc__=f"{dt.title} telemetry, topic `{{prefix}}/v1/{dt.name}/{{device_id}}/telemetry`.",
        metrics=(
            _metrics_typed_dict(dt),
            Field(description="Readings; omit a metric the device did not measure."),
        ),
    )
    return model


def all_telemetry_models() -> dict[str, type[TelemetryPayload]]:
    return {name: telemetry_model(name) for name in DEVICE_TYPES}
