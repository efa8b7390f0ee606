"""Migrations run on SQLite and PostgreSQL; repositories behave the same on both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from workorders.db import Database
from workorders.dead_letters import DeadLetterRepository, NewDeadLetter
from workorders.device_state import DeviceStateRepository, StateUpdate
from workorders.errors import NotMigrated, RegistryError
from workorders.registry import Device, DeviceRegistry


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


def test_the_same_bad_message_twice_is_one_dead_letter_counted_twice(db: Database) -> None:
    db.upgrade()
    repo = DeadLetterRepository(db)
    now = datetime.now(UTC)
    bad = NewDeadLetter("fleetcare/v1/purifier/p-1/telemetry", b"nope", "not_json", "x", now)
    repo.record([bad, bad])
    repo.record([bad])
    [letter] = repo.list()
    assert letter.count == 3 and letter.payload == b"nope"
    repo.resolve([letter.id], "replayed")
    assert repo.list() == []
    repo.record([bad])  # seen again after a replay: pending again
    assert repo.list()[0].count == 4


def test_device_state_merges_metrics_and_goes_offline_after_silence(db: Database) -> None:
    db.upgrade()
    repo = DeviceStateRepository(db)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    repo.apply(
        [
            StateUpdate(
                "p-1",
                "purifier",
                t0,
                messages=2,
                last_seen_ts=2000,
                boot=1,
                seq=2,
                latest_ts=2000,
                metrics={"pm25": 5.0, "fan_rpm": 800},
            )
        ]
    )
    repo.apply(
        [
            StateUpdate(
                "p-1",
                "purifier",
                t0,
                messages=1,
                last_seen_ts=1000,
                boot=1,
                seq=1,
                latest_ts=1000,
                metrics={"pm25": 99.0, "humidity_pct": 40.0},
            )
        ]
    )
    st = repo.get("p-1")
    assert st.online and st.messages_total == 3 and st.last_seen_ts == 2000
    assert st.latest_metrics == {"pm25": 5.0, "fan_rpm": 800, "humidity_pct": 40.0}
    assert repo.mark_silent(datetime.now(UTC) - timedelta(minutes=15)) == 1
    st = repo.get("p-1")
    assert not st.online and st.online_source == "silence"


def test_the_registry_refuses_to_change_a_device_type(db: Database) -> None:
    db.upgrade()
    reg = DeviceRegistry(db)
    reg.register([Device("p-1", "purifier", model="AP-300")])
    reg.register([Device("p-1", "purifier", model="AP-400")])
    assert reg.get("p-1").model == "AP-400"
    with pytest.raises(RegistryError, match="registered as purifier"):
        reg.register([Device("p-1", "air_conditioner")])
