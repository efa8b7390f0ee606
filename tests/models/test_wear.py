"""Rated life, the baseline every model report compares with, turns hours into days at
the unit's long-run usage: a quiet week does not make a filter last for years."""

from __future__ import annotations

import numpy as np

from models import products as P
from models.wear import RATED_MAX_DAYS, WearState, rated_days


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
