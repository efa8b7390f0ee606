"""The simulator drives the engine through a real broker; counts match ground truth."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from device_sim.fleet import Fleet, FleetSpec
from device_sim.runner import RunOptions, run
from fleetcare.brokers import MosquittoProcess
from telemetry.store import TelemetryStore
from tests.ingest.helpers import settings_for, wait_until
from tests.ingest.test_ingest_e2e import running_worker


async def stored_exactly(store: TelemetryStore, n: int) -> None:
    """Wait until the store holds n readings, then check it holds no more."""

    async def enough() -> bool:
        return await store.count() >= n

    await wait_until(enough, 30, f"{n} readings stored")
    assert await store.count() == n


@pytest.mark.serial  # the simulated clock is read against the wall clock
async def test_an_accelerated_fleet_lands_in_the_store_exactly_as_published(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    s = settings_for(tmp_path, mosquitto.port)
    fleet = Fleet.create(FleetSpec(devices=40, seed=11, start=time.time() - 30 * 86400))
    async with running_worker(s) as w:
        stats = await asyncio.to_thread(
            run, fleet, s.mqtt, RunOptions(speed=20 * 3600, report_interval_s=900, duration_s=3)
        )
        assert stats.sent > 1000
        assert stats.acknowledged == stats.sent == fleet.truth.published

        await stored_exactly(w.store, stats.sent)
        device = fleet.ids[0]
        latest = (await w.store.latest([device]))[device]
        assert 0 <= latest.metrics["filter_life_pct"] <= 100
        assert latest.metrics["filter_used_hours"] > 0
    # simulated time ran ~20 hours per wall second from a month ago, never into the future
    assert fleet.t <= time.time()
    assert fleet.t - fleet.spec.start > 40 * 3600


@pytest.mark.serial  # the simulated clock is read against the wall clock
async def test_a_warm_up_publishes_its_history_at_once_then_the_clock_runs_at_speed(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    """`fast_until`: three simulated days published at once, then ×3600
    (an hour a second) from there, never racing on to the present."""
    s = settings_for(tmp_path, mosquitto.port)
    start = time.time() - 30 * 86400
    fleet = Fleet.create(FleetSpec(devices=20, seed=13, start=start))
    warm = start + 3 * 86400
    options = RunOptions(speed=3600, report_interval_s=900, duration_s=4, fast_until=warm)
    async with running_worker(s) as w:
        stats = await asyncio.to_thread(run, fleet, s.mqtt, options)
        await stored_exactly(w.store, stats.sent)
    assert stats.reports >= 3 * 96  # the warm-up's three days, in a 4-second run
    # then about an hour a second: well past the warm-up, nowhere near a backfill's "now"
    assert warm + 3600 <= fleet.t <= warm + 4 * 3600 + 900
    with pytest.raises(ValueError, match="accelerated"):
        RunOptions(mode="backfill", fast_until=warm)


async def test_chaos_is_recorded_in_ground_truth_and_ingest_matches_it_exactly(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    """Duplicates stored once, late messages stored, every malformed one a dead letter with
    the reason its kind implies: ingest checked against what the simulator says it did."""
    from device_sim.runner import Chaos
    from ingest.dead_letters import DeadLetterRepository

    s = settings_for(tmp_path, mosquitto.port)
    fleet = Fleet.create(FleetSpec(devices=30, seed=12, start=time.time() - 10 * 86400))
    chaos = Chaos(duplicate=0.05, out_of_order=0.05, malformed=0.05)
    async with running_worker(s) as w:
        stats = await asyncio.to_thread(
            run,
            fleet,
            s.mqtt,
            RunOptions(speed=20 * 3600, report_interval_s=900, duration_s=3, chaos=chaos),
        )
        assert stats.duplicates > 10 and stats.out_of_order > 10
        assert sum(stats.malformed.values()) > 10
        assert set(stats.malformed) == {"not_json", "out_of_range", "device_mismatch", "non_finite"}

        async def all_processed() -> bool:
            # devices' status messages are acknowledged too, so the acknowledged count can
            # reach this sum while the last readings are still on their way: wait for the
            # store as well (the equalities below stay exact)
            return (
                w.metrics.acked._value.get()
                >= (stats.sent + stats.duplicates + sum(stats.malformed.values()))
                and await w.store.count() >= stats.sent
            )

        await wait_until(all_processed, 30, "every message processed")
        assert await w.store.count() == stats.sent == fleet.truth.published
        letters = DeadLetterRepository(w.db).list(limit=10_000)
    by_reason: dict[str, int] = {}
    for d in letters:
        by_reason[d.reason] = by_reason.get(d.reason, 0) + d.count
    assert by_reason == stats.malformed
    assert fleet.truth.malformed == stats.malformed


async def test_a_filter_replaced_command_resets_the_simulated_device(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    """The service loop closes on the device: the engine's cmd resets wear."""
    import threading

    from tests.ingest.helpers import publish

    fleet = Fleet.create(
        FleetSpec(
            devices=4,
            seed=13,
            start=time.time() - 200 * 86400,
            smoker_share=1.0,
            mix={"purifier": 1.0},
        )
    )
    stop = threading.Event()
    s = settings_for(tmp_path, mosquitto.port)
    runner = threading.Thread(
        target=run,
        args=(fleet, s.mqtt, RunOptions(speed=30 * 86400, report_interval_s=3600), stop),
        daemon=True,
    )
    runner.start()
    target = fleet.ids[0]
    purifiers = fleet.groups["purifier"].model
    try:

        async def exhausted() -> bool:
            return bool(fleet.truth.devices[target].exhaustions)

        async def replaced() -> bool:
            return bool(fleet.truth.devices[target].replacements)

        await wait_until(exhausted, 20, "the filter exhausted by a smoky month")
        publish(
            mosquitto.port,
            [
                (
                    f"fleetcare/v1/purifier/{target}/cmd",
                    b'{"v":1,"cmd":"filter_replaced","args":{"stage":"main"}}',
                )
            ],
        )
        await wait_until(replaced, 10, "the command applied")
    finally:
        stop.set()
        runner.join(30)
    [replaced] = fleet.truth.devices[target].replacements
    assert replaced.stage == "main"
    assert purifiers.used_hours[0] < purifiers.used_hours[1]  # wear starts again from zero


