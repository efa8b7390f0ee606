"""Device health: faults caught as a device departing from its own physics.

Each device type declares a few physical relations (`RELATIONS`), each a number per
device and day read from the day's stats (`models.daily`): motor current against the
clean-filter current at the same fan level, salt passage (TDS out against TDS in),
supply-air ΔT, power and refrigerant pressures while cooling or heating, the share of
missing readings on the main sensor. A relation is compared with what it should be:
* **operating conditions** (`context`): a fleet regressor, trained on healthy
  device-days, predicts it from compressor frequency, outdoor and room temperature;
* **peers** (`peer`): the median of the device's neighbours that day (the same
  territory), which takes the weather out of an indoor PM2.5 reading;
* then the **device's own baseline**: an exponentially weighted mean of its residual
  over its normal days (a day far off the baseline does not move it), restarted when a
  filter is changed. The deviation from it, in units of the fleet's robust spread, is
  the relation's z-score; smoothed over the last few days it is a second feature, where
  a slow fault builds up.

On the z-scores, a multivariate detector (`RobustResidualDetector`) gives the score and
keeps its learned threshold apart (`score_samples` vs `offset_`); the published score is
scaled so that 1 is that threshold. Where it is anomalous, a classifier trained on
labelled faults (simulator truth, confirmed work-order outcomes) names the likely fault.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from models.daily import DayStats
from models.detectors import RobustResidualDetector
from models.verdicts import NONE
from models.wear import WearState, purifier_day

F = NDArray[np.float64]
MIN_READINGS = 8  # a mode run shorter than two hours of readings says too little
MIN_PEERS = 5
TAIL = 0.999  # each relation scaled by its healthy tail: no heavy tail sets the threshold
UNKNOWN = "unknown"  # anomalous, but not like any fault it was trained on
DISMISS = 0.7  # the classifier this sure an anomaly is no fault: no diagnosis


@dataclass(frozen=True, slots=True)
class Relation:
    name: str
    value: Callable[[DayStats], F]
    context: Callable[[DayStats], F] | None = None  # n × k operating conditions
    peer: bool = False
    floor: float = 1e-3  # the smallest spread: a relation that never moves in health


def _c(day: DayStats, query: str, metric: str, stat: str) -> F:
    return day.col(query, metric, stat)


def _enough(day: DayStats, query: str, metric: str) -> NDArray[np.bool_]:
    return np.asarray(np.nan_to_num(_c(day, query, metric, "count")) >= MIN_READINGS)


def _log(x: F) -> F:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.log(np.where(x > 0, x, np.nan)))


def _missing(query: str, metric: str, counter: str) -> Callable[[DayStats], F]:
    """The share of the day's readings where the sensor reported nothing."""

    def value(day: DayStats) -> F:
        n = _c(day, query, counter, "count")
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(np.where(n > 0, 1 - _c(day, query, metric, "count") / n, np.nan))

    return value


def _peak(query: str, metric: str) -> Callable[[DayStats], F]:
    """How far the day's top reading stands above its mean (spikes)."""

    def value(day: DayStats) -> F:
        return np.log1p(np.abs(_c(day, query, metric, "max"))) - np.log1p(
            np.abs(_c(day, query, metric, "mean"))
        )

    return value


def _mean(query: str, metric: str, log: bool = True) -> Callable[[DayStats], F]:
    def value(day: DayStats) -> F:
        x = np.where(_enough(day, query, metric), _c(day, query, metric, "mean"), np.nan)
        return _log(x) if log else np.asarray(x)

    return value


def _purifier_current(day: DayStats) -> F:
    return _log(purifier_day(day)[1])


def _pm_floor(day: DayStats) -> F:
    # the day's cleanest reading: no cooking or smoke in it, the outdoor air's share of
    # the room (which the peers' median takes out) and the sensor's own bias
    pm = np.where(_enough(day, "all", "pm25"), _c(day, "all", "pm25", "min"), np.nan)
    return np.asarray(np.log1p(pm))


def _pm_spread(day: DayStats) -> F:
    return np.asarray(np.log1p(_c(day, "all", "pm25", "max") - _c(day, "all", "pm25", "min")))


def _passage(day: DayStats) -> F:
    return np.asarray(
        np.log1p(_c(day, "all", "tds_out_ppm", "mean"))
        - np.log1p(_c(day, "all", "tds_in_ppm", "mean"))
    )


def _conditions(mode: str) -> Callable[[DayStats], F]:
    def context(day: DayStats) -> F:
        means = [
            _c(day, mode, m, "mean") for m in ("compressor_hz", "outdoor_temp_c", "room_temp_c")
        ]
        # how long it ran: a short run's means are noisier
        return np.column_stack([*means, _c(day, mode, "compressor_hz", "count")])

    return context


