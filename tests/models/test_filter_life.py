"""Filter life: the consumed share is sane and monotonic, the date beats rated life on
a clean fleet the model never saw (what the physics puts in the data is learned; the
gate judges an imperfect fleet), and the band holds the truth about as often as it says."""

from __future__ import annotations

import numpy as np
import pytest

from models.evaluation.filter_life import SimRun, quality
from models.filter_life import FilterLife, schema
from models.registry import ModelRegistry
from models.wear import FEATURES, STAGES, WearState


def _by_key(run: SimRun) -> dict[tuple[str, str], object]:
    return {q.key: q for q in quality(run)}


def test_every_stage_of_every_type_is_modelled(trained: tuple[FilterLife, SimRun]) -> None:
    model, _ = trained
    assert set(model.stages) == {(t, s) for t, stages in STAGES.items() for s in stages}


def test_consumed_share_stays_between_new_and_well_past_spent(
    trained: tuple[FilterLife, SimRun],
) -> None:
    model, run = trained
    for key, snap in run.snapshots.items():
        c = model._consumed(key, snap.X)
        finite = c[np.isfinite(c)]
        assert finite.min() >= 0.0 and finite.max() <= 1.5, key


@pytest.mark.parametrize("key", list(FEATURES))
def test_more_wear_never_means_a_fresher_filter(
    trained: tuple[FilterLife, SimRun], key: tuple[str, str]
) -> None:
    model, run = trained
    snap = run.snapshots[key]
    rows = snap.X[np.isfinite(snap.X).all(axis=1)][:: max(1, len(snap.X) // 200)]
    for j, (name, direction) in enumerate(FEATURES[key]):
        if direction == 0:
            continue
        lo, hi = np.nanquantile(snap.X[:, j], [0.05, 0.95])
        for row in rows[:50]:
            grid = np.repeat(row[None, :], 20, axis=0)
            grid[:, j] = np.linspace(lo, hi, 20)
            c = model._consumed(key, grid)
            steps = np.diff(c) * direction
            assert (steps >= -1e-9).all(), f"{key} consumed falls as {name} grows"


def test_fewer_days_left_as_the_filter_wears(trained: tuple[FilterLife, SimRun]) -> None:
    model, _ = trained
    state = WearState("purifier", [f"d{i}" for i in range(5)])
    ratio = np.array([1.0, 1.08, 1.16, 1.24, 1.32])  # motor current over clean: more loaded
    dose = np.array([2.0, 8.0, 14.0, 20.0, 26.0])
    state["main.current_ratio"] = ratio
    state["main.dose_g"] = dose
    state["main.dose_g_rate"] = np.full(5, 0.15)
    state["main.used_hours"] = dose * 100
    state["main.used_hours_rate"] = np.full(5, 14.0)
    state["main.dose_per_hour"] = np.full(5, 0.01)
    state["main.days"] = dose * 7
    state["asof"] = np.full(5, 1.78e9)
    (p,) = model.predict(state)
    # never fresher, never more days, as the wear grows (the trees step: ties are fine)
    assert (np.diff(p.consumed) >= 0).all() and p.consumed[-1] > p.consumed[0] + 0.5
    assert (np.diff(p.days_left) <= 0).all() and p.days_left[-1] < p.days_left[0] / 2
    assert (p.low <= p.days_left).all() and (p.days_left <= p.high).all()


def test_on_a_clean_fleet_it_never_saw_the_date_beats_rated_life(held_out: SimRun) -> None:
    q = _by_key(held_out)
    for key in (("purifier", "main"), ("water_purifier", "sediment")):
        stage = q[key]
        assert stage.exhaustions >= 20, key  # type: ignore[attr-defined]
        assert stage.mae[14] * 3 < stage.mae_rated[14], key  # type: ignore[attr-defined]
    purifier = q[("purifier", "main")]
    # in polluted homes rated hours are weeks wrong; ours is days
    assert purifier.mae_polluted[14] * 3 < purifier.mae_rated_polluted[14]  # type: ignore[attr-defined]


def test_the_band_holds_the_truth_near_its_nominal_rate(held_out: SimRun) -> None:
    q = _by_key(held_out)
    for key in (("purifier", "main"), ("water_purifier", "sediment")):
        coverage = q[key].band_coverage  # type: ignore[attr-defined]
        assert 0.65 <= coverage <= 0.95, (key, coverage)  # nominal 80 %


def test_on_a_clean_fleet_jobs_open_in_time_without_replacing_filters_early(
    held_out: SimRun,
) -> None:
    purifier = _by_key(held_out)[("purifier", "main")]
    assert purifier.covered >= 0.9  # type: ignore[attr-defined]
    assert purifier.premature <= 0.1  # type: ignore[attr-defined]
    assert purifier.covered > purifier.covered_rated  # type: ignore[attr-defined]


def test_a_saved_version_predicts_what_the_fitted_model_did(
    trained: tuple[FilterLife, SimRun], tmp_path: object
) -> None:
    from datetime import UTC, datetime
    from pathlib import Path

    model, run = trained
    registry = ModelRegistry(Path(str(tmp_path)))
    meta = registry.save(
        "filter_life",
        model,
        features=schema(),
        data_start=datetime(2026, 1, 1, tzinfo=UTC),
        data_end=datetime(2026, 5, 1, tzinfo=UTC),
    )
    loaded, again = registry.load("filter_life", features=schema())
    assert again.version == meta.version
    key = ("purifier", "main")
    X = run.snapshots[key].X[:500]
    np.testing.assert_array_equal(model._consumed(key, X), loaded._consumed(key, X))
