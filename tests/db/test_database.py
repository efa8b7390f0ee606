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


def test_ratings_from_before_the_callback_outcome_keep_their_verdict(db: Database) -> None:
    from datetime import UTC, datetime

    db.upgrade("0018")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with db.engine.begin() as conn:  # in that revision's own columns
        conn.execute(
            sa.text(
                "INSERT INTO devices (id, device_type, enabled, registered_at)"
                " VALUES ('ap-1', 'purifier', :yes, :now)"
            ),
            {"yes": True, "now": now},
        )
        for oid, rating, complaint in ((1, 5, False), (2, 2, True)):
            conn.execute(
                sa.text(
                    "INSERT INTO work_orders (id, device_id, device_type, problem_kind, origin,"
                    " state, version, title, description, priority, evidence_count, created_at,"
                    " updated_at) VALUES (:id, 'ap-1', 'purifier', 'inspection', 'ops', 'closed',"
                    " 1, 't', '', 1, 0, :now, :now)"
                ),
                {"id": oid, "now": now},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO callbacks (order_id, rating, comment, channel, at, complaint)"
                    " VALUES (:id, :rating, '', 'app', :now, :complaint)"
                ),
                {"id": oid, "rating": rating, "now": now, "complaint": complaint},
            )
    db.upgrade()
    with db.engine.connect() as conn:
        got = conn.execute(sa.text("SELECT order_id, outcome FROM callbacks ORDER BY 1")).all()
    assert [tuple(r) for r in got] == [(1, "satisfied"), (2, "not_satisfied")]
    db.downgrade("0018")
    db.upgrade()