async def test_devices_that_lose_their_connection_buffer_and_replay_in_order(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    """Outages: status goes offline, readings wait on the device (the oldest dropped when
    its buffer is full) and arrive in order afterwards. Everything sent is stored; what
    the truth says was dropped or is still held never arrives."""
    from device_sim.runner import Connectivity
    from device_sim.truth import GroundTruth

    s = settings_for(tmp_path, mosquitto.port)
    fleet = Fleet.create(FleetSpec(devices=20, seed=14, start=time.time() - 20 * 86400))
    conn = Connectivity(outages_per_day=3, outage_hours=4, buffer=8, clock_skew_s=5)
    async with running_worker(s) as w:
        stats = await asyncio.to_thread(
            run,
            fleet,
            s.mqtt,
            RunOptions(speed=20 * 3600, report_interval_s=900, duration_s=3, connectivity=conn),
        )
        assert stats.outages > 5 and stats.dropped > 0

        await stored_exactly(w.store, stats.sent)
        # every reading a unit took was sent, dropped from its buffer, still held, or lost
        # in a telemetry gap (the fleet's imperfection: never sent at all)
        assert stats.taken > stats.reports * 15 and stats.unsent > 0
        assert stats.sent + stats.dropped + stats.still_buffered + stats.unsent == stats.taken
        # per device: whatever was not dropped from its buffer arrived, once
        back = [
            d
            for d, t in fleet.truth.devices.items()
            if t.outages and t.outages[-1][1] <= fleet.t - 1800 and t.installed_at is None
        ]
        assert back
        for device_id in back[:5]:
            truth = fleet.truth.devices[device_id]
            stored = await w.store.count(device_id=device_id)
            assert stored + truth.dropped + truth.unsent == stats.reports, device_id
    path = tmp_path / "truth.jsonl"
    fleet.truth.save(path)
    loaded = GroundTruth.load(path)
    assert loaded.dropped == stats.dropped
    assert any(d.clock_skew_ms != 0 for d in loaded.devices.values())


async def test_faulty_devices_still_speak_the_contract(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    """Faults change readings, never their validity: all stored, no dead letters."""
    from ingest.dead_letters import DeadLetterRepository

    s = settings_for(tmp_path, mosquitto.port)
    fleet = Fleet.create(
        FleetSpec(
            devices=45,
            seed=15,
            start=time.time() - 40 * 86400,
            faults_per_device_year=12,
            fault_window_days=20,
        )
    )
    assert sum(1 for t in fleet.truth.devices.values() if t.faults) > 20  # ~2/3 of 45
    async with running_worker(s) as w:
        stats = await asyncio.to_thread(
            run, fleet, s.mqtt, RunOptions(speed=30 * 86400, report_interval_s=3600, duration_s=2)
        )

        await stored_exactly(w.store, stats.sent)
        assert DeadLetterRepository(w.db).list() == []
        # air conditioners' error codes arrive as events, each stored once
        stored_events = 0
        for device_id, truth in fleet.truth.devices.items():
            if truth.device_type == "air_conditioner":
                found = await w.store.events("air_conditioner", device_id, 0, 2**62)
                assert [e.data["code"] for e in found] == [c for c, _ in truth.error_codes]
                stored_events += len(found)
        assert stored_events == stats.events == fleet.truth.events
