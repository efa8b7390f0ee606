"""Embedded TelemetryStore: one SQLite file, a wide table per device type.

A row per message (not per metric) keeps writes ahead of the MQTT client; the primary key
`(device_id, boot, seq)` makes writes idempotent; "latest values" seeks the
`(device_id, ts)` index backwards instead of scanning history. WAL lets several ingest
processes share the file. Why SQLite and not DuckDB: docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self, TypeVar

import orjson

from telemetry.backends.common import (
    Types,
    aggregate_value,
    check_metrics,
    check_numeric,
    check_query,
    check_where,
    convert,
    device_row,
    drop_empty,
)
from telemetry.errors import StoreQueryError, StoreRejected, StoreUnavailable
from telemetry.metrics import DEVICE_TYPES, MetricKind
from telemetry.records import (
    Agg,
    Aggregation,
    Event,
    Latest,
    MetricValue,
    RangeQuery,
    Reading,
    SeriesFrame,
    WriteResult,
)

T = TypeVar("T")
_SQL_TYPE = {
    MetricKind.FLOAT: "REAL",
    MetricKind.INT: "INTEGER",
    MetricKind.BOOL: "INTEGER",
    MetricKind.ENUM: "TEXT",
}
_AGG_SQL = {Aggregation.MEAN: "avg", Aggregation.MIN: "min", Aggregation.MAX: "max"}


def _key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row[:3]


def _table(type_name: str) -> str:
    return f"r_{type_name}"


class EmbeddedStore:
    """SQLite-backed TelemetryStore; all SQLite work runs on one private thread."""

    name = "embedded"

    def __init__(
        self, path: str, *, durable: bool = True, cache_mb: int = 16, types: Types | None = None
    ) -> None:
        self.path = path
        self.durable = durable
        self.cache_mb = cache_mb
        self.types: Types = dict(types if types is not None else DEVICE_TYPES)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._insert_sql: dict[str, str] = {}
        self._columns: dict[str, tuple[str, ...]] = {}

    # -- lifecycle -------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        await self._run(self._open_sync)

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._run(self._close_sync)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StoreUnavailable(self.name, "store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def _open_sync(self) -> None:
        if self._conn is not None:
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
            conn.execute("PRAGMA busy_timeout=30000")
            # inserts over many devices touch index pages all over the file: a 2 MB default
            # cache re-reads them constantly (docs/benchmarks.md)
            conn.execute(f"PRAGMA cache_size=-{self.cache_mb * 1024}")
            self._migrate(conn)
        except sqlite3.Error as exc:
            raise StoreUnavailable(self.name, f"cannot open {self.path}: {exc}") from exc
        self._conn = conn

    async def use_types(self, types: Types) -> None:
        """Know these device types from now on: a new type gets its table, a new metric
        its column (rows stored before keep their values, the new column empty)."""
        self.types = dict(types)
        if self._conn is not None:
            await self._run(self._migrate, self._conn)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Create tables and add columns for metrics that rows added to the table since."""
        conn.execute("BEGIN IMMEDIATE")
        for dt in self.types.values():
            table = _table(dt.name)
            conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{table}" (device_id TEXT NOT NULL, '
                "boot INTEGER NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, "
                "PRIMARY KEY (device_id, boot, seq)) WITHOUT ROWID"
            )
            conn.execute(f'CREATE INDEX IF NOT EXISTS "{table}_ts" ON "{table}" (device_id, ts)')
            have = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
            for m in dt.metrics:
                if m.name not in have:
                    conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{m.name}" {_SQL_TYPE[m.kind]}')
            self._columns[dt.name] = tuple(m.name for m in dt.metrics)
            cols = ["device_id", "boot", "seq", "ts", *(m.name for m in dt.metrics)]
            self._insert_sql[dt.name] = (
                f'INSERT OR IGNORE INTO "{table}" ({", ".join(cols)}) '
                f"VALUES ({', '.join('?' * len(cols))})"
            )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS events (device_id TEXT NOT NULL, boot INTEGER NOT NULL, "
            "seq INTEGER NOT NULL, ts INTEGER NOT NULL, device_type TEXT NOT NULL, "
            "name TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (device_id, boot, seq)) "
            "WITHOUT ROWID"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS events_ts ON events (device_id, ts)")
        conn.execute("COMMIT")

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable(self.name, "store is not open")
        return self._conn

    async def ping(self) -> None:
        await self._run(lambda: self._db().execute("SELECT 1").fetchone())

    # -- writes ----------------------------------------------------------------------
    async def write(self, readings: Sequence[Reading], events: Sequence[Event] = ()) -> WriteResult:
        if not readings and not events:
            return WriteResult(written=0, duplicates=0)
        return await self._run(self._write_sync, readings, events)

    def _write_sync(self, readings: Sequence[Reading], events: Sequence[Event]) -> WriteResult:
        conn = self._db()
        by_type: dict[str, list[tuple[Any, ...]]] = {}
        for r in readings:
            names = self._columns.get(r.device_type)
            if names is None:
                raise StoreRejected(self.name, f"no table for device type {r.device_type!r}")
            m = r.metrics
            by_type.setdefault(r.device_type, []).append(
                (r.device_id, r.boot, r.seq, r.ts, *[m.get(x) for x in names])
            )
        written = 0
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for type_name, rows in by_type.items():
                    rows.sort(key=_key)  # key order: neighbouring inserts share index pages
                    cur = conn.executemany(self._insert_sql[type_name], rows)
                    written += cur.rowcount
                if events:
                    cur = conn.executemany(
                        "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                e.device_id,
                                e.boot,
                                e.seq,
                                e.ts,
                                e.device_type,
                                e.name,
                                orjson.dumps(dict(e.data)).decode(),
                            )
                            for e in events
                        ],
                    )
                    written += cur.rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            # locked beyond busy_timeout, disk full, I/O error: keep the batch and retry
            raise StoreUnavailable(self.name, f"write failed: {exc}") from exc
        total = len(readings) + len(events)
        return WriteResult(written=written, duplicates=total - written)

    # -- reads -----------------------------------------------------------------------
    async def latest(self, device_ids: Sequence[str]) -> dict[str, Latest]:
        return await self._run(self._latest_sync, list(device_ids))

    def _latest_sync(self, device_ids: list[str]) -> dict[str, Latest]:
        """Seek the (device_id, ts) index backwards: the newest row per device, then, for
        a metric that row lacks, the newest row that has it. No table to keep up to date
        on the write path."""
        conn = self._db()
        out: dict[str, Latest] = {}
        for device_id in device_ids:
            best: tuple[int, str, dict[str, MetricValue]] | None = None
            for dt in self.types.values():
                table, names = _table(dt.name), self._columns[dt.name]
                row = conn.execute(
                    f'SELECT ts, {", ".join(names)} FROM "{table}" WHERE device_id = ? '
                    "ORDER BY ts DESC, boot DESC, seq DESC LIMIT 1",
                    (device_id,),
                ).fetchone()
                if row is None or (best is not None and best[0] >= row[0]):
                    continue
                values: dict[str, MetricValue] = {}
                for m, newest in zip(dt.metrics, row[1:], strict=True):
                    value = newest
                    if value is None:
                        value = self._last_non_null(conn, table, m.name, device_id)
                    if (v := convert(m, value)) is not None:
                        values[m.name] = v
                best = (row[0], dt.name, values)
            if best is not None:
                out[device_id] = Latest(device_id, best[1], best[0], best[2])
        return out

    @staticmethod
    def _last_non_null(conn: sqlite3.Connection, table: str, name: str, device_id: str) -> Any:
        row = conn.execute(
            f'SELECT "{name}" FROM "{table}" WHERE device_id = ? AND "{name}" IS NOT NULL '
            "ORDER BY ts DESC, boot DESC, seq DESC LIMIT 1",
            (device_id,),
        ).fetchone()
        return row[0] if row else None

    async def query(self, query: RangeQuery) -> SeriesFrame:
        rows = check_query(self.types, query)
        return await self._run(self._query_sync, query, [m.name for m in rows])

    def _query_sync(self, q: RangeQuery, names: list[str]) -> SeriesFrame:
        conn = self._db()
        table = _table(q.device_type)
        where = "device_id = ? AND ts >= ? AND ts < ?"
        params = (q.device_id, q.start, q.end)
        dt = device_row(self.types, q.device_type)
        buckets: dict[int, dict[str, Any]] = {}
        try:
            if q.aggregation is Aggregation.LAST:
                for name in names:
                    sql = (
                        f"SELECT b, v FROM (SELECT (ts / {q.every_ms}) * {q.every_ms} AS b, "
                        f'"{name}" AS v, '
                        f"row_number() OVER (PARTITION BY ts / {q.every_ms} "
                        "ORDER BY ts DESC, boot DESC, seq DESC) AS rn "
                        f'FROM "{table}" WHERE {where} AND "{name}" IS NOT NULL) WHERE rn = 1'
                    )
                    for b, v in conn.execute(sql, params):
                        buckets.setdefault(b, {})[name] = v
            else:
                fn = _AGG_SQL[q.aggregation]
                cols = ", ".join(f'{fn}("{n}")' for n in names)
                sql = (
                    f'SELECT (ts / {q.every_ms}) * {q.every_ms} AS b, {cols} FROM "{table}" '
                    f"WHERE {where} GROUP BY b"
                )
                for b, *values in conn.execute(sql, params):
                    buckets[b] = dict(zip(names, values, strict=True))
        except sqlite3.Error as exc:
            raise StoreQueryError(self.name, str(exc)) from exc
        ts = sorted(buckets)
        frame = SeriesFrame(
            ts=ts,
            columns={
                n: [aggregate_value(dt.by_name[n], q.aggregation, buckets[b].get(n)) for b in ts]
                for n in names
            },
        )
        return drop_empty(frame)

    async def history(
        self,
        device_type: str,
        device_id: str,
        start: int,
        end: int,
        metrics: Sequence[str] | None = None,
    ) -> SeriesFrame:
        rows = check_metrics(
            self.types,
            device_type,
            metrics
            if metrics is not None
            else [m.name for m in device_row(self.types, device_type).metrics],
        )
        return await self._run(self._history_sync, device_type, device_id, start, end, rows)

    def _history_sync(
        self, type_name: str, device_id: str, start: int, end: int, rows: list[Any]
    ) -> SeriesFrame:
        cols = ", ".join(f'"{m.name}"' for m in rows)
        sql = (
            f'SELECT ts, boot, seq{", " + cols if cols else ""} FROM "{_table(type_name)}" '
            "WHERE device_id = ? AND ts >= ? AND ts < ? ORDER BY ts, boot, seq"
        )
        ts: list[int] = []
        columns: dict[str, list[MetricValue | None]] = {"boot": [], "seq": []}
        columns.update({m.name: [] for m in rows})
        for t, boot, seq, *values in self._db().execute(sql, (device_id, start, end)):
            ts.append(t)
            columns["boot"].append(boot)
            columns["seq"].append(seq)
            for m, v in zip(rows, values, strict=True):
                columns[m.name].append(convert(m, v))
        return SeriesFrame(ts=ts, columns=columns)

    async def events(self, device_type: str, device_id: str, start: int, end: int) -> list[Event]:
        def run() -> list[Event]:
            sql = (
                "SELECT device_type, device_id, boot, seq, ts, name, data FROM events "
                "WHERE device_id = ? AND device_type = ? AND ts >= ? AND ts < ? "
                "ORDER BY ts, boot, seq"
            )
            return [
                Event(t, d, b, s, ts, n, orjson.loads(data))
                for t, d, b, s, ts, n, data in self._db().execute(
                    sql, (device_id, device_type, start, end)
                )
            ]

        return await self._run(run)

    async def aggregate(
        self,
        device_type: str,
        start: int,
        end: int,
        metrics: Sequence[str],
        device_ids: Sequence[str] | None = None,
        where: Sequence[tuple[str, str, float]] | None = None,
    ) -> dict[str, dict[str, Agg]]:
        rows = check_numeric(self.types, device_type, metrics)
        if not rows:
            return {}
        conditions = check_where(self.types, device_type, where)

        def run() -> dict[str, dict[str, Agg]]:
            cols = ", ".join(
                f'count("{m.name}"), avg("{m.name}"), min("{m.name}"), max("{m.name}")'
                for m in rows
            )
            sql = f'SELECT device_id, {cols} FROM "{_table(device_type)}" WHERE ts >= ? AND ts < ?'
            for metric, op, value in conditions:
                sql += f' AND "{metric}" {op} {value!r}'
            # naming the devices lets SQLite seek its (device_id, ts) index per device
            # instead of scanning the whole table for the time range
            chunks: list[list[str] | None] = (
                [list(device_ids[i : i + 5000]) for i in range(0, len(device_ids), 5000)]
                if device_ids is not None
                else [None]
            )
            out: dict[str, dict[str, Agg]] = {}
            for chunk in chunks:
                q = sql
                params: list[object] = [start, end]
                if chunk is not None:
                    q += f" AND device_id IN ({', '.join('?' * len(chunk))})"
                    params += chunk
                for device_id, *values in self._db().execute(q + " GROUP BY device_id", params):
                    out[device_id] = {
                        m.name: Agg(int(values[4 * i]), *values[4 * i + 1 : 4 * i + 4])
                        for i, m in enumerate(rows)
                    }
            return out

        return await self._run(run)

    async def recent_events(self, device_type: str, start: int, end: int) -> list[Event]:
        check_metrics(self.types, device_type, [])

        def run() -> list[Event]:
            sql = (
                "SELECT device_type, device_id, boot, seq, ts, name, data FROM events "
                "WHERE device_type = ? AND ts >= ? AND ts < ? ORDER BY ts, boot, seq"
            )
            return [
                Event(t, d, b, s, ts, n, orjson.loads(data))
                for t, d, b, s, ts, n, data in self._db().execute(sql, (device_type, start, end))
            ]

        return await self._run(run)

    async def count(
        self,
        *,
        device_type: str | None = None,
        device_id: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> int:
        types = [device_type] if device_type else list(self.types)
        for t in types:
            device_row(self.types, t)
        clauses, params = [], []
        for clause, value in (("device_id = ?", device_id), ("ts >= ?", start), ("ts < ?", end)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""

        def run() -> int:
            conn = self._db()
            return sum(
                conn.execute(f'SELECT count(*) FROM "{_table(t)}"{where}', params).fetchone()[0]
                for t in types
            )

        return await self._run(run)
