"""Consumable life for any family, from what its profile declares: no physics of its own.

For each consumable stage of a device, day by day:
* **usage since it was fitted**, in each rated unit its drivers measure: a counter the
  device restarts with the consumable is read as it is; any other counter counts from
  what it said when the consumable went in; a `running` driver counts the hours its bound
  held (readings past the bound × their cadence); an `integral` the product of its
  metrics' means over the hours reported;
* **the device's own rate** of each unit: a weekly moving average of its daily usage, and
  its day-to-day spread;
* **consumed** = the largest share used (rated life: whichever unit runs out first, the
  calendar months included), and **days left** = the fewest days to the end of any unit
  at the device's own rate, with an 80 % band from the spread of its daily usage
  (usage over D days varies like √D) and from units' spread around their rating;
* **the rated-life baseline**: when the rating is reached at the fleet's median rate
  (what a rule of thumb without the device's own data would say).

A unit first heard from part-way through a consumable's life (installed with a used one,
or registered late): a counter it restarts with the consumable says what was used before,
which counts as used but is not one day's usage (the rate learns from the days that
follow), and the calendar time before counts too: the usage before at the unit's own rate.

A new consumable is noticed when a counter the device restarts falls, or when the
service loop records a replacement (`restart`). Estimator-style: no I/O, the state is
named arrays the scoring pass persists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models import consumable_signal as signal
from models.daily import DayStats, Query
from models.robust import centre_and_spread
from telemetry.profile import Consumable, Profile, seconds

F = NDArray[np.float64]
DAY_S = 86400.0
MONTH_DAYS = 30.44
EWMA = 1 / 7
Z80 = 1.2816  # the two-sided 80 % band
MAX_DAYS = 3650.0
# units of one rating differ: filters of one SKU last about ±10 % around it, until the
# field's own changes say more (`capacity_cv`)
CAPACITY_CV = 0.10
MIN_LIVES = 20
VERSION = "consumables-1"


def queries(profile: Profile) -> tuple[Query, ...]:
    """The day's aggregates the drivers need, for `models.daily.from_store`."""
    counters = sorted(
        {d.counter for c in profile.doc.consumables for d in c.drivers if d.counter}
        | {n for c in profile.doc.consumables for d in c.drivers for n in d.integral or ()}
    )
    first = next(m.name for m in profile.doc.metrics if m.kind in ("float", "int"))
    out = [Query("all", tuple(counters) or (first,))]
    for c in profile.doc.consumables:
        for i, d in enumerate(c.drivers):
            if d.running is not None:
                b = d.running
                op, value = (">", b.above) if b.above is not None else ("<", b.below)
                assert value is not None
                out.append(Query(f"run.{c.stage}.{i}", (b.metric,), ((b.metric, op, value),)))
        sq = signal.query(c)
        if sq is not None:
            out.append(sq)
    return tuple(out)


def _cadence_h(profile: Profile, metric: str) -> float:
    spec = next((m for m in profile.doc.metrics if m.name == metric), None)
    cadence = spec.cadence if spec is not None and spec.cadence else profile.doc.simulation.interval
    return seconds(cadence) / 3600.0


