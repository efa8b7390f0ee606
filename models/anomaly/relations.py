"""What a device's channels say about each other: each watched channel predicted from all
the others (conditions included: `detector.py`) by a ridge regression on their running
(winsorised, standardised) covariance, and the prediction's residual scored like any
statistic. A broken relation (a fan that spins while the current falls, a flow with no
pressure drop) is caught while every channel on its own still looks normal.

The per-point work is plain Python over short lists (a device has a handful of metrics:
numpy's per-call overhead would cost more than the arithmetic); the regressions are
solved with numpy every `REFIT_EVERY` points.

A relation is used for a channel only while it explains at least half of that
channel's variance: channels that have nothing to say about each other add no false
alarms. A channel that never moved (constant) or that moves in steps far coarser than
its noise carries no weight as a predictor: its variance is floored, and the ridge
term keeps its coefficient near zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from models.anomaly.config import DetectorConfig
from models.anomaly.tail import new_tail, tail_learn, tail_p

RIDGE = 0.05  # in correlation units
MIN_R2 = 0.5
REFIT_EVERY = 10  # points between solving the regressions again
_RATE = 0.002  # the covariance remembers ~500 points: a relation is a stable property
_SQRT_PI_2 = math.sqrt(math.pi / 2)


@dataclass(slots=True)
class RelationState:
    k: int
    n: int = 0
    count: list[float] = field(init=False)  # values seen per channel
    mean: list[float] = field(init=False)
    var: list[float] = field(init=False)
    cov: list[list[float]] = field(init=False)  # of standardised values
    coef: list[list[float]] = field(init=False)  # row j: channel j from the others
    err: list[float] = field(init=False)  # mean absolute residual, standardised
    r2: list[float] = field(init=False)
    tails: list[list[float]] = field(init=False)

    def __post_init__(self) -> None:
        k = self.k
        self.count = [0.0] * k
        self.mean = [0.0] * k
        self.var = [0.0] * k
        self.cov = [[float(i == j) for j in range(k)] for i in range(k)]
        self.coef = [[0.0] * k for _ in range(k)]
        self.err = [1.0] * k
        self.r2 = [0.0] * k
        self.tails = [new_tail() for _ in range(k)]


def update(
    cfg: DetectorConfig, s: RelationState, x: list[float], watch: Sequence[bool]
) -> tuple[float, int]:
    """(p-value of the most broken relation, corrected for the watched channels; its
    channel, or -1 when none is surprising). Only watched channels are predicted; every
    channel predicts. A missing value (NaN) takes its channel out of this row: it
    neither predicts, nor is predicted, nor teaches."""
    k = s.k
    present = [not math.isnan(v) for v in x]
    if not any(present):
        return 1.0, -1
    s.n += 1
    mean, var, count = s.mean, s.var, s.count
    sd = [math.sqrt(max(v, 1e-12)) for v in var]
    # a channel missing now, new, or constant so far predicts nothing
    live = [
        present[j] and count[j] >= 2 and var[j] > 1e-12 * (1.0 + mean[j] * mean[j])
        for j in range(k)
    ]
    z = [(x[j] - mean[j]) / sd[j] if live[j] else 0.0 for j in range(k)]
    p_best, worst = 1.0, -1
    if s.n > cfg.warmup:
        for j in range(k):
            if not live[j] or not watch[j]:
                continue
            row = s.coef[j]
            miss = abs(z[j] - sum(row[i] * z[i] for i in range(k)))
            scale = max(s.err[j] * _SQRT_PI_2, 1e-3)
            if s.r2[j] >= MIN_R2:
                resid = miss / scale
                p = tail_p(s.tails[j], resid, cfg.exceed)
                tail_learn(s.tails[j], resid, cfg.exceed, cfg.tail_rate)
                if p < p_best:
                    p_best, worst = p, j
            # learn the residual scale from what the relation missed, clipped like a baseline
            s.err[j] += _RATE * (min(miss, 5.0 * scale) - s.err[j])
            s.r2[j] = min(max(1.0 - (s.err[j] * _SQRT_PI_2) ** 2, 0.0), 1.0)
    # learn the moments from winsorised values, so a fault barely teaches the relation
    zc = [0.0] * k
    for j in range(k):
        if not present[j]:
            continue
        count[j] += 1.0
        if count[j] == 1.0:
            mean[j] = x[j]
            continue
        a = max(_RATE, 1.0 / count[j])
        d = x[j] - mean[j]
        if live[j]:
            lim = cfg.clip * sd[j]
            d = min(max(d, -lim), lim)
            zc[j] = d / sd[j]
        mean[j] += a * d
        var[j] = (1.0 - a) * (var[j] + a * d * d)
    a = max(_RATE, 1.0 / s.n)
    for i in range(k):
        row = s.cov[i]
        for j in range(k):
            if live[i] and live[j]:
                row[j] += a * (zc[i] * zc[j] - row[j])
    if s.n % REFIT_EVERY == 0:
        _refit(s, live, watch)
    return min(1.0, p_best * sum(watch)), worst


def _refit(s: RelationState, live: list[bool], watch: Sequence[bool]) -> None:
    alive = np.array(live)
    c = np.array(s.cov)
    c[~alive, :] = 0.0
    c[:, ~alive] = 0.0
    for j in range(s.k):
        others = [i for i in range(s.k) if i != j and live[i]]
        s.coef[j] = [0.0] * s.k
        if not others or not live[j] or not watch[j]:
            continue  # a condition is never predicted: its regression would go unread
        a = c[np.ix_(others, others)] + RIDGE * np.eye(len(others))
        solved = np.linalg.solve(a, c[others, j])
        for i, b in zip(others, solved, strict=True):
            s.coef[j][i] = float(b)
