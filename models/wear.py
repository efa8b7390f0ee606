"""Filter wear, tracked per device and stage from one day's stats to the next.

`WearState` holds, per device of one type, what the scoring pass must remember between
days: usage since the filter went in (captured PM2.5 dose, litres, litres × feed TDS, fan
hours), its days in service, the usage rate (a one-week moving average), the device's
own counters (to notice a change: a counter that resets, a reported life that jumps
back up), and today's degradation signals (motor current at the fan level against the
clean-filter current, product flow against nominal, RO salt rejection).

`features` turns a state into the regressor's inputs; `rated_days` gives the rated-life
estimate the appliances themselves show, kept as the baseline every report compares to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from models import products as P
from models.daily import DayStats

F = NDArray[np.float64]
STAGES: Mapping[str, tuple[str, ...]] = {
    "purifier": ("main",),
    "water_purifier": ("sediment", "carbon", "ro"),
    "air_conditioner": ("main",),
}
# the regressor's inputs per stage, and the direction each may move the consumed fraction
# (+1 more of it means more worn, -1 less, 0 either): scikit-learn's `monotonic_cst`
FEATURES: Mapping[tuple[str, str], tuple[tuple[str, int], ...]] = {
    ("purifier", "main"): (
        ("current_ratio", 1),
        ("dose_g", 1),
        ("used_hours", 1),
        ("dose_per_hour", 0),
        ("current_vs_clean", 1),
    ),
    ("water_purifier", "sediment"): (
        ("flow_ratio", -1),
        ("litres", 1),
        ("days", 1),
        ("flow_vs_clean", -1),
    ),
    ("water_purifier", "carbon"): (("litres", 1), ("days", 1)),
    # the RO membrane's rejection against the unit's own new membrane made its jobs come
    # later (tried: 68 % of exhaustions covered fell to 55 % from a July start)
    ("water_purifier", "ro"): (("rejection", -1), ("tds_litres", 1), ("litres", 1)),
    ("air_conditioner", "main"): (
        ("fan_hours", 1),
        ("days", 1),
        ("effort_rise", 1),
        ("effort_vs_clean", 1),
    ),
}
# the usage each stage wears by (the capacity estimate is in these units)
USAGE = {
    ("purifier", "main"): "dose_g",
    ("water_purifier", "sediment"): "litres",
    ("water_purifier", "carbon"): "litres",
    ("water_purifier", "ro"): "tds_litres",
    ("air_conditioner", "main"): "fan_hours",
}
MAX_AGE_DAYS = {("water_purifier", "carbon"): P.WATER_RATED_DAYS["carbon"]}
EWMA = 1 / 7  # the usage rate follows the last week or so


@dataclass
class WearState:
    """Named arrays, one element per device of `device_ids`; NaN until first seen."""

    device_type: str
    device_ids: list[str]
    values: dict[str, F] = field(default_factory=dict)

    def __getitem__(self, key: str) -> F:
        if key not in self.values:
            self.values[key] = np.full(len(self.device_ids), np.nan)
        return self.values[key]

    def __setitem__(self, key: str, value: F) -> None:
        self.values[key] = np.asarray(value, dtype=np.float64)

    def rows(self) -> dict[str, dict[str, float]]:
        """Per device, its finite values (what the scoring pass persists)."""
        out: dict[str, dict[str, float]] = {}
        keys = sorted(self.values)
        for i, d in enumerate(self.device_ids):
            row = {k: float(self.values[k][i]) for k in keys if np.isfinite(self.values[k][i])}
            if row:
                out[d] = row
        return out

    @classmethod
    def from_rows(
        cls, device_type: str, device_ids: Sequence[str], rows: Mapping[str, Mapping[str, float]]
    ) -> WearState:
        state = cls(device_type, list(device_ids))
        for i, d in enumerate(state.device_ids):
            for k, v in rows.get(d, {}).items():
                state[k][i] = v
        return state

    def take(self, index: NDArray[np.int_]) -> WearState:
        return WearState(
            self.device_type,
            [self.device_ids[i] for i in index],
            {k: v[index] for k, v in self.values.items()},
        )


def _ewma(old: F, new: F) -> F:
    return np.where(np.isnan(old), new, np.where(np.isnan(new), old, old + EWMA * (new - old)))


def _track(
    s: WearState,
    key: str,
    seen: NDArray[np.bool_],
    first: NDArray[np.bool_],
    changed: NDArray[np.bool_],
    day_usage: F,
    since_change: F,
) -> None:
    """Usage since the change and its daily rate, for one usage of a stage (`key`).
    `day_usage` is what the day added; `since_change` what the filter has seen, used on
    a change day and when a device is first seen mid-life."""
    restart = seen & (first | changed)
    s[key] = np.where(restart, since_change, np.where(seen, s[key] + day_usage, s[key]))
    # the rate is the home's, not the filter's: it carries over a change
    s[key + "_rate"] = np.where(
        seen & ~changed, _ewma(s[key + "_rate"], day_usage), s[key + "_rate"]
    )
    # and the long-run total since the device was first seen (the rated baseline's rate:
    # a week of winter must not make an air conditioner's filter last for years)
    total = s[key + "_total"]
    s[key + "_total"] = np.where(
        seen & np.isnan(total), 0.0, np.where(seen & ~restart, total + day_usage, total)
    )


TREND_DECAY = 0.93  # the signal's trend weighs the last two weeks or so


def _trend(
    s: WearState, key: str, seen: NDArray[np.bool_], changed: NDArray[np.bool_], value: F
) -> None:
    """Exponentially weighted least-squares slope (per day) of a degradation signal since
    the change, kept as five running sums: what the date estimate extrapolates."""
    names = [f"{key}~{n}" for n in ("w", "t", "tt", "y", "ty")]
    sums = [np.nan_to_num(s[n]) for n in names]
    t = np.nan_to_num(s[key.split(".", maxsplit=1)[0] + ".days"])
    ok = seen & np.isfinite(value)
    sums = [np.where(changed, 0.0, x) for x in sums]
    decayed = [np.where(ok, x * TREND_DECAY, x) for x in sums]
    y = np.nan_to_num(value)
    add = [np.ones_like(t), t, t * t, y, t * y]
    for name, old, extra in zip(names, decayed, add, strict=True):
        s[name] = np.where(ok, old + extra, old)
    w, st, stt, sy, sty = (s[n] for n in names)
    with np.errstate(invalid="ignore", divide="ignore"):
        det = w * stt - st * st
        slope = np.where((w >= 5) & (det > 1e-9), (w * sty - st * sy) / det, np.nan)
    s[key + "_slope"] = slope


CLEAN_DAYS = 5  # the days after a change that set the unit's own clean-filter level
FRESH_HOURS = 48.0  # a unit first seen with fewer run hours on its filter starts clean


def against_own_clean(
    s: WearState, key: str, ok: NDArray[np.bool_], changed: NDArray[np.bool_], value: F
) -> None:
    """`key`: a signal against this unit's own level in the first `CLEAN_DAYS` days it
    had it after a filter change (`changed`: a change seen, or a unit first seen with a
    fresh filter; NaN until then), smoothed over the last week or so. Each unit's clean
    signature, not the datasheet's: units differ by more than a filter's load moves the
    signal."""
    n = np.where(changed, 0.0, s[key + "~n"])  # NaN until the first change: unknown
    clean = np.where(changed, np.nan, s[key + "~clean"])
    learn = ok & (n < CLEAN_DAYS)
    n = np.where(learn, n + 1, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        clean = np.where(
            learn, np.where(np.isnan(clean), value, clean + (value - clean) / n), clean
        )
        today = np.where(ok & (n >= CLEAN_DAYS) & (clean > 0), value / clean, np.nan)
    s[key + "~n"], s[key + "~clean"] = n, clean
    s[key] = np.where(changed, np.nan, _ewma(s[key], today))


def _age(
    s: WearState, stage: str, seen: NDArray[np.bool_], changed: NDArray[np.bool_], first_age: F
) -> None:
    """Days in service: a day more each day (silent or not), 0 at a change."""
    days = s[f"{stage}.days"]
    s[f"{stage}.days"] = np.where(
        changed, 0.0, np.where(seen & np.isnan(days), first_age, days + 1.0)
    )


def advance(state: WearState, day: DayStats) -> NDArray[np.bool_]:
    """Fold one day's stats into the state; returns, per device, whether a filter change
    was noticed (any stage). A device silent all day ages a day and wears nothing."""
    if day.device_ids != state.device_ids:
        raise ValueError("the day's stats and the state must list the same devices in order")
    seen = day.seen()
    state["asof"] = np.full(len(seen), day.end_ms / 1000.0)
    # days since first seen, silent ones included: the long-run usage rate's denominator
    tracked = state["tracked_days"]
    state["tracked_days"] = np.where(np.isnan(tracked), np.where(seen, 0.0, np.nan), tracked + 1)
    if state.device_type == "purifier":
        return _purifier(state, day, seen)
    if state.device_type == "water_purifier":
        return _water(state, day, seen)
    return _air_conditioner(state, day, seen)


def _run_hours(
    s: WearState, day: DayStats, seen: NDArray[np.bool_]
) -> tuple[F, NDArray[np.bool_], NDArray[np.bool_], F]:
    """The device's own filter run-hour counter (purifier, air conditioner): today's top
    value, whether the device is new to the state, whether the counter was reset (a new
    filter), and the run hours the day added. Moves the remembered counter on."""
    top = day.col("all", "filter_used_hours", "max")
    low = day.col("all", "filter_used_hours", "min")
    prev = s["main.counter"]
    first = seen & np.isnan(prev)
    changed = seen & ~first & (low < prev - 0.5)
    run_h = np.where(first, top - low, top - prev)
    s["main.counter"] = np.where(seen, top, prev)
    return top, first, changed, run_h


def purifier_day(day: DayStats) -> tuple[F, F]:
    """The day's captured dose per fan hour (g: airflow × PM2.5; 0 when the fan never
    ran) and the motor current against the clean-filter current at the same fan level
    (NaN when it never ran), each weighted by the readings at each level."""
    n_total = np.zeros(len(day.device_ids))
    dose_rate = np.zeros(len(day.device_ids))
    ratio = np.zeros(len(day.device_ids))
    for level in range(1, 6):
        n = np.nan_to_num(day.col(f"l{level}", "pm25", "count"))
        pm = np.nan_to_num(day.col(f"l{level}", "pm25", "mean"))
        cur = np.nan_to_num(day.col(f"l{level}", "motor_current_ma", "mean"))
        n_total += n
        dose_rate += n * P.PURIFIER_AIRFLOW_M3H[level] * pm * 1e-6
        ratio += n * cur / P.PURIFIER_CLEAN_CURRENT_MA[level]
    some = n_total > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(some, dose_rate / n_total, 0.0), np.where(some, ratio / n_total, np.nan)


def _purifier(s: WearState, day: DayStats, seen: NDArray[np.bool_]) -> NDArray[np.bool_]:
    dose_rate, ratio = purifier_day(day)
    some = np.isfinite(ratio)
    top, first, changed, run_h = _run_hours(s, day, seen)
    _track(s, "main.dose_g", seen, first, changed, dose_rate * run_h, dose_rate * top)
    _track(s, "main.used_hours", seen, first, changed, run_h, top)
    _age(s, "main", seen, changed, top / 16.0)  # first seen: ~16 fan hours a day
    s["main.current_ratio"] = np.where(seen & some, ratio, s["main.current_ratio"])
    _trend(s, "main.current_ratio", seen & some, changed, ratio)
    s["main.dose_per_hour"] = np.where(seen & some, dose_rate, s["main.dose_per_hour"])
    fresh = changed | (first & (top < FRESH_HOURS))
    against_own_clean(s, "main.current_vs_clean", seen & some, fresh, ratio)
    return np.asarray(changed)


def _water(s: WearState, day: DayStats, seen: NDArray[np.bool_]) -> NDArray[np.bool_]:
    top = day.col("all", "volume_total_l", "max")
    low = day.col("all", "volume_total_l", "min")
    prev = s["volume_counter"]
    new_device = seen & np.isnan(prev)
    litres = np.maximum(np.where(new_device, top - low, top - prev), 0.0)
    tds_in = day.col("all", "tds_in_ppm", "mean")
    tds_out = day.col("all", "tds_out_ppm", "mean")
    flow = day.col("all", "flow_lpm", "mean")
    per_day = np.where(new_device, np.nan, litres)
    s["litres_per_day"] = np.where(seen, _ewma(s["litres_per_day"], per_day), s["litres_per_day"])
    any_change = np.zeros(len(seen), dtype=bool)
    fresh: dict[str, NDArray[np.bool_]] = {}
    for stage in STAGES["water_purifier"]:
        pct_hi = day.col("all", f"filter_life_{stage}_pct", "max")
        pct_lo = day.col("all", f"filter_life_{stage}_pct", "min")
        before = s[f"{stage}.counter"]
        first = seen & np.isnan(before)
        changed = seen & ~first & (pct_hi > before + 2.0)  # the reported life jumped back up
        fresh[stage] = changed | (first & (pct_hi >= 98.0))
        # first seen mid-life: the litres its own rated-life figure implies
        since = np.where(changed, 0.0, (1 - np.nan_to_num(pct_lo) / 100) * P.WATER_RATED_L[stage])
        _track(s, f"{stage}.litres", seen, first, changed, litres, since)
        _track(
            s,
            f"{stage}.tds_litres",
            seen,
            first,
            changed,
            litres * np.nan_to_num(tds_in),
            since * np.nan_to_num(tds_in),
        )
        rate = np.nan_to_num(s["litres_per_day"], nan=10.0)
        _age(s, stage, seen, changed, since / np.maximum(rate, 1.0))
        s[f"{stage}.counter"] = np.where(seen, pct_lo, before)
        any_change |= changed
    with np.errstate(invalid="ignore", divide="ignore"):
        s["ro.rejection"] = np.where(seen & (tds_in > 0), 1 - tds_out / tds_in, s["ro.rejection"])
    s["sediment.flow_ratio"] = np.where(
        seen & (flow > 0), flow / P.WATER_NOMINAL_FLOW_LPM, s["sediment.flow_ratio"]
    )
    ch = {stage: s[f"{stage}.days"] == 0 for stage in STAGES["water_purifier"]}
    _trend(
        s, "sediment.flow_ratio", seen & (flow > 0), ch["sediment"], flow / P.WATER_NOMINAL_FLOW_LPM
    )
    _trend(s, "ro.rejection", seen & (tds_in > 0), ch["ro"], s["ro.rejection"])
    s["volume_counter"] = np.where(seen, top, prev)
    with np.errstate(invalid="ignore", divide="ignore"):
        against_own_clean(s, "sediment.flow_vs_clean", seen & (flow > 0), fresh["sediment"], flow)
    return any_change


def _air_conditioner(s: WearState, day: DayStats, seen: NDArray[np.bool_]) -> NDArray[np.bool_]:
    top, first, changed, run_h = _run_hours(s, day, seen)
    _track(s, "main.fan_hours", seen, first, changed, run_h, top)
    _age(s, "main", seen, changed, top / 8.0)  # first seen: ~8 fan hours a day
    effort, lift, heating = ac_effort_day(day, run_h)
    # the counter knows the fan hours on this filter even when the unit is first seen
    # mid-life; the day of a change mixes two filters and teaches nothing
    whole = seen & ~changed & ~first
    ok = whole & np.isfinite(effort) & (effort > 0) & np.isfinite(lift)
    mid = s["main.fan_hours"] - run_h / 2
    effort_line(s, "main.effort", ok, effort, lift, heating, mid)
    coef, mean_lift, mean_mode = effort_fit(s, "main.effort")
    s["main.effort_rise"] = effort_rise(coef, mean_lift, mean_mode, s["main.fan_hours"])
    # the effort of the last week or so against what the unit's fit says a clean filter
    # would have needed on those days: a ratio of sums, so a mild day (little load, a
    # ratio of two small numbers) weighs little
    clean = clean_effort(coef, lift, _mode(heating))
    ok &= np.isfinite(clean) & (clean > 0)
    for name, today in (("num", effort), ("den", clean)):
        key = f"main.effort~{name}"
        s[key] = np.where(changed, np.nan, _ewma(s[key], np.where(ok, today, np.nan)))
    with np.errstate(invalid="ignore", divide="ignore"):
        s["main.effort_vs_clean"] = s["main.effort~num"] / s["main.effort~den"]
    return np.asarray(changed)


MIN_EFFORT_FAN_HOURS = 2.0  # a day with less running says little about the effort
MIN_EFFORT_DAYS = 10  # days on the effort line before its rise is read
MIN_READINGS_EFFORT = 4  # readings with the compressor running, on a day that counts


def ac_effort_day(day: DayStats, run_h: F) -> tuple[F, F, F]:
    """An air conditioner's day: the compressor's Hz-hours per fan hour (its effort),
    the mean lift it worked against (outdoor minus room while cooling, room minus
    outdoor while heating) and the share of it spent heating; NaN on a day with too
    little running. Over a day the heat moved matches the home's load, which depends on
    the lift; the heat moved per Hz falls as the filter loads (less air over the coil),
    so at a given lift a loaded filter needs more Hz-hours."""
    n_all = day.col("all", "filter_used_hours", "count")
    parts = []
    for mode, sign in (("cool", 1.0), ("heat", -1.0)):
        n = np.nan_to_num(day.col(mode, "compressor_hz", "count"))
        hz = np.nan_to_num(day.col(mode, "compressor_hz", "mean"))
        out = day.col(mode, "outdoor_temp_c", "mean")
        room = day.col(mode, "room_temp_c", "mean")
        parts.append((n, n * hz, np.where(n > 0, sign * (out - room), 0.0)))
    (n_c, hz_c, lift_c), (n_h, hz_h, lift_h) = parts
    n = n_c + n_h
    with np.errstate(invalid="ignore", divide="ignore"):
        hours_per_reading = 24.0 / n_all  # a gap in the day thins both counts alike
        effort = (hz_c + hz_h) * hours_per_reading / run_h
        lift = (n_c * lift_c + n_h * lift_h) / n
        heating = n_h / n
    ok = (run_h >= MIN_EFFORT_FAN_HOURS) & (n >= MIN_READINGS_EFFORT) & (n_all > 0)
    nan = np.full(len(n), np.nan)
    return (
        np.asarray(np.where(ok, effort, nan)),
        np.asarray(np.where(ok, lift, nan)),
        np.asarray(np.where(ok, heating, nan)),
    )


_EFFORT_TERMS = 4  # effort ~ lift + mode, each alone and times the fan hours on the filter
_PAIRS = [(i, j) for i in range(_EFFORT_TERMS) for j in range(i, _EFFORT_TERMS)]


def _effort_sums(key: str) -> tuple[list[str], list[str], list[str]]:
    xx = [f"{key}~xx{i}{j}" for i, j in _PAIRS]
    xy = [f"{key}~xy{i}" for i in range(_EFFORT_TERMS)]
    mean = [f"{key}~n", f"{key}~lift", f"{key}~mode"]
    return xx, xy, mean


def _mode(heating: F) -> F:
    """+1 a day spent cooling, −1 heating, between for a day of both."""
    return np.asarray(1.0 - 2.0 * heating)


def clean_effort(coef: F, lift: F, mode: F) -> F:
    """The effort the unit's fit says a clean filter needs at `lift` and `mode`."""
    return np.asarray(coef[:, 0] * lift + coef[:, 1] * mode)


