"""The health model against the simulator's ground truth: faults caught, how soon, and
false alerts (`fleetcare evaluate --sim`, `fleetcare train`).

A fleet is simulated in process with a fault injected into a share of its devices (kind
uniform among the kinds the model covers, onset uniform in the run after a settling
margin); the rest stay healthy. Each day's readings are reduced exactly as the scoring
pass reads them from the store (`models.daily`), turned into the health relations
(`models.health.observe`) and, with a model, judged as the scoring pass judges them.

An alert is what the rules make of the scores: it starts on a day the score reaches 1
(the learned threshold) with a fault named (or "unknown"; a pattern the classifier
dismisses as no fault raises nothing) and lasts until the score falls below 0.8, and it
names the fault the classifier names on its first day. For each fault kind: a device
with that fault is *detected* when an alert naming it starts after the onset (the delay
is from the onset to the end of that day's scoring); an alert naming a kind the device
does not have (yet) is a *false* one.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from device_sim.faults import kinds_for
from device_sim.fleet import Fleet, FleetSpec
from device_sim.imperfection import Imperfection
from models.anomaly import fleet as general
from models.daily import QUERIES, DayReducer
from models.evaluation.filter_life import DAY_S, TICK_S, numeric, replace_spent
from models.health import HealthDay, HealthModel, observe
from models.verdicts import NONE
from models.wear import WearState, advance

CLEAR = 0.8  # the built-in rules' clear level for a model score
# the sensor trips by itself: the rules raise it within a batch (docs/rules.md)
NOT_MODELLED = frozenset({"leak"})


def modelled_kinds(device_type: str) -> list[str]:
    return [k.name for k in kinds_for(device_type) if k.name not in NOT_MODELLED]


@dataclass
class FaultRun:
    start: float
    days: int
    device_ids: dict[str, list[str]]
    history: dict[str, list[HealthDay]]
    faults: dict[str, list[tuple[str, float] | None]]  # per type, per device: (kind, onset)
    seconds: float
    # per type, per device: when the unit was installed (epoch s; the run's start for the
    # installed base): no healthy day, and no fault, before it
    installed: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    # per type, per day: devices × numeric metrics, what the general detector reads
    # (`models.anomaly.fleet.features`)
    daily: dict[str, list[NDArray[np.float64]]] = field(default_factory=dict)
    # per type, per metric of `daily`: watched, or a condition (`models.anomaly.fleet.watched`)
    watched: dict[str, list[bool]] = field(default_factory=dict)
    # per type, per device: its peer group (region), and per metric of `daily`: a counter
    regions: dict[str, NDArray[np.object_]] = field(default_factory=dict)
    counters: dict[str, list[bool]] = field(default_factory=dict)


def simulate_faults(
    devices: int,
    *,
    seed: int,
    days: int,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    faulty_share: float = 0.5,
    margin_days: int = 12,
    imperfection: Imperfection | None = None,
    progress: Callable[[int], None] | None = None,
    mix: Mapping[str, float] | None = None,
) -> FaultRun:
    """Simulate `devices` for `days`, a `faulty_share` of them given one fault with its
    onset between `margin_days` after the unit's install and `margin_days` before the
    end (`share_for_rate` turns a fault rate into the share). The fleet is as imperfect
    as a real one unless `imperfection` says otherwise."""
    began = time.perf_counter()
    t0 = start.timestamp()
    imp = imperfection if imperfection is not None else Imperfection()
    spec = FleetSpec(
        devices=devices,
        seed=seed,
        start=t0,
        physics_dt=TICK_S,
        initial_wear=0.9,
        fault_window_days=float(days),
        imperfection=imp,
    )
    if mix is not None:
        spec = dataclasses.replace(spec, mix=mix)
    fleet = Fleet.create(spec)
    profiles = spec.profiles()
    reported = fleet.columns()
    chosen = {t: general.metrics(profiles[t], reported[t]) for t in reported}
    rng = np.random.default_rng([seed, 99])
    types = list(fleet.groups)
    ids = {t: fleet.groups[t].ids for t in types}
    installed = {t: np.array([fleet.installed_at(d) for d in ids[t]]) for t in types}
    end_s = t0 + (days - margin_days) * DAY_S
    faults: dict[str, list[tuple[str, float] | None]] = {}
    for t in types:
        kinds = modelled_kinds(t)
        faults[t] = []
        for i, d in enumerate(ids[t]):
            if kinds and rng.random() < faulty_share:
                kind = kinds[int(rng.integers(len(kinds)))]
                first = max(t0 + margin_days * DAY_S, installed[t][i] + margin_days * DAY_S)
                onset = first + rng.uniform(0.0, 1.0) * max(end_s - first, 0.0)
                if first <= end_s:  # installed in time to have one
                    fleet.inject(d, kind, onset)
                    faults[t].append((kind, onset))
                    continue
            faults[t].append(None)
    truth = fleet.truth.devices
    groups = {t: np.array([truth[d].region for d in ids[t]]) for t in types}
    # the health model reads the families whose physics it knows; the general detector all
    modelled = [t for t in types if t in QUERIES]
    states = {t: WearState(t, ids[t]) for t in modelled}
    history: dict[str, list[HealthDay]] = {t: [] for t in types}
    daily: dict[str, list[NDArray[np.float64]]] = {t: [] for t in types}
    for day in range(days):
        reducers = {t: DayReducer(t, ids[t]) for t in modelled}
        generic = {t: DayReducer(t, ids[t], (general.query(chosen[t]),)) for t in types}
        for tick in range(int(DAY_S / TICK_S)):
            now = t0 + day * DAY_S + (tick + 1) * TICK_S
            before = {d: len(truth[d].exhaustions) for d in truth}
            fleet.advance(now)
            replace_spent(fleet, truth, before)
            for t, cols in fleet.columns().items():
                if t in reducers:
                    reducers[t].add(int(now * 1000), numeric(cols))
                generic[t].add(int(now * 1000), numeric(cols))
        end = t0 + (day + 1) * DAY_S
        for t in types:
            daily[t].append(general.features(generic[t].stats(), chosen[t]))
            if t not in reducers:
                continue
            stats = reducers[t].stats()
            changed = advance(states[t], stats)
            labels = np.array(
                [NONE if f is None or f[1] >= end else f[0] for f in faults[t]], dtype=object
            )
            history[t].append(observe(stats, groups[t], changed, labels))
        if progress:
            progress(day + 1)
    watched = {t: general.watched(profiles[t], chosen[t]) for t in chosen}
    return FaultRun(
        t0,
        days,
        ids,
        history,
        faults,
        time.perf_counter() - began,
        installed,
        daily,
        watched,
        {t: groups[t].astype(object) for t in types},
        {t: [c for _, c in chosen[t]] for t in chosen},
    )


def share_for_rate(per_100_device_years: float, days: int) -> float:
    """The share of devices to give a fault so a `days` run has `per_100_device_years`
    faults (each faulty device has one)."""
    return min(1.0, per_100_device_years / 100 * days / 365.25)


@dataclass
class KindQuality:
    device_type: str
    kind: str
    faults: int  # devices given it
    detected: int  # an alert naming it started after the onset
    false_alerts: int  # alerts naming it on devices without it (yet)
    delays_h: list[float] = field(default_factory=list)  # of the detected ones

    @property
    def precision(self) -> float:
        flagged = self.detected + self.false_alerts
        return self.detected / flagged if flagged else float("nan")

    @property
    def recall(self) -> float:
        return self.detected / self.faults if self.faults else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def median_delay_h(self) -> float:
        """Over every fault, a missed one counted as never detected: infinite when half
        or more were missed (NaN with no fault)."""
        return median_delay(self.delays_h, self.faults)

    def within(self, hours: float) -> float:
        """The share of faults named within `hours` of their onset."""
        return within(self.delays_h, self.faults, hours)


def median_delay(delays_h: list[float], faults: int) -> float:
    if not faults:
        return float("nan")
    every = sorted(delays_h) + [float("inf")] * (faults - len(delays_h))
    return float(np.median(every))


def within(delays_h: list[float], faults: int, hours: float) -> float:
    return sum(d <= hours for d in delays_h) / faults if faults else float("nan")


CURVE_H = (6, 12, 24, 48, 72, 7 * 24, 14 * 24, 30 * 24)  # the time-to-detection curve


@dataclass
class FaultQuality:
    kinds: list[KindQuality]
    healthy_device_days: float
    healthy_alerts: int  # alerts of any kind on healthy devices or before an onset
    devices: int | None = None  # judged, when not the case's fault fleet alone

    @property
    def false_per_1000(self) -> float:
        return (
            1000 * self.healthy_alerts / self.healthy_device_days
            if self.healthy_device_days
            else 0.0
        )

    def total(self) -> KindQuality:
        """Every kind together: the fleet's figures."""
        out = KindQuality("all", "all", 0, 0, 0)
        for k in self.kinds:
            out.faults += k.faults
            out.detected += k.detected
            out.false_alerts += k.false_alerts
            out.delays_h += k.delays_h
        return out

    def curve(self, hours: tuple[int, ...] = CURVE_H) -> list[tuple[int, float]]:
        """The share of every fault named within each of `hours` of its onset."""
        t = self.total()
        return [(h, t.within(h)) for h in hours]


