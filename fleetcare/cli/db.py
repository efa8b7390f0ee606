"""`fleetcare db …`: the relational database's schema."""

from __future__ import annotations

from typing import Annotated

import typer

from fleetcare.cli.common import console, settings

app = typer.Typer()
database = typer.Typer(
    help="The relational database (SQLite by default, PostgreSQL by URL).", no_args_is_help=True
)
app.add_typer(database, name="db")


@database.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or upgrade the schema (Alembic migrations)."""
    from db.database import Database

    s = settings()
    db = Database.from_settings(s.db, s.data_dir)
    before = db.current()
    db.upgrade(revision)
    console.print(f"database {db.safe_url}: {before or 'empty'} -> {db.current()}")


@database.command("current")
def db_current() -> None:
    """Show the schema revision and whether it is up to date."""
    from db.database import Database

    s = settings()
    db = Database.from_settings(s.db, s.data_dir)
    current, head = db.current(), db.head()
    state = "up to date" if current == head else "behind: run `fleetcare db upgrade`"
    console.print(f"{db.safe_url}: revision {current or 'none'} (code: {head}) {state}")