def effort_line(
    s: WearState, key: str, ok: NDArray[np.bool_], effort: F, lift: F, heating: F, used: F
) -> None:
    """Each unit's own least-squares fit of its daily effort, over every filter it has
    had (the days in `ok`), kept as running sums so the state stays small and a
    restarted engine resumes it. The home's load is its loss through the walls (∝ the
    lift) plus its inner gains while cooling, less them while heating; the heat moved
    per Hz is the unit's, divided by the airflow the filter still lets through, whose
    loss grows about linearly with the fan hours on it (`used`). So, with m = +1
    cooling, −1 heating: effort = (a·lift + b·m)·(1 + g·u) = a·lift + b·m + a·g·lift·u
    + b·g·m·u, linear in four terms. a and b are the unit and its home (size,
    insulation, the sensor's gain) and carry over a filter change; g is how fast its
    filters load."""
    xx, xy, mean = _effort_sums(key)
    m = _mode(np.nan_to_num(heating))
    u = np.nan_to_num(used)
    x = [np.nan_to_num(lift), m, np.nan_to_num(lift) * u, m * u]
    y = np.where(ok, effort, 0.0)
    terms = [x[i] * x[j] for i, j in _PAIRS] + [xi * y for xi in x]
    terms += [np.ones_like(m), np.nan_to_num(lift), m]
    for name, v in zip(xx + xy + mean, terms, strict=True):
        old = np.nan_to_num(s[name])  # NaN: a unit new to the state
        s[name] = np.where(ok, old + v, old)


