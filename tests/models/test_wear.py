"""Rated life, the baseline every model report compares with, turns hours into days at
the unit's long-run usage: a quiet week does not make a filter last for years. A unit's
degradation signal is read against its own clean filter, learned in the days after a
change, not against the datasheet."""

from __future__ import annotations

import numpy as np
import pytest

from models import products as P
from models.daily import DayStats
from models.wear import (
    RATED_MAX_DAYS,
    WearState,
    advance,
    against_own_clean,
    effort_fit,
    rated_days,
)


def _ac(tracked_days: float, total_h: float, weekly_rate: float) -> WearState:
    state = WearState("air_conditioner", ["ac-1"])
    state["main.fan_hours"] = np.array([300.0])
    state["main.fan_hours_rate"] = np.array([weekly_rate])
    state["main.fan_hours_total"] = np.array([total_h])
    state["tracked_days"] = np.array([tracked_days])
    return state


def test_an_idle_week_in_winter_does_not_make_the_filter_last_for_years() -> None:
    # 90 days seen, 8 fan hours a day on the long run, idle this last week
    days = rated_days(_ac(90, 720, 0.0), "main")
    assert days[0] == (P.AC_FILTER_RATED_HOURS - 300) / 8


def test_in_its_first_week_a_unit_is_taken_at_its_weekly_rate() -> None:
    days = rated_days(_ac(3, 12, 6.0), "main")
    assert days[0] == (P.AC_FILTER_RATED_HOURS - 300) / 6


def test_a_unit_that_never_runs_is_capped_not_infinite() -> None:
    assert rated_days(_ac(90, 0, 0.0), "main")[0] == RATED_MAX_DAYS


def _days(state: WearState, signal: list[float], changed_on: int = 0) -> list[float]:
    """Feed one unit's daily signal through `against_own_clean`; the filter changes on day
    `changed_on`. Returns the feature after each day."""
    out = []
    for day, value in enumerate(signal):
        ok, changed = np.array([True]), np.array([day == changed_on])
        against_own_clean(state, "main.x", ok, changed, np.array([value]))
        out.append(float(state["main.x"][0]))
    return out


def test_each_unit_is_read_against_its_own_clean_filter_not_the_datasheet() -> None:
    # two units whose clean filters read 1.0 and 1.3 (a unit's motor off its datasheet),
    # loading alike: the feature is the same for both
    a = _days(WearState("purifier", ["a"]), [1.0] * 6 + [1.1] * 20)
    b = _days(WearState("purifier", ["b"]), [1.3] * 6 + [1.43] * 20)
    assert np.isnan(a[3])  # still learning the clean level
    np.testing.assert_allclose(a[-1], 1.1, rtol=0.01)
    np.testing.assert_allclose(b, a, rtol=1e-9)


def test_the_clean_level_is_unknown_until_a_change_is_seen_and_relearned_after_one() -> None:
    state = WearState("purifier", ["a"])
    before = _days(state, [1.2] * 10, changed_on=-1)  # first seen mid-life: never clean
    assert all(np.isnan(v) for v in before)
    after = _days(state, [0.9] * 6 + [1.0] * 30, changed_on=0)
    np.testing.assert_allclose(after[-1], 1.0 / 0.9, rtol=0.01)


def _purifier_day(ids: list[str], used_hours: list[float], current_ma: list[float]) -> DayStats:
    """A day of purifiers that ran at fan level 3 all day."""
    n = len(ids)
    day = DayStats("purifier", ids, 0, 86_400_000)
    day.columns["all.filter_used_hours.count"] = np.full(n, 96.0)
    day.columns["all.filter_used_hours.max"] = np.array(used_hours)
    day.columns["all.filter_used_hours.min"] = np.array(used_hours) - 20
    day.columns["l3.pm25.count"] = np.full(n, 96.0)
    day.columns["l3.pm25.mean"] = np.full(n, 30.0)
    day.columns["l3.motor_current_ma.mean"] = np.array(current_ma)
    return day


def test_a_unit_first_seen_with_a_fresh_filter_learns_its_clean_level_at_once() -> None:
    # "new" was installed with a new filter (12 run hours); "old" is seen mid-life: its
    # clean level stays unknown until its filter is changed
    state = WearState("purifier", ["new", "old"])
    clean = P.PURIFIER_CLEAN_CURRENT_MA[3] * 1.2  # a unit drawing 20 % over its datasheet
    for d in range(12):
        hours = [12.0 + 20 * d, 900.0 + 20 * d]
        advance(state, _purifier_day(state.device_ids, hours, [clean, clean]))
    vs_clean = state["main.current_vs_clean"]
    assert vs_clean[0] == pytest.approx(1.0) and np.isnan(vs_clean[1])
    assert state["main.current_ratio"][0] == pytest.approx(1.2)  # the datasheet's view


