"""Migrations run on SQLite and PostgreSQL, up and down."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from db.database import Database
from db.errors import NotMigrated


def test_a_new_database_is_not_migrated_until_upgraded(db: Database) -> None:
    with pytest.raises(NotMigrated, match="fleetcare db upgrade"):
        db.check()
    db.upgrade()
    db.check()
    assert set(sa.inspect(db.engine).get_table_names()) >= {
        "devices",
        "device_state",
        "dead_letters",
    }
    db.downgrade("base")
    assert "devices" not in sa.inspect(db.engine).get_table_names()