def effort_fit(s: WearState, key: str) -> tuple[F, F, F]:
    """The unit's fit of `effort_line` (n devices × the four coefficients, NaN before it
    has `MIN_EFFORT_DAYS` days) and the mean lift and mode it was fitted over."""
    xx, xy, (n_key, lift_key, mode_key) = _effort_sums(key)
    n_dev = len(s.device_ids)
    a = np.zeros((n_dev, _EFFORT_TERMS, _EFFORT_TERMS))
    for (i, j), name in zip(_PAIRS, xx, strict=True):
        a[:, i, j] = a[:, j, i] = np.nan_to_num(s[name])
    b = np.stack([np.nan_to_num(s[name]) for name in xy], axis=1)
    days = np.nan_to_num(s[n_key])
    with np.errstate(invalid="ignore", divide="ignore"):
        lift, mode = s[lift_key] / days, s[mode_key] / days
    ok = days >= MIN_EFFORT_DAYS
    coef = np.full((n_dev, _EFFORT_TERMS), np.nan)
    if ok.any():
        # a tiny ridge keeps a term the data never moves (no heating yet) at zero
        ridge = 1e-6 * (np.diagonal(a[ok], axis1=1, axis2=2) + 1.0)
        lhs = a[ok] + ridge[:, :, None] * np.eye(_EFFORT_TERMS)
        coef[ok] = np.linalg.solve(lhs, b[ok][:, :, None])[:, :, 0]
    return coef, lift, mode


