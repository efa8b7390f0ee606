"""The daily scoring pass: a few days of a fleet's telemetry in the store become wear
state and predictions (date, band, version) that the rules read; a second pass on the
same day adds nothing and a restart carries on from the saved state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.rules_replay import stored_readings
from db.database import Database
from db.tables import wear_states
from device_sim.fleet import Fleet, FleetSpec
from device_sim.imperfection import Imperfection
from fleet.predictions import Predictions
from fleetcare.registry_gen import generate
from models.evaluation.filter_life import SimRun
from models.filter_life import FilterLife
from models.scoring import FilterLifeScoring
from rules.outputs import FilterLifeOutputs
from service.registry import ServiceRegistry, parse_doc
from telemetry.backends import StoreSettings, create_store

START = datetime(2026, 2, 1, tzinfo=UTC)


async def test_scoring_writes_dated_predictions_and_remembers_where_it_stopped(
    db: Database, tmp_path: Path, trained: tuple[FilterLife, SimRun]
) -> None:
    db.upgrade()
    fleet = Fleet.create(
        FleetSpec(
            devices=20,
            seed=9,
            start=START.timestamp(),
            physics_dt=900,
            initial_wear=0.9,
            imperfection=Imperfection().always_online(),  # every device counted
        )
    )
    ServiceRegistry(db).load(parse_doc(generate(fleet)))
    async with create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts")) as store:
        t = START.timestamp()
        for _ in range(3 * 96):
            t += 900
            fleet.advance(t)
            await store.write(stored_readings(fleet, t))
        scoring = FilterLifeScoring(db, store, trained[0], "v-test")
        now = START + timedelta(days=3, hours=1)
        first = await scoring.run(now)
        assert first.devices == 20
        stages = {"purifier": 1, "water_purifier": 3, "air_conditioner": 1}
        expected = sum(stages[fleet.truth.devices[d].device_type] for d in fleet.ids)
        assert first.predictions == expected
        preds = Predictions(db).for_devices(fleet.ids)
        assert len(preds) == expected
        for p in preds:
            assert p.model_version == "v-test" and p.source == "filter_life"
            assert p.low is not None and p.high is not None and p.rated_at is not None
            assert p.low <= p.exhausted_at <= p.high
            assert p.consumed is not None and 0 <= p.consumed <= 1.5
        with db.engine.connect() as conn:
            saved = {r.device_id: r.scored_until for r in conn.execute(sa.select(wear_states))}
        assert set(saved) == set(fleet.ids)
        assert set(saved.values()) == {START + timedelta(days=3)}
        # the rules see days to exhaustion per stage
        outputs = FilterLifeOutputs(db).values(fleet.ids, now)
        assert all(
            ("filter_life", "days_to_exhaustion_main") in outputs[d]
            for d in fleet.groups["purifier"].ids
        )

        # the same day again: nothing new to fold in; a new scorer (a restart) agrees
        again = await FilterLifeScoring(db, store, trained[0], "v-test").run(now)
        assert again.days_folded == 0
        assert {
            (p.device_id, p.stage): p.exhausted_at for p in Predictions(db).for_devices(fleet.ids)
        } == {(p.device_id, p.stage): p.exhausted_at for p in preds}
