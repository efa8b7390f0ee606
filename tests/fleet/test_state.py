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


def test_a_fleets_worth_of_updates_is_merged_in_chunks_with_each_devices_updates_in_order(
    db: Database,
) -> None:
    """More devices than one merge statement takes, each with two updates given out of
    device order: every device ends with both counted and its later values."""
    from fleet.state import STATE_CHUNK

    db.upgrade()
    repo = DeviceStateRepository(db)
    now = datetime.now(UTC)
    n = STATE_CHUNK + STATE_CHUNK // 2 + 1

    def update(i: int, seq: int, metrics: dict[str, float]) -> StateUpdate:
        ts = 1000 * seq
        return StateUpdate(
            f"p-{i:05d}", "purifier", now, 1, ts, 1, seq, latest_ts=ts, metrics=metrics
        )

    first = [update(i, 1, {"pm25": 1.0, "fan_rpm": 500}) for i in range(n)]
    second = [update(i, 2, {"pm25": 2.0}) for i in range(n)]
    repo.apply([u for pair in zip(reversed(first), reversed(second), strict=True) for u in pair])
    for device_id in (
        "p-00000",
        f"p-{STATE_CHUNK - 1:05d}",
        f"p-{STATE_CHUNK:05d}",
        f"p-{n - 1:05d}",
    ):
        st = repo.get(device_id)
        assert st.messages_total == 2 and st.seq == 2 and st.last_seen_ts == 2000
        assert st.latest_metrics == {"pm25": 2.0, "fan_rpm": 500}
    assert len(repo.list(limit=n + 1)) == n
