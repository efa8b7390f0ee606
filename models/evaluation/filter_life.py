"""Filter-life models against the simulator's ground truth (`fleetcare evaluate --sim`).

A fleet is simulated for a year (accelerated, in-process), its readings reduced day by
day exactly as the scoring pass reads them from the store (`models.daily`), folded into
the wear state (`models.wear`) and, when a model is given, scored every day. Filters are
replaced the moment they are spent, so every exhaustion's true date is known; the
service policy (a job when the prediction says 14 days or less, a visit booked before
the predicted date) is then replayed on the day-by-day predictions to count what it
would have caught, late or early.

Training uses one seed, evaluation another: the held-out fleet is new homes and new units.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from device_sim.environment import REGIONS
from device_sim.fleet import Fleet, FleetSpec
from device_sim.imperfection import Imperfection
from device_sim.truth import DeviceTruth, Exhaustion
from models.daily import DayReducer
from models.filter_life import FilterLife, Snapshots
from models.wear import STAGES, WearState, advance, features, signal, usage

DAY_S = 86400.0
TICK_S = 900.0  # one reading per device every 15 minutes, as the demo fleet reports
JOB_BELOW_DAYS = 14.0  # the built-in rule: a job when the filter is predicted spent within
PREMATURE_LEFT = 0.30  # a replacement with more life than this left is premature
F = NDArray[np.float64]
Key = tuple[str, str]


@dataclass
class StageLog:
    """Day-by-day record of one stage over the run: rows are days, columns devices."""

    consumed: list[F] = field(default_factory=list)  # truth at the day's end
    predicted: list[F] = field(default_factory=list)  # model: days left
    low: list[F] = field(default_factory=list)
    high: list[F] = field(default_factory=list)
    rated: list[F] = field(default_factory=list)  # rated life: days left
    spent: list[list[float]] = field(default_factory=list)  # per device: epoch s when spent


@dataclass
class SimRun:
    start: float
    days: int
    device_ids: dict[str, list[str]]
    polluted: dict[str, NDArray[np.bool_]]  # per type: smoker or north (purifier homes)
    snapshots: dict[Key, Snapshots]
    logs: dict[Key, StageLog]
    seconds: float
    # per type, per device: the run's day the unit was installed on (0: the installed base)
    installed_day: dict[str, NDArray[np.int_]] = field(default_factory=dict)


def simulate(
    devices: int,
    *,
    seed: int,
    days: int,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    model: FilterLife | None = None,
    mix: dict[str, float] | None = None,
    imperfection: Imperfection | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimRun:
    """Run a fleet for `days` and collect training rows (and, with a model, predictions).
    The fleet is as imperfect as a real one unless `imperfection` says otherwise (late
    installs are spread over the run)."""
    began = time.perf_counter()
    t0 = start.timestamp()
    spec = FleetSpec(
        devices=devices,
        seed=seed,
        start=t0,
        physics_dt=TICK_S,
        initial_wear=0.95,
        fault_window_days=float(days),
        imperfection=imperfection if imperfection is not None else Imperfection(),
    )
    if mix:
        spec = replace(spec, mix=mix)
    fleet = Fleet.create(spec)
    types = list(fleet.groups)
    ids = {t: fleet.groups[t].ids for t in types}
    states = {t: WearState(t, ids[t]) for t in types}
    keys = [(t, s) for t in types for s in STAGES[t]]
    logs = {k: StageLog(spent=[[] for _ in ids[k[0]]]) for k in keys}
    parts: dict[Key, list[Snapshots]] = {k: [] for k in keys}
    truth = fleet.truth.devices
    index = {d: (t, i) for t in types for i, d in enumerate(ids[t])}
    for day in range(days):
        reducers = {t: DayReducer(t, ids[t]) for t in types}
        for tick in range(int(DAY_S / TICK_S)):
            now = t0 + day * DAY_S + (tick + 1) * TICK_S
            before = {d: len(truth[d].exhaustions) for d in truth}
            fleet.advance(now)
            for d, e in replace_spent(fleet, truth, before):
                t, i = index[d]
                logs[(t, e.stage)].spent[i].append(e.at)
            for t, cols in fleet.columns().items():
                reducers[t].add(int(now * 1000), numeric(cols))
        end = t0 + (day + 1) * DAY_S
        consumed = fleet.consumed()
        for t in types:
            advance(states[t], reducers[t].stats())
            predictions = {p.stage: p for p in model.predict(states[t])} if model else {}
            for stage in STAGES[t]:
                key = (t, stage)
                used, rate = usage(states[t], stage)
                n = len(ids[t])
                sig = signal(states[t], stage)
                trend = sig[1] if sig else np.full(n, np.nan)
                parts[key].append(
                    Snapshots(
                        features(states[t], stage),
                        consumed[t][stage].copy(),
                        used.copy(),
                        rate.copy(),
                        states[t][f"{stage}.days"].copy(),
                        np.full(n, end),  # replaced by days-to-spent below
                        np.arange(n, dtype=np.int64) + seed * 10_000_000,
                        np.full(n, end),
                        trend.copy(),
                    )
                )
                log = logs[key]
                log.consumed.append(consumed[t][stage].copy())
                if stage in predictions:
                    p = predictions[stage]
                    log.predicted.append(p.days_left)
                    log.low.append(p.low)
                    log.high.append(p.high)
                    log.rated.append(p.rated_days_left)
        if progress:
            progress(day + 1)
    snapshots = {}
    for key, rows in parts.items():
        snap = Snapshots.concat(rows)
        snap.days_to_spent = _days_to_spent(snap.days_to_spent, logs[key], len(ids[key[0]]))
        snapshots[key] = snap
    polluted = {
        t: np.array([truth[d].smoker or truth[d].region == REGIONS[0] for d in ids[t]])
        for t in types
    }
    installed_day = {
        t: np.array([int((fleet.installed_at(d) - t0) // DAY_S) for d in ids[t]]) for t in types
    }
    return SimRun(
        t0,
        days,
        ids,
        polluted,
        snapshots,
        logs,
        time.perf_counter() - began,
        installed_day,
    )


def numeric(cols: dict[str, np.ndarray]) -> dict[str, F]:
    out = {}
    for name, values in cols.items():
        if values.dtype.kind in "fiub":
            out[name] = values.astype(np.float64)
        elif values.dtype == object:  # a sensor dropout leaves None
            try:
                out[name] = np.array([np.nan if v is None else float(v) for v in values])
            except (TypeError, ValueError):
                continue
    return out


def replace_spent(
    fleet: Fleet, truth: dict[str, DeviceTruth], before: dict[str, int]
) -> list[tuple[str, Exhaustion]]:
    """Fit a new filter the moment one is spent (`before`: each device's exhaustions
    already handled): every exhaustion's date is then known. Returns the new ones."""
    by_stage: dict[str, list[str]] = {}
    found = []
    for d, n in before.items():
        for e in truth[d].exhaustions[n:]:
            found.append((d, e))
            by_stage.setdefault(e.stage, []).append(d)
    for stage, devices in by_stage.items():
        fleet.replace_filters(devices, stage)
    return found


