"""Alembic environment: the engine comes from `Database`, never from a URL in a file.

On SQLite, altering a table rebuilds it (copy, drop, rename), which foreign keys from
other tables' rows would refuse: they are off while the migration runs, and checked
once it is done."""

from __future__ import annotations

from typing import Any

from alembic import context

from db.tables import metadata

engine = context.config.attributes["engine"]


def _pragma(connection: Any, sql: str) -> None:
    # on the driver's connection, in autocommit: SQLite ignores it inside a transaction,
    # and the engine begins one (BEGIN IMMEDIATE) before any statement it runs
    connection.connection.driver_connection.execute(sql)


with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _pragma(connection, "PRAGMA foreign_keys=OFF")
    try:
        with connection.begin():
            context.configure(
                connection=connection, target_metadata=metadata, render_as_batch=sqlite
            )
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration left rows without their parent: {broken}")
    finally:
        if sqlite:
            _pragma(connection, "PRAGMA foreign_keys=ON")
