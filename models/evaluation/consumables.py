"""Consumable life of the families known only from their profiles, against the
simulator's ground truth (`fleetcare evaluate --sim`).

A fleet of one such family runs for a year from its profile alone (`device_sim.generic`);
its readings are reduced day by day exactly as the scoring pass reads them from the store
(`models.daily` with the family's driver queries), folded and predicted by
`models.consumables` every day. A consumable is replaced the moment it is spent (and the
replacement recorded, as the service loop would), so every exhaustion's true date is
known. Each is then judged by the prediction made 14 days before it: the date's error, the
80 % band's coverage, and the rule of thumb's error (the rating at the fleet's typical
rate) on the same exhaustions. The built-in job policy is replayed on every consumable's
life as for the filter-life models (`models.evaluation.filter_life.JobPolicy`): a job when
it is predicted spent within 14 days, its visit booked before the date; covered when the
job opened at least 3 days ahead and the visit came before the end, premature when the
visit found more than 30 % left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from device_sim.fleet import Fleet, FleetSpec
from models import consumables
from models.consumables import ConsumableState
from models.daily import DayReducer
from models.evaluation.filter_life import JobPolicy

SETTLE_DAYS = 7  # a unit's first week: its own rate is not known yet

DAY_S = 86400.0
TICK_S = 1800.0
HORIZON_DAYS = 14


@dataclass(frozen=True)
class FamilyQuality:
    family: str
    stage: str
    devices: int
    days: int
    exhaustions: int  # judged: with a prediction made HORIZON_DAYS before
    mae_days: float
    mae_rule_days: float  # the rating at the fleet's typical rate
    band_coverage: float
    seconds: float
    covered: float = float("nan")  # exhaustions with a job >= 3 days ahead, visit before
    premature: float = float("nan")  # jobs whose visit found > 30 % left
    covered_rule: float = float("nan")  # the same policy on the rule of thumb's dates
    premature_rule: float = float("nan")


def _float(column: object) -> np.ndarray:
    """A reading round's column as floats (a dropped-out reading is None: NaN)."""
    values = np.asarray(column, dtype=object)
    out = np.full(values.shape, np.nan)
    ok = np.array([v is not None and not isinstance(v, str) for v in values])
    out[ok] = values[ok].astype(float)
    return out


