"""One-row reads on psycopg directly, for the API's hottest route (device health): a
statement SQLAlchemy compiled once, prepared on the server, run on a small pool of
autocommit connections. Without SQLAlchemy's asyncio bridge and pool on the way the
route's API CPU went from 0.60 to 0.29 ms a request (docs/architecture.md); everything
else reads through `Database.aread`.

Values come back as psycopg gives them (JSON parsed, timestamps aware), without
SQLAlchemy's result processing: use it for statements whose columns need none."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
import psycopg
from psycopg.rows import namedtuple_row
from psycopg.types.json import set_json_loads

from db.errors import DatabaseUnavailable


class PgReader:
    """At most `size` connections, opened when first needed and kept; a connection found
    dead (the server restarted) is dropped and the read runs once more on a new one."""

    def __init__(self, conninfo: str, size: int) -> None:
        self._conninfo = conninfo
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, row_factory=namedtuple_row
        )
        set_json_loads(orjson.loads, conn)
        return conn

    async def one(self, sql: str, params: Mapping[str, Any]) -> Any:
        """The first row of `sql` (psycopg's `%(name)s` placeholders), or None. A server
        that cannot be reached raises `DatabaseUnavailable` (the API answers 503)."""
        try:
            return await self._one(sql, params)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"database: {str(exc).splitlines()[0]}") from exc

    async def _one(self, sql: str, params: Mapping[str, Any]) -> Any:
        async with self._slots:
            for attempt in (1, 2):
                conn = self._idle.pop() if self._idle else await self._connect()
                try:
                    cur = await conn.execute(sql, params, prepare=True)
                    row = await cur.fetchone()
                except psycopg.OperationalError:
                    await conn.close()
                    if attempt == 2:
                        raise
                    continue
                except BaseException:
                    await conn.close()  # e.g. cancelled mid-query: its state is unknown
                    raise
                self._idle.append(conn)
                return row
        raise AssertionError("unreachable")

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()
