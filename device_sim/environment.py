"""Outdoor air by region, season and hour (vectorised over devices).

Assumptions (docs/simulator.md): PM2.5 annual means per region in the range Chinese cities
report (north ~55, east ~35, south ~25 µg/m³), winter ~1.6× summer in the north (heating
season), an evening peak, and multi-day pollution episodes as an AR(1) log-normal factor.
Episodes are weather: most of the factor is shared by a region's homes, a smaller part is
local (a street, a building site). That shared part is what lets a PM2.5 sensor be checked
against its neighbours.
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


SIGMA_REGIONAL, SIGMA_LOCAL = 0.40, 0.21  # together the 0.45 of a single log-normal factor


@dataclass
class OutdoorAir:
    """Outdoor PM2.5 per device; the slow weather factor (AR(1) in log space) is the sum
    of the region's `regional` episode and the home's `local` one."""

    region: np.ndarray  # int index into REGIONS
    regional: np.ndarray  # log factor per region
    local: np.ndarray  # log factor per device
    rng: np.random.Generator
    tau_s: float = 3 * DAY_S  # pollution episodes last days

    @property
    def sigma(self) -> float:
        return float(np.hypot(SIGMA_REGIONAL, SIGMA_LOCAL))

    @property
    def episode(self) -> np.ndarray:
        return np.asarray(self.regional[self.region] + self.local)

    @classmethod
    def create(cls, region: np.ndarray, rng: np.random.Generator) -> OutdoorAir:
        regional = rng.normal(0.0, SIGMA_REGIONAL, len(REGIONS))
        return cls(region, regional, rng.normal(0.0, SIGMA_LOCAL, len(region)), rng)

    def step(self, dt: float) -> None:
        a = np.exp(-dt / self.tau_s)
        shrink = np.sqrt(1 - a * a)
        self.regional = a * self.regional + self.rng.normal(0.0, SIGMA_REGIONAL * shrink, 3)
        self.local = a * self.local + self.rng.normal(0.0, SIGMA_LOCAL * shrink, len(self.local))

    def pm25(self, t: float) -> np.ndarray:
        """µg/m³ at epoch seconds `t` (northern hemisphere seasons)."""
        day_of_year = (t % YEAR_S) / DAY_S
        winter = np.cos(2 * np.pi * (day_of_year - 15) / 365.25)  # +1 mid-January
        hour = (t % DAY_S) / HOUR_S
        diurnal = 1 + 0.15 * np.cos(2 * np.pi * (hour - 21) / 24)  # evening peak
        mean = _MEAN[self.region] * (1 + _SEASONAL[self.region] * winter) * diurnal
        # log-normal episodes with mean 1
        return np.asarray(mean * np.exp(self.episode - self.sigma**2 / 2))
