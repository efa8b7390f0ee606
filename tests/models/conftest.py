"""Models trained once per session on small simulated fleets (filter life; health, with
faults injected), and held-out fleets of another seed: what the quality tests measure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.evaluation.faults import FaultRun, simulate_faults
from models.evaluation.filter_life import SimRun, simulate
from models.filter_life import FilterLife
from models.health import HealthModel

START = datetime(2026, 1, 1, tzinfo=UTC)
DEVICES, DAYS = 400, 120
HEALTH_DEVICES, HEALTH_DAYS = 500, 90


@pytest.fixture(scope="session")
def trained() -> tuple[FilterLife, SimRun]:
    run = simulate(DEVICES, seed=11, days=DAYS, start=START)
    return FilterLife().fit(run.snapshots), run


@pytest.fixture(scope="session")
def held_out(trained: tuple[FilterLife, SimRun]) -> SimRun:
    return simulate(DEVICES, seed=22, days=DAYS, start=START, model=trained[0])


@pytest.fixture(scope="session")
def health_training() -> FaultRun:
    """A small fleet with faults in half its devices: the health model's training data."""
    return simulate_faults(HEALTH_DEVICES, seed=11, days=HEALTH_DAYS)


@pytest.fixture(scope="session")
def health_trained(health_training: FaultRun) -> HealthModel:
    return HealthModel().fit(health_training.history)


@pytest.fixture(scope="session")
def health_held_out() -> FaultRun:
    return simulate_faults(HEALTH_DEVICES, seed=22, days=HEALTH_DAYS)