def evaluate_family(
    family: str,
    devices: int,
    days: int,
    seed: int,
    *,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    progress: Callable[[int], None] | None = None,
) -> list[FamilyQuality]:
    """Simulate `devices` of `family` for `days` and judge its consumables' predictions."""
    began = time.perf_counter()
    spec = FleetSpec(
        devices=devices,
        seed=seed,
        start=start.timestamp(),
        physics_dt=TICK_S,
        initial_wear=0.9,
        mix={family: 1.0},
        fault_window_days=float(days),  # late installs spread over the run
    )
    fleet = Fleet.create(spec)
    profile = spec.profiles()[family]
    ids = fleet.ids
    qs = consumables.queries(profile)
    state = ConsumableState(family, ids, {})
    # per stage, per day: predicted date, band and rule-of-thumb date (epoch s)
    made: dict[str, list[tuple[np.ndarray, ...]]] = {c.stage: [] for c in profile.doc.consumables}
    # per stage, per day: days left (ours, the rule's) and the truth's share used up
    left: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {
        c.stage: [] for c in profile.doc.consumables
    }
    share: dict[str, list[np.ndarray]] = {c.stage: [] for c in profile.doc.consumables}
    truth: dict[str, list[tuple[int, float]]] = {c.stage: [] for c in profile.doc.consumables}
    t = spec.start
    for day in range(days):
        reducer = DayReducer(family, ids, qs)
        for _ in range(int(DAY_S / TICK_S)):
            t += TICK_S
            fleet.advance(t)
            cols = fleet.columns()[family]
            reducer.add(int(t * 1000), {m: _float(v) for m, v in cols.items()})
            for stage, spent_at in fleet.groups[family].stage_exhaustion().items():
                spent = np.flatnonzero(~np.isnan(spent_at))
                if spent.size:  # replaced at once, and the replacement recorded
                    truth[stage] += [(int(i), float(spent_at[i])) for i in spent]
                    fleet.replace_filters([ids[i] for i in spent], stage)
                    mask = np.zeros(len(ids), dtype=bool)
                    mask[spent] = True
                    consumables.restart(state, stage, mask, t)
        consumables.fold(profile, state, reducer.stats())
        for p in consumables.predict(profile, state):
            asof = state["c.asof"]
            made[p.stage].append(
                tuple(asof + x * DAY_S for x in (p.days_left, p.low, p.high, p.rated_days_left))
            )
            left[p.stage].append((p.days_left.copy(), p.rated_days_left.copy()))
        for stage, used_up in fleet.groups[family].model.consumed().items():
            share[stage].append(np.asarray(used_up, dtype=float).copy())
        if progress:
            progress(day + 1)
    out = []
    for c in profile.doc.consumables:
        errors: list[float] = []
        rule: list[float] = []
        covered: list[bool] = []
        for i, at in truth[c.stage]:
            day = int((at - HORIZON_DAYS * DAY_S - spec.start) // DAY_S)
            if day < 7:  # a week of the unit's own usage at least
                continue
            when, lo, hi, rule_at = (float(x[i]) for x in made[c.stage][day])
            if not np.isfinite(when):
                continue
            errors.append(abs(when - at) / DAY_S)
            rule.append(abs(rule_at - at) / DAY_S)
            covered.append(lo <= at <= hi)
        policy = {"ours": JobPolicy(), "rule": JobPolicy()}
        ours = np.array([x for x, _ in left[c.stage]])
        rule_left = np.array([r for _, r in left[c.stage]])
        used_up = np.array(share[c.stage])
        ends: dict[int, list[float]] = {}
        for i, at in truth[c.stage]:
            ends.setdefault(i, []).append(at)
        for i in range(len(ids)):
            first = SETTLE_DAYS
            life_ends: list[float | None] = [*sorted(ends.get(i, [])), None]
            for end in life_ends:
                last = days - 1 if end is None else int((end - spec.start) // DAY_S)
                for name, series in (("ours", ours), ("rule", rule_left)):
                    policy[name].life(series, used_up, i, first, last, end, spec.start)
                first = last + 1
        out.append(
            FamilyQuality(
                family=family,
                stage=c.stage,
                devices=devices,
                days=days,
                exhaustions=len(errors),
                mae_days=float(np.mean(errors)) if errors else float("nan"),
                mae_rule_days=float(np.mean(rule)) if rule else float("nan"),
                band_coverage=float(np.mean(covered)) if covered else float("nan"),
                seconds=time.perf_counter() - began,
                covered=policy["ours"].share("covered"),
                premature=policy["ours"].share("premature"),
                covered_rule=policy["rule"].share("covered"),
                premature_rule=policy["rule"].share("premature"),
            )
        )
    return out


def render(results: list[FamilyQuality], seed: int) -> str:
    """The report's section on the families known from their profiles alone."""
    lines = [
        "## Families known only from their profiles: consumable life",
        "",
        "Each family simulated from its profile alone (`device_sim.generic`) for a year, its "
        "consumables predicted every day from their declared drivers (`models.consumables`), "
        "and judged by the prediction made 14 days before each exhaustion. The rule of thumb "
        "is the rating at the fleet's typical rate. Jobs: the built-in policy replayed on "
        "every consumable's life (a job when predicted spent within 14 days; covered: it "
        "opened at least 3 days ahead and its visit came before the end; premature: the "
        "visit found more than 30 % left), on our dates and on the rule of thumb's. Seed "
        f"{seed}.",
        "",
        "| family | stage | devices × days | exhaustions judged | MAE at 14 d | rule of thumb "
        "| 80 % band holds | jobs covered / premature | the rule's |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def pct(x: float) -> str:
        return "–" if np.isnan(x) else f"{100 * x:.0f} %"

    for q in results:
        lines.append(
            f"| {q.family} | {q.stage} | {q.devices} × {q.days} | {q.exhaustions} | "
            f"{q.mae_days:.1f} d | {q.mae_rule_days:.1f} d | {100 * q.band_coverage:.0f} % | "
            f"{pct(q.covered)} / {pct(q.premature)} | "
            f"{pct(q.covered_rule)} / {pct(q.premature_rule)} |"
        )
    return "\n".join(lines) + "\n"
