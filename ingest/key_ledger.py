"""Which copy of a message key is the stored one, when ingest workers share a subscription.

The broker hands each message to one worker of the group, so a repeat (a device's resend,
a redelivery after a crash) can reach a worker that never saw the original. A store keyed
by message (the embedded one) stores it once anyway; a store keyed by time (InfluxDB)
stores a repeat with another device time as a second point, and a worker cannot tell a
repeat with the same time from a new message. So every worker claims its batch's keys
here while it writes the batch: a key someone claimed before is a duplicate, and where
that claim has another device time the worker's own point is forgotten once its write is
done. Every copy is written, so a crash between the claim and the write loses nothing:
the redelivered message is written then, and counted as the duplicate of its own claim.

Rows live for `horizon_s`: a repeat older than that is caught only by the store's key.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from db.database import Database
from db.errors import DatabaseUnavailable
from db.tables import ingest_keys
from telemetry.records import Event, Reading

Item = Reading | Event
Key = tuple[str, int, int]
_CHUNK = 1000  # rows per statement: 5 parameters each, under SQLite's limit of 32,766


@dataclass
class Settled:
    """What claiming a stored batch's keys found."""

    won: list[Item] = field(default_factory=list)  # claimed now, by this call
    repeats: list[Item] = field(default_factory=list)  # claimed before with the same time
    extra: list[Item] = field(default_factory=list)  # claimed before with another time

    @property
    def duplicates(self) -> list[Item]:
        return [*self.repeats, *self.extra]


@contextmanager
def _transaction(db: Database, what: str) -> Iterator[sa.Connection]:
    try:
        with db.engine.begin() as conn:
            yield conn
    except sa.exc.OperationalError as exc:
        raise DatabaseUnavailable(f"{what}: {exc.orig}") from exc


class KeyLedger:
    def __init__(self, db: Database, horizon_s: float) -> None:
        self.db = db
        self.horizon_s = horizon_s

    def claim(self, items: Sequence[Item], now: float) -> Settled:
        """Claim each item's key for its device time, in one transaction. Rows go in key
        order, so two workers claiming overlapping keys wait for each other instead of
        deadlocking."""
        settled = Settled()
        if not items:
            return settled
        by_key = {(i.device_id, i.boot, i.seq): i for i in items}
        keys = sorted(by_key)
        with _transaction(self.db, "claiming message keys") as conn:
            won = _insert_new(conn, [(*k, by_key[k].ts, now) for k in keys])
            settled.won = [by_key[k] for k in keys if k in won]
            held = [k for k in keys if k not in won]
            for device_id, boot, seq, ts in _held(conn, held):
                item = by_key[(device_id, boot, seq)]
                (settled.repeats if ts == item.ts else settled.extra).append(item)
        return settled

    def release(self, items: Sequence[Item]) -> None:
        """Give back keys claimed for messages that were not stored after all (the store
        refused them): a later copy is then a new message, not a duplicate."""
        c = ingest_keys.c
        with _transaction(self.db, "releasing message keys") as conn:
            for i in items:
                conn.execute(
                    sa.delete(ingest_keys).where(
                        c.device_id == i.device_id,
                        c.boot == i.boot,
                        c.seq == i.seq,
                        c.ts == i.ts,
                    )
                )

    def prune(self, now: float) -> int:
        """Drop claims older than the horizon; the number dropped."""
        with _transaction(self.db, "pruning message keys") as conn:
            result = conn.execute(
                sa.delete(ingest_keys).where(ingest_keys.c.claimed_at < now - self.horizon_s)
            )
        return int(result.rowcount or 0)


# Statements on the driver's own cursor: SQLAlchemy compiling a 2,000-row VALUES clause
# took longer than the store's write of the batch, and fetching its rows one by one a
# third of what was left. PostgreSQL takes the rows as arrays (planning a 1,000-key IN
# list took over half a second); SQLite as a VALUES list of `{values}`.
_COLUMNS = "ingest_keys (device_id, boot, seq, ts, claimed_at)"
_RETURNING = "ON CONFLICT DO NOTHING RETURNING device_id, boot, seq"
_INSERT = (
    f"INSERT INTO {_COLUMNS} SELECT * FROM unnest(%(a)s::text[], %(b)s::bigint[], "
    f"%(c)s::bigint[], %(d)s::bigint[], %(e)s::float8[]) {_RETURNING}",
    f"INSERT INTO {_COLUMNS} VALUES {{values}} {_RETURNING}",
)
_HELD = (
    "SELECT q.device_id, q.boot, q.seq, k.ts FROM unnest(%(a)s::text[], %(b)s::bigint[], "
    "%(c)s::bigint[]) AS q(device_id, boot, seq) JOIN ingest_keys k ON "
    "k.device_id = q.device_id AND k.boot = q.boot AND k.seq = q.seq",
    "SELECT device_id, boot, seq, ts FROM ingest_keys "
    "WHERE (device_id, boot, seq) IN (VALUES {values})",
)


def _held(conn: sa.Connection, keys: list[Key]) -> list[tuple[Any, ...]]:
    """(device_id, boot, seq, ts): the device time each of `keys` was claimed with."""
    return _run(conn, _HELD, keys)


def _insert_new(conn: sa.Connection, rows: list[tuple[str, int, int, int, float]]) -> set[Key]:
    """Insert the rows whose key is new; the keys inserted."""
    return {(r[0], r[1], r[2]) for r in _run(conn, _INSERT, rows)}


def _run(
    conn: sa.Connection, statements: tuple[str, str], rows: Sequence[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """Run the dialect's statement over `rows` in the transaction of `conn`; its rows."""
    if not rows:
        return []
    postgres, sqlite = statements
    cursor = conn.connection.cursor()
    out: list[tuple[Any, ...]] = []
    try:
        if conn.dialect.name == "postgresql":
            columns = [list(c) for c in zip(*rows, strict=True)]
            cursor.execute(postgres, dict(zip("abcde", columns, strict=False)))
            out.extend(map(tuple, cursor.fetchall()))
            return out
        width = len(rows[0])
        for n in range(0, len(rows), _CHUNK):
            part = rows[n : n + _CHUNK]
            values = ",".join([f"({','.join('?' * width)})"] * len(part))
            cursor.execute(sqlite.format(values=values), [v for row in part for v in row])
            out.extend(map(tuple, cursor.fetchall()))
    finally:
        cursor.close()
    return out
