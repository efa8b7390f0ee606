"""The health model: faults injected into a simulated fleet are caught far more often
than healthy devices are flagged, named better than by chance, and the score is scaled
to the learned threshold; the baselines restart when a filter is changed."""

from __future__ import annotations

import numpy as np
import pytest

from models.daily import DayStats
from models.detectors import RobustResidualDetector
from models.evaluation.faults import FaultRun, fault_quality, modelled_kinds, replay
from models.health import RELATIONS, HealthModel, observe
from models.wear import WearState


def test_on_a_clean_fleet_faults_are_caught_far_more_often_than_healthy_devices_are_flagged(
    health_trained: HealthModel, health_held_out: FaultRun
) -> None:
    q = fault_quality(health_trained, health_held_out)
    faults = sum(k.faults for k in q.kinds)
    detected = sum(k.detected for k in q.kinds)
    assert faults > 100
    # per device-day, a healthy device is flagged about once in a thousand days; over a
    # fault's lifetime (tens of days) chance would catch a few per cent of them
    assert detected / faults > 0.6
    assert q.false_per_1000 < 3.0
    for k in q.kinds:  # the quick, strong faults every time
        if k.kind in ("pump_failure", "sensor_dropout") and k.faults >= 5:
            assert k.recall >= 0.9, (k.device_type, k.kind, k.recall)


def test_a_caught_fault_is_named_better_than_by_chance(
    health_trained: HealthModel, health_held_out: FaultRun
) -> None:
    scored = replay(health_trained, health_held_out)
    for device_type, (score, kind) in scored.items():
        named, right = 0, 0
        for i, fault in enumerate(health_held_out.faults[device_type]):
            if fault is None:
                continue
            onset_day = int((fault[1] - health_held_out.start) // 86400)
            hit = np.flatnonzero(np.nan_to_num(score[onset_day + 1 :, i]) >= 1.0)
            if len(hit):
                named += 1
                right += kind[onset_day + 1 + hit[0], i] == fault[0]
        chance = 1 / len(modelled_kinds(device_type))
        assert named >= 20, device_type
        assert right / named > 2.5 * chance, (device_type, right, named)


def test_the_published_score_is_one_at_the_learned_threshold(
    health_trained: HealthModel, health_held_out: FaultRun
) -> None:
    device_type = "water_purifier"
    model = health_trained.types[device_type]
    state = WearState(device_type, health_held_out.device_ids[device_type])
    for day in health_held_out.history[device_type][:40]:
        verdict = health_trained.score(device_type, state, day)
        warm = np.isfinite(verdict.score)
        if not warm.any():
            continue  # the baselines are still forming
        flagged = model.detector.predict(verdict.z[warm]) == -1
        assert ((verdict.score[warm] >= 1.0) == flagged).all()
        assert (verdict.kind[warm][~flagged] == "none").all()


def test_a_filter_change_restarts_the_device_baselines(health_trained: HealthModel) -> None:
    ids = ["a", "b"]
    stats = DayStats("purifier", ids, 0, 86_400_000)
    for level in range(1, 6):
        stats.columns[f"l{level}.pm25.count"] = np.array([20.0, 20.0])
        stats.columns[f"l{level}.pm25.mean"] = np.array([20.0, 20.0])
        stats.columns[f"l{level}.motor_current_ma.mean"] = np.array([300.0, 300.0])
    for name, value in (("count", 96.0), ("min", 5.0), ("max", 60.0), ("mean", 20.0)):
        stats.columns[f"all.pm25.{name}"] = np.array([value, value])
    stats.columns["all.filter_used_hours.count"] = np.array([96.0, 96.0])
    groups = np.array(["t", "t"], dtype=object)
    state = WearState("purifier", ids)
    for _ in range(health_trained.warmup):
        day = observe(stats, groups, np.array([False, False]))
        health_trained.score("purifier", state, day)
    day = observe(stats, groups, np.array([False, False]))
    assert np.isfinite(health_trained.score("purifier", state, day).score).all()
    changed = observe(stats, groups, np.array([True, False]))
    verdict = health_trained.score("purifier", state, changed)
    assert np.isnan(verdict.score[0]) and np.isfinite(verdict.score[1])
    assert state["h.current.n"][0] == 1  # the new filter's first day


@pytest.mark.parametrize("device_type", list(RELATIONS))
def test_every_relation_reads_a_column_the_daily_queries_declare(device_type: str) -> None:
    stats = DayStats(device_type, ["x"], 0, 1)
    before = set(stats.columns)
    for r in RELATIONS[device_type]:
        r.value(stats)
    from models.daily import QUERIES

    declared = {
        f"{q.name}.{m}.{s}"
        for q in QUERIES[device_type]
        for m in q.metrics
        for s in ("count", "mean", "min", "max")
    }
    assert set(stats.columns) - before <= declared


def test_a_missing_feature_is_no_evidence_and_a_heavy_tail_does_not_set_the_threshold() -> None:
    rng = np.random.default_rng(0)
    calm = rng.normal(0, 1, (5000, 1))
    heavy = rng.standard_t(1.5, (5000, 1))  # an occasional wild value in health
    X = np.hstack([calm, heavy])
    tail = RobustResidualDetector(contamination=0.001, tail=0.999).fit(X)
    mad = RobustResidualDetector(contamination=0.001).fit(X)
    shifted = np.array([[6.0, 0.0]])  # six sigma on the calm feature
    assert tail.predict(shifted)[0] == -1
    assert mad.predict(shifted)[0] == 1  # the heavy feature's tail hid it
    assert tail.score_samples(np.array([[np.nan, np.nan]]))[0] == 0.0
    assert tail.predict(np.array([[np.nan, 0.0]]))[0] == 1
