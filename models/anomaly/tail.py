"""Calibration by extreme-value theory: how often a statistic exceeds a fixed level, and
how far, learned per series as it streams (peaks over threshold, as in SPOT, with the
generalised Pareto fitted by moments). A value then gets a tail probability that means
the same on every series, so one threshold serves them all."""

from __future__ import annotations

import math

MIN_P = 1e-12
_SHAPE_MIN, _SHAPE_MAX = 0.0, 0.8  # a moment fit outside these is noise, not a tail
_EXCESS_CAP = 50.0  # one wild excess teaches no more than this


def tail_p(state: list[float], z: float, level: float) -> float:
    """P(statistic >= z) under the learned tail; 1.0 at or below the level.
    `state` is [exceedance rate, mean excess, mean squared excess, points seen]."""
    if z <= level:
        return 1.0
    rate, m1, m2 = state[0], state[1], state[2]
    var = max(m2 - m1 * m1, 1e-12)
    ratio = m1 * m1 / var
    shape = min(max(0.5 * (1.0 - ratio), _SHAPE_MIN), _SHAPE_MAX)
    spread = max(0.5 * m1 * (1.0 + ratio), 1e-9)
    excess = z - level
    if abs(shape) < 1e-6:
        survive = math.exp(-excess / spread)
    else:
        base = 1.0 + shape * excess / spread
        survive = 0.0 if base <= 0.0 else base ** (-1.0 / shape)
    return max(max(rate, 1e-6) * survive, MIN_P)


def tail_learn(state: list[float], z: float, level: float, rate: float) -> None:
    state[3] += 1.0
    a = max(rate, 1.0 / state[3])
    over = z > level
    state[0] += a * (float(over) - state[0])
    if over:
        excess = min(z - level, _EXCESS_CAP)
        # the excesses are rarer than the points: they get their own, faster memory
        b = max(rate * 20.0, 1.0 / max(1.0, state[3] * state[0]))
        b = min(b, 1.0)
        state[1] += b * (excess - state[1])
        state[2] += b * (excess * excess - state[2])


PRIOR_POINTS = 20.0


def new_tail() -> list[float]:
    """A prior worth 20 points: 5 % of them beyond the level, excesses of about one
    scale. Without it, a short quiet history would make the first excess look like a
    one-in-a-million event."""
    return [0.05, 1.0, 2.0, PRIOR_POINTS]
