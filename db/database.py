"""Database engine, settings and migrations (`fleetcare db upgrade`)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.errors import DatabaseUnavailable, NotMigrated
from db.pgreader import PgReader

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")


class DatabaseSettings(BaseModel):
    """The relational database: SQLite by default, PostgreSQL by URL."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db; "
        "default sqlite:///{data_dir}/fleetcare.sqlite3",
    )
    auto_migrate: bool = Field(
        True, description="Upgrade the schema when a process starts (off: a migrations job does)."
    )
    pool_size: int = Field(5, ge=1)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # let SQLAlchemy's "begin" event below emit BEGIN IMMEDIATE: a deferred transaction that
    # reads and then writes fails at once with SQLITE_BUSY when another process wrote between
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Database:
    """Owns the engine; repositories take it."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        self.pool_size = pool_size
        self._reader: sa.Engine | None = None
        # async engines belong to the event loop that made them (a test may run several)
        self._async_readers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncEngine] = (
            weakref.WeakKeyDictionary()
        )
        self._pg_readers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PgReader] = (
            weakref.WeakKeyDictionary()
        )
        # statement -> its SQL for psycopg and the values SQLAlchemy bound at build time
        self._pg_sql: dict[int, tuple[sa.Select[Any], str | None, dict[str, Any]]] = {}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(url, connect_args={"timeout": 30})
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            sa.event.listen(
                self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE")
            )
        else:
            self.engine = sa.create_engine(
                url, pool_size=pool_size, pool_pre_ping=True, pool_recycle=1800
            )

    @classmethod
    def from_settings(cls, settings: DatabaseSettings, data_dir: str) -> Database:
        url = settings.url or f"sqlite:///{Path(data_dir) / 'fleetcare.sqlite3'}"
        return cls(url, pool_size=settings.pool_size)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()
        if self._reader is not None:
            self._reader.dispose()
            self._reader = None

    @property
    def reader(self) -> sa.Engine:
        """An engine for reads that are one statement: no transaction (so no BEGIN and
        ROLLBACK round trips, and on SQLite no write lock), and no ping before each use.
        What the API reads on every request goes through `read`, which retries once when
        a pooled connection turns out dead (after a database restart)."""
        if self._reader is None:
            if self.url.startswith("sqlite"):
                if ":memory:" in self.url:
                    return self.engine
                self._reader = sa.create_engine(
                    self.url, connect_args={"timeout": 30}, isolation_level="AUTOCOMMIT"
                )
                sa.event.listen(self._reader, "connect", _sqlite_pragmas)
            else:
                self._reader = sa.create_engine(
                    self.url,
                    pool_size=self.pool_size,
                    pool_recycle=1800,
                    isolation_level="AUTOCOMMIT",
                )
        return self._reader

    def read(self, fn: Callable[[sa.Connection], T]) -> T:
        """`fn(conn)` on a reader connection; once more on a fresh one if the first was
        dead (SQLAlchemy then drops the pool's other connections from before the break)."""
        for attempt in (1, 2):
            try:
                with self.reader.connect() as conn:
                    return fn(conn)
            except sa.exc.DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    async def aread(self, fn: Callable[[sa.Connection], T]) -> T:
        """`read` without a thread: the driver's async mode runs `fn` on this event loop
        (SQLAlchemy's asyncio bridge), so the API's hottest reads don't queue for the
        thread pool or hand the GIL back and forth."""
        engine = self._async_reader()
        for attempt in (1, 2):
            try:
                async with engine.connect() as conn:
                    return await conn.run_sync(fn)
            except sa.exc.DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    async def aone(self, statement: sa.Select[Any], params: Mapping[str, Any]) -> Any:
        """The first row of a one-statement read, or None; for the API's hottest route.
        On PostgreSQL it runs on psycopg directly (`db.pgreader`: prepared, no
        SQLAlchemy on the way, so values as the driver gives them); elsewhere, and for a
        statement with expanding parameters, through `aread`. Pass statements built once
        and kept (their SQL is remembered by identity)."""
        if self.dialect == "postgresql":
            kept = self._pg_sql.get(id(statement))
            if kept is None or kept[0] is not statement:
                compiled = statement.compile(dialect=self._async_reader().dialect)
                sql = None if "POSTCOMPILE" in compiled.string else compiled.string
                kept = self._pg_sql[id(statement)] = (statement, sql, dict(compiled.params))
            _, sql, defaults = kept
            if sql is not None:
                return await self._pg_reader().one(sql, {**defaults, **params})
        return await self.aread(lambda conn: conn.execute(statement, params).first())

    def _pg_reader(self) -> PgReader:
        loop = asyncio.get_running_loop()
        reader = self._pg_readers.get(loop)
        if reader is None:
            url = sa.engine.make_url(self.url).set(drivername="postgresql")
            reader = PgReader(url.render_as_string(hide_password=False), self.pool_size)
            self._pg_readers[loop] = reader
        return reader

    def _async_reader(self) -> AsyncEngine:
        loop = asyncio.get_running_loop()
        engine = self._async_readers.get(loop)
        if engine is None:
            url = sa.engine.make_url(self.url)
            if url.get_backend_name() == "sqlite":
                engine = create_async_engine(
                    url.set(drivername="sqlite+aiosqlite"),
                    connect_args={"timeout": 30},
                    isolation_level="AUTOCOMMIT",
                )
                sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            else:
                engine = create_async_engine(
                    url.set(drivername="postgresql+psycopg"),
                    pool_size=self.pool_size,
                    max_overflow=0,  # a burst waits for a connection rather than opening one
                    pool_recycle=1800,
                    isolation_level="AUTOCOMMIT",
                )
            self._async_readers[loop] = engine
        return engine

    async def aclose(self) -> None:
        """Close this event loop's async connections (when an app shuts down)."""
        loop = asyncio.get_running_loop()
        engine = self._async_readers.pop(loop, None)
        if engine is not None:
            await engine.dispose()
        reader = self._pg_readers.pop(loop, None)
        if reader is not None:
            await reader.close()

    # -- migrations ------------------------------------------------------------------
    def _alembic(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["engine"] = self.engine
        return cfg

    def head(self) -> str:
        head = ScriptDirectory.from_config(self._alembic()).get_current_head()
        assert head is not None
        return head

    def current(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        except sa.exc.OperationalError as exc:
            raise DatabaseUnavailable(f"{self.safe_url}: {exc.orig}") from exc

    def upgrade(self, revision: str = "head") -> None:
        try:
            command.upgrade(self._alembic(), revision)
        except sa.exc.OperationalError as exc:
            raise DatabaseUnavailable(f"{self.safe_url}: {exc.orig}") from exc

    def downgrade(self, revision: str) -> None:
        command.downgrade(self._alembic(), revision)

    def check(self) -> None:
        """Raise NotMigrated unless the schema is at the code's head."""
        current, head = self.current(), self.head()
        if current != head:
            raise NotMigrated(self.safe_url, current, head)

    def prepare(self, auto_migrate: bool) -> None:
        if auto_migrate:
            self.upgrade()
        else:
            self.check()