def _delta_t(mode: str) -> Callable[[DayStats], F]:
    def value(day: DayStats) -> F:
        dt = np.abs(
            _c(day, mode, "room_temp_c", "mean") - _c(day, mode, "supply_air_temp_c", "mean")
        )
        return np.asarray(np.where(_enough(day, mode, "compressor_hz"), dt, np.nan))

    return value


def _circuit(mode: str) -> tuple[Relation, ...]:
    ctx = _conditions(mode)
    return (
        Relation(f"{mode}_delta_t", _delta_t(mode), ctx, floor=0.05),
        Relation(f"{mode}_power", _mean(mode, "power_w"), ctx),
        Relation(f"{mode}_suction", _mean(mode, "suction_pressure_kpa"), ctx),
        Relation(f"{mode}_discharge", _mean(mode, "discharge_pressure_kpa"), ctx),
        Relation(f"{mode}_fan", _mean(mode, "indoor_fan_rpm")),
    )


RELATIONS: Mapping[str, tuple[Relation, ...]] = {
    "purifier": (
        Relation("current", _purifier_current),
        Relation("pm_floor", _pm_floor, peer=True),
        Relation("pm_spread", _pm_spread, floor=0.05),
        Relation("pm_missing", _missing("all", "pm25", "filter_used_hours"), floor=0.02),
        Relation("pm_peak", _peak("all", "pm25"), floor=0.05),
    ),
    "water_purifier": (
        Relation("salt_passage", _passage),
        Relation("pressure", _mean("all", "pressure_kpa")),
        Relation("pump_current", _mean("all", "pump_current_ma")),
        Relation("tds_missing", _missing("all", "tds_out_ppm", "volume_total_l"), floor=0.02),
        Relation("tds_peak", _peak("all", "tds_out_ppm"), floor=0.05),
    ),
    "air_conditioner": (
        *_circuit("cool"),
        *_circuit("heat"),
        Relation("room_missing", _missing("all", "room_temp_c", "filter_used_hours"), floor=0.02),
        Relation("room_peak", _peak("all", "room_temp_c"), floor=0.05),
    ),
}


def schema(device_type: str) -> list[str]:
    return [r.name for r in RELATIONS[device_type]]


def features(device_type: str) -> list[str]:
    """The detector's and classifier's inputs: each relation's deviation today and
    smoothed over the last few days."""
    names = schema(device_type)
    return [*names, *(f"{n}.smoothed" for n in names)]


@dataclass
class FieldLabels:
    """Technicians' verdicts: each device's deviations (`features` order, NaN where not
    seen) on the day its job was completed, and what it really had ("none": no fault)."""

    deviations: F
    kinds: NDArray[Any]


def full_schema() -> list[str]:
    """Every type's relations: the feature schema a saved version is checked against."""
    return [f"{t}.{name}" for t in RELATIONS for name in schema(t)]


@dataclass
class HealthDay:
    """One day of a type's devices, reduced to the relations: what scoring and training
    both read. `labels` (the fault each device had that day, or "none") only in training."""

    device_type: str
    values: F  # n × relations
    context: dict[str, F]  # relation -> n × k
    groups: NDArray[Any]  # each device's peer group (territory)
    changed: NDArray[np.bool_]  # a filter was changed that day
    labels: NDArray[Any] | None = None


def observe(
    day: DayStats,
    groups: NDArray[Any],
    changed: NDArray[np.bool_],
    labels: NDArray[Any] | None = None,
) -> HealthDay:
    rels = RELATIONS[day.device_type]
    values = np.column_stack([r.value(day) for r in rels]).astype(np.float64)
    context = {r.name: r.context(day) for r in rels if r.context is not None}
    return HealthDay(day.device_type, values, context, np.asarray(groups), changed, labels)


@dataclass
class HealthScores:
    """One day's verdict per device: `score` (1 = the learned threshold; NaN while the
    device's baseline is still forming), the relations' z-scores, the likely fault and
    the classifier's confidence in it."""

    device_ids: list[str]
    score: F
    z: F
    kind: NDArray[Any]
    confidence: F

    def outputs(self, kinds: Sequence[str]) -> dict[str, dict[str, float]]:
        """Per device, `score` and one output per fault kind: the score where that kind
        is the likely fault, else 0 (what the rules' `prediction` conditions read)."""
        out: dict[str, dict[str, float]] = {}
        for i, d in enumerate(self.device_ids):
            if not np.isfinite(self.score[i]):
                continue
            s = round(float(self.score[i]), 4)
            row = {"score": s}
            for k in (*kinds, UNKNOWN):
                row[k] = s if self.kind[i] == k else 0.0
            out[d] = row
        return out