def effort_rise(coef: F, lift: F, mode: F, used: F) -> F:
    """The share by which the filter has raised the unit's effort since it went in, at
    `used` fan hours and the conditions `lift`, `mode` (g·u of `effort_line`)."""
    base = clean_effort(coef, lift, mode)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = (coef[:, 2] * lift + coef[:, 3] * mode) / base
    return np.asarray(np.where(base > 0, g * used, np.nan))


def features(state: WearState, stage: str) -> F:
    """The regressor's inputs for a stage (n devices × FEATURES), NaN where unknown."""
    names = [name for name, _ in FEATURES[(state.device_type, stage)]]
    return np.column_stack([state[f"{stage}.{name}"] for name in names])


SIGNAL = {
    ("purifier", "main"): "current_ratio",
    ("water_purifier", "sediment"): "flow_ratio",
    ("water_purifier", "ro"): "rejection",
}


def signal(state: WearState, stage: str) -> tuple[F, F] | None:
    """(the stage's degradation signal today, its trend per day), if it has one."""
    name = SIGNAL.get((state.device_type, stage))
    if name is None:
        return None
    return state[f"{stage}.{name}"], state[f"{stage}.{name}_slope"]


def usage(state: WearState, stage: str) -> tuple[F, F]:
    """(usage since the change, usage per day) in the stage's own unit."""
    key = f"{stage}.{USAGE[(state.device_type, stage)]}"
    return state[key], state[key + "_rate"]


