"""The device registry: id, type, model, serial, firmware, batch, enabled.

Devices come in three ways: `fleetcare devices add|import|provision`, the service
registry's import (with their owner and site), and enrolment: ingest registers a device
the first time it stores one of its messages, with the type its topic names, unless
`ingest.require_registered` is on (then an unknown device's messages are dead letters).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa

from db.database import Database
from db.errors import NotFound
from db.tables import devices
from db.upsert import insert_for
from fleet.errors import RegistryError
from telemetry.profile import ProfileSet


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    device_type: str
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    enabled: bool = True
    registered_at: datetime | None = None
    batch: str | None = None  # the production lot
    manufactured_on: date | None = None


class DeviceRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db

    def register(
        self,
        items: Iterable[Device],
        *,
        now: datetime | None = None,
        profiles: ProfileSet | None = None,
    ) -> int:
        """Add devices; re-registering one updates it, but never changes its type. A
        device's family needs a profile (`profiles`, default: the set in force), and a
        model code another family's profile lists is refused."""
        now = now or datetime.now(UTC)
        rows = list(items)
        if profiles is None:
            from fleet.profiles import ProfileRepository

            profiles = ProfileRepository(self.db).current()
        for d in rows:
            if d.device_type not in profiles:
                raise RegistryError(
                    f"device {d.id!r}: no profile for device type {d.device_type!r}; known: "
                    f"{', '.join(profiles)} (import the family's profile first)"
                )
            owner = profiles.for_model(d.model) if d.model else None
            if owner is not None and owner.name != d.device_type:
                raise RegistryError(
                    f"device {d.id!r}: model {d.model} is a {owner.name} ({owner.label}), "
                    f"not a {d.device_type}"
                )
        with self.db.engine.begin() as conn:
            existing = {
                r.id: r.device_type
                for r in conn.execute(
                    sa.select(devices.c.id, devices.c.device_type).where(
                        devices.c.id.in_([d.id for d in rows])
                    )
                )
            }
            for d in rows:
                if d.id in existing and existing[d.id] != d.device_type:
                    raise RegistryError(
                        f"device {d.id!r} is registered as {existing[d.id]}, not {d.device_type}"
                    )
            new = [
                {
                    "id": d.id,
                    "device_type": d.device_type,
                    "model": d.model,
                    "serial": d.serial,
                    "firmware": d.firmware,
                    "enabled": d.enabled,
                    "registered_at": now,
                }
                for d in rows
                if d.id not in existing
            ]
            if new:
                conn.execute(devices.insert(), new)
            for d in rows:
                if d.id in existing:
                    conn.execute(
                        devices.update()
                        .where(devices.c.id == d.id)
                        .values(
                            model=d.model, serial=d.serial, firmware=d.firmware, enabled=d.enabled
                        )
                    )
        return len(rows)

    def enrol(self, seen: Mapping[str, str], *, now: datetime | None = None) -> int:
        """Register the devices of `seen` (id → type) that are not registered yet; a
        registered one is left as it is (its type, and whether it is enabled). Returns
        how many were new."""
        if not seen:
            return 0
        now = now or datetime.now(UTC)
        rows = [
            {"id": d, "device_type": t, "enabled": True, "registered_at": now}
            for d, t in sorted(seen.items())  # one lock order for concurrent workers
        ]
        new = 0
        with self.db.engine.begin() as conn:
            stmt = (
                insert_for(conn, devices)
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(devices.c.id)
            )
            for i in range(0, len(rows), 1000):
                new += len(conn.execute(stmt, rows[i : i + 1000]).all())
        return new

    def get(self, device_id: str) -> Device:
        with self.db.engine.connect() as conn:
            row = conn.execute(sa.select(devices).where(devices.c.id == device_id)).first()
        if row is None:
            raise NotFound("device", device_id)
        return Device(**row._mapping)

    def types_of(self, device_ids: Sequence[str]) -> dict[str, str]:
        """Registered and enabled devices among `device_ids`, with their types."""
        out: dict[str, str] = {}
        ids = list(device_ids)
        with self.db.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                rows = conn.execute(
                    sa.select(devices.c.id, devices.c.device_type).where(
                        devices.c.id.in_(ids[i : i + 500]), devices.c.enabled
                    )
                )
                out.update({r[0]: r[1] for r in rows})
        return out

    def list(self, *, device_type: str | None = None, limit: int = 100) -> list[Device]:
        q = sa.select(devices).order_by(devices.c.id).limit(limit)
        if device_type:
            q = q.where(devices.c.device_type == device_type)
        with self.db.engine.connect() as conn:
            return [Device(**r._mapping) for r in conn.execute(q)]


class Enrolment:
    """Ingest's side of enrolment: registers the devices of each state flush it has not
    seen before, so a fleet costs one insert per new device, not one per flush."""

    def __init__(self, registry: DeviceRegistry, *, remember: int = 1_000_000) -> None:
        self.registry = registry
        self.remember = remember
        self._known: set[str] = set()

    def enrol(self, seen: Mapping[str, str]) -> int:
        fresh = {d: t for d, t in seen.items() if d not in self._known}
        if not fresh:
            return 0
        new = self.registry.enrol(fresh)
        if len(self._known) + len(fresh) > self.remember:
            self._known.clear()  # bounded: forgetting costs one no-op insert per device
        self._known.update(fresh)
        return new
