"""Under-sink RO water purifier physics, vectorised over devices.

Draws (drinking, cooking) arrive as Poisson events by hour of day. Each stage has a volume
and a time budget: sediment (PP) loads with volume × feed turbidity and chokes the flow;
carbon exhausts by treated volume or age; the RO membrane's salt rejection degrades with
cumulative volume × feed TDS (scaling), so TDS out rises. The device reports stage life
from rated volume and months like real products. Equations: docs/simulator.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from device_sim.environment import DAY_S, HOUR_S
from device_sim.imperfection import factors

# feed water by region (north, east, south): TDS ppm range and turbidity factor
_TDS_RANGE = np.array([[300.0, 550.0], [150.0, 320.0], [60.0, 160.0]])
_TURBIDITY = np.array([1.3, 1.0, 0.8])
# rated life the device reports: litres and days per stage
RATED_L = {"sediment": 2000.0, "carbon": 4000.0, "ro": 8000.0}
RATED_DAYS = {"sediment": 180.0, "carbon": 365.0, "ro": 730.0}
NOMINAL_FLOW_LPM = 1.5
RO_REJECTION_NEW = 0.97
RO_END_OF_LIFE = 0.90  # ground truth: the membrane is spent below this rejection
PUMP_KPA = 600.0
PUMP_MA = 1200.0


@dataclass
class WaterPurifiers:
    """State of N water purifiers; advance with `step`."""

    tds_in: np.ndarray
    turbidity: np.ndarray
    household: np.ndarray  # people
    sediment_capacity: np.ndarray  # litre-equivalents of turbidity-weighted volume
    carbon_capacity_l: np.ndarray
    ro_scaling: np.ndarray  # unit-to-unit membrane sensitivity
    sediment_load: np.ndarray  # turbidity-weighted litres since change
    carbon_l: np.ndarray
    ro_dose: np.ndarray  # litres × ppm since change
    age_s: np.ndarray  # per stage age (3, n)
    volume_total_l: np.ndarray
    volume_stage_l: np.ndarray  # (3, n) litres since each stage's change
    last_flow: np.ndarray
    water_temp: np.ndarray
    rng: np.random.Generator
    faults: dict[str, np.ndarray] = field(default_factory=dict)  # severity 0..1 by kind
    exhausted_at: dict[str, np.ndarray] = field(init=False)
    # this unit's datasheet (nominal until `vary`): product flow, new-membrane salt
    # rejection, pump pressure and current
    flow_nominal: np.ndarray = field(init=False)
    rejection_new: np.ndarray = field(init=False)
    pump_kpa: np.ndarray = field(init=False)
    pump_ma: np.ndarray = field(init=False)

    STAGES = ("sediment", "carbon", "ro")

    def __post_init__(self) -> None:
        n = len(self.tds_in)
        self.exhausted_at = {s: np.full(n, np.nan) for s in self.STAGES}
        self.flow_nominal = np.full(n, NOMINAL_FLOW_LPM)
        self.rejection_new = np.full(n, RO_REJECTION_NEW)
        self.pump_kpa, self.pump_ma = np.full(n, PUMP_KPA), np.full(n, PUMP_MA)

    @classmethod
    def create(cls, region: np.ndarray, rng: np.random.Generator) -> WaterPurifiers:
        n = len(region)
        lo, hi = _TDS_RANGE[region, 0], _TDS_RANGE[region, 1]
        return cls(
            tds_in=rng.uniform(lo, hi),
            turbidity=_TURBIDITY[region] * rng.lognormal(0.0, 0.2, n),
            household=rng.integers(1, 6, n),
            sediment_capacity=2000.0 * rng.lognormal(0.0, 0.15, n),
            carbon_capacity_l=4500.0 * rng.lognormal(0.0, 0.15, n),
            ro_scaling=rng.lognormal(0.0, 0.2, n),
            sediment_load=np.zeros(n),
            carbon_l=np.zeros(n),
            ro_dose=np.zeros(n),
            age_s=np.zeros((3, n)),
            volume_total_l=np.zeros(n),
            volume_stage_l=np.zeros((3, n)),
            last_flow=np.zeros(n),
            water_temp=rng.uniform(12, 22, n),
            rng=rng,
        )

    def __len__(self) -> int:
        return len(self.tds_in)

    def _severity(self, kind: str) -> np.ndarray:
        return self.faults.get(kind, np.zeros(len(self.tds_in)))

    def rejection(self) -> np.ndarray:
        """RO salt rejection: falls with volume × feed TDS (scaling); 0.97 when new."""
        wear = self.ro_dose * self.ro_scaling / 2.0e7  # ~8,000 L of 300 ppm -> -0.12
        healthy = np.clip(self.rejection_new - wear, 0.3, self.rejection_new)
        return np.asarray(healthy * (1 - 0.85 * self._severity("ro_membrane_failure")))

    def flow_lpm(self) -> np.ndarray:
        """Product flow while drawing: the sediment stage chokes it as it loads."""
        load = np.clip(self.sediment_load / self.sediment_capacity, 0, 1.5)
        pump = 1 - 0.6 * self._severity("pump_failure")
        return np.asarray(self.flow_nominal * np.maximum(1 - 0.6 * load, 0.1) * pump)

    def step(self, t: float, dt: float) -> None:
        n = len(self)
        hour = (t % DAY_S) / HOUR_S
        # drinking: ~0.4 draws of 0.3 L per person per waking hour (~2 L a day);
        # cooking: ~0.4 draws of 1-3 L an hour in meal windows (~4 L a household a day)
        awake = 1.0 if 7 <= hour < 23 else 0.05
        meal = 1.0 if (6.5 <= hour < 8) or (11 <= hour < 13) or (17.5 <= hour < 19.5) else 0.0
        drinks = self.rng.poisson(self.household * 0.4 * awake * dt / HOUR_S)
        cooks = self.rng.poisson(meal * 0.4 * dt / HOUR_S, n)
        litres = drinks * 0.3 + cooks * self.rng.uniform(1.0, 3.0, n)
        drawing = litres > 0
        flow = self.flow_lpm()
        self.last_flow = np.where(drawing, flow, self.last_flow)
        self.volume_total_l = self.volume_total_l + litres
        self.volume_stage_l = self.volume_stage_l + litres
        self.sediment_load = self.sediment_load + litres * self.turbidity
        self.carbon_l = self.carbon_l + litres
        self.ro_dose = self.ro_dose + litres * self.tds_in
        self.age_s = self.age_s + dt
        full = {
            "sediment": self.sediment_load >= self.sediment_capacity,
            "carbon": (self.carbon_l >= self.carbon_capacity_l) | (self.age_s[1] >= 365 * DAY_S),
            "ro": self.rejection() <= RO_END_OF_LIFE,
        }
        for stage, is_full in full.items():
            newly = np.isnan(self.exhausted_at[stage]) & is_full
            self.exhausted_at[stage][newly] = t + dt

    def consumed(self) -> dict[str, np.ndarray]:
        """Ground truth: the share of each stage used up (1 = spent, as `step` decides)."""
        healthy = self.ro_dose * self.ro_scaling / 2.0e7  # rejection lost to scaling
        return {
            "sediment": np.asarray(self.sediment_load / self.sediment_capacity),
            "carbon": np.asarray(
                np.maximum(self.carbon_l / self.carbon_capacity_l, self.age_s[1] / (365 * DAY_S))
            ),
            "ro": np.asarray(healthy / (self.rejection_new - RO_END_OF_LIFE)),
        }

    # -- imperfection (device_sim.imperfection) -----------------------------------------
    def vary(self, rng: np.random.Generator, sigma: float) -> dict[str, np.ndarray]:
        """Each unit off its datasheet: flow, pump pressure and current within `sigma`;
        a new membrane's salt passage (3 % nominal, datasheets guarantee 5 % at most) off
        by four times that, log-normal. Returns the factors, for the ground truth."""
        n = len(self)
        flow, kpa, ma = factors(rng, n, sigma), factors(rng, n, sigma), factors(rng, n, sigma)
        passage = rng.lognormal(0.0, 4 * sigma, n) if sigma > 0 else np.ones(n)
        self.flow_nominal = NOMINAL_FLOW_LPM * flow
        self.pump_kpa, self.pump_ma = PUMP_KPA * kpa, PUMP_MA * ma
        self.rejection_new = np.clip(1 - (1 - RO_REJECTION_NEW) * passage, 0.93, 0.99)
        return {
            "flow": flow,
            "pump_pressure": kpa,
            "pump_current": ma,
            "salt_passage": passage,
        }

    def change_home(self, kind: str, mask: np.ndarray, rng: np.random.Generator, t: float) -> None:
        """A move: other feed water (maybe another region) and another household."""
        if kind != "move":
            return
        k = int(mask.sum())
        region = rng.integers(0, len(_TDS_RANGE), k)
        self.tds_in[mask] = rng.uniform(_TDS_RANGE[region, 0], _TDS_RANGE[region, 1])
        self.turbidity[mask] = _TURBIDITY[region] * rng.lognormal(0.0, 0.2, k)
        self.household[mask] = rng.integers(1, 6, k)

    def install(self, mask: np.ndarray) -> None:
        """Installed now: every stage fresh, the volume counter at zero."""
        for stage in self.STAGES:
            self.replace_stage(stage, mask)
        self.volume_total_l[mask] = 0.0

    def replace_stage(self, stage: str, mask: np.ndarray) -> None:
        i = self.STAGES.index(stage)
        self.age_s[i][mask] = 0
        self.volume_stage_l[i][mask] = 0
        self.exhausted_at[stage][mask] = np.nan
        if stage == "sediment":
            self.sediment_load[mask] = 0
        elif stage == "carbon":
            self.carbon_l[mask] = 0
        else:
            self.ro_dose[mask] = 0

    def reported_life_pct(self, stage: str) -> np.ndarray:
        """What the device shows: the lower of rated volume and rated months left."""
        i = self.STAGES.index(stage)
        by_volume = 1 - self.volume_stage_l[i] / RATED_L[stage]
        by_time = 1 - self.age_s[i] / (RATED_DAYS[stage] * DAY_S)
        return np.asarray(np.clip(100 * np.minimum(by_volume, by_time), 0, 100))

    def metrics(self) -> dict[str, np.ndarray]:
        n = len(self)
        return {
            "tds_in_ppm": np.round(self.tds_in + self.rng.normal(0, 3, n), 1),
            "tds_out_ppm": np.round(self.tds_in * (1 - self.rejection()), 1),
            "flow_lpm": np.round(self.last_flow, 2),
            "volume_total_l": np.round(self.volume_total_l, 1),
            "pressure_kpa": np.round(
                self.pump_kpa * (1 - 0.7 * self._severity("pump_failure"))
                + self.rng.normal(0, 8, n),
                1,
            ),
            "pump_current_ma": np.round(
                self.pump_ma * (1 + 1.2 * self._severity("pump_failure"))
                + self.rng.normal(0, 15, n),
                1,
            ),
            "water_temp_c": np.round(self.water_temp, 1),
            "leak": self._severity("leak") > 0,
            "filter_life_sediment_pct": np.round(self.reported_life_pct("sediment"), 1),
            "filter_life_carbon_pct": np.round(self.reported_life_pct("carbon"), 1),
            "filter_life_ro_pct": np.round(self.reported_life_pct("ro"), 1),
        }