LONG_RUN_MIN_DAYS = 7.0  # before a week of history, the weekly rate stands in
RATED_MAX_DAYS = 3 * 365.0  # "years left" is what an idle unit's rated life says


def long_run_rate(state: WearState, key: str) -> F:
    """A usage's mean per day since the device was first seen (its weekly rate before it
    has a week of history): how a rated life turns into days without the last week's
    season or holiday deciding it."""
    days = state["tracked_days"]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = state[key + "_total"] / days
    return np.asarray(np.where(days >= LONG_RUN_MIN_DAYS, mean, state[key + "_rate"]))


def _per_day(left: F, rate: F) -> F:
    with np.errstate(invalid="ignore", divide="ignore"):
        days = np.where(rate > 0, left / rate, RATED_MAX_DAYS)
    return np.asarray(np.minimum(days, RATED_MAX_DAYS))


def rated_days(state: WearState, stage: str) -> F:
    """Days left by rated life, as the appliance reports it: run hours for a purifier,
    the lower of rated litres and months for a water purifier stage, fan hours for an
    air conditioner's filter, turned into days at the unit's long-run usage. The
    baseline every model report compares against."""
    if state.device_type == "purifier":
        left = P.PURIFIER_RATED_HOURS - state["main.used_hours"]
        return _per_day(left, long_run_rate(state, "main.used_hours"))
    if state.device_type == "air_conditioner":
        left = P.AC_FILTER_RATED_HOURS - state["main.fan_hours"]
        return _per_day(left, long_run_rate(state, "main.fan_hours"))
    with np.errstate(invalid="ignore", divide="ignore"):
        by_volume = _per_day(
            P.WATER_RATED_L[stage] - state[f"{stage}.litres"],
            long_run_rate(state, f"{stage}.litres"),
        )
        by_time = P.WATER_RATED_DAYS[stage] - state[f"{stage}.days"]
        return np.asarray(np.minimum(by_volume, by_time))


def snapshot(state: WearState, stage: str, i: int) -> dict[str, float | None]:
    """One device's wear features for a stage, by name (a label's features): what the
    regressor reads, plus usage, rate, days, time and trend."""
    out: dict[str, float | None] = {}
    for name, _ in FEATURES[(state.device_type, stage)]:
        out[name] = _num(state[f"{stage}.{name}"][i])
    used, rate = usage(state, stage)
    sig = signal(state, stage)
    out["usage"], out["rate"] = _num(used[i]), _num(rate[i])
    out["days"], out["asof"] = _num(state[f"{stage}.days"][i]), _num(state["asof"][i])
    out["trend"] = _num(sig[1][i]) if sig else None
    return out


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
