"""Models trained once per session on small simulated fleets (filter life; health, with
faults injected), and held-out fleets of another seed: what the mechanics tests measure.

These fleets are clean (every unit on its datasheet, every sensor true, every reading
sent), and say so: they test that the models learn what the physics puts in the data.
How the models do on a fleet as imperfect as a real one is the gate's to judge
(tests/models/test_gate.py, docs/model-quality.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from device_sim.imperfection import Imperfection
from models.evaluation.faults import FaultRun, simulate_faults
from models.evaluation.filter_life import SimRun, simulate
from models.filter_life import FilterLife
from models.health import HealthModel

START = datetime(2026, 1, 1, tzinfo=UTC)
DEVICES, DAYS = 400, 120
HEALTH_DEVICES, HEALTH_DAYS = 500, 90
CLEAN = Imperfection.clean()


@pytest.fixture(scope="session")
def trained() -> tuple[FilterLife, SimRun]:
    run = simulate(DEVICES, seed=11, days=DAYS, start=START, imperfection=CLEAN)
    return FilterLife().fit(run.snapshots), run


@pytest.fixture(scope="session")
def held_out(trained: tuple[FilterLife, SimRun]) -> SimRun:
    return simulate(DEVICES, seed=22, days=DAYS, start=START, model=trained[0], imperfection=CLEAN)


@pytest.fixture(scope="session")
def health_training() -> FaultRun:
    """A small fleet with faults in half its devices: the health model's training data."""
    return simulate_faults(HEALTH_DEVICES, seed=11, days=HEALTH_DAYS, imperfection=CLEAN)


@pytest.fixture(scope="session")
def health_trained(health_training: FaultRun) -> HealthModel:
    return HealthModel().fit(health_training.history)


@pytest.fixture(scope="session")
def health_held_out() -> FaultRun:
    return simulate_faults(HEALTH_DEVICES, seed=22, days=HEALTH_DAYS, imperfection=CLEAN)