def _ac_days(
    homes: list[tuple[float, float, float]], days: int, change_on: int = -1
) -> tuple[WearState, np.ndarray, list[tuple[float, float]]]:
    """Air conditioners cooling 10 fan hours a day at a lift that moves with the weather;
    each home is (loss per degree of lift, inner gains, filter load per fan hour). The
    compressor's Hz-hours are what the home's load needs at the airflow the filter
    leaves: (a·lift + b) / (1 − 0.45·load). Returns the state, the true load at the end,
    and the first unit's (effort rise, effort against clean) after each day."""
    n = len(homes)
    state = WearState("air_conditioner", [f"ac-{i}" for i in range(n)])
    counter = np.full(n, 100.0)  # first seen with 100 fan hours on its filter
    load = np.zeros(n)
    first: list[tuple[float, float]] = []
    for d in range(days):
        start = d * 86_400_000
        stats = DayStats("air_conditioner", state.device_ids, start, start + 86_400_000)
        low = counter.copy()
        if d == change_on:
            low = np.zeros(n)
            counter = np.zeros(n)
        counter = counter + 10.0
        lift = 6.0 + 4.0 * np.sin(d / 3.0)
        load = np.array([h[2] for h in homes]) * counter
        effort = np.array([(h[0] * lift + h[1]) for h in homes]) / (1 - 0.45 * load)
        stats.columns |= {
            "all.filter_used_hours.count": np.full(n, 96.0),
            "all.filter_used_hours.min": low,
            "all.filter_used_hours.max": counter.copy(),
            "cool.compressor_hz.count": np.full(n, 40.0),  # 10 h of 15-minute readings
            "cool.compressor_hz.mean": effort,
            "cool.outdoor_temp_c.mean": np.full(n, 25.0 + lift),
            "cool.room_temp_c.mean": np.full(n, 25.0),
        }
        advance(state, stats)
        first.append((float(state["main.effort_rise"][0]), float(state["main.effort_vs_clean"][0])))
    return state, load, first


def test_an_air_conditioner_filter_is_read_from_its_compressor_effort_at_the_lift() -> None:
    # a small well-insulated home and a big leaky one, the same filter loading in both,
    # and a third unit whose filter never loads
    homes = [(2.0, 10.0, 1 / 1500), (5.0, 30.0, 1 / 1500), (3.0, 15.0, 0.0)]
    state, load, _ = _ac_days(homes, 90)
    truth = 1 / (1 - 0.45 * load[0])
    vs_clean = state["main.effort_vs_clean"]
    np.testing.assert_allclose(vs_clean[:2], truth, rtol=0.03)  # the home cancels out
    np.testing.assert_allclose(vs_clean[2], 1.0, rtol=0.01)
    rise = state["main.effort_rise"]
    assert rise[0] > 0.2 and rise[1] > 0.2
    np.testing.assert_allclose(rise[0], rise[1], rtol=0.05)
    assert abs(rise[2]) < 0.01


def test_the_effort_reading_waits_for_days_and_a_new_filter_reads_clean() -> None:
    homes = [(2.0, 10.0, 1 / 1500)]
    _, _, seen = _ac_days(homes, 80, change_on=60)
    assert np.isnan(seen[3][0])  # too few days to fit the unit's line
    assert seen[59][1] > 1.2
    assert np.isnan(seen[60][1])  # the day of the change mixes two filters
    assert seen[62][1] < 1.03  # the unit and its home are known: the new filter is clean
    assert seen[62][0] < seen[59][0] / 5


def test_the_effort_line_survives_a_restart_of_the_engine() -> None:
    homes = [(2.0, 10.0, 1 / 1500), (5.0, 30.0, 1 / 2000)]
    state, _, _ = _ac_days(homes, 40)
    again = WearState.from_rows("air_conditioner", state.device_ids, state.rows())
    # what persists is the running sums: the fit read back from them is the same
    for kept, fitted in zip(
        effort_fit(again, "main.effort"), effort_fit(state, "main.effort"), strict=True
    ):
        np.testing.assert_allclose(kept, fitted)
    assert np.isfinite(effort_fit(again, "main.effort")[0]).all()
