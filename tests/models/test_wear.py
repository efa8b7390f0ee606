"""Rated life, the baseline every model report compares with, turns hours into days at
the unit's long-run usage: a quiet week does not make a filter last for years. A unit's
degradation signal is read against its own clean filter, learned in the days after a
change, not against the datasheet."""

from __future__ import annotations

import numpy as np
import pytest

from models import products as P
from models.daily import DayStats
from models.wear import RATED_MAX_DAYS, WearState, advance, against_own_clean, rated_days


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
