"""One series, one small state, one point at a time.

Each point is compared with a baseline that adapts: a level, an hour-of-day profile
(so a daily rhythm is predicted, not flagged) and a
day-of-week offset. The point feeds six statistics, each calibrated by its own learned
tail (`tail.py`):

* spike: the residual against the robust scale;
* shift: a short average of the signed residual (a level shift or trend break, before
  the baseline has moved to it);
* burst: a short average of the residual's size against its own long run (a variance
  change, a run of spikes);
* stuck: a run of identical values, against the runs this series usually has;
* dropout: samples that did not come (a time gap or missing values), in sampling
  intervals, against the gaps this series usually has;
* novel: how far the value is from where the series has been over the long run
  (about a thousand points), against how far it usually strays: a value the series has
  not been near in that time is surprising even where the local baseline, which follows
  the series closely, has seen jumps as big (a traffic jam beyond any before it), and
  a slow drift that the baseline follows point by point soon stands out.

The smallest tail probability, corrected for the six looks, is the point's p-value
(the detector turns it into the score in [0, 1] and decides the alarm).

The baseline learns from winsorised residuals, so an anomaly barely teaches it,
while a new level is adopted within tens of points: after a shift the series is
normal again, not anomalous for ever.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from models.anomaly.config import DetectorConfig
from models.anomaly.tail import new_tail, tail_learn, tail_p

KINDS = ("spike", "shift", "burst", "stuck", "dropout", "novel")
_NOVEL = KINDS.index("novel")
DAY_SLOTS = 24
SQRT_PI_2 = math.sqrt(math.pi / 2)  # mean absolute deviation -> standard deviation


def _tails() -> list[list[float]]:
    return [new_tail() for _ in KINDS]


@dataclass(slots=True)
class SeriesState:
    """Everything the detector keeps for one series (about 610 bytes packed)."""

    n: int = 0  # points learned
    last_t: float = math.nan
    last_x: float = math.nan
    dt: float = 0.0  # typical sampling interval, seconds
    level: float = 0.0
    scale: float = 0.0  # mean absolute residual
    spread: float = 0.0  # mean absolute deviation from the level
    shift: float = 0.0
    burst: float = 0.0
    burst_mean: float = 0.8
    burst_var: float = 0.4
    err_day: float = 0.0  # mean absolute error with the daily profile only
    err_week: float = 0.0  # ... and with the weekday offsets too
    repeat: float = 0.05  # share of values equal to the one before
    center: float = 0.0  # where the series has been over the long run
    reach: float = 0.0  # how far from the center it usually is (mean absolute deviation)
    run: int = 0  # identical values in a row
    gap: int = 0  # missing values in a row
    day: list[float] = field(default_factory=lambda: [0.0] * DAY_SLOTS)
    day_seen: list[int] = field(default_factory=lambda: [0] * DAY_SLOTS)
    week: list[float] = field(default_factory=lambda: [0.0] * 7)
    tails: list[list[float]] = field(default_factory=_tails)


@dataclass(frozen=True, slots=True)
class Step:
    p: float  # tail probability of the most surprising statistic, corrected for the looks
    kind: str  # that statistic ("" when nothing was surprising)
    expected: float  # the baseline's prediction for this point (NaN before it has one)


_NONE = Step(1.0, "", math.nan)


def _repeats(rate: float, run: int) -> float:
    """P(a run this long) if each value repeats the last with `rate`; neighbouring
    samples are not independent, so a run counts as a third of its length."""
    return (min(rate, 0.999) + 1e-3) ** (run / 3.0) if run > 0 else 1.0


def update(cfg: DetectorConfig, s: SeriesState, t: float, x: float) -> Step:
    """Score the point (t seconds, value x; NaN: missing) against what the state has
    learned so far, then learn from it. Causal: the score depends on no later point."""
    if math.isnan(x):
        # a gap is scored while it lasts (a sensor that went silent for good never sends
        # the value that would end it), against the gaps this series has had; it is
        # learned once, at its full length, by the value that ends it
        s.gap += 1
        if s.n < cfg.warmup:
            return _NONE
        p = min(1.0, tail_p(s.tails[3], float(s.gap), cfg.exceed) * len(KINDS))
        return Step(p, "dropout" if p < 1.0 else "", math.nan)
    # samples that did not come: missing values, and the time since the last one
    missed = float(s.gap)
    if s.n and s.dt > 0.0 and t > s.last_t:
        missed += max(0.0, (t - s.last_t) / s.dt - 1.0)
    if s.n >= 2 and t > s.last_t:
        step = t - s.last_t
        s.dt = step if s.dt == 0.0 else s.dt + 0.05 * (min(step, 3.0 * s.dt) - s.dt)
    s.gap = 0

    dow = int(t // 86400.0 + 3) % 7  # 1970-01-01 was a Thursday: 0 is Monday

    if s.n == 0:
        s.level, s.center, s.last_x, s.last_t, s.n = x, x, x, t, 1
        return _NONE

    slot = int(t % 86400.0 // 3600.0)
    season = s.day[slot] if s.day_seen[slot] > 2 else 0.0
    # a weekday's offset is trusted after two weeks, and only while it predicts better
    weekly = s.n * s.dt >= 14 * 86400.0 and s.err_week < 0.9 * s.err_day
    daily = season
    if weekly:
        season += s.week[dow]
    expected = s.level + season
    r = x - expected
    sig = max(s.scale * SQRT_PI_2, 1e-9 + 1e-6 * abs(s.level), cfg.floor * s.spread)
    ready = s.scale > 0.0

    z_spike = abs(r) / sig if ready else 0.0
    s.shift += cfg.short_rate * (r - s.shift)
    short_sd = sig * math.sqrt(cfg.short_rate / (2.0 - cfg.short_rate))
    z_shift = abs(s.shift) / short_sd if ready else 0.0
    s.burst += cfg.short_rate * (min(z_spike, 8.0) - s.burst)
    z_burst = (s.burst - s.burst_mean) / max(math.sqrt(s.burst_var), 0.05)

    far = max(s.reach * SQRT_PI_2, sig)
    z_novel = abs(x - s.center) / far if s.reach > 0.0 else 0.0

    same = x == s.last_x
    run = s.run + 1 if same else 0
    # a statistic at or below the level has p = 1 (most points): no need to ask its tail
    lvl, tails = cfg.exceed, s.tails
    ps = (
        tail_p(tails[0], z_spike, lvl) if z_spike > lvl else 1.0,
        tail_p(tails[1], z_shift, lvl) if z_shift > lvl else 1.0,
        tail_p(tails[2], z_burst, lvl) if z_burst > lvl else 1.0,
        # a run is surprising only when the learned runs say so *and* this series seldom
        # repeats a value (a setpoint or a counter that idles repeats often; a noisy
        # sensor never). A run of zeros is idleness, not a stuck sensor: nothing flowed,
        # ran or was counted (a purifier off for the summer, a feed with no posts)
        max(tail_p(tails[4], float(run), lvl), _repeats(s.repeat, run))
        if run and x != 0.0
        else 1.0,
        tail_p(tails[3], missed, lvl) if missed > lvl else 1.0,
        tail_p(tails[5], z_novel, lvl) if z_novel > lvl else 1.0,
    )
    least = min(ps)
    worst = 0
    if least < 1.0:
        # the name: the first statistic (simplest first) within a factor ten of the most
        # surprising one, so a lone spike is called a spike, not a one-point burst
        worst = next(k for k, pk in enumerate(ps) if pk <= 10.0 * least)
        if worst == _NOVEL and ps[0] * len(ps) <= 10.0 ** (-cfg.decades * cfg.threshold):
            worst = 0  # far from the baseline and from anywhere it has been: a spike
    p = min(1.0, least * len(ps))
    if s.n < cfg.warmup:
        p = 1.0

    # learn
    if s.n >= cfg.warmup:  # what the baseline gets wrong while it learns is not the tail
        for k, z in ((0, z_spike), (1, z_shift), (2, z_burst), (3, missed), (5, z_novel)):
            tail_learn(s.tails[k], z, cfg.exceed, cfg.tail_rate)
        if not same:  # a run is learned once, when it ends, at its full length
            tail_learn(s.tails[4], float(s.run), cfg.exceed, cfg.tail_rate)
    d = s.burst - s.burst_mean
    s.burst_mean += cfg.burst_rate * d
    s.burst_var = (1.0 - cfg.burst_rate) * (s.burst_var + cfg.burst_rate * d * d)
    s.run = run
    s.repeat += max(cfg.tail_rate, 1.0 / (s.n + 20.0)) * (float(same) - s.repeat)
    # the long run: a running mean at first, then a slow average of deviations clipped
    # at five times the usual, so one wild value barely moves where the series "is"
    b = max(cfg.novel_rate, 1.0 / (s.n + 1.0))
    dev = x - s.center
    lim = 5.0 * far if s.n > cfg.warmup else abs(dev)
    s.center += b * max(-lim, min(lim, dev))
    s.reach += b * (min(abs(dev), lim) - s.reach)
    s.spread = abs(x - s.level) if s.n == 1 else s.spread + 0.01 * (abs(x - s.level) - s.spread)
    if s.n < cfg.warmup:
        # while it warms up the baseline learns from every residual, unclipped, as a
        # running mean: a scale that started near zero (two equal first values) must be
        # able to grow, which clipping at a few scales would forbid
        a = 1.0 / s.n
        s.scale += max(cfg.scale_rate, a) * (abs(r) - s.scale)
        s.level += max(cfg.level_rate, a) * r
    else:
        s.scale += cfg.scale_rate * (min(abs(r), 5.0 * sig) - s.scale)
        s.level += cfg.level_rate * max(-cfg.clip * sig, min(cfg.clip * sig, r))
    e = x - s.level - season
    s.err_day += 0.01 * (abs(x - s.level - daily) - s.err_day)
    s.err_week += 0.01 * (abs(x - s.level - daily - s.week[dow]) - s.err_week)
    s.day[slot] += cfg.season_rate * e
    s.day_seen[slot] = min(s.day_seen[slot] + 1, 255)
    s.week[dow] += cfg.week_rate * e
    s.last_x, s.last_t = x, t
    s.n += 1

    return Step(p, KINDS[worst] if p < 1.0 else "", expected)
