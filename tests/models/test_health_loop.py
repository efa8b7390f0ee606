"""The health model in the engine: the scoring pass judges each device against its own
baselines and stores the scores; the rules open a job from a diagnosis; the technician's
verdict becomes a label; verdicts move the next model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from bench.rules_replay import stored_readings
from db.database import Database
from db.tables import service_labels
from device_sim.fleet import Fleet, FleetSpec
from device_sim.imperfection import Imperfection
from fleet.state import DeviceStateRepository, StateUpdate
from fleetcare.registry_gen import generate
from models.evaluation.faults import FaultRun, replay
from models.evaluation.filter_life import SimRun
from models.filter_life import FilterLife
from models.health import FieldLabels, HealthModel
from models.scoring import FilterLifeScoring, load_health_labels
from models.verdicts import NONE
from rules.catalog import load_catalog
from rules.evaluator import Evaluator
from rules.outputs import ScoreOutputs, engine_outputs
from service.orders import WorkOrders
from service.registry import ServiceRegistry, parse_doc
from telemetry.backends import StoreSettings, create_store

START = datetime(2026, 3, 1, tzinfo=UTC)
DAY = 86400.0


async def test_a_fault_only_the_model_sees_is_scored_opens_a_job_and_its_verdict_is_kept(
    db: Database, tmp_path: Path, trained: tuple[FilterLife, SimRun], health_trained: HealthModel
) -> None:
    db.upgrade()
    t0 = START.timestamp()
    fleet = Fleet.create(
        FleetSpec(
            devices=30,
            seed=9,
            start=t0,
            physics_dt=900,
            # the loop's wiring, with the clean fleet the session's models learned from
            imperfection=Imperfection.clean(),
        )
    )
    faulty = fleet.groups["water_purifier"].ids[0]
    fleet.inject(faulty, "sensor_dropout", t0 + 9 * DAY)  # no threshold rule reads this
    ServiceRegistry(db).load(parse_doc(generate(fleet)))
    async with create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts")) as store:

        async def run_to(day: float) -> None:
            while fleet.t < t0 + day * DAY:
                fleet.advance(fleet.t + 900)
                batch = stored_readings(fleet, fleet.t)
                await store.write(batch)
            # what ingest keeps per device: the evaluator judges the devices it has seen
            seen = datetime.fromtimestamp(fleet.t, UTC)
            DeviceStateRepository(db).apply([StateUpdate.of_reading(r, seen) for r in batch])

        await run_to(13)
        scoring = FilterLifeScoring(
            db, store, trained[0], "v-test", health=health_trained, health_version="h-test"
        )
        now = START + timedelta(days=13, hours=1)
        report = await scoring.run(now)
        assert report.scores == 30  # every device has a baseline after 13 days
        outputs = ScoreOutputs(db).values(fleet.ids, now)
        assert outputs[faulty][("anomaly", "sensor_dropout")] >= 1.0
        # families whose physics the health model judges are left to it
        assert report.general_devices == 0
        assert not any(m == "general" for row in outputs.values() for m, _ in row)
        others = [d for d in fleet.ids if d != faulty]
        assert sum(outputs[d][("anomaly", "score")] >= 1.0 for d in others) <= 1
        with db.engine.connect() as conn:
            (version,) = conn.execute(
                sa.text("select distinct model_version from model_scores where model = 'anomaly'")
            ).scalars()
        assert version == "h-test"

        # the built-in rule for the diagnosis proposes a job
        evaluator = Evaluator(
            db=db, store=store, catalog=load_catalog(), outputs=engine_outputs(db)
        )
        await evaluator.run_pass(now)
        (order,) = [o for o in WorkOrders(db).find(limit=1000) if o.device_id == faulty]
        assert order.problem_kind == "sensor_fault" and order.origin == "auto"

        # the technician confirms it; the next pass keeps the verdict with the deviations
        with db.engine.begin() as conn:
            conn.execute(
                service_labels.insert().values(
                    order_id=order.id,
                    device_id=faulty,
                    device_type="water_purifier",
                    problem_kind=order.problem_kind,
                    outcome="fixed",
                    confirmed_fault="sensor_dropout",
                    at=now + timedelta(hours=2),
                )
            )
        await run_to(14)
        await scoring.run(now + timedelta(days=1))
        await scoring.run(now + timedelta(days=1))  # once only
        labels = load_health_labels(db)
        assert list(labels) == ["water_purifier"]
        assert list(labels["water_purifier"].kinds) == ["sensor_dropout"]
        assert np.isfinite(labels["water_purifier"].deviations).any()

        # repaired, with a new filter: the baseline starts again, and the old verdict goes
        fleet.repair([faulty], "sensor_dropout")
        fleet.replace_filters([faulty], "sediment")
        await run_to(15)
        await scoring.run(now + timedelta(days=2))
        after = ScoreOutputs(db).values(fleet.ids, now + timedelta(days=2))
        judged = {d for d, row in after.items() if any(m == "anomaly" for m, _ in row)}
        assert faulty not in judged
        assert len(judged) == 29  # the others still judged


def test_no_fault_found_verdicts_teach_the_next_model_to_dismiss_a_pattern(
    health_training: FaultRun, health_trained: HealthModel, health_held_out: FaultRun
) -> None:
    """Technicians kept finding nothing behind the pump diagnoses: with those verdicts
    the next model stops naming the pattern; without them it goes on."""
    device_type, kind = "water_purifier", "pump_failure"
    scored = replay(health_trained, health_held_out)
    history = health_held_out.history[device_type]
    rows = []
    for d in range(len(history)):
        hit = np.flatnonzero(scored[device_type][1][d] == kind)
        rows += [(d, i) for i in hit]
    assert len(rows) >= 10
    # the deviations the model judged on those days, replayed as the scoring pass keeps them
    from models.wear import WearState

    state = WearState(device_type, health_held_out.device_ids[device_type])
    z_by_day = [health_trained.score(device_type, state, h).z for h in history]
    verdicts = FieldLabels(
        np.array([z_by_day[d][i] for d, i in rows]), np.full(len(rows), NONE, dtype=object)
    )
    relearned = HealthModel().fit(
        health_training.history, labels={device_type: verdicts}, label_weight=20
    )
    assert relearned.label_rows == {device_type: len(rows)}
    again = replay(relearned, health_held_out)[device_type][1]
    still = sum(again[d][i] == kind for d, i in rows)
    assert still < 0.2 * len(rows), (still, len(rows))
