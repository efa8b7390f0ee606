"""The TelemetryStore protocol: what ingest writes to and rules, models and the API read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, Self, runtime_checkable

from telemetry.device_types import DeviceType
from telemetry.records import (
    Agg,
    Event,
    Latest,
    RangeQuery,
    Reading,
    SeriesFrame,
    WriteResult,
)


@runtime_checkable
class TelemetryStore(Protocol):
    """Time-series storage of telemetry and events.

    Writes are idempotent on `(device_id, boot, seq)`: writing a message again stores it
    once. `write` returns only once the data is durable. Transient failures raise
    `StoreUnavailable`; data the store refuses raises `StoreRejected`.
    """

    name: str

    async def open(self) -> None:
        """Connect and create what is missing (tables, database, retention policy)."""

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the store answers."""

    async def use_types(self, types: Mapping[str, DeviceType]) -> None:
        """Know these device types (metric tables) from now on: a profile's new type or
        metric can be written and read; nothing stored before is lost."""

    async def write(self, readings: Sequence[Reading], events: Sequence[Event] = ()) -> WriteResult:
        """Durably store a batch; already-stored messages are not stored twice."""

    async def latest(self, device_ids: Sequence[str]) -> dict[str, Latest]:
        """Newest value of each metric per device; devices never seen are absent."""

    async def query(self, query: RangeQuery) -> SeriesFrame:
        """Aggregate per interval; empty intervals are left out."""

    async def history(
        self,
        device_type: str,
        device_id: str,
        start: int,
        end: int,
        metrics: Sequence[str] | None = None,
    ) -> SeriesFrame:
        """Raw readings in `[start, end)` ordered by time, with `boot` and `seq` columns."""

    async def events(self, device_type: str, device_id: str, start: int, end: int) -> list[Event]:
        """A device's events in `[start, end)` ordered by time."""

    async def aggregate(
        self,
        device_type: str,
        start: int,
        end: int,
        metrics: Sequence[str],
        device_ids: Sequence[str] | None = None,
        where: Sequence[tuple[str, str, float]] | None = None,
    ) -> dict[str, dict[str, Agg]]:
        """Per device of the type (or of `device_ids`): count, mean, min and max of each
        numeric metric over `[start, end)`, counting only the readings where every `where`
        filter (metric, ">" or "<", value) holds. Devices without a reading there are absent.
        A few queries for the whole fleet: what the rules evaluator reads each pass."""

    async def recent_events(self, device_type: str, start: int, end: int) -> list[Event]:
        """Every device's events of the type in `[start, end)`, ordered by time."""

    async def count(
        self,
        *,
        device_type: str | None = None,
        device_id: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> int:
        """Number of stored telemetry messages matching all the given filters."""


@runtime_checkable
class KeyedByTime(Protocol):
    """A store whose points are told apart by device and time, not by message key
    (InfluxDB: one point per series and time). A message repeated with another device time
    becomes a second point there; workers that share a subscription settle which copy is
    the stored one (ingest.key_ledger) and have the store forget the other."""

    async def forget(self, items: Sequence[Reading | Event]) -> None:
        """Remove exactly the points these messages were written as (each by its device,
        its time and its key), and nothing else."""
