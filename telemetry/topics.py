"""The v1 topic scheme: `{prefix}/v1/{device_type}/{device_id}/{kind}`."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from enum import StrEnum

from telemetry.errors import TopicError

DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)
_PREFIX = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
VERSION = "v1"


class TopicKind(StrEnum):
    TELEMETRY = "telemetry"  # QoS 1, metrics
    EVENT = "event"  # QoS 1, fault codes, filter replaced, button presses
    STATUS = "status"  # retained, online / offline (Last Will)
    CMD = "cmd"  # engine -> device


# the "device" of the fleet-wide command topic
BROADCAST = ("fleet", "all")


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """A parsed device topic. Constructing one validates it."""

    prefix: str
    device_type: str
    device_id: str
    kind: TopicKind

    def __post_init__(self) -> None:
        if not _DEVICE_ID.match(self.device_id):
            raise TopicError(str(self), f"device id must match {DEVICE_ID_PATTERN}")

    def __str__(self) -> str:
        return f"{self.prefix}/{VERSION}/{self.device_type}/{self.device_id}/{self.kind}"


@dataclass(frozen=True, slots=True)
class TopicScheme:
    """Builds and parses topics under one configurable prefix."""

    prefix: str = "fleetcare"

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.prefix):
            raise ValueError(f"topic prefix {self.prefix!r} must be plain levels like 'fleetcare'")

    def topic(self, device_type: str, device_id: str, kind: TopicKind) -> str:
        return str(DeviceTopic(self.prefix, device_type, device_id, kind))

    def parse(self, topic: str) -> DeviceTopic:
        """Split a topic; raises `TopicError` saying what is wrong."""
        head = f"{self.prefix}/{VERSION}/"
        if not topic.startswith(head):
            raise TopicError(topic, f"expected it to start with {head!r}")
        parts = topic[len(head) :].split("/")
        if len(parts) != 3:
            raise TopicError(topic, "expected {device_type}/{device_id}/{kind} after the prefix")
        device_type, device_id, kind = parts
        try:
            topic_kind = TopicKind(kind)
        except ValueError:
            raise TopicError(
                topic, f"unknown kind {kind!r}; expected one of {[k.value for k in TopicKind]}"
            ) from None
        # one string per type, not one per device: a worker keeps a fleet's topics parsed
        return DeviceTopic(self.prefix, sys.intern(device_type), device_id, topic_kind)

    def broadcast(self) -> str:
        """The command topic every device also reads: `{prefix}/v1/fleet/all/cmd` (the
        engine's fleet-wide requests, e.g. `resend` after the broker lost messages)."""
        return self.topic(*BROADCAST, TopicKind.CMD)

    def filter(self, kind: TopicKind | None = None, device_type: str = "+") -> str:
        """A subscription filter over every device (of one type) and kind (or all kinds)."""
        return f"{self.prefix}/{VERSION}/{device_type}/+/{kind or '+'}"

    def misshapen(self) -> list[str]:
        """Filters for topics under the prefix's version with too few or too many levels:
        none of them overlaps `filter()`, so ingest can see them (and keep them as dead
        letters) without receiving a good message twice."""
        base = f"{self.prefix}/{VERSION}"
        return [f"{base}/+", f"{base}/+/+", f"{base}/+/+/+/+/#"]

    def shared(self, group: str, kind: TopicKind | None = None) -> str:
        return f"$share/{group}/{self.filter(kind)}"
