"""The day's stats read from the store equal those reduced from the same readings in
memory: the scoring pass and the evaluation harness see the same thing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from device_sim.fleet import Fleet, FleetSpec
from models.daily import DayReducer, from_store
from models.evaluation.filter_life import numeric
from telemetry.backends import StoreSettings, create_store
from telemetry.records import Reading

START = datetime(2026, 3, 1, tzinfo=UTC).timestamp()


async def test_store_and_memory_reduce_a_day_alike(tmp_path: Path) -> None:
    fleet = Fleet.create(FleetSpec(devices=30, seed=5, start=START, physics_dt=900))
    reducers = {t: DayReducer(t, g.ids) for t, g in fleet.groups.items()}
    async with create_store(StoreSettings(backend="embedded"), str(tmp_path)) as store:
        for tick in range(96):
            t = START + (tick + 1) * 900
            fleet.advance(t)
            ts = int(t * 1000)
            readings = fleet.readings()
            await store.write(
                [
                    Reading(dt, d, boot, seq, ts, {k: v for k, v in m.items() if v is not None})
                    for _, dt, d, m, boot, seq in readings
                ]
            )
            # in memory: the same readings as columns, blank for a unit whose reading did
            # not arrive (a gap, a unit not installed yet)
            for device_type, group in fleet.groups.items():
                got = {d: m for _, dt, d, m, _, _ in readings if dt == device_type}
                names = {k for m in got.values() for k in m}
                cols = {
                    k: np.array([got.get(d, {}).get(k) for d in group.ids], dtype=object)
                    for k in names
                }
                reducers[device_type].add(ts, numeric(cols))
        for device_type, reducer in reducers.items():
            mem = reducer.stats()
            stored = await from_store(
                store,
                device_type,
                fleet.groups[device_type].ids,
                int(START * 1000),
                int((START + 86400) * 1000) + 1,
            )
            assert set(mem.columns) == set(stored.columns), device_type
            for key, values in mem.columns.items():
                np.testing.assert_allclose(
                    stored.columns[key], values, rtol=1e-9, equal_nan=True, err_msg=key
                )
            np.testing.assert_array_equal(stored.seen(), mem.seen())
            assert mem.seen().any(), device_type
