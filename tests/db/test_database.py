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


def test_a_customers_old_filter_package_flag_becomes_a_package_per_device(db: Database) -> None:
    from datetime import UTC, datetime

    db.upgrade("0022")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with db.engine.begin() as conn:  # in that revision's own columns
        run = lambda sql, **p: conn.execute(sa.text(sql), p)  # noqa: E731
        run("INSERT INTO outlets (id, name, timezone) VALUES ('o', 'O', 'UTC')")
        run("INSERT INTO territories (id, name, outlet_id) VALUES ('t', 'T', 'o')")
        for cid, flag in (("c-yes", True), ("c-no", False)):
            run(
                "INSERT INTO customers (id, name, tier, channel, timezone, language,"
                " filter_package) VALUES (:id, 'N', 'standard', 'app', 'UTC', 'en', :flag)",
                id=cid, flag=flag,
            )  # fmt: skip
        for did, kind, cid in (
            ("ap-1", "purifier", "c-yes"), ("wp-1", "water_purifier", "c-yes"),
            ("ap-2", "purifier", "c-no"),
        ):  # fmt: skip
            run(
                "INSERT INTO devices (id, device_type, enabled, registered_at)"
                " VALUES (:id, :kind, :yes, :now)",
                id=did, kind=kind, yes=True, now=now,
            )  # fmt: skip
            run(
                "INSERT INTO device_sites (device_id, customer_id, territory_id, address)"
                " VALUES (:id, :cid, 't', 'a')",
                id=did, cid=cid,
            )  # fmt: skip
    db.upgrade()
    with db.engine.connect() as conn:
        got = conn.execute(
            sa.text("SELECT device_id, plan_id, replacements, price_cents FROM packages ORDER BY 1")
        ).all()
        plans = conn.execute(sa.text("SELECT id, applies_to FROM package_plans ORDER BY 1")).all()
    assert [tuple(r) for r in got] == [
        ("ap-1", "legacy-purifier", None, 0),
        ("wp-1", "legacy-water_purifier", None, 0),
    ]
    assert [tuple(r) for r in plans] == [
        ("legacy-purifier", "type:purifier"),
        ("legacy-water_purifier", "type:water_purifier"),
    ]
    db.downgrade("0022")
    with db.engine.connect() as conn:
        flags = conn.execute(sa.text("SELECT id, filter_package FROM customers ORDER BY 1")).all()
    assert [(r[0], bool(r[1])) for r in flags] == [("c-no", False), ("c-yes", True)]
    db.upgrade()