def _days_to_spent(ends: F, log: StageLog, n: int) -> F:
    """For each row (day-major, n devices a day), days until that device's next spent
    date; NaN when the run ended first."""
    out = np.full(len(ends), np.nan)
    days = len(ends) // n
    for i in range(n):
        spent = np.array(sorted(log.spent[i]))
        if len(spent) == 0:
            continue
        rows = np.arange(days) * n + i
        nxt = np.searchsorted(spent, ends[rows], side="left")
        ok = nxt < len(spent)
        out[rows[ok]] = (spent[nxt[ok]] - ends[rows[ok]]) / DAY_S
    return out


# -- the report's figures -----------------------------------------------------------------
@dataclass
class StageQuality:
    key: Key
    exhaustions: int
    mae: dict[int, float]  # horizon days -> MAE of the model's date
    mae_rated: dict[int, float]
    mae_polluted: dict[int, float]
    mae_rated_polluted: dict[int, float]
    band_coverage: float  # share of band predictions (≤ 30 days out) holding the truth
    covered: float  # share of exhaustions whose job opened >= 3 days ahead, visit before
    premature: float  # share of jobs (every one visited in the run) with > 30 % life left
    late: float  # share of jobs on filters that got spent whose visit came after
    covered_rated: float
    premature_rated: float
    jobs: int = 0  # jobs the model's predictions opened and visited within the run


SETTLE_DAYS = 7  # a device's first week: its wear state is still new


@dataclass
class JobPolicy:
    """The job policy replayed on one series of predictions, over every filter life."""

    covered: list[bool] = field(default_factory=list)  # per exhaustion
    premature: list[bool] = field(default_factory=list)  # per job visited in the run
    late: list[bool] = field(default_factory=list)  # per job on a life that got spent

    def life(
        self,
        series: F,
        consumed: F,
        i: int,
        first_day: int,
        last_day: int,
        spent: float | None,
        start: float,
    ) -> None:
        """One filter life, judged from `first_day` to `last_day` (run days); `spent` is
        when it was spent, None when it was still in service at the run's end."""
        window = series[first_day : last_day + 1, i] if last_day >= first_day else series[:0, i]
        below = np.flatnonzero(window <= JOB_BELOW_DAYS)
        if len(below) == 0:
            if spent is not None:
                self.covered.append(False)
            return
        d = first_day + int(below[0])
        opened = start + (d + 1) * DAY_S
        # the visit: booked before the predicted date, within a week, not today
        visit_day = d + 1 + int(np.clip(series[d, i] - 2, 1, 7))
        visit = start + (visit_day + 1) * DAY_S
        in_run = visit_day < len(consumed)
        if spent is not None:
            self.covered.append(spent - opened >= 3 * DAY_S and visit <= spent)
            self.late.append(visit > spent)
            if visit > spent:
                self.premature.append(False)  # the filter was spent: nothing premature
                return
        if in_run:
            self.premature.append(bool(1 - consumed[visit_day, i] > PREMATURE_LEFT))

    def share(self, which: str) -> float:
        rows: list[bool] = getattr(self, which)
        return float(np.mean(rows)) if rows else float("nan")


