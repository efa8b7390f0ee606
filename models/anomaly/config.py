"""The streaming detector's one configuration: every series, from the fleet or from a
file, is scored with these values. They were chosen on the simulator and on a labelled
public corpus (docs/model-quality.md) and are not tuned per series: what adapts per
series is the learned state, never the configuration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Rates are per point (an exponentially weighted average with rate `a` remembers
    about `1 / a` points)."""

    level_rate: float = 0.05  # the baseline follows a new level within ~20 points
    scale_rate: float = 0.01  # the residual scale remembers ~100 points
    season_rate: float = 0.1  # each hour-of-day slot, per visit
    week_rate: float = 0.02  # each day-of-week offset, per point on that day
    short_rate: float = 0.1  # the short windows for shifts and bursts (~10 points)
    tail_rate: float = 0.0005  # how fast the learned tails forget (~2,000 points)
    burst_rate: float = 0.002  # the long-run level of the burst statistic
    novel_rate: float = 0.001  # where the series has been: ~1,000 points
    clip: float = 4.0  # residuals beyond this many scales move the baseline no further
    exceed: float = 3.0  # the peaks-over-threshold level, in scales
    decades: float = 6.0  # a p-value of 10**-decades scores 1.0
    threshold: float = 0.5  # the engine's alarm: score >= threshold (p <= 1e-3)
    quiet_points: int = 20  # an episode ends after this many quiet points in a row
    warmup: int = 50  # points learned before any score
    floor: float = 0.01  # the scale never falls below this share of the series' spread

    def __post_init__(self) -> None:
        for name in (
            "level_rate",
            "scale_rate",
            "season_rate",
            "week_rate",
            "short_rate",
            "tail_rate",
            "burst_rate",
            "novel_rate",
        ):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.quiet_points < 1 or self.warmup < 2:
            raise ValueError("quiet_points must be >= 1 and warmup >= 2")


DEFAULT = DetectorConfig()
