"""Outdoor air by region, season and hour (vectorised over devices).

Assumptions (docs/simulator.md): PM2.5 annual means per region in the range Chinese cities
report (north ~55, east ~35, south ~25 µg/m³), winter ~1.6× summer in the north (heating
season), an evening peak, and multi-day pollution episodes as an AR(1) log-normal factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REGIONS = ("north", "east", "south")
# annual mean PM2.5 (µg/m³) and winter/summer amplitude (fraction of the mean)
_MEAN = np.array([55.0, 35.0, 25.0])
_SEASONAL = np.array([0.30, 0.20, 0.15])
HOUR_S = 3600.0
DAY_S = 86_400.0
YEAR_S = 365.25 * DAY_S


@dataclass
class OutdoorAir:
    """Outdoor PM2.5 per device; `episode` is the slow weather factor (AR(1) in log space)."""

    region: np.ndarray  # int index into REGIONS
    episode: np.ndarray  # log factor
    rng: np.random.Generator
    tau_s: float = 3 * DAY_S  # pollution episodes last days
    sigma: float = 0.45

    @classmethod
    def create(cls, region: np.ndarray, rng: np.random.Generator) -> OutdoorAir:
        return cls(region, rng.normal(0.0, 0.45, len(region)), rng)

    def step(self, dt: float) -> None:
        a = np.exp(-dt / self.tau_s)
        noise = self.rng.normal(0.0, self.sigma * np.sqrt(1 - a * a), len(self.region))
        self.episode = a * self.episode + noise

    def pm25(self, t: float) -> np.ndarray:
        """µg/m³ at epoch seconds `t` (northern hemisphere seasons)."""
        day_of_year = (t % YEAR_S) / DAY_S
        winter = np.cos(2 * np.pi * (day_of_year - 15) / 365.25)  # +1 mid-January
        hour = (t % DAY_S) / HOUR_S
        diurnal = 1 + 0.15 * np.cos(2 * np.pi * (hour - 21) / 24)  # evening peak
        mean = _MEAN[self.region] * (1 + _SEASONAL[self.region] * winter) * diurnal
        # log-normal episodes with mean 1
        return np.asarray(mean * np.exp(self.episode - self.sigma**2 / 2))
