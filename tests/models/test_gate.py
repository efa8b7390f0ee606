"""The model gate: on a small imperfect fleet starting in July, a season and year the
training never saw, no figure gets worse than the committed report (docs/model-gate.json)
by more than its tolerance. A model change that only works on clean data fails here; a
better one rewrites the report (`fleetcare evaluate --gate --write`)."""

from __future__ import annotations

import math

import pytest

from models.evaluation import gate


@pytest.fixture(scope="module")
def measured() -> dict[str, float]:
    return gate.measure(*gate.train())


def test_no_figure_is_worse_than_the_committed_report(measured: dict[str, float]) -> None:
    assert gate.compare(measured, gate.load()) == []


def test_the_committed_report_holds_every_figure_the_gate_measures(
    measured: dict[str, float],
) -> None:
    committed = gate.load()
    assert set(committed) == set(measured)
    assert sum(math.isfinite(v) for v in committed.values()) >= 12


def test_a_worse_figure_beyond_its_tolerance_is_named() -> None:
    committed = {
        "purifier.main.mae14_days": 4.0,
        "purifier.main.covered": 0.8,
        "purifier.main.premature": 0.1,
        "faults.recall": 0.7,
        "faults.false_per_1000_device_days": 1.0,
    }
    within = {
        "purifier.main.mae14_days": 4.5,  # +0.5 d: the tolerance
        "purifier.main.covered": 0.76,
        "purifier.main.premature": 0.14,
        "faults.recall": 0.66,
        "faults.false_per_1000_device_days": 1.5,
    }
    assert gate.compare(within, committed) == []
    worse = {
        "purifier.main.mae14_days": 4.7,
        "purifier.main.covered": 0.7,
        "purifier.main.premature": 0.2,
        "faults.recall": 0.6,
        "faults.false_per_1000_device_days": 1.6,
    }
    problems = gate.compare(worse, committed)
    assert [p.split(":")[0] for p in problems] == sorted(committed)
    assert gate.compare({}, committed)[0].endswith("none measured now")
