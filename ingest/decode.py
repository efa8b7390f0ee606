"""Decode and validate one raw MQTT message into a reading, event, status or a reject.

Pure logic, no I/O: the same code runs in the worker and in `deadletters replay`. The
payload models come from the product profiles the decoder is given (`with_profiles`
gives a decoder for a newer set): a metric its family's profile does not declare is a
dead letter that names the metric and the profile version, kept to replay once a new
profile version declares it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from telemetry.errors import TopicError
from telemetry.fastpayload import FastDecoder, build_fast_decoder
from telemetry.payload import EventPayload, StatusPayload, TelemetryPayload, build_telemetry_model
from telemetry.profile import Profile, ProfileSet, shipped
from telemetry.records import Event, Reading
from telemetry.topics import DeviceTopic, TopicKind, TopicScheme


class Reject(StrEnum):
    """Why a message became a dead letter."""

    BAD_TOPIC = "bad_topic"
    UNKNOWN_DEVICE_TYPE = "unknown_device_type"
    UNKNOWN_METRIC = "unknown_metric"
    OVERSIZED = "oversized"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    UNSUPPORTED_VERSION = "unsupported_version"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_FIELD = "unknown_field"
    SCHEMA = "schema"  # any other breach of the contract (a value not in an enum, ...)
    NON_FINITE = "non_finite"
    OUT_OF_RANGE = "out_of_range"
    DEVICE_MISMATCH = "device_mismatch"
    TS_FUTURE = "ts_future"
    TS_PAST = "ts_past"
    UNREGISTERED = "unregistered"
    TYPE_MISMATCH = "type_mismatch"
    STORE_REJECTED = "store_rejected"


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: Reject
    detail: str
    device_type: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class StatusChange:
    device_type: str
    device_id: str
    online: bool
    ts: int | None = None
    boot: int | None = None
    firmware: str | None = None


@dataclass(frozen=True, slots=True)
class Ignored:
    """Not for ingest (a command to a device, a cleared retained status)."""

    why: str


Decoded = Reading | Event | StatusChange | Ignored | Rejected

_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _describe(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "payload"
        got = (
            "" if err["type"] in ("json_invalid", "missing") else f" (got {err.get('input')!r:.60})"
        )
        parts.append(f"{loc}: {err['msg']}{got}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _classify(exc: ValidationError, payload: bytes) -> Reject:
    first = exc.errors(include_url=False)[0]
    kind, loc = first["type"], first["loc"]
    if kind == "json_invalid":
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            return Reject.NOT_UTF8
        return Reject.NOT_JSON
    if loc == ("v",):
        return Reject.UNSUPPORTED_VERSION
    if kind == "finite_number":
        return Reject.NON_FINITE
    if kind in _RANGE_ERRORS:  # a metric's range, or a negative seq or boot
        return Reject.OUT_OF_RANGE
    if kind == "missing":
        return Reject.MISSING_FIELD
    if kind == "extra_forbidden":
        return Reject.UNKNOWN_FIELD
    if kind.endswith(("_type", "_parsing")):
        return Reject.WRONG_TYPE
    return Reject.SCHEMA


def _unknown_metrics(exc: ValidationError) -> list[str]:
    return [
        str(err["loc"][1])
        for err in exc.errors(include_url=False)
        if err["type"] == "extra_forbidden" and len(err["loc"]) == 2 and err["loc"][0] == "metrics"
    ]


@dataclass(frozen=True, slots=True)
class Decoder:
    scheme: TopicScheme
    max_payload_bytes: int = 16 * 1024
    max_future_ms: int = 600_000
    max_past_ms: int = 366 * 86_400_000
    profiles: ProfileSet = field(default_factory=shipped)
    # a device publishes on the same few topics all its life: parse each once
    _topics: dict[str, DeviceTopic | TopicError] = field(default_factory=dict, repr=False)
    # each family's payload model, built from its profile once per version
    _models: dict[str, type[TelemetryPayload]] = field(default_factory=dict, repr=False)
    # and its compiled shortcut, which leaves every doubtful payload to the model
    _fast_decoders: dict[str, FastDecoder] = field(default_factory=dict, repr=False)

    def with_profiles(self, profiles: ProfileSet) -> Decoder:
        """This decoder for another set of profiles (the topics it parsed stay known)."""
        if profiles.fingerprint == self.profiles.fingerprint:
            return self
        return replace(self, profiles=profiles, _models={}, _fast_decoders={})

    def _model(self, profile: Profile) -> type[TelemetryPayload]:
        model = self._models.get(profile.name)
        if model is None:
            model = self._models[profile.name] = build_telemetry_model(profile.device_type)
        return model

    def _fast(self, profile: Profile) -> FastDecoder:
        fast = self._fast_decoders.get(profile.name)
        if fast is None:
            fast = self._fast_decoders[profile.name] = build_fast_decoder(profile.device_type)
        return fast

    def _parse(self, topic: str) -> DeviceTopic | TopicError:
        t = self._topics.get(topic)
        if t is None:
            try:
                t = self.scheme.parse(topic)
            except TopicError as exc:
                t = exc
            if len(self._topics) > 200_000:
                self._topics.clear()
            self._topics[topic] = t
        return t

    def decode(self, topic: str, payload: bytes, now_ms: int) -> Decoded:
        t = self._parse(topic)
        if isinstance(t, TopicError):
            return Rejected(Reject.BAD_TOPIC, t.why)
        if t.kind is TopicKind.CMD:
            return Ignored("command topic")
        profile = self.profiles.get(t.device_type)
        if profile is None:
            return Rejected(
                Reject.UNKNOWN_DEVICE_TYPE,
                f"device type {t.device_type!r} has no profile; known: "
                f"{', '.join(self.profiles)} (import its profile, then replay)",
                t.device_type,
                t.device_id,
            )
        if len(payload) > self.max_payload_bytes:
            return Rejected(
                Reject.OVERSIZED,
                f"payload is {len(payload)} bytes; the limit is {self.max_payload_bytes}",
                t.device_type,
                t.device_id,
            )
        if t.kind is TopicKind.STATUS:
            return self._status(t, payload)
        msg: Any = None
        if t.kind is TopicKind.TELEMETRY:
            msg = self._fast(profile)(payload)
            if msg is not None and msg.device_id != t.device_id:
                msg = None  # the model says whether the id is malformed or another device's
        if msg is None:
            msg = self._validate(t, profile, payload)
            if isinstance(msg, Rejected):
                return msg
        if msg.device_id != t.device_id:
            return Rejected(
                Reject.DEVICE_MISMATCH,
                f"payload device_id {msg.device_id!r} differs from topic device {t.device_id!r}",
                t.device_type,
                t.device_id,
            )
        if msg.ts > now_ms + self.max_future_ms:
            return Rejected(
                Reject.TS_FUTURE,
                f"ts {msg.ts} is {(msg.ts - now_ms) / 1000:.0f} s ahead of the server clock "
                f"(limit {self.max_future_ms / 1000:.0f} s): check the device clock",
                t.device_type,
                t.device_id,
            )
        if msg.ts < now_ms - self.max_past_ms:
            return Rejected(
                Reject.TS_PAST,
                f"ts {msg.ts} is {(now_ms - msg.ts) / 86_400_000:.1f} days old "
                f"(limit {self.max_past_ms / 86_400_000:.1f} days)",
                t.device_type,
                t.device_id,
            )
        if t.kind is TopicKind.EVENT:  # not isinstance: pydantic's costs a microsecond
            return Event(t.device_type, t.device_id, msg.boot, msg.seq, msg.ts, msg.event, msg.data)
        metrics = msg.metrics
        if None in metrics.values():  # an explicit null means "not measured"
            metrics = {k: v for k, v in metrics.items() if v is not None}
        return Reading(t.device_type, t.device_id, msg.boot, msg.seq, msg.ts, metrics)

    def _validate(self, t: DeviceTopic, profile: Profile, payload: bytes) -> Any:
        """The payload through its pydantic model: the message, or why it is rejected."""
        model: Any = self._model(profile) if t.kind is TopicKind.TELEMETRY else EventPayload
        try:
            return model.model_validate_json(payload)
        except ValidationError as exc:
            unknown = _unknown_metrics(exc)
            if unknown:
                return Rejected(
                    Reject.UNKNOWN_METRIC,
                    f"metric {', '.join(map(repr, unknown))} is not in profile {profile.label}: "
                    "declare it in a new version of the profile, then replay this letter",
                    t.device_type,
                    t.device_id,
                )
            return Rejected(_classify(exc, payload), _describe(exc), t.device_type, t.device_id)

    def _status(self, t: DeviceTopic, payload: bytes) -> Decoded:
        body = payload.strip()
        if not body:
            return Ignored("empty status (retained message cleared)")
        if body in (b"online", b"offline"):
            return StatusChange(t.device_type, t.device_id, body == b"online")
        try:
            s = StatusPayload.model_validate_json(body)
        except ValidationError as exc:
            return Rejected(_classify(exc, payload), _describe(exc), t.device_type, t.device_id)
        return StatusChange(
            t.device_type, t.device_id, s.state == "online", s.ts, s.boot, s.firmware
        )
