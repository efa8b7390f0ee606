"""A filter-life model trained once per session on a small simulated fleet, and a
held-out fleet (another seed) scored by it: what the quality tests measure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.model_quality import SimRun, simulate
from models.filter_life import FilterLife

START = datetime(2026, 1, 1, tzinfo=UTC)
DEVICES, DAYS = 400, 120


@pytest.fixture(scope="session")
def trained() -> tuple[FilterLife, SimRun]:
    run = simulate(DEVICES, seed=11, days=DAYS, start=START)
    return FilterLife().fit(run.snapshots), run


@pytest.fixture(scope="session")
def held_out(trained: tuple[FilterLife, SimRun]) -> SimRun:
    return simulate(DEVICES, seed=22, days=DAYS, start=START, model=trained[0])