def quality(run: SimRun, horizons: tuple[int, ...] = (30, 14, 7)) -> list[StageQuality]:
    """The figures of docs/model-quality.md's protocol for every stage of the run: the
    date error from the scoring pass `horizons` days before each exhaustion (the model's
    and rated life's), the band's coverage, and the job policy replayed on every filter
    life, those still in service at the run's end included. A unit's first week after
    its install is left out: its wear state is still new."""
    out = []
    for key, log in run.logs.items():
        if not log.predicted:
            continue
        pred, low, high, rated = (
            np.array(x) for x in (log.predicted, log.low, log.high, log.rated)
        )
        consumed = np.array(log.consumed)
        polluted = run.polluted[key[0]]
        n_dev = len(run.device_ids[key[0]])
        installed = run.installed_day.get(key[0], np.zeros(n_dev, dtype=int))
        errs: dict[int, list[tuple[float, float, bool]]] = {h: [] for h in horizons}
        hits, total = 0, 0
        jobs = {"model": JobPolicy(), "rated": JobPolicy()}
        for i, spent_list in enumerate(log.spent):
            settled = int(installed[i]) + SETTLE_DAYS
            prev_spent = -np.inf
            for spent in [*spent_list, None]:
                first_day = int(max(np.ceil((prev_spent - run.start) / DAY_S), settled))
                if spent is None:  # the life in service at the run's end
                    for name, series in (("model", pred), ("rated", rated)):
                        jobs[name].life(
                            series, consumed, i, first_day, len(pred) - 1, None, run.start
                        )
                    break
                day_spent = (spent - run.start) / DAY_S
                for h in horizons:
                    d = int(np.floor(day_spent - h)) - 1  # the last scoring at or before T-h
                    end = run.start + (d + 1) * DAY_S
                    if d < settled or end <= prev_spent:
                        continue  # not in this filter's life, or the state is still new
                    true_left = (spent - end) / DAY_S
                    errs[h].append(
                        (abs(pred[d, i] - true_left), abs(rated[d, i] - true_left), polluted[i])
                    )
                last_day = int(np.floor(day_spent)) - 1
                if first_day <= last_day:
                    for name, series in (("model", pred), ("rated", rated)):
                        jobs[name].life(series, consumed, i, first_day, last_day, spent, run.start)
                prev_spent = spent
        # band coverage: every day's band up to 30 days out, against the truth
        for i, spent_list in enumerate(log.spent):
            dates = np.array(sorted(spent_list))
            if len(dates) == 0:
                continue
            ends = run.start + (np.arange(len(pred)) + 1) * DAY_S
            nxt = np.searchsorted(dates, ends)
            ok = (nxt < len(dates)) & (np.arange(len(pred)) >= int(installed[i]) + SETTLE_DAYS)
            actual = np.where(ok, (dates[np.minimum(nxt, len(dates) - 1)] - ends) / DAY_S, np.nan)
            near = ok & (pred[:, i] <= 30) & np.isfinite(pred[:, i])
            hits += int(((low[near, i] <= actual[near]) & (actual[near] <= high[near, i])).sum())
            total += int(near.sum())

        def mae(
            h: int,
            which: int,
            only_polluted: bool = False,
            errs: dict[int, list[tuple[float, float, bool]]] = errs,
        ) -> float:
            rows = [
                e[which] for e in errs[h] if (e[2] or not only_polluted) and np.isfinite(e[which])
            ]
            return float(np.mean(rows)) if rows else float("nan")

        out.append(
            StageQuality(
                key=key,
                exhaustions=sum(len(s) for s in log.spent),
                mae={h: mae(h, 0) for h in horizons},
                mae_rated={h: mae(h, 1) for h in horizons},
                mae_polluted={h: mae(h, 0, True) for h in horizons},
                mae_rated_polluted={h: mae(h, 1, True) for h in horizons},
                band_coverage=hits / total if total else float("nan"),
                covered=jobs["model"].share("covered"),
                premature=jobs["model"].share("premature"),
                late=jobs["model"].share("late"),
                covered_rated=jobs["rated"].share("covered"),
                premature_rated=jobs["rated"].share("premature"),
                jobs=len(jobs["model"].premature),
            )
        )
    return out


TARGETS = {
    "mae14": 2.0,  # days, at 14 days before exhaustion
    "polluted_ratio": 3.0,  # rated-hours MAE over ours, polluted homes
    "covered": 0.95,
    "premature": 0.05,
}
