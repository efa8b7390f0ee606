"""A consumable's declared degradation signal (`signal:` in its profile, e.g. a
dehumidifier's airflow falling as its filter loads), read against the unit's own
consumable, to learn how much *this* one holds.

Counting hours says how much a unit has used; it cannot say that this filter will last
430 hours and the next one 560 (units of one rating differ by ±10–15 %). The signal can:
* **each unit's line**: the signal's daily mean (over the readings where it is above
  zero: the appliance working, on whole days with one consumable) regressed on the usage
  since the consumable went in (least squares with an intercept: six sums per unit). The
  intercept is the unit's own clean level, whatever its sensor's gain, so the slope over
  it is the share of the signal lost per unit of usage; a consumable first met part-way
  through its life gets its line too, with an intercept extrapolated further (and so a
  wider variance);
* **the loss at the end**, learned from the fleet: at each change the engine sees (a
  counter restarting, a recorded replacement), the ending life's line at the usage then
  (the last day's, and since at the unit's own pace). Its median over the fleet is where
  one is spent;
* **the capacity** where this unit's line reaches it, with its variance (the delta
  method), which `models.consumables` combines with the rating (units' spread around it)
  by precision.

Nothing here knows what the signal measures: any family whose profile declares one gets
it. With fewer than `MIN_ENDS` changes seen in the fleet, or a unit with fewer than
`MIN_DAYS` days on its line, the signal says nothing and the rating stands.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from models.daily import DayStats, Query
from models.robust import centre_and_spread
from telemetry.profile import Consumable

F = NDArray[np.float64]


class ConsumableState(Protocol):
    """Named per-device arrays (`models.consumables.ConsumableState`): a missing name
    reads as NaN."""

    def __getitem__(self, key: str) -> F: ...
    def __setitem__(self, key: str, value: F) -> None: ...


MIN_DAYS = 5  # days on the line before it says anything
MIN_ENDS = 5  # lives ended in the fleet before the loss at the end is known
MIN_READINGS = 4  # a day's mean from fewer readings is too noisy to learn from
SUMS = ("n", "u", "s", "uu", "us", "ss")


def query(c: Consumable) -> Query | None:
    if c.signal is None:
        return None
    m = c.signal.metric
    return Query(f"sig.{c.stage}", (m,), ((m, ">", 0.0),))


def _key(stage: str, name: str) -> str:
    return f"c.{stage}.sig.{name}"


class Line:
    """Each unit's signal against its usage, s = c0 + c1 × u, and the loss per unit of
    usage `b` (the share of c0 lost; positive as the consumable wears)."""

    def __init__(self, state: ConsumableState, stage: str, rises: bool) -> None:
        s = {name: np.nan_to_num(state[_key(stage, name)]) for name in SUMS}
        m = self.m = s["n"]
        with np.errstate(divide="ignore", invalid="ignore"):
            sxx = s["uu"] - s["u"] ** 2 / m
            sxy = s["us"] - s["u"] * s["s"] / m
            syy = s["ss"] - s["s"] ** 2 / m
            c1 = sxy / sxx
            c0 = (s["s"] - c1 * s["u"]) / m
            resid = np.maximum(syy - c1 * sxy, 0.0) / np.maximum(m - 2, 1)
            var_c1 = resid / sxx
            var_c0 = resid * s["uu"] / (m * sxx)
            cov = -resid * (s["u"] / m) / sxx
            sign = 1.0 if rises else -1.0
            b = sign * c1 / c0
            # the delta method, for b = ±c1 / c0
            d1, d0 = sign / c0, -sign * c1 / c0**2
            var_b = d1 * d1 * var_c1 + d0 * d0 * var_c0 + 2 * d1 * d0 * cov
        ok = (m >= MIN_DAYS) & (sxx > 0) & (c0 > 0) & np.isfinite(b) & (b > 0)
        self.b = np.where(ok, b, np.nan)
        self.var_b = np.where(ok, var_b, np.nan)


def restart(
    state: ConsumableState, stage: str, rises: bool, mask: NDArray[np.bool_], used_at: F
) -> None:
    """A change the engine saw, with `used_at` the usage at that moment: the ending life
    leaves its loss at the end; the new one's line starts."""
    line = Line(state, stage, rises)
    end = line.b * used_at
    ended = mask & np.isfinite(end)
    state[_key(stage, "end")] = np.where(ended, end, state[_key(stage, "end")])
    for name in SUMS:
        state[_key(stage, name)] = np.where(mask, 0.0, state[_key(stage, name)])


def fold(c: Consumable, state: ConsumableState, stats: DayStats, used: F) -> None:
    """One more day of the signal against the usage since the consumable went in."""
    q = query(c)
    assert q is not None
    assert c.signal is not None
    mean = stats.col(q.name, c.signal.metric, "mean")
    count = np.nan_to_num(stats.col(q.name, c.signal.metric, "count"))
    # a day the consumable was changed on mixes the old one's readings with the new's
    whole = state[f"c.{c.stage}.fitted"] <= stats.start_ms / 1000
    ok = whole & np.isfinite(mean) & (count >= MIN_READINGS) & np.isfinite(used)
    if not ok.any():
        return
    u = np.nan_to_num(used)
    s = np.nan_to_num(mean)
    terms: tuple[F, ...] = (np.ones_like(u), u, s, u * u, u * s, s * s)
    for name, x in zip(SUMS, terms, strict=True):
        total = np.nan_to_num(state[_key(c.stage, name)])
        state[_key(c.stage, name)] = np.where(ok, total + x, total)


def capacity(c: Consumable, state: ConsumableState, n: int) -> tuple[F, F]:
    """Per unit: the usage (in the driver's unit) at which its line reaches the fleet's
    loss at the end, and that estimate's variance; NaN where the signal says nothing."""
    assert c.signal is not None
    nan = np.full(n, np.nan)
    ends = state[_key(c.stage, "end")]
    ends = ends[np.isfinite(ends)]
    if ends.size < MIN_ENDS:
        return nan, nan
    k, k_sd = centre_and_spread(ends)
    if k <= 0:
        return nan, nan
    line = Line(state, c.stage, c.signal.rises)
    with np.errstate(divide="ignore", invalid="ignore"):
        cap = k / line.b
        var = cap**2 * (line.var_b / line.b**2 + (k_sd / k) ** 2)
    ok = np.isfinite(cap) & (cap > 0) & np.isfinite(var)
    return np.where(ok, cap, nan), np.where(ok, var, nan)
