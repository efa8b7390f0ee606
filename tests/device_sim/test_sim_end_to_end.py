"""The simulator drives the engine through a real broker; counts match ground truth."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from device_sim.fleet import Fleet, FleetSpec
from device_sim.runner import RunOptions, run
from fleetcare.brokers import MosquittoProcess
from tests.ingest.helpers import settings_for, wait_until
from tests.ingest.test_ingest_e2e import running_worker


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

        async def stored_all() -> bool:
            return await w.store.count() >= stats.sent

        await wait_until(stored_all, 30, "all simulated readings stored")
        assert await w.store.count() == stats.sent
        device = fleet.ids[0]
        latest = (await w.store.latest([device]))[device]
        assert 0 <= latest.metrics["filter_life_pct"] <= 100
        assert latest.metrics["filter_used_hours"] > 0
    # simulated time ran ~20 hours per wall second from a month ago, never into the future
    assert fleet.t <= time.time()
    assert fleet.t - fleet.spec.start > 40 * 3600