@dataclass
class TypeHealth:
    relations: list[str]
    physics: dict[str, HistGradientBoostingRegressor]
    scale: F
    detector: RobustResidualDetector
    classifier: HistGradientBoostingClassifier | None
    kinds: list[str]  # the faults the classifier names


@dataclass
class HealthModel:
    contamination: float = 0.0003  # the share of healthy device-days taken as anomalous
    alpha: float = 0.05  # the baseline follows about the last twenty normal days
    warmup: int = 7  # days of baseline before a relation is judged
    gate: float = 4.0  # a relation this many spreads off its baseline does not move it
    smooth: float = 0.3  # the smoothed deviation weighs the last three days or so
    types: dict[str, TypeHealth] = field(default_factory=dict)
    label_rows: dict[str, int] = field(default_factory=dict)  # field labels per type

    # -- training ----------------------------------------------------------------------

    def fit(
        self,
        days: Mapping[str, Sequence[HealthDay]],
        progress: Callable[[int], None] | None = None,
        *,
        labels: Mapping[str, FieldLabels] | None = None,
        label_weight: float = 20.0,
    ) -> Self:
        """Learn each type's physics, spreads, threshold and fault classifier from a
        history of days (devices in the same order every day) with their labels. The
        field's `labels` (technicians' verdicts) join the classifier, each weighing
        `label_weight` simulated days: a "none" teaches it a pattern that was no fault."""
        labels = labels or {}
        self.label_rows = {t: len(v.kinds) for t, v in labels.items()}
        for device_type, history in days.items():
            if history:
                self.types[device_type] = self._fit_type(
                    device_type, list(history), labels.get(device_type), label_weight
                )
            if progress:
                progress(1)
        return self

    def _fit_type(
        self,
        device_type: str,
        history: list[HealthDay],
        verdicts: FieldLabels | None = None,
        label_weight: float = 20.0,
    ) -> TypeHealth:
        rels = RELATIONS[device_type]
        labels = np.concatenate([_labels(h) for h in history])
        healthy = labels == NONE
        physics = {}
        for j, r in enumerate(rels):
            if r.context is None:
                continue
            X = np.concatenate([h.context[r.name] for h in history])
            y = np.concatenate([h.values[:, j] for h in history])
            rows = healthy & np.isfinite(y) & np.isfinite(X).all(axis=1)
            if rows.sum() >= 50:
                physics[r.name] = HistGradientBoostingRegressor(max_iter=150, random_state=0)
                physics[r.name].fit(X[rows], y[rows])
        model = TypeHealth(
            [r.name for r in rels], physics, np.ones(len(rels)), RobustResidualDetector(), None, []
        )
        # spreads from an ungated pass in raw units, then the gated pass the scorer runs
        loose = np.concatenate(self._replay_z(model, history, gate=np.inf))
        spread = [
            np.nanmedian(np.abs(loose[healthy, j])) * 1.4826
            if np.isfinite(loose[healthy, j]).any()
            else 1.0
            for j in range(len(rels))
        ]
        model.scale = np.maximum(np.asarray(spread), [r.floor for r in rels])
        z = np.concatenate(self._replay_z(model, history))
        warm = np.isfinite(z).any(axis=1)
        # z is in units of spread already
        detector = RobustResidualDetector(
            contamination=self.contamination, min_scale=1.0, tail=TAIL
        )
        model.detector = detector.fit(z[healthy & warm])
        faulty = ~healthy & warm
        if verdicts is None:
            verdicts = FieldLabels(np.zeros((0, z.shape[1])), np.zeros(0, dtype=object))
        if faulty.sum() + len(verdicts.kinds) >= 20:
            rng = np.random.default_rng(0)
            normal = np.flatnonzero(healthy & warm)
            keep = rng.choice(normal, min(len(normal), 5 * int(faulty.sum()) + 1000), replace=False)
            rows = np.concatenate([np.flatnonzero(faulty), keep])
            X = np.concatenate([z[rows], verdicts.deviations])
            X[:, ~np.isfinite(X).any(axis=0)] = 0.0  # a relation never seen (a season)
            y = np.concatenate([labels[rows], verdicts.kinds.astype(object)])
            weight = np.concatenate(
                [np.ones(len(rows)), np.full(len(verdicts.kinds), label_weight)]
            )
            model.classifier = HistGradientBoostingClassifier(
                max_iter=200, class_weight="balanced", random_state=0
            ).fit(X, y, sample_weight=weight)
            model.kinds = sorted(str(k) for k in set(y) if k != NONE)
        return model

    def _replay_z(
        self, model: TypeHealth, history: list[HealthDay], gate: float | None = None
    ) -> list[F]:
        state = WearState(history[0].device_type, [str(i) for i in range(len(history[0].values))])
        return [self._deviations(model, state, h, gate) for h in history]

    # -- scoring -----------------------------------------------------------------------

    def _residuals(self, model: TypeHealth, day: HealthDay) -> F:
        r = day.values.copy()
        rels = RELATIONS[day.device_type]
        for j, rel in enumerate(rels):
            reg = model.physics.get(rel.name)
            if reg is not None:
                X = day.context[rel.name]
                ok = np.isfinite(X).all(axis=1) & np.isfinite(r[:, j])
                if ok.any():
                    r[ok, j] -= reg.predict(X[ok])
                r[~ok, j] = np.nan
            if rel.peer:
                r[:, j] -= _peer_median(r[:, j], day.groups)
        return r

    def _deviations(
        self, model: TypeHealth, state: WearState, day: HealthDay, gate: float | None = None
    ) -> F:
        """The relations' z-scores against each device's baseline, and the baseline
        moved on by the day (kept in `state` under `h.<relation>.*`)."""
        r = self._residuals(model, day)
        width = len(model.relations)
        z = np.full((len(r), 2 * width), np.nan)
        for j, name in enumerate(model.relations):
            base, n = state[f"h.{name}.base"], np.nan_to_num(state[f"h.{name}.n"])
            base = np.where(day.changed, np.nan, base)
            n = np.where(day.changed, 0.0, n)
            x = r[:, j]
            ok = np.isfinite(x)
            with np.errstate(invalid="ignore"):
                zj = np.where((n >= self.warmup) & ok, (x - base) / model.scale[j], np.nan)
            z[:, j] = zj
            forming = ok & (n < self.warmup)
            limit = self.gate if gate is None else gate
            normal = ok & (n >= self.warmup) & (np.abs(np.nan_to_num(zj)) < limit)
            running = np.where(
                forming, (np.nan_to_num(base) * n + np.nan_to_num(x)) / (n + 1), base
            )
            state[f"h.{name}.base"] = np.where(normal, base + self.alpha * (x - base), running)
            state[f"h.{name}.n"] = n + ok
            # the deviation smoothed over the last few days it was seen: a slow fault
            # builds up in it while day-to-day noise averages out
            ew = np.where(day.changed | forming, np.nan, state[f"h.{name}.ew"])
            seen = np.isfinite(zj)
            ew = np.where(seen, np.where(np.isnan(ew), zj, ew + self.smooth * (zj - ew)), ew)
            state[f"h.{name}.ew"] = ew
            z[:, width + j] = np.where(seen, ew, np.nan)
        return z

    def score(self, device_type: str, state: WearState, day: HealthDay) -> HealthScores:
        """Fold one day into the devices' baselines and judge it."""
        model = self.types[device_type]
        z = self._deviations(model, state, day)
        warm = np.isfinite(z).any(axis=1)
        score = np.full(len(z), np.nan)
        kind = np.full(len(z), NONE, dtype=object)
        confidence = np.zeros(len(z))
        if warm.any():
            raw = model.detector.score_samples(z[warm])
            score[warm] = raw / model.detector.offset_
            hit = np.flatnonzero(warm)[score[warm] >= 1.0]
            if len(hit):
                kind[hit] = UNKNOWN
                if model.classifier is not None:
                    proba = model.classifier.predict_proba(z[hit])
                    classes = model.classifier.classes_
                    faults = classes != NONE
                    best = np.argmax(np.where(faults, proba, -1.0), axis=1)
                    confidence[hit] = proba[np.arange(len(hit)), best]
                    # a pattern technicians kept finding nothing in: no diagnosis
                    none = proba[:, ~faults].sum(axis=1) if (~faults).any() else 0.0
                    kind[hit] = np.where(none >= DISMISS, NONE, classes[best])
        for j, name in enumerate(features(device_type)):  # what a verdict will label
            key = f"h.last.{name}"
            state[key] = np.where(warm, z[:, j], state[key])
        return HealthScores(list(state.device_ids), score, z, kind, confidence)

    def kinds(self, device_type: str) -> list[str]:
        model = self.types.get(device_type)
        return list(model.kinds) if model else []


def _labels(day: HealthDay) -> NDArray[Any]:
    if day.labels is None:
        return np.full(len(day.values), NONE, dtype=object)
    return np.asarray(day.labels, dtype=object)


def _peer_median(x: F, groups: NDArray[Any]) -> F:
    """Each device's peers' median (itself included) that day; NaN where a group has
    fewer than MIN_PEERS readings."""
    out = np.full(len(x), np.nan)
    for g in np.unique(groups):
        members = groups == g
        vals = x[members & np.isfinite(x)]
        if len(vals) >= MIN_PEERS:
            out[members] = np.median(vals)
    return out