def alerts(score: NDArray[np.float64], kind: NDArray[np.object_]) -> list[tuple[int, str]]:
    """(first day, named kind) of each alert in one device's day-by-day scores. A day
    the classifier dismissed (no fault named) raises nothing: no rule reads it."""
    out, on = [], False
    for d, s in enumerate(score):
        if not np.isfinite(s):
            continue
        if not on and s >= 1.0 and kind[d] != NONE:
            on = True
            out.append((d, str(kind[d])))
        elif on and s < CLEAR:
            on = False
    return out


def replay(
    model: HealthModel, run: FaultRun
) -> dict[str, tuple[NDArray[np.float64], NDArray[np.object_]]]:
    """Score every day of the run: per type, (days × devices scores, named kinds)."""
    out = {}
    for t, history in run.history.items():
        if t not in model.types:
            continue
        state = WearState(t, run.device_ids[t])
        days = [model.score(t, state, h) for h in history]
        out[t] = (np.array([d.score for d in days]), np.array([d.kind for d in days]))
    return out


def fault_quality(model: HealthModel, run: FaultRun) -> FaultQuality:
    scored = replay(model, run)
    table = {(t, k): KindQuality(t, k, 0, 0, 0) for t in scored for k in modelled_kinds(t)}
    healthy_days, healthy_alerts = 0.0, 0
    for t, (score, kind) in scored.items():
        installed = run.installed.get(t, np.full(len(run.faults[t]), run.start))
        for i, fault in enumerate(run.faults[t]):
            onset_day = (fault[1] - run.start) / DAY_S if fault else float(run.days)
            from_day = max(0.0, (installed[i] - run.start) / DAY_S)  # no day before install
            healthy_days += max(0.0, min(onset_day, run.days) - from_day)
            if fault:
                table[(t, fault[0])].faults += 1
            found = False
            for d, named in alerts(score[:, i], kind[:, i]):
                end_day = d + 1
                active = fault is not None and end_day > onset_day
                if active and fault is not None and named == fault[0]:
                    if not found:
                        table[(t, named)].detected += 1
                        table[(t, named)].delays_h.append((end_day - onset_day) * 24)
                        found = True
                    continue
                if not active:
                    healthy_alerts += 1
                if (t, named) in table:
                    table[(t, named)].false_alerts += 1
    return FaultQuality(list(table.values()), healthy_days, healthy_alerts)
