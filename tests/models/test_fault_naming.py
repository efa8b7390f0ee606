"""An alarm of the general detector is named from technicians' verdicts: what it showed
(which statistic fired, how far each metric stood from its baseline and its peers) is a
row of numbers any profile has, and a family's namer learns which verdict such rows end
in — a fault's kind, or nothing found, which it then dismisses."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from models.anomaly import StreamingDetector
from models.anomaly.fleet import peer_deviations
from models.anomaly.naming import STATISTICS, FaultNamer, evidence
from models.verdicts import NONE

NAMES = ["temp", "power", "runtime"]
COUNTERS = [False, False, True]
DAY = 86400.0


def days(rng: np.random.Generator, n: int) -> np.ndarray:
    """A unit's days: a temperature, a power that follows it, a counter's daily growth."""
    temp = 20.0 + 3.0 * np.sin(np.arange(n) / 20.0) + rng.normal(0, 0.3, n)
    power = 50.0 + 8.0 * temp + rng.normal(0, 2.0, n)
    runtime = 10.0 + rng.normal(0, 0.5, n)
    return np.column_stack([temp, power, runtime])


def with_fault(rng: np.random.Generator, x: np.ndarray, kind: str, at: int) -> np.ndarray:
    x = x.copy()
    if kind == "sensor_stuck":
        x[at:, 0] = round(float(x[at, 0]), 1)
    elif kind == "step_change":
        x[at:, 1] += 60.0
    elif kind == "sensor_dropout":
        x[at:, 0] = np.nan
    elif kind == MOVED:  # a warmer room: both rise, and power still follows temperature
        x[at:, 0] += 10.0
        x[at:, 1] += 80.0
    return x


KINDS = ["sensor_stuck", "step_change", "sensor_dropout"]
MOVED = "moved"  # no fault: the unit went to another room


def alarms_of(seed: int, units: int) -> tuple[list[dict[str, float]], list[str]]:
    """Every alarm of `units` detectors — a quarter of the units moved to a warmer room,
    the others given a fault — labelled as a technician would find it."""
    rng = np.random.default_rng(seed)
    rows, verdicts = [], []
    for u in range(units):
        kind = [*KINDS, MOVED][u % 4]
        at = int(rng.integers(90, 120))
        x = with_fault(rng, days(rng, 130), kind, at)
        det = StreamingDetector(3)
        for d, row in enumerate(x):
            r = det.update(d * DAY, row)
            if r.alarm:
                rows.append(evidence(det, row.tolist(), r, names=NAMES, counters=COUNTERS))
                verdicts.append(kind if kind != MOVED and d >= at else NONE)
    return rows, verdicts


def test_an_alarm_is_a_row_of_numbers_any_profile_has() -> None:
    rng = np.random.default_rng(1)
    x = with_fault(rng, days(rng, 120), "step_change", 100)
    det = StreamingDetector(3, watch=[True, True, False])
    for d, row in enumerate(x):
        r = det.update(d * DAY, row)
        if r.alarm:
            break
    assert r.alarm and d >= 100
    peers = [0.1, 25.0, math.nan]
    ev = evidence(det, row.tolist(), r, names=NAMES, counters=COUNTERS, peers=peers)
    assert sum(ev[f"stat.{k}"] for k in STATISTICS) == 1.0
    assert ev[f"stat.{r.kind}"] == 1.0 and r.kind in STATISTICS
    assert ev["z.power"] > 5.0  # power stood far above its own baseline ...
    assert ev["peer.power"] == 25.0 and ev["peer_max"] == 25.0  # ... and its peers'
    assert "peer.runtime" not in ev  # no peer figure: left out, not NaN
    assert ev["watched"] == 1.0 and ev["counter"] == 0.0
    json.dumps(ev, allow_nan=False)  # stored as JSON with the state


def test_peers_take_out_what_moves_every_unit_and_keep_what_moves_one() -> None:
    rng = np.random.default_rng(2)
    rows = rng.normal(0, 1, (12, 2)) + 30.0  # a hot day: every unit 30 above usual
    rows[3, 0] += 10.0  # one unit's sensor reads high
    groups = np.array(["north"] * 8 + ["south"] * 4, dtype=object)
    z = peer_deviations(rows, groups)
    assert abs(z[3, 0]) > 5.0
    assert np.all(np.abs(np.delete(z[:8, 0], 3)) < 3.0)
    assert np.isnan(z[8:]).all()  # four peers are too few to say anything


def test_a_namer_with_too_few_verdicts_names_nothing() -> None:
    namer = FaultNamer().fit([{"stat.spike": 1.0}] * 5, ["none"] * 3 + ["step_change"] * 2)
    assert not namer.fitted and namer.name({"stat.spike": 1.0}) is None
    assert not FaultNamer().fit([{"z": 1.0}] * 40, [NONE] * 40).fitted  # one kind: no choice
    with pytest.raises(ValueError, match="evidence rows"):
        FaultNamer().fit([{"z": 1.0}], [NONE, NONE])


def test_verdicts_teach_the_namer_to_name_faults_and_dismiss_what_was_nothing() -> None:
    rows, verdicts = alarms_of(seed=5, units=100)
    namer = FaultNamer().fit(rows, verdicts)
    assert namer.fitted and set(namer.classes) == {*KINDS, NONE}
    test_rows, truth = alarms_of(seed=6, units=60)
    named = namer.name_all(test_rows)
    faults = [(n, t) for n, t in zip(named, truth, strict=True) if t != NONE]
    right = sum(n is not None and n.kind == t for n, t in faults)
    assert len(faults) >= 40 and right >= 0.8 * len(faults)
    nothing = [n for n, t in zip(named, truth, strict=True) if t == NONE]
    dismissed = sum(n is not None and n.dismissed for n in nothing)
    assert len(nothing) >= 10 and dismissed >= 0.5 * len(nothing)
    assert sum(n is not None and n.dismissed for n, _ in faults) <= 0.05 * len(faults)
