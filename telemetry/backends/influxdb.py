"""InfluxDB TelemetryStore over the v1 HTTP API (`/write` line protocol, `/query` InfluxQL).

InfluxDB 1.x serves it natively and 2.x/3.x serve it for compatibility, so this one
backend covers all three; influxdb-client is not used because its write API needs 1.8+
and CI can only run 1.6 (docs/architecture.md).
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from typing import Any, Self

import httpx
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
from telemetry.backends.settings import StoreSettings
from telemetry.errors import StoreQueryError, StoreRejected, StoreUnavailable
from telemetry.lineprotocol import (
    EVENT_MEASUREMENT,
    event_line,
    formatters,
    point_time_ns,
    reading_line,
)
from telemetry.metrics import DEVICE_TYPES
from telemetry.records import (
    Agg,
    Event,
    Latest,
    MetricValue,
    RangeQuery,
    Reading,
    SeriesFrame,
    WriteResult,
)


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _time_range(start: int | None, end: int | None) -> list[str]:
    out = []
    if start is not None:
        out.append(f"time >= {start}ms")
    if end is not None:
        out.append(f"time < {end}ms")
    return out


class InfluxStore:
    """TelemetryStore on InfluxDB's v1 HTTP API."""

    name = "influxdb"

    def __init__(self, settings: StoreSettings, types: Types | None = None) -> None:
        self.settings = settings
        self._client: httpx.AsyncClient | None = None
        self._ensured = False
        self.types: Types = dict(types if types is not None else DEVICE_TYPES)
        self._formatters = formatters(self.types)

    async def use_types(self, types: Types) -> None:
        """Know these device types from now on (fields need no schema in InfluxDB)."""
        self.types = dict(types)
        self._formatters = formatters(self.types)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _new_client(self) -> httpx.AsyncClient:
        s = self.settings
        headers = {}
        auth: httpx.BasicAuth | None = None
        if s.influx_token is not None:
            headers["Authorization"] = f"Token {s.influx_token.get_secret_value()}"
        elif s.influx_username:
            password = s.influx_password.get_secret_value() if s.influx_password else ""
            auth = httpx.BasicAuth(s.influx_username, password)
        return httpx.AsyncClient(
            base_url=s.influx_url.rstrip("/"),
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(s.influx_timeout_s, connect=min(5.0, s.influx_timeout_s)),
            limits=httpx.Limits(max_connections=4),
        )

    async def open(self) -> None:
        if self._client is None:
            self._client = self._new_client()
        await self._ensure()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            raise StoreUnavailable(self.name, "store is not open")
        return self._client

    async def _ensure(self) -> None:
        """Create the database and retention policy when missing (idempotent)."""
        s = self.settings
        if not s.influx_create:
            self._ensured = True
            return
        db = _ident(s.influx_database)
        await self._statement(f"CREATE DATABASE {db}", with_db=False)
        if s.influx_retention_policy != "autogen":
            result = await self._statement(f"SHOW RETENTION POLICIES ON {db}", with_db=False)
            names = {row[0] for series in result for row in series.get("values") or []}
            rp = _ident(s.influx_retention_policy)
            shard = f" SHARD DURATION {s.influx_shard_duration}" if s.influx_shard_duration else ""
            if s.influx_retention_policy not in names:
                await self._statement(
                    f"CREATE RETENTION POLICY {rp} ON {db} "
                    f"DURATION {s.influx_retention_duration} REPLICATION 1{shard}",
                    with_db=False,
                )
            elif shard:  # applies to shard groups created from now on
                await self._statement(f"ALTER RETENTION POLICY {rp} ON {db}{shard}", with_db=False)
        self._ensured = True

    async def ping(self) -> None:
        try:
            resp = await self._http().get("/ping")
        except httpx.HTTPError as exc:
            raise StoreUnavailable(self.name, f"{self.settings.influx_url}: {exc!r}") from exc
        if resp.status_code >= 300:
            raise StoreUnavailable(self.name, f"/ping answered {resp.status_code}")

    # -- writes ----------------------------------------------------------------------
    async def write(self, readings: Sequence[Reading], events: Sequence[Event] = ()) -> WriteResult:
        fmt = self._formatters
        try:
            lines = [reading_line(r, fmt) for r in readings]
        except KeyError as exc:  # a type or metric no profile it knows has
            raise StoreRejected(self.name, f"unknown device type or metric {exc}") from None
        lines.extend(event_line(e) for e in events)
        if not lines:
            return WriteResult(written=0)
        if not self._ensured:
            try:
                await self._ensure()
            except StoreQueryError as exc:
                raise StoreUnavailable(self.name, str(exc)) from exc
        step = self.settings.influx_batch_points
        for i in range(0, len(lines), step):
            await self._post_lines("\n".join(lines[i : i + step]).encode())
        return WriteResult(written=len(lines))

    async def forget(self, items: Sequence[Reading | Event]) -> None:
        """Delete the points `items` were written as (InfluxQL DELETE by tag and exact
        time: other points of the device and other devices stay). `StoreUnavailable` when
        the server cannot be reached; `StoreQueryError` when it refuses (e.g. an account
        without the right to delete)."""
        statements = []
        for item in items:
            measurement = EVENT_MEASUREMENT if isinstance(item, Event) else item.device_type
            statements.append(
                f'DELETE FROM {_ident(measurement)} WHERE "device_id" = '
                f"{_literal(item.device_id)} AND time = "
                f"{point_time_ns(item.ts, item.seq, item.boot)}"
            )
        for i in range(0, len(statements), 100):
            await self._statement("; ".join(statements[i : i + 100]))

    async def _post_lines(self, body: bytes) -> None:
        s = self.settings
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if s.influx_gzip:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        params = {"db": s.influx_database, "precision": "ns"}
        if s.influx_retention_policy:
            params["rp"] = s.influx_retention_policy
        try:
            resp = await self._http().post("/write", params=params, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(self.name, f"write to {s.influx_url}: {exc!r}") from exc
        if resp.status_code == 204:
            return
        text = resp.text[:500]
        if resp.status_code == 404 or "database not found" in text:
            self._ensured = False  # dropped under us: create again on the next try
            raise StoreUnavailable(self.name, f"database missing: {text}")
        if resp.status_code in (401, 403):
            raise StoreUnavailable(self.name, f"not authorised ({resp.status_code}): {text}")
        if 400 <= resp.status_code < 500 and resp.status_code not in (408, 429):
            raise StoreRejected(self.name, f"write refused ({resp.status_code}): {text}")
        raise StoreUnavailable(self.name, f"write answered {resp.status_code}: {text}")

    # -- reads -----------------------------------------------------------------------
    async def _statement(self, q: str, *, with_db: bool = True) -> list[dict[str, Any]]:
        """Run InfluxQL; return the series of every statement, flattened."""
        data = {"q": q}
        params = {"epoch": "ms", "chunked": "true", "chunk_size": "10000"}
        if with_db:
            params["db"] = self.settings.influx_database
            if self.settings.influx_retention_policy:
                params["rp"] = self.settings.influx_retention_policy
        try:
            resp = await self._http().post("/query", params=params, data=data)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(self.name, f"query {self.settings.influx_url}: {exc!r}") from exc
        if resp.status_code >= 500:
            raise StoreUnavailable(self.name, f"query answered {resp.status_code}")
        series: list[dict[str, Any]] = []
        for chunk in resp.content.splitlines():
            if not chunk.strip():
                continue
            doc = orjson.loads(chunk)
            if "error" in doc:
                raise StoreQueryError(self.name, f"{doc['error']} (query: {q[:200]})")
            for result in doc.get("results", []):
                if "error" in result:
                    raise StoreQueryError(self.name, f"{result['error']} (query: {q[:200]})")
                series.extend(result.get("series", []))
        if resp.status_code >= 400 and not series:
            raise StoreQueryError(
                self.name, f"query answered {resp.status_code}: {resp.text[:300]}"
            )
        return series

    def _from(self, types: Sequence[str]) -> str:
        rp = self.settings.influx_retention_policy
        prefix = f"{_ident(self.settings.influx_database)}.{_ident(rp)}." if rp else ""
        return ", ".join(prefix + _ident(t) for t in types)

    async def latest(self, device_ids: Sequence[str]) -> dict[str, Latest]:
        out: dict[str, Latest] = {}
        ids = list(device_ids)
        types = list(self.types)
        for i in range(0, len(ids), 200):
            cond = " OR ".join(f"device_id = {_literal(d)}" for d in ids[i : i + 200])
            q = (
                f"SELECT last(*) FROM {self._from(types)} WHERE {cond} GROUP BY device_id; "
                f"SELECT last(seq) FROM {self._from(types)} WHERE {cond} GROUP BY device_id"
            )
            series = await self._statement(q)
            values: dict[tuple[str, str], dict[str, Any]] = {}
            times: dict[tuple[str, str], int] = {}
            for s in series:
                key = (s["name"], s["tags"]["device_id"])
                row = dict(zip(s["columns"], s["values"][0], strict=True))
                if "last" in row:
                    times[key] = int(row["time"])
                else:
                    values[key] = row
            for (type_name, device_id), row in values.items():
                dt = device_row(self.types, type_name)
                metrics = {
                    col[5:]: v
                    for col, raw in row.items()
                    if col.startswith("last_")
                    and col[5:] in dt.by_name
                    and (v := convert(dt.by_name[col[5:]], raw)) is not None
                }
                ts = times.get((type_name, device_id), 0)
                if device_id not in out or out[device_id].ts < ts:
                    out[device_id] = Latest(device_id, type_name, ts, metrics)
        return out

    async def query(self, query: RangeQuery) -> SeriesFrame:
        rows = check_query(self.types, query)
        agg = query.aggregation.value
        cols = ", ".join(f"{agg}({_ident(m.name)}) AS {_ident(m.name)}" for m in rows)
        where = " AND ".join(
            [f"device_id = {_literal(query.device_id)}", *_time_range(query.start, query.end)]
        )
        q = (
            f"SELECT {cols} FROM {self._from([query.device_type])} WHERE {where} "
            f"GROUP BY time({query.every_ms}ms) fill(none)"
        )
        frame = self._frame(await self._statement(q), rows, aggregation=query.aggregation)
        return drop_empty(frame)

    def _frame(self, series: list[dict[str, Any]], rows: list[Any], **kw: Any) -> SeriesFrame:
        ts: list[int] = []
        columns: dict[str, list[MetricValue | None]] = {m.name: [] for m in rows}
        extra = kw.get("extra", ())
        for name in extra:
            columns[name] = []
        agg = kw.get("aggregation")
        for s in series:
            index = {c: i for i, c in enumerate(s["columns"])}
            for values in s.get("values") or []:
                ts.append(int(values[index["time"]]))
                for name in extra:
                    columns[name].append(values[index[name]] if name in index else None)
                for m in rows:
                    raw = values[index[m.name]] if m.name in index else None
                    columns[m.name].append(aggregate_value(m, agg, raw) if agg else convert(m, raw))
        return SeriesFrame(ts=ts, columns=columns)

    async def history(
        self,
        device_type: str,
        device_id: str,
        start: int,
        end: int,
        metrics: Sequence[str] | None = None,
    ) -> SeriesFrame:
        names = (
            metrics
            if metrics is not None
            else [m.name for m in device_row(self.types, device_type).metrics]
        )
        rows = check_metrics(self.types, device_type, names)
        cols = ", ".join(_ident(c) for c in ["boot", "seq", *(m.name for m in rows)])
        where = " AND ".join([f"device_id = {_literal(device_id)}", *_time_range(start, end)])
        q = f"SELECT {cols} FROM {self._from([device_type])} WHERE {where} ORDER BY time ASC"
        frame = self._frame(await self._statement(q), rows, extra=("boot", "seq"))
        # keep the column order of the embedded backend: boot, seq, then metrics
        ordered = {"boot": frame.columns["boot"], "seq": frame.columns["seq"]}
        ordered.update({m.name: frame.columns[m.name] for m in rows})
        return SeriesFrame(ts=frame.ts, columns=ordered)

    async def events(self, device_type: str, device_id: str, start: int, end: int) -> list[Event]:
        where = " AND ".join(
            [
                f"device_id = {_literal(device_id)}",
                f"device_type = {_literal(device_type)}",
                *_time_range(start, end),
            ]
        )
        q = (
            f'SELECT "boot", "seq", "name", "data" FROM {self._from([EVENT_MEASUREMENT])} '
            f"WHERE {where} ORDER BY time ASC"
        )
        out = []
        for s in await self._statement(q):
            for time, boot, seq, name, data in s.get("values") or []:
                out.append(
                    Event(
                        device_type,
                        device_id,
                        int(boot),
                        int(seq),
                        int(time),
                        name,
                        orjson.loads(data),
                    )
                )
        return out

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
        cols = ", ".join(
            f"count({_ident(m.name)}) AS {_ident('c_' + m.name)}, "
            f"mean({_ident(m.name)}) AS {_ident('a_' + m.name)}, "
            f"min({_ident(m.name)}) AS {_ident('n_' + m.name)}, "
            f"max({_ident(m.name)}) AS {_ident('x_' + m.name)}"
            for m in rows
        )
        clauses = _time_range(start, end)
        for metric, op, value in conditions:
            clauses.append(f"{_ident(metric)} {op} {value!r}")
        q = (
            f"SELECT {cols} FROM {self._from([device_type])} WHERE {' AND '.join(clauses)} "
            "GROUP BY device_id"
        )
        # InfluxDB indexes by time: one query for the type, then keep the devices asked for
        wanted = set(device_ids) if device_ids is not None else None
        out: dict[str, dict[str, Agg]] = {}
        for s in await self._statement(q):
            if wanted is not None and s["tags"]["device_id"] not in wanted:
                continue
            row = dict(zip(s["columns"], s["values"][0], strict=True))
            out[s["tags"]["device_id"]] = {
                m.name: Agg(
                    int(row.get("c_" + m.name) or 0),
                    row.get("a_" + m.name),
                    row.get("n_" + m.name),
                    row.get("x_" + m.name),
                )
                for m in rows
            }
        return out

    async def recent_events(self, device_type: str, start: int, end: int) -> list[Event]:
        check_metrics(self.types, device_type, [])
        where = " AND ".join([f"device_type = {_literal(device_type)}", *_time_range(start, end)])
        q = (
            f'SELECT "device_id", "boot", "seq", "name", "data" '
            f"FROM {self._from([EVENT_MEASUREMENT])} WHERE {where} ORDER BY time ASC"
        )
        out = []
        for s in await self._statement(q):
            index = {c: i for i, c in enumerate(s["columns"])}
            for values in s.get("values") or []:
                out.append(
                    Event(
                        device_type,
                        str(values[index["device_id"]]),
                        int(values[index["boot"]]),
                        int(values[index["seq"]]),
                        int(values[index["time"]]),
                        values[index["name"]],
                        orjson.loads(values[index["data"]]),
                    )
                )
        return out

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
        clauses = _time_range(start, end)
        if device_id is not None:
            clauses.insert(0, f"device_id = {_literal(device_id)}")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        series = await self._statement(f"SELECT count(seq) FROM {self._from(types)}{where}")
        return sum(int(s["values"][0][1]) for s in series if s.get("values"))
