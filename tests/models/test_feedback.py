"""The feedback loop: a filter a technician replaced, with the state it was found in,
becomes a label the scoring pass stores with the filter's wear features, and the next
training learns from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from bench.rules_replay import stored_readings
from db.database import Database
from db.tables import filter_labels, filter_replacements
from device_sim.fleet import Fleet, FleetSpec
from fleetcare.registry_gen import generate
from models.evaluation.filter_life import SimRun
from models.filter_life import FilterLife, Snapshots
from models.scoring import FilterLifeScoring, load_labels
from models.wear import FEATURES
from service.registry import ServiceRegistry, parse_doc
from telemetry.backends import StoreSettings, create_store

START = datetime(2026, 3, 1, tzinfo=UTC)
KEY = ("purifier", "main")


def test_labels_from_the_field_move_the_next_model(trained: tuple[FilterLife, SimRun]) -> None:
    _, run = trained
    snap = run.snapshots[KEY]
    # filters the model (and the simulator) call a third used, found nearly spent
    fresh = np.flatnonzero((snap.consumed > 0.25) & (snap.consumed < 0.35))[::50][:40]
    rows = [
        (
            {
                **{
                    n: float(snap.X[i, j])
                    for j, n in enumerate(
                        ["current_ratio", "dose_g", "used_hours", "dose_per_hour"]
                    )
                },
                "usage": float(snap.usage[i]),
                "rate": float(snap.rate[i]),
                "days": float(snap.days[i]),
                "asof": float(snap.asof[i]),
                "trend": None,
            },
            0.9,
        )
        for i in fresh
    ]
    labels = {KEY: Snapshots.from_labels(KEY, rows)}
    without = FilterLife().fit(run.snapshots)
    with_labels = FilterLife().fit(run.snapshots, labels=labels)
    assert with_labels.label_rows == {KEY: len(rows)}
    before = without._consumed(KEY, snap.X[fresh])
    after = with_labels._consumed(KEY, snap.X[fresh])
    assert after.mean() > before.mean() + 0.1  # pulled towards what technicians found


async def test_the_scoring_pass_stores_a_replaced_filter_with_the_state_it_was_found_in(
    db: Database, tmp_path: Path, trained: tuple[FilterLife, SimRun]
) -> None:
    db.upgrade()
    fleet = Fleet.create(
        FleetSpec(
            devices=10,
            seed=4,
            start=START.timestamp(),
            physics_dt=900,
            initial_wear=0.8,
            mix={"purifier": 1.0},
        )
    )
    ServiceRegistry(db).load(parse_doc(generate(fleet)))
    device = fleet.ids[0]
    replaced_at = START + timedelta(days=2, hours=10)
    async with create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts")) as store:
        t = START.timestamp()
        for _ in range(3 * 96):
            t += 900
            fleet.advance(t)
            if t == replaced_at.timestamp():
                fleet.replace_filters([device])
            await store.write(stored_readings(fleet, t))
        with db.engine.begin() as conn:  # what completing the job wrote
            conn.execute(
                filter_replacements.insert().values(
                    device_id=device, stage="main", at=replaced_at, consumed_found=0.95
                )
            )
        scoring = FilterLifeScoring(db, store, trained[0], "v1", catch_up_days=3)
        await scoring.run(START + timedelta(days=3, hours=1))
        await scoring.run(START + timedelta(days=3, hours=2))  # again: no second label
    with db.engine.connect() as conn:
        (label,) = conn.execute(sa.select(filter_labels)).all()
    assert label.device_id == device and label.stage == "main" and label.consumed == 0.95
    # the old filter's features: its dose and run hours before the change, not after
    assert label.features["used_hours"] > 100 and label.features["dose_g"] > 0
    loaded = load_labels(db)
    assert list(loaded) == [KEY] and list(loaded[KEY].consumed) == [0.95]
    # every feature known but the unit's own clean level: this filter was first seen
    # part-worn, so its clean current was never measured
    names = [name for name, _ in FEATURES[KEY]]
    unknown = names.index("current_vs_clean")
    assert np.isnan(loaded[KEY].X[:, unknown]).all()
    assert np.isfinite(np.delete(loaded[KEY].X, unknown, axis=1)).all()