@dataclass
class ConsumableState:
    """Named arrays, one element per device of `device_ids`; NaN until first seen."""

    device_type: str
    device_ids: list[str]
    values: dict[str, F]

    @classmethod
    def from_rows(
        cls, device_type: str, device_ids: Sequence[str], rows: dict[str, dict[str, float]]
    ) -> ConsumableState:
        keys = sorted({k for r in rows.values() for k in r if k.startswith("c.")})
        values = {k: np.array([rows.get(d, {}).get(k, np.nan) for d in device_ids]) for k in keys}
        return cls(device_type, list(device_ids), values)

    def __getitem__(self, key: str) -> F:
        if key not in self.values:
            self.values[key] = np.full(len(self.device_ids), np.nan)
        return self.values[key]

    def __setitem__(self, key: str, value: F) -> None:
        self.values[key] = np.asarray(value, dtype=np.float64)

    def take(self, index: NDArray[np.int_]) -> ConsumableState:
        return ConsumableState(
            self.device_type,
            [self.device_ids[i] for i in index],
            {k: v[index] for k, v in self.values.items()},
        )

    def rows(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for i, d in enumerate(self.device_ids):
            row = {k: float(v[i]) for k, v in self.values.items() if np.isfinite(v[i])}
            if row:
                out[d] = row
        return out


@dataclass(frozen=True)
class Prediction:
    device_ids: list[str]
    stage: str
    consumed: F  # share used up now
    days_left: F
    low: F  # the band's ends, days from now
    high: F
    rated_days_left: F  # at the fleet's median rate: the rule of thumb
    # the unit never told its usage: the date is the fleet's typical use since it was
    # fitted (a usage-based reminder), not a measurement
    typical_use: NDArray[np.bool_] | None = None


def restart(state: ConsumableState, stage: str, mask: NDArray[np.bool_], at: float | F) -> None:
    """A new consumable on these devices at `at` (epoch s): its usage starts again. The
    usage the old one reached (the last day's, and since at the unit's own pace) is kept:
    the field's changes say how far units of one rating really go."""
    since = np.clip((at - state["c.asof"]) / DAY_S, 0.0, 1.0)
    reached: dict[str, F] = {}
    for key in [k for k in state.values if k.startswith(f"c.{stage}.used.")]:
        unit = key.rsplit(".", 1)[1]
        used = state[key]
        reached[unit] = used + np.nan_to_num(state[f"c.{stage}.rate.{unit}"] * since)
        # a second notice of the same change (a recorded replacement, then the counter's
        # fall) finds nothing used: no life of its own
        ended = mask & (np.nan_to_num(used) > 0)
        state[f"c.{stage}.lived.{unit}"] = np.where(
            ended, reached[unit], state[f"c.{stage}.lived.{unit}"]
        )
    if f"c.{stage}.sig.on" in state.values and len(reached) == 1:  # a degradation signal
        rises = bool(state[f"c.{stage}.sig.on"][0] > 1.5)
        signal.restart(state, stage, rises, mask, next(iter(reached.values())))
    state[f"c.{stage}.fitted"] = np.where(mask, at, state[f"c.{stage}.fitted"])
    for key in list(state.values):
        if key.startswith((f"c.{stage}.used.", f"c.{stage}.base.", f"c.{stage}.before.")):
            state[key] = np.where(mask, np.nan if ".base." in key else 0.0, state[key])


def capacity_cv(state: ConsumableState, stage: str, unit: str) -> float:
    """How much units of one rating differ: from the field's changes once there are
    `MIN_LIVES` of them (changed early or late by the service, they can only widen it),
    else the usual ±10 %."""
    lived = state[f"c.{stage}.lived.{unit}"]
    lived = lived[np.isfinite(lived) & (lived > 0)]
    if lived.size < MIN_LIVES:
        return CAPACITY_CV
    centre, spread = centre_and_spread(lived)
    return spread / centre


def fold(profile: Profile, state: ConsumableState, stats: DayStats) -> None:
    """One more day of the devices' usage."""
    day_end = stats.end_ms / 1000
    for c in profile.doc.consumables:
        fitted = state[f"c.{c.stage}.fitted"]
        state[f"c.{c.stage}.fitted"] = np.where(np.isnan(fitted), stats.start_ms / 1000, fitted)
        for i, d in enumerate(c.drivers):
            daily, before = _daily_use(profile, c, i, state, stats)
            used = state[f"c.{c.stage}.used.{d.unit}"]
            state[f"c.{c.stage}.used.{d.unit}"] = np.where(
                np.isfinite(daily), np.nan_to_num(used) + np.maximum(daily, 0.0), used
            )
            if np.isfinite(before).any():  # first heard from part-way through a life
                used = state[f"c.{c.stage}.used.{d.unit}"]
                state[f"c.{c.stage}.used.{d.unit}"] = np.where(
                    np.isfinite(before), np.nan_to_num(used) + np.maximum(before, 0.0), used
                )
                state[f"c.{c.stage}.before.{d.unit}"] = np.where(
                    np.isfinite(before),
                    np.maximum(before, 0.0),
                    state[f"c.{c.stage}.before.{d.unit}"],
                )
            seen = np.isfinite(daily)
            rate, sq = state[f"c.{c.stage}.rate.{d.unit}"], state[f"c.{c.stage}.sq.{d.unit}"]
            first = seen & np.isnan(rate)
            new_rate = np.where(first, daily, (1 - EWMA) * rate + EWMA * daily)
            new_sq = np.where(first, daily**2, (1 - EWMA) * sq + EWMA * daily**2)
            state[f"c.{c.stage}.rate.{d.unit}"] = np.where(seen, new_rate, rate)
            state[f"c.{c.stage}.sq.{d.unit}"] = np.where(seen, new_sq, sq)
        if c.signal is not None and (unit := _signal_unit(c)) is not None:
            # a stage with a signal (2: one that rises), for `restart`, which has no profile
            on = 2.0 if c.signal.rises else 1.0
            state[f"c.{c.stage}.sig.on"] = np.full(len(state.device_ids), on)
            signal.fold(c, state, stats, state[f"c.{c.stage}.used.{unit}"])
    state["c.asof"] = np.full(len(state.device_ids), day_end)


def _daily_use(
    profile: Profile, c: Consumable, i: int, state: ConsumableState, stats: DayStats
) -> tuple[F, F]:
    """What driver `i` of `c` measured on the day (NaN for devices silent that day, or
    heard from for the first time), and what a counter the device restarts with the
    consumable said it had used before we first heard from it (NaN for the others). A
    restarted counter that fell means a new consumable (restarted here)."""
    d = c.drivers[i]
    n = len(stats.device_ids)
    if d.counter is not None:
        now = stats.col("all", d.counter, "max")
        low = stats.col("all", d.counter, "min")
        last = state[f"c.last.{d.counter}"]
        fell = np.isfinite(now) & np.isfinite(last) & (low < last - 1e-9)
        if d.resets and fell.any():
            # changed after the day's highest reading: that many hours into the day at
            # the unit's own pace
            rate = state[f"c.{c.stage}.rate.{d.unit}"]
            with np.errstate(divide="ignore", invalid="ignore"):
                into = np.clip(np.nan_to_num((now - last) / rate), 0.0, 1.0)
            restart(state, c.stage, fell, stats.start_ms / 1000 + into * DAY_S)
        first = np.isnan(last) & np.isfinite(now)  # nothing to compare with: no day's use
        # a day it fell on is no day's use either: its highest reading is from before the
        # fall, and what came after is known only from the next day on (compared with the
        # lowest reading, the one after the fall: yesterday's highest would make the next
        # day fall again)
        sample = np.isfinite(now) & ~first & ~fell
        state[f"c.last.{d.counter}"] = np.where(fell, low, np.where(np.isfinite(now), now, last))
        if d.resets:  # the counter is the usage since the consumable went in: read it
            used = np.nan_to_num(state[f"c.{c.stage}.used.{d.unit}"])
            daily = np.where(sample, now - used, np.nan)
            return daily, np.where(first, now - used, np.nan)
        return np.where(sample, now - last, np.nan), np.full(n, np.nan)
    none = np.full(n, np.nan)
    if d.running is not None:
        count = stats.col(f"run.{c.stage}.{i}", d.running.metric, "count")
        seen = stats.col("all", queries(profile)[0].metrics[0], "count") > 0
        hours = np.nan_to_num(count) * _cadence_h(profile, d.running.metric)
        return np.where(seen | (np.nan_to_num(count) > 0), hours, np.nan), none
    product = np.ones(n)
    for name in d.integral or ():
        product = product * stats.col("all", name, "mean")
    count = stats.col("all", (d.integral or ["?"])[0], "count")
    hours = np.nan_to_num(count) * _cadence_h(profile, (d.integral or ["?"])[0])
    return np.where(np.isfinite(product), product * hours * d.scale, np.nan), none


def _signal_unit(c: Consumable) -> str | None:
    """The rated unit a degradation signal measures a capacity in: the stage's one
    usage unit (a stage rated in several is left to its rating)."""
    units = [u for u in c.rated.given() if u != "months"]
    return units[0] if len(units) == 1 and any(d.unit == units[0] for d in c.drivers) else None


def shrunk_rate(own: F, sd: F) -> F:
    """Each unit's rate, drawn towards the fleet's by how little its own days say: a
    weekly average of a usage that varies a lot from day to day is noisy, and a noisy
    rate dates the end late more than early (days = remaining / rate). Empirical Bayes:
    the fleet's median and the spread of true rates between units (what the rates' spread
    leaves after their own noise), each unit weighted by the precision of its average."""
    ok = np.isfinite(own)
    if ok.sum() < 10:  # too few units to say what a fleet looks like
        return own
    noise = sd**2 * EWMA / (2.0 - EWMA)  # the variance of an exponential average
    centre, mad = centre_and_spread(own[ok])
    between = max(mad**2 - float(np.nanmedian(noise[ok])), (0.05 * centre) ** 2, 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(noise > 0, between / (between + noise), 1.0)
    return np.where(ok, w * own + (1.0 - w) * centre, own)


def predict(profile: Profile, state: ConsumableState) -> list[Prediction]:
    """Each stage's consumed share, days left with their band, and the rule of thumb.

    A unit whose drivers never told its usage (a firmware without the counter, a metric
    it does not report) gets a usage-based reminder, marked as such (`typical_use`): the
    fleet's typical rate since the consumable was fitted, with a band as wide as the
    fleet's rates differ. Never a date that looks measured when it is not."""
    out = []
    n = len(state.device_ids)
    asof = state["c.asof"]
    for c in profile.doc.consumables:
        rated = c.rated.given()
        consumed = np.zeros(n)
        days = np.full(n, MAX_DAYS)
        low, high, rule = days.copy(), days.copy(), days.copy()
        measured = np.zeros(n, dtype=bool)
        # the days before we first heard from it: the usage then at the unit's own rate
        # (the longest of the units' estimates: the end is not put off on a guess)
        earlier = np.zeros(n)
        for unit in rated:
            before, rate = state[f"c.{c.stage}.before.{unit}"], state[f"c.{c.stage}.rate.{unit}"]
            with np.errstate(divide="ignore", invalid="ignore"):
                days_before = np.where((rate > 0) & (before > 0), before / rate, np.nan)
            earlier = np.where(np.isfinite(days_before), np.fmax(earlier, days_before), earlier)
        age = (asof - state[f"c.{c.stage}.fitted"]) / DAY_S + earlier
        for unit, life in rated.items():
            if unit == "months":
                left = life * MONTH_DAYS - age
                consumed = np.fmax(consumed, age / (life * MONTH_DAYS))
                days, low, high, rule = (np.fmin(x, left) for x in (days, low, high, rule))
                continue
            # what this consumable holds: the rating, or nearer what its signal says
            cv = capacity_cv(state, c.stage, unit)
            life_var = np.full(n, (cv * life) ** 2)
            capacity = np.full(n, float(life))
            if c.signal is not None and _signal_unit(c) == unit:
                cap, cap_var = signal.capacity(c, state, n)
                known = np.isfinite(cap)
                with np.errstate(divide="ignore", invalid="ignore"):
                    w = np.where(known, life_var / (life_var + cap_var), 0.0)
                capacity = np.where(known, w * cap + (1 - w) * life, capacity)
                life_var = np.where(known, (1 - w) * life_var, life_var)
            own = state[f"c.{c.stage}.rate.{unit}"]
            sd = np.sqrt(np.maximum(state[f"c.{c.stage}.sq.{unit}"] - own**2, 0.0))
            rate = shrunk_rate(own, sd)
            seen = np.isfinite(own)
            measured |= seen
            fleet_rate, fleet_cv = _fleet_rate(own)
            # a unit that never told: the fleet's typical use since it was fitted
            blind = ~seen & (fleet_rate > 0) & np.isfinite(age)
            used = np.where(
                blind, fleet_rate * np.maximum(age, 0.0), state[f"c.{c.stage}.used.{unit}"]
            )
            rate = np.where(blind, fleet_rate, rate)
            remaining = np.maximum(capacity - np.nan_to_num(used), 0.0)
            consumed = np.fmax(consumed, np.nan_to_num(used) / capacity)
            with np.errstate(divide="ignore", invalid="ignore"):
                d = np.where(rate > 0, remaining / rate, MAX_DAYS)
                # the usage ahead varies day to day, and the rate it is read at is itself
                # a weekly average's estimate, whose error grows with the days ahead
                ahead = np.maximum(d, 0.0)
                var = sd**2 * (ahead + ahead**2 * EWMA / (2.0 - EWMA)) + life_var
                spread = Z80 * np.sqrt(var) / np.where(rate > 0, rate, np.inf)
                # at an unknown rate of its own, the whole life is uncertain, not the rest
                guess = Z80 * np.hypot(fleet_cv, cv) * (np.maximum(age, 0.0) + d)
                spread = np.where(blind, guess, spread)
                rest = np.maximum(life - np.nan_to_num(used), 0.0)  # the rule: the rating
                r = np.where(fleet_rate > 0, rest / fleet_rate, MAX_DAYS)
            days = np.fmin(days, d)
            low = np.fmin(low, np.maximum(d - spread, 0.0))
            high = np.fmin(high, d + spread)
            rule = np.fmin(rule, r)
        has = np.isfinite(asof)
        nan = np.full(n, np.nan)
        out.append(
            Prediction(
                list(state.device_ids),
                c.stage,
                np.where(has, consumed, nan),
                np.where(has, np.clip(days, -MAX_DAYS, MAX_DAYS), nan),
                np.where(has, np.clip(low, -MAX_DAYS, MAX_DAYS), nan),
                np.where(has, np.clip(high, -MAX_DAYS, MAX_DAYS), nan),
                np.where(has, np.clip(rule, -MAX_DAYS, MAX_DAYS), nan),
                typical_use=has & ~measured,
            )
        )
    return out


def _fleet_rate(own: F) -> tuple[float, float]:
    """The fleet's median rate and how much units differ around it (robust CV); NaN
    when no unit has told its rate yet."""
    ok = own[np.isfinite(own)]
    if not ok.size:
        return float("nan"), float("nan")
    centre, mad = centre_and_spread(ok)
    return centre, (mad / centre if centre > 0 else float("nan"))
