"""A consumable's declared degradation signal (`signal:` in its profile, e.g. a
dehumidifier's airflow falling as its filter loads), read against each unit's own clean
consumable, to learn how much *this* consumable holds.

Counting hours says how much a unit has used; it cannot say that this filter will last
430 hours and the next one 560 (units of one rating differ by ±10–15 %). The signal can:
* **each unit's clean level**: the signal's daily mean (over the readings where it is
  above zero: the appliance working) over the first `CLEAN_DAYS` whole days after a change the
  engine saw (a counter restarting, a recorded replacement, or a unit first heard from
  with a fresh consumable); a unit first heard from part-way through a life has no clean
  level until its next change;
* **the drop**: afterwards, each day's relative change from that level (a fall for a
  signal that falls, a rise for one that rises), regressed on the usage since the change
  (least squares with an intercept, six sums per unit);
* **the drop at the end**, learned from the fleet: each watched life's line at the usage
  when the consumable was changed. Its median over the fleet is where one is spent;
* **the capacity** where this unit's line reaches it, with its variance, which
  `models.consumables` combines with the rating (units' spread around it) by precision.

Nothing here knows what the signal measures: any family whose profile declares one gets
it. With fewer than `MIN_ENDS` changes seen in the fleet, or a unit with fewer than
`MIN_DAYS` days on its line, the signal says nothing and the rating stands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from models.daily import DayStats, Query
from telemetry.profile import Consumable

if TYPE_CHECKING:
    from models.consumables import ConsumableState

F = NDArray[np.float64]
CLEAN_DAYS = 3  # days after a change that set the unit's clean level
MIN_DAYS = 5  # days on the line before it says anything
MIN_ENDS = 5  # watched lives ended in the fleet before the end's drop is known
MIN_READINGS = 4  # a day's mean from fewer readings is too noisy to learn from
SUMS = ("n", "u", "d", "uu", "ud", "dd")


def query(c: Consumable) -> Query | None:
    if c.signal is None:
        return None
    m = c.signal.metric
    return Query(f"sig.{c.stage}", (m,), ((m, ">", 0.0),))


def _key(c: Consumable, name: str) -> str:
    return f"c.{c.stage}.sig.{name}"


def _line(state: ConsumableState, stage: str) -> tuple[F, F, F]:
    """Each unit's line, drop = a + b × usage: (a, b, days on it); NaN where too short."""
    s = {name: np.nan_to_num(state[f"c.{stage}.sig.{name}"]) for name in SUMS}
    m = s["n"]
    with np.errstate(divide="ignore", invalid="ignore"):
        sxx = s["uu"] - s["u"] ** 2 / m
        b = (s["ud"] - s["u"] * s["d"] / m) / sxx
        a = (s["d"] - b * s["u"]) / m
    ok = (m >= MIN_DAYS) & (sxx > 0) & np.isfinite(b)
    return np.where(ok, a, np.nan), np.where(ok, b, np.nan), m


def restart(state: ConsumableState, stage: str, mask: NDArray[np.bool_], used_at: F) -> None:
    """A change the engine saw, with `used_at` the usage at that moment: a life watched
    from its start leaves its drop at the end (its line's value there, not its last
    day's mean, which is from before the change); the new one is watched from now."""
    a, b, _ = _line(state, stage)
    end = a + b * used_at
    ended = mask & np.isfinite(end) & (b > 0)
    state[f"c.{stage}.sig.end"] = np.where(ended, end, state[f"c.{stage}.sig.end"])
    for name in ("clean", "cn", *SUMS):
        key = f"c.{stage}.sig.{name}"
        state[key] = np.where(mask, np.nan if name == "clean" else 0.0, state[key])
    state[f"c.{stage}.sig.watch"] = np.where(mask, 1.0, state[f"c.{stage}.sig.watch"])


def fold(c: Consumable, state: ConsumableState, stats: DayStats, used: F) -> None:
    """One more day of the signal, for the units watched since a change."""
    assert c.signal is not None
    get, put = state.__getitem__, state.__setitem__
    q = query(c)
    assert q is not None
    mean = stats.col(q.name, c.signal.metric, "mean")
    count = np.nan_to_num(stats.col(q.name, c.signal.metric, "count"))
    # a day the consumable was changed on mixes the old one's readings with the new's
    whole = get(f"c.{c.stage}.fitted") <= stats.start_ms / 1000
    ok = (get(_key(c, "watch")) == 1.0) & whole & np.isfinite(mean) & (count >= MIN_READINGS)
    if not ok.any():
        return
    cn = np.nan_to_num(get(_key(c, "cn")))
    learning = ok & (cn < CLEAN_DAYS)
    clean = get(_key(c, "clean"))
    put(_key(c, "clean"), np.where(learning, (np.nan_to_num(clean) * cn + mean) / (cn + 1), clean))
    put(_key(c, "cn"), np.where(learning, cn + 1, cn))
    on_line = ok & ~learning & (get(_key(c, "clean")) > 0) & np.isfinite(used)
    if not on_line.any():
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = mean / get(_key(c, "clean"))
    drop = (ratio - 1.0) if c.signal.rises else (1.0 - ratio)
    u = np.nan_to_num(used)
    terms: tuple[F, ...] = (np.ones_like(u), u, drop, u * u, u * drop, drop * drop)
    for name, x in zip(SUMS, terms, strict=True):
        total = np.nan_to_num(get(_key(c, name)))
        put(_key(c, name), np.where(on_line, total + x, total))


def capacity(c: Consumable, state: ConsumableState, n: int) -> tuple[F, F]:
    """Per unit: the usage (in the driver's unit) at which its line reaches the fleet's
    end drop, and that estimate's variance; NaN where the signal says nothing."""
    get = state.__getitem__
    nan = np.full(n, np.nan)
    ends = get(_key(c, "end"))
    ends = ends[np.isfinite(ends)]
    if ends.size < MIN_ENDS:
        return nan, nan
    k = float(np.median(ends))
    k_sd = 1.4826 * float(np.median(np.abs(ends - k)))
    if k <= 0:
        return nan, nan
    a, b, m = _line(state, c.stage)
    s = {name: np.nan_to_num(get(_key(c, name))) for name in SUMS}
    with np.errstate(divide="ignore", invalid="ignore"):
        sxx = s["uu"] - s["u"] ** 2 / m
        sxy = s["ud"] - s["u"] * s["d"] / m
        syy = s["dd"] - s["d"] ** 2 / m
        resid = np.maximum(syy - b * sxy, 0.0) / np.maximum(m - 2, 1)
        var_b = resid / sxx
        var_a = resid * s["uu"] / (m * sxx)
        cov_ab = -resid * (s["u"] / m) / sxx
        cap = (k - a) / b
        # the delta method: d cap / d a = -1/b, d cap / d b = -(k - a)/b², d cap / d k = 1/b
        var = (var_a + (cap**2) * var_b + 2 * cap * cov_ab + k_sd**2) / b**2
    ok = np.isfinite(a) & (b > 0) & np.isfinite(cap) & (cap > 0) & np.isfinite(var)
    return np.where(ok, cap, nan), np.where(ok, var, nan)
