"""Filter life per device and stage: the share used up, the days left, and a predicted
exhaustion date with an uncertainty band.

Two steps, each where it is strongest:
1. **How worn is it now?** A scikit-learn regressor per stage
   (`HistGradientBoostingRegressor`, constrained to be monotonic where physics says so:
   more captured dose never means a fresher filter) maps the wear features of
   `models.wear` (captured dose, litres, run hours, days; motor current against the
   clean-filter current, product flow, RO rejection) to the consumed fraction. It learns
   from labelled history: simulator ground truth, and the filter state technicians
   record when they replace one (the feedback loop).
2. **When will it be spent?** The unit's own capacity, estimated as usage so far over
   the share used (the datasheet's nominal capacity while too little is used to tell),
   divided by its recent usage rate; a stage that also expires by age (carbon) takes the
   earlier of the two.

The band is split-conformal: the relative errors of the date on held-out devices,
by horizon, give the quantiles that make an 80 % band (`coverage`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingRegressor

from models.wear import (
    FEATURES,
    MAX_AGE_DAYS,
    SIGNAL,
    STAGES,
    WearState,
    features,
    rated_days,
    signal,
    usage,
)

F = NDArray[np.float64]
HORIZONS = (7.0, 14.0, 30.0, 60.0, np.inf)  # band buckets by predicted days left
MIN_SCALE_DAYS = 3.0  # relative errors are taken against at least this many days


# which feature column is the stage's degradation signal
SIGNAL_COLUMN = {
    key: [name for name, _ in FEATURES[key]].index(name) for key, name in SIGNAL.items()
}


def schema() -> list[str]:
    """The feature schema every filter-life version records (and is checked against)."""
    return [f"{t}.{s}.{name}" for (t, s), feats in FEATURES.items() for name, _ in feats]


@dataclass(frozen=True, slots=True)
class StagePrediction:
    device_type: str
    stage: str
    device_ids: list[str]
    consumed: F  # share used up now (1 = spent)
    days_left: F  # negative: past
    low: F  # the band's early end (days from now)
    high: F  # and its late end
    rated_days_left: F  # what rated life says (the baseline)


@dataclass
class StageModel:
    regressor: HistGradientBoostingRegressor  # wear features -> consumed share
    nominal: float  # usage a filter holds, median over training (the stage's unit)
    timing: HistGradientBoostingRegressor | None = None  # -> log(1 + days left)
    per_signal: float = float("nan")  # consumed share per unit of the degradation signal
    band: dict[float, tuple[float, float]] = field(default_factory=dict)  # horizon -> q_lo, q_hi
    rows: int = 0


@dataclass
class Snapshots:
    """Training rows of one stage: features, the consumed share (NaN: unlabelled),
    usage since the change and per day, days in service, and, where the run saw it, the
    days until the stage really was spent (NaN: not seen)."""

    X: F
    consumed: F
    usage: F
    rate: F
    days: F
    days_to_spent: F
    group: NDArray[np.int64]  # which device: the held-out split is by device
    asof: F  # epoch s of the row (the season matters: outdoor air, cooling and heating)
    trend: F  # the degradation signal's slope per day (NaN: the stage has none)

    @classmethod
    def from_labels(
        cls, key: tuple[str, str], rows: Sequence[tuple[Mapping[str, float | None], float]]
    ) -> Snapshots:
        """Field labels (a replaced filter's features and the state it was found in) as
        training rows; their date is unknown, so they teach the consumed share only."""

        def col(name: str) -> F:
            return np.array(
                [np.nan if f.get(name) is None else f[name] for f, _ in rows], dtype=float
            )

        names = [name for name, _ in FEATURES[key]]
        n = len(rows)
        return cls(
            np.column_stack([col(name) for name in names]) if n else np.zeros((0, len(names))),
            np.array([c for _, c in rows], dtype=float),
            col("usage"),
            col("rate"),
            col("days"),
            np.full(n, np.nan),
            -1 - np.arange(n, dtype=np.int64),  # never a simulated device
            col("asof"),
            col("trend"),
        )

    @classmethod
    def concat(cls, parts: list[Snapshots]) -> Snapshots:
        return cls(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__)
        )


def days_left(consumed: F, used: F, rate: F, days: F, nominal: float, max_age: float | None) -> F:
    """Days until the stage is spent, from its consumed share, usage so far and rate."""
    with np.errstate(invalid="ignore", divide="ignore"):
        own = used / consumed
        weight = np.clip((consumed - 0.1) / 0.3, 0.0, 1.0)
        capacity = np.where(
            np.isfinite(own) & (own > 0), weight * own + (1 - weight) * nominal, nominal
        )
        left = (1.0 - consumed) * capacity / np.maximum(rate, 1e-9 * nominal)
    if max_age is not None:
        left = np.minimum(left, max_age - days)
    return np.asarray(left)


def _timing_features(
    c: F, physical: F, rate: F, nominal: float, asof: F, trend: F, per_signal: float
) -> F:
    """What the date regressor sees: the two physical estimates (by usage, and by the
    degradation signal's trend), how worn, how fast, when."""
    angle = 2 * np.pi * ((asof / 86400.0) % 365.25) / 365.25
    with np.errstate(invalid="ignore", divide="ignore"):
        by_signal = (1 - c) / (trend * per_signal)
        # a stage without a signal gets a constant column (an all-NaN one upsets binning)
        by_signal = np.where(by_signal > 0, by_signal, np.nan if np.isfinite(per_signal) else 0.0)
        return np.column_stack(
            [
                np.log1p(np.clip(physical, 0, 3650)),
                np.log1p(np.clip(by_signal, 0, 3650)),
                c,
                np.log(np.maximum(rate / nominal, 1e-6)),
                np.sin(angle),
                np.cos(angle),
            ]
        )


class FilterLife:
    """The fitted filter-life model: one `StageModel` per device type and stage."""

    def __init__(self, coverage: float = 0.8) -> None:
        if not 0.5 <= coverage < 1:
            raise ValueError("coverage is the band's nominal rate: 0.5 <= coverage < 1")
        self.coverage = coverage
        self.stages: dict[tuple[str, str], StageModel] = {}
        self.label_rows: dict[tuple[str, str], int] = {}  # field labels in the last fit

    # -- fitting -------------------------------------------------------------------------
    def fit(
        self,
        data: Mapping[tuple[str, str], Snapshots],
        *,
        labels: Mapping[tuple[str, str], Snapshots] | None = None,
        label_weight: float = 20.0,
        calibrate_share: float = 0.25,
    ) -> FilterLife:
        """Fit every stage on `data` (simulated or replayed history). `labels` are the
        field's: filters technicians replaced, with the state they found them in. Each
        weighs `label_weight` simulated rows in the consumed-share regressor, since a
        fleet gives few of them and they are the real thing."""
        labels = labels or {}
        self.label_rows = {k: len(v.consumed) for k, v in labels.items()}
        for key, snap in data.items():
            labelled = np.isfinite(snap.consumed) & np.isfinite(snap.X).any(axis=1)
            held_out = (snap.group * 2654435761 % 1000) < calibrate_share * 1000
            fit_rows = labelled & ~held_out
            if fit_rows.sum() < 20:
                fit_rows = labelled  # too few devices to hold some out
            if fit_rows.sum() < 2:
                continue
            X, y = snap.X[fit_rows], np.clip(snap.consumed[fit_rows], 0.0, 1.5)
            # a feature no training row has (a unit's clean level needs a change seen and
            # days after it) would break the binning: constant, it is never split on
            X = np.where(np.isnan(X).all(axis=0), 0.0, X)
            weight = np.ones(len(y))
            field_rows = labels.get(key)
            if field_rows is not None and len(field_rows.consumed):
                X = np.vstack([X, field_rows.X])
                y = np.concatenate([y, np.clip(field_rows.consumed, 0.0, 1.5)])
                weight = np.concatenate([weight, np.full(len(field_rows.consumed), label_weight)])
            reg = HistGradientBoostingRegressor(
                max_iter=150,
                learning_rate=0.1,
                monotonic_cst=[d for _, d in FEATURES[key]],
                random_state=0,
            )
            reg.fit(X, y, sample_weight=weight)
            ok = fit_rows & (snap.consumed > 0.3) & (snap.consumed < 1.3) & (snap.usage > 0)
            nominal = float(np.median(snap.usage[ok] / snap.consumed[ok])) if ok.any() else 1.0
            model = StageModel(reg, nominal, rows=int(fit_rows.sum()))
            sig = SIGNAL_COLUMN.get(key)
            if sig is not None:  # consumed share per unit of signal: a straight-line fit
                mid = fit_rows & (snap.consumed > 0.2) & (snap.consumed < 1.2)
                mid &= np.isfinite(snap.X[:, sig])
                if mid.sum() > 10:
                    model.per_signal = float(np.polyfit(snap.X[mid, sig], snap.consumed[mid], 1)[0])
            self.stages[key] = model
            # the date: physics first, then a regressor that learns what it misses (the
            # season ahead, airflow falling as the filter loads) from the days it took
            timed = fit_rows & np.isfinite(snap.days_to_spent)
            if timed.sum() >= 200:
                c = self._consumed(key, snap.X[timed])
                physical = days_left(
                    c,
                    snap.usage[timed],
                    snap.rate[timed],
                    snap.days[timed],
                    nominal,
                    MAX_AGE_DAYS.get(key),
                )
                Z = _timing_features(
                    c,
                    physical,
                    snap.rate[timed],
                    nominal,
                    snap.asof[timed],
                    snap.trend[timed],
                    model.per_signal,
                )
                # every row, not only those the physics puts close: an air conditioner idle
                # between seasons has a usage rate near zero and a physical estimate of
                # years, yet is spent a few weeks into summer
                near = np.ones(len(physical), dtype=bool)
                timing = HistGradientBoostingRegressor(
                    max_iter=200,
                    learning_rate=0.1,
                    # more days by either physical estimate, more days; more worn or
                    # used faster, fewer; the season either way
                    monotonic_cst=[1, 1, -1, -1, 0, 0],
                    random_state=0,
                )
                timing.fit(Z[near], np.log1p(np.maximum(snap.days_to_spent[timed][near], 0)))
                model.timing = timing
            cal = held_out & np.isfinite(snap.days_to_spent) & np.isfinite(snap.X).any(axis=1)
            if cal.sum() < 20:
                cal = np.isfinite(snap.days_to_spent) & np.isfinite(snap.X).any(axis=1)
            self._calibrate(key, snap, cal)
        return self

    def _calibrate(self, key: tuple[str, str], snap: Snapshots, rows: NDArray[np.bool_]) -> None:
        model = self.stages[key]
        c = self._consumed(key, snap.X[rows])
        pred = self._days_left(
            key,
            c,
            snap.usage[rows],
            snap.rate[rows],
            snap.days[rows],
            snap.asof[rows],
            snap.trend[rows],
        )
        rel = (snap.days_to_spent[rows] - pred) / np.maximum(np.abs(pred), MIN_SCALE_DAYS)
        lo_q, hi_q = (1 - self.coverage) / 2, (1 + self.coverage) / 2
        ok = np.isfinite(pred) & np.isfinite(rel)
        if ok.sum() < 20:
            return  # no band without evidence: low = high = the point estimate
        pooled = (float(np.quantile(rel[ok], lo_q)), float(np.quantile(rel[ok], hi_q)))
        below = -np.inf
        for top in HORIZONS:
            r = rel[ok & (pred > below) & (pred <= top)]
            # a bucket with too few rows takes the quantiles of all of them
            model.band[top] = (
                (float(np.quantile(r, lo_q)), float(np.quantile(r, hi_q)))
                if len(r) >= 50
                else pooled
            )
            below = top

    # -- predicting ----------------------------------------------------------------------
    def _consumed(self, key: tuple[str, str], X: F) -> F:
        out = np.full(len(X), np.nan)
        known = np.isfinite(X).any(axis=1)
        if known.any():
            out[known] = self.stages[key].regressor.predict(X[known])
        return np.asarray(np.clip(out, 0.0, 1.5))

    def predict(self, state: WearState) -> list[StagePrediction]:
        out = []
        for stage in STAGES[state.device_type]:
            key = (state.device_type, stage)
            model = self.stages.get(key)
            if model is None:
                continue
            c = self._consumed(key, features(state, stage))
            used, rate = usage(state, stage)
            sig = signal(state, stage)
            trend = sig[1] if sig else np.full(len(c), np.nan)
            left = self._days_left(key, c, used, rate, state[f"{stage}.days"], state["asof"], trend)
            lo, hi = self._band(model, left)
            out.append(
                StagePrediction(
                    state.device_type,
                    stage,
                    state.device_ids,
                    c,
                    left,
                    lo,
                    hi,
                    rated_days(state, stage),
                )
            )
        return out

    def _days_left(
        self, key: tuple[str, str], c: F, used: F, rate: F, days: F, asof: F, trend: F
    ) -> F:
        model = self.stages[key]
        physical = days_left(c, used, rate, days, model.nominal, MAX_AGE_DAYS.get(key))
        if model.timing is None:
            return physical
        near = np.isfinite(c) & ~np.isnan(physical)
        out = physical.copy()
        if near.any():
            Z = _timing_features(
                c[near],
                physical[near],
                rate[near],
                model.nominal,
                asof[near],
                trend[near],
                model.per_signal,
            )
            out[near] = np.expm1(model.timing.predict(Z))
        # past the end: the physics says by how much; the regressor knows only "soon"
        out = np.where(c >= 1.0, np.minimum(out, physical), out)
        return np.asarray(np.clip(out, -3650, 3650))

    def _band(self, model: StageModel, left: F) -> tuple[F, F]:
        lo_q = np.zeros(len(left))
        hi_q = np.zeros(len(left))
        below = -np.inf
        for top in HORIZONS:
            q = model.band.get(top, (0.0, 0.0))
            bucket = (left > below) & (left <= top)
            lo_q[bucket], hi_q[bucket] = q
            below = top
        scale = np.maximum(np.abs(left), MIN_SCALE_DAYS)
        return np.asarray(left + lo_q * scale), np.asarray(left + hi_q * scale)
