"""The simulated fleet is as imperfect as a real one by default, each imperfection is in
the ground truth, and the clean mode is exactly the simulator without any of it."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from device_sim.fleet import Fleet, FleetSpec
from device_sim.imperfection import Imperfection
from telemetry.profile import shipped

START = datetime(2027, 4, 1, tzinfo=UTC).timestamp()
DAY = 86400.0


def _run(spec: FleetSpec, days: float, step: float = 900.0) -> tuple[Fleet, list[dict]]:
    """The fleet after `days`, and every tick's columns by type."""
    fleet = Fleet.create(spec)
    ticks = []
    t = spec.start
    while t < spec.start + days * DAY:
        t += step
        fleet.advance(t)
        ticks.append({k: {m: v.copy() for m, v in c.items()} for k, c in fleet.columns().items()})
    return fleet, ticks


def test_by_default_every_unit_has_its_own_datasheet_and_sensors_in_the_truth() -> None:
    fleet = Fleet.create(FleetSpec(devices=60, seed=3, start=START))
    units = [t.unit for t in fleet.truth.devices.values()]
    assert all(units), "every unit's factors are in its ground truth"
    airflow = np.array([u["airflow"] for u in units if "airflow" in u])
    assert 0.01 < airflow.std() < 0.1  # ±5 %, as manufacturing tolerances
    assert any("pm25.gain" in u for u in units)  # the PM2.5 sensor's own gain


def test_the_clean_mode_has_none_of_it() -> None:
    fleet, ticks = _run(
        FleetSpec(devices=30, seed=3, start=START, imperfection=Imperfection.clean()), 2
    )
    assert all(
        not t.unit and not t.gaps and not t.home_changes for t in fleet.truth.devices.values()
    )
    for tick in ticks:  # every reading arrives
        for cols in tick.values():
            for values in cols.values():
                if values.dtype.kind == "f":
                    assert not np.isnan(values).all()
    assert (fleet.clock_ms == 0).all()


def test_sensors_read_with_noise_at_their_resolution_but_a_stopped_fan_reads_zero() -> None:
    _, ticks = _run(
        FleetSpec(
            devices=40,
            seed=4,
            start=START,
            mix={"air_conditioner": 1.0},
            imperfection=Imperfection().always_online(),
        ),
        1,
    )
    rpm = np.array([t["air_conditioner"]["indoor_fan_rpm"] for t in ticks], dtype=float)
    running = rpm[rpm > 0]
    assert len(running) and (running % 10 == 0).all()  # a 10-rpm resolution
    spec = shipped()["air_conditioner"].doc
    assert any(m.sensor is not None for m in spec.metrics)
    assert (rpm >= 0).all()


def test_gaps_and_late_installs_silence_units_and_are_in_the_truth() -> None:
    imp = Imperfection(gaps_per_year=200.0, late_installs=0.3)
    fleet, ticks = _run(
        FleetSpec(devices=40, seed=5, start=START, imperfection=imp, fault_window_days=10),
        10,
        step=3600,
    )
    truth = fleet.truth.devices
    gaps = [g for t in truth.values() for g in t.gaps]
    assert gaps, "at 200 gaps a year, ten days of 40 units have some"
    late = [d for d in fleet.ids if fleet.installed_at(d) > START]
    assert late and all(truth[d].installed_at for d in late)
    # a unit is silent before its install: its first reading comes after it
    order = {d: (g, i) for g in fleet.groups.values() for i, d in enumerate(g.ids)}
    d = late[0]
    group, i = order[d]
    metric = next(m for m, v in ticks[0][group.device_type].items() if v.dtype.kind == "f")
    seen = [k for k, tick in enumerate(ticks) if np.isfinite(tick[group.device_type][metric][i])]
    if seen:
        assert START + (seen[0] + 1) * 3600 >= fleet.installed_at(d)
    assert sum(t.unsent for t in truth.values()) > 0  # readings that never left


def test_homes_change_and_say_how() -> None:
    imp = Imperfection(home_changes_per_year=20.0)
    fleet, _ = _run(
        FleetSpec(devices=40, seed=6, start=START, imperfection=imp, fault_window_days=20),
        20,
        step=3600,
    )
    kinds = {c[0] for t in fleet.truth.devices.values() for c in t.home_changes}
    assert "move" in kinds and kinds <= {"move", "new_smoker", "renovation"}


def test_clocks_are_mostly_synced_and_a_few_are_minutes_off() -> None:
    fleet = Fleet.create(FleetSpec(devices=2000, seed=7, start=START))
    off = np.abs(fleet.clock_ms) / 1000
    assert np.median(off) < 2
    assert 0.005 < (off > 10).mean() < 0.05  # ~2 % never synced


@pytest.mark.parametrize("knob", ["gaps_per_year", "loss", "late_installs"])
def test_a_negative_or_impossible_knob_is_refused(knob: str) -> None:
    with pytest.raises(ValueError, match=knob):
        Imperfection(**{knob: -1.0})
