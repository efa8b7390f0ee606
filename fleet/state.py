"""Device state: latest values, last seen, online/offline, firmware, boot.

Updated once per ingest batch (not per message). Online comes from the retained status
topic (Last Will), from any message arriving, and goes offline after a silence.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from db.database import Database
from db.errors import NotFound
from db.tables import device_state
from db.upsert import insert_for
from telemetry.records import Reading


@dataclass(slots=True)
class StateUpdate:
    """What one batch learned about one device."""

    device_id: str
    device_type: str
    received_at: datetime
    messages: int = 0
    last_seen_ts: int | None = None  # newest device time among the messages
    boot: int | None = None
    seq: int | None = None
    latest_ts: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # newest value per metric
    online: bool | None = None  # from a status message; None = not said
    status_ts: int | None = None
    firmware: str | None = None

    @classmethod
    def of_reading(cls, reading: Reading, received_at: datetime) -> StateUpdate:
        """What one stored reading tells: the state ingest leaves behind (replays,
        simulations and tests that write the store directly use it)."""
        return cls(
            reading.device_id,
            reading.device_type,
            received_at=received_at,
            messages=1,
            last_seen_ts=reading.ts,
            boot=reading.boot,
            seq=reading.seq,
            latest_ts=reading.ts,
            metrics=dict(reading.metrics),
            online=True,
        )


@dataclass(frozen=True, slots=True)
class DeviceState:
    device_id: str
    device_type: str
    online: bool
    online_source: str
    online_changed_at: datetime
    last_seen_ts: int | None
    last_received_at: datetime | None
    boot: int | None
    seq: int | None
    firmware: str | None
    latest_ts: int | None
    latest_metrics: Mapping[str, Any]
    messages_total: int


_COLUMNS = [c.name for c in device_state.columns if c.name != "device_id"]


def _merge(old: dict[str, Any] | None, u: StateUpdate) -> dict[str, Any]:
    row: dict[str, Any] = (
        dict(old)
        if old
        else {
            "device_id": u.device_id,
            "device_type": u.device_type,
            "online": False,
            "online_source": "telemetry",
            "online_changed_at": u.received_at,
            "last_seen_ts": None,
            "last_received_at": None,
            "boot": None,
            "seq": None,
            "firmware": None,
            "latest_ts": None,
            "latest_metrics": {},
            "messages_total": 0,
        }
    )
    row["device_type"] = u.device_type
    if u.messages:
        row["messages_total"] += u.messages
        row["last_received_at"] = u.received_at
        if u.last_seen_ts is not None and (
            row["last_seen_ts"] is None or u.last_seen_ts >= row["last_seen_ts"]
        ):
            row["last_seen_ts"], row["boot"], row["seq"] = u.last_seen_ts, u.boot, u.seq
        if u.latest_ts is not None:
            newer = row["latest_ts"] is None or u.latest_ts >= row["latest_ts"]
            merged = dict(row["latest_metrics"] or {})
            if newer:
                merged.update(u.metrics)
                row["latest_ts"] = u.latest_ts
            else:  # a late arrival only fills metrics we have never seen
                merged.update({k: v for k, v in u.metrics.items() if k not in merged})
            row["latest_metrics"] = merged
    online, source = row["online"], row["online_source"]
    if u.online is not None:
        online, source = u.online, "status"
        if u.online:
            row["last_received_at"] = u.received_at
    elif u.messages:
        online, source = True, "telemetry"  # a device that talks is connected
    if online != row["online"]:
        row["online_changed_at"] = u.received_at
    row["online"], row["online_source"] = online, source
    if u.firmware:
        row["firmware"] = u.firmware
    if u.boot is not None and u.online and row["boot"] is None:
        row["boot"] = u.boot
    return row


def _json_patch(dialect: str) -> Any:
    """`a` with `b`'s keys laid over it, in SQL."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return lambda a, b: sa.cast(sa.cast(a, JSONB).op("||")(sa.cast(b, JSONB)), sa.JSON)
    return sa.func.json_patch


STATE_CHUNK = 2000  # devices per merge statement


def _device_of(u: StateUpdate) -> str:
    return u.device_id


class DeviceStateRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        # the merge statement per SQL dialect, built once: building it (a dozen CASE
        # expressions) cost more than running it for a batch of a few dozen devices
        self._merge: dict[str, Any] = {}

    def apply(self, updates: Sequence[StateUpdate], conn: sa.Connection | None = None) -> None:
        """Merge a batch's updates into the stored state (in `conn`'s transaction if given)."""
        if not updates:
            return
        if conn is None:
            with self.db.engine.begin() as c:
                self._apply(updates, c)
        else:
            self._apply(updates, conn)

    def _apply(self, updates: Sequence[StateUpdate], conn: sa.Connection) -> None:
        # Fold the updates of each device into one delta row in Python, then merge the
        # deltas into the stored rows in SQL: one upsert, no SELECT, safe with several
        # writers (each merge is a single statement per row). In device order (one lock
        # order: PostgreSQL deadlocks otherwise), a few thousand devices per statement:
        # a whole fleet's rows and their bound parameters at once cost a worker 30 MB.
        stmt = self._merge.get(conn.dialect.name)
        if stmt is None:
            stmt = self._merge[conn.dialect.name] = _merge_statement(conn)
        ordered = sorted(updates, key=_device_of)  # stable: a device's updates keep order
        start = 0
        while start < len(ordered):
            end = min(start + STATE_CHUNK, len(ordered))
            while end < len(ordered) and ordered[end].device_id == ordered[end - 1].device_id:
                end += 1
            deltas: dict[str, dict[str, Any]] = {}
            for u in ordered[start:end]:
                deltas[u.device_id] = _merge(deltas.get(u.device_id), u)
            conn.execute(stmt, list(deltas.values()))
            start = end

    def mark_silent(self, silent_since: datetime, now: datetime | None = None) -> int:
        """Devices online but unheard since `silent_since` go offline; returns how many."""
        now = now or datetime.now(UTC)
        with self.db.engine.begin() as conn:
            result = conn.execute(
                device_state.update()
                .where(device_state.c.online, device_state.c.last_received_at < silent_since)
                .values(online=False, online_source="silence", online_changed_at=now)
            )
            return int(result.rowcount or 0)

    def get(self, device_id: str) -> DeviceState:
        with self.db.engine.connect() as conn:
            row = conn.execute(
                sa.select(device_state).where(device_state.c.device_id == device_id)
            ).first()
        if row is None:
            raise NotFound("device state", device_id)
        return DeviceState(**row._mapping)

    def list(self, *, online: bool | None = None, limit: int = 100) -> list[DeviceState]:
        q = sa.select(device_state).order_by(device_state.c.device_id).limit(limit)
        if online is not None:
            q = q.where(device_state.c.online == online)
        with self.db.engine.connect() as conn:
            return [DeviceState(**r._mapping) for r in conn.execute(q)]

    def every(self, batch: int = 5000) -> Iterator[DeviceState]:
        """Every device's state, in id order, read in batches (100k devices is fine)."""
        after = ""
        while True:
            q = (
                sa.select(device_state)
                .where(device_state.c.device_id > after)
                .order_by(device_state.c.device_id)
                .limit(batch)
            )
            with self.db.engine.connect() as conn:
                rows = [DeviceState(**r._mapping) for r in conn.execute(q)]
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1].device_id

    def firmware_of(self, device_ids: Sequence[str]) -> dict[str, str]:
        """The firmware each of these devices last said it runs (those that said one)."""
        out: dict[str, str] = {}
        ids = list(device_ids)
        with self.db.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                rows = conn.execute(
                    sa.select(device_state.c.device_id, device_state.c.firmware).where(
                        device_state.c.device_id.in_(ids[i : i + 500]),
                        device_state.c.firmware.is_not(None),
                    )
                )
                out.update({r[0]: r[1] for r in rows})
        return out

    def counts(self) -> dict[str, int]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(device_state.c.online, sa.func.count()).group_by(device_state.c.online)
            ).all()
        out = {"online": 0, "offline": 0}
        for online, n in rows:
            out["online" if online else "offline"] = int(n)
        return out


def _merge_statement(conn: sa.Connection) -> Any:
    """The upsert that merges a batch's delta rows into `device_state`."""
    stmt = insert_for(conn, device_state)
    t, ex = device_state.c, stmt.excluded
    newer_values = sa.or_(t.latest_ts.is_(None), ex.latest_ts >= t.latest_ts)
    newer_seen = sa.and_(
        ex.last_seen_ts.is_not(None),
        sa.or_(t.last_seen_ts.is_(None), ex.last_seen_ts >= t.last_seen_ts),
    )
    patch = _json_patch(conn.dialect.name)
    return stmt.on_conflict_do_update(
        index_elements=["device_id"],
        set_={
            "device_type": ex.device_type,
            "messages_total": t.messages_total + ex.messages_total,
            "last_received_at": sa.func.coalesce(ex.last_received_at, t.last_received_at),
            "last_seen_ts": sa.case((newer_seen, ex.last_seen_ts), else_=t.last_seen_ts),
            "boot": sa.case((newer_seen, ex.boot), else_=t.boot),
            "seq": sa.case((newer_seen, ex.seq), else_=t.seq),
            "latest_ts": sa.case(
                (sa.and_(ex.latest_ts.is_not(None), newer_values), ex.latest_ts),
                else_=t.latest_ts,
            ),
            # newer readings overwrite; a late arrival only fills metrics never seen
            "latest_metrics": sa.case(
                (newer_values, patch(t.latest_metrics, ex.latest_metrics)),
                else_=patch(ex.latest_metrics, t.latest_metrics),
            ),
            "online": ex.online,
            "online_source": ex.online_source,
            "online_changed_at": sa.case(
                (t.online != ex.online, ex.online_changed_at), else_=t.online_changed_at
            ),
            "firmware": sa.func.coalesce(ex.firmware, t.firmware),
        },
    )
