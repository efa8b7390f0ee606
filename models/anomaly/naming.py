"""What an alarm shows, named from technicians' verdicts.

The detector says *that* a device's days are unusual and which statistic and metric
said so; a technician who visits says what it was (a confirmed fault, or none found).
`evidence` turns an alarm into a row of numbers any profile has — the statistic that
fired, whether the metric is a counter or a sensor, how far and which way each metric
stood from its own baseline and from its peers that day, how much of the day was
missing — and `FaultNamer` learns, per family, which verdict such rows end in. A new
category starts with no names (every alarm is a job to review); each verdict its
technicians give teaches the next alarm, and one the namer is sure is no fault is
dismissed, as the health model dismisses its own.

The per-metric deviations (`z.<metric>`, `peer.<metric>`) carry the pattern across a
family's channels (a broken relation is one metric high while another is normal);
a family's metrics are the same on every unit, so they are features there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from models.anomaly.detector import Result, StreamingDetector
from models.anomaly.series import KINDS
from models.verdicts import NONE

STATISTICS = (*KINDS, "relation")
MIN_LABELS = 20  # verdicts a family needs before its alarms are named
DISMISS = 0.7  # the namer this sure an alarm is no fault: it raises nothing
_CLIP = 50.0

Evidence = dict[str, float]


def evidence(
    detector: StreamingDetector,
    values: Sequence[float],
    result: Result,
    *,
    names: Sequence[str],
    counters: Sequence[bool],
    peers: Sequence[float] | None = None,
) -> Evidence:
    """The alarm `result` (just returned by `detector.update(t, values)`) as numbers any
    profile has. `peers`: each metric's robust distance from the device's peers that day
    (`models.anomaly.fleet.peer_deviations`), NaN where it had too few."""
    z = [_clip(v) for v in detector.deviations(values, result.expected)]
    pz = [_clip(v) for v in peers] if peers is not None else [math.nan] * len(names)
    c = result.channel
    watched = [j for j, w in enumerate(detector.watch) if w]
    out: Evidence = {f"stat.{k}": float(result.kind == k) for k in STATISTICS}
    out |= {
        "counter": float(counters[c]) if c >= 0 else math.nan,
        "watched": float(detector.watch[c]) if c >= 0 else math.nan,
        "z": z[c] if c >= 0 else math.nan,
        "peer_z": pz[c] if c >= 0 else math.nan,
        "peer_max": _nanmax([abs(pz[j]) for j in watched]),
        "missing": _share([math.isnan(v) for v in values]),
        "loud": _share([abs(z[j]) > 4.0 for j in watched if not math.isnan(z[j])]),
        "score": result.score,
        "age": math.log1p(detector.rows),
    }
    for j, name in enumerate(names):
        out[f"z.{name}"] = z[j]
        out[f"peer.{name}"] = pz[j]
    return {k: v for k, v in out.items() if not math.isnan(v)}  # JSON has no NaN


def _clip(v: float) -> float:
    return math.nan if math.isnan(v) else max(-_CLIP, min(_CLIP, v))


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def _nanmax(xs: Sequence[float]) -> float:
    finite = [x for x in xs if not math.isnan(x)]
    return max(finite) if finite else math.nan


@dataclass(frozen=True, slots=True)
class Named:
    kind: str  # the fault the verdicts point to, or NONE
    confidence: float  # the namer's probability of it
    dismissed: bool  # sure enough it is no fault that no job should open


@dataclass
class FaultNamer:
    """Per family: alarms' evidence → the technicians' verdict. Unfitted (fewer than
    `min_labels` verdicts, or only one kind of verdict) it names nothing."""

    min_labels: int = MIN_LABELS
    dismiss: float = DISMISS
    features: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    labels: int = 0
    _model: HistGradientBoostingClassifier | None = None

    def fit(self, rows: Sequence[Mapping[str, float]], kinds: Sequence[str]) -> FaultNamer:
        if len(rows) != len(kinds):
            raise ValueError(f"{len(rows)} evidence rows for {len(kinds)} verdicts")
        self.labels = len(rows)
        self._model = None
        if len(rows) < self.min_labels or len(set(kinds)) < 2:
            return self
        self.features = sorted({k for r in rows for k in r})
        X = self._matrix(rows)
        model = HistGradientBoostingClassifier(
            max_iter=150,
            learning_rate=0.1,
            max_leaf_nodes=15,
            min_samples_leaf=max(3, min(20, len(rows) // 20)),
            l2_regularization=1.0,
            class_weight="balanced",
            random_state=0,
        )
        model.fit(X, np.asarray(kinds, dtype=object))
        self._model = model
        self.classes = [str(c) for c in model.classes_]
        return self

    @property
    def fitted(self) -> bool:
        return self._model is not None

    def _matrix(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        return np.array(
            [[r.get(f, math.nan) for f in self.features] for r in rows], dtype=np.float64
        )

    def name_all(self, rows: Sequence[Mapping[str, float]]) -> list[Named | None]:
        """Each row's verdict; None for every row while unfitted."""
        if self._model is None or not rows:
            return [None] * len(rows)
        proba = self._model.predict_proba(self._matrix(rows))
        none = self.classes.index(NONE) if NONE in self.classes else -1
        out: list[Named | None] = []
        for p in proba:
            if none >= 0 and p[none] >= self.dismiss:
                out.append(Named(NONE, float(p[none]), True))
                continue
            # not sure it is nothing: the job goes ahead, naming the likeliest fault
            faults = p.copy()
            if none >= 0:
                faults[none] = -1.0
            k = int(np.argmax(faults))
            out.append(Named(self.classes[k], float(p[k]), False))
        return out

    def name(self, row: Mapping[str, float]) -> Named | None:
        return self.name_all([row])[0]
