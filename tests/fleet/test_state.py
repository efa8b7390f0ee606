"""Device state: merged per device, offline after silence (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from db.database import Database
from fleet.state import DeviceStateRepository, StateUpdate


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
