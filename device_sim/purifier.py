"""Air purifier physics, vectorised: one array element per device, one call per tick.

Room: well-mixed box. Filter: captures mass ∫ Q·η·C dt; as it loads, pressure drop rises,
so airflow at a fixed fan speed falls and motor current rises. The device reports filter
life from rated hours like real products (1 − used_hours / 3500), which is wrong in
polluted homes. Equations and parameter sources: docs/simulator.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from device_sim.environment import DAY_S, HOUR_S
from device_sim.imperfection import factors

RATED_HOURS = 3500.0
# level -> (fan rpm, clean airflow m³/h, motor current mA at a clean filter)
_RPM = np.array([0, 500, 800, 1100, 1400, 1800])
_AIRFLOW = np.array([0.0, 60.0, 120.0, 200.0, 280.0, 380.0])
_CURRENT = np.array([0.0, 120.0, 180.0, 260.0, 350.0, 480.0])
# auto mode: indoor PM2.5 thresholds (µg/m³) for levels 2..5
_AUTO = np.array([12.0, 35.0, 75.0, 150.0])
# a rated filter life of 3500 h at level 3 and the "typical" 35 µg/m³ captures ~25 g
NOMINAL_CAPACITY_G = 25.0
AIRFLOW_LOSS_AT_FULL = 0.5  # airflow at fixed rpm falls by half when the filter is full
CURRENT_RISE_AT_FULL = 0.35
PENETRATION = 0.8  # share of outdoor PM2.5 that gets in with infiltration air
DEPOSITION_PER_H = 0.2
EFFICIENCY = 0.97  # HEPA single-pass efficiency for PM2.5
RENOVATION_MG_PER_H = 50.0  # dust from the works, in working hours


@dataclass
class Purifiers:
    """State of N purifiers. Construct with `create`; advance with `step`."""

    room_m3: np.ndarray
    ach: np.ndarray  # infiltration air changes per hour
    capacity_g: np.ndarray  # this unit's filter capacity (unit-to-unit variation)
    smoker: np.ndarray  # bool
    cooking_mg: np.ndarray  # mass emitted per cooking event
    pm25: np.ndarray  # indoor µg/m³
    loaded_g: np.ndarray  # captured mass on the filter
    used_hours: np.ndarray  # fan run time since the filter change
    level: np.ndarray  # 0..5
    rng: np.random.Generator
    faults: dict[str, np.ndarray] = field(default_factory=dict)  # severity 0..1 by kind
    exhausted_at: np.ndarray = field(init=False)  # epoch s when loaded >= capacity, or nan
    stuck_at: np.ndarray = field(init=False)  # the value a stuck PM sensor repeats
    # this unit's datasheet (1 = nominal; `vary` sets them): clean airflow and motor
    # current, and how much each changes as the filter loads
    airflow_k: np.ndarray = field(init=False)
    current_k: np.ndarray = field(init=False)
    rise_k: np.ndarray = field(init=False)
    loss_k: np.ndarray = field(init=False)
    renovating_until: np.ndarray = field(init=False)  # epoch s

    def __post_init__(self) -> None:
        n = len(self.pm25)
        self.exhausted_at = np.full(n, np.nan)
        self.stuck_at = np.full(n, np.nan)
        self.airflow_k, self.current_k = np.ones(n), np.ones(n)
        self.rise_k, self.loss_k = np.ones(n), np.ones(n)
        self.renovating_until = np.full(n, -np.inf)

    def _severity(self, kind: str) -> np.ndarray:
        return self.faults.get(kind, np.zeros(len(self.pm25)))

    @classmethod
    def create(cls, n: int, rng: np.random.Generator, *, smoker_share: float = 0.1) -> Purifiers:
        return cls(
            room_m3=rng.uniform(30, 90, n),
            ach=rng.uniform(0.3, 1.0, n),
            capacity_g=NOMINAL_CAPACITY_G * rng.lognormal(0.0, 0.12, n),
            smoker=rng.random(n) < smoker_share,
            cooking_mg=rng.uniform(20, 120, n),
            pm25=rng.uniform(10, 40, n),
            loaded_g=np.zeros(n),
            used_hours=np.zeros(n),
            level=np.full(n, 2),
            rng=rng,
        )

    def __len__(self) -> int:
        return len(self.pm25)

    @property
    def load_fraction(self) -> np.ndarray:
        return np.asarray(self.loaded_g / self.capacity_g)

    def airflow_m3h(self) -> np.ndarray:
        """Airflow at the current fan level, reduced as the filter loads."""
        loss = 1 - AIRFLOW_LOSS_AT_FULL * self.loss_k * np.clip(self.load_fraction, 0, 1.5)
        prefilter = 1 - 0.6 * self._severity("clogged_prefilter")  # matted with lint and hair
        clean = _AIRFLOW[self.level] * self.airflow_k
        return np.asarray(clean * np.maximum(loss, 0.1) * prefilter)

    def cadr_m3h(self) -> np.ndarray:
        return np.asarray(self.airflow_m3h() * EFFICIENCY)

    def motor_current_ma(self) -> np.ndarray:
        rise = 1 + CURRENT_RISE_AT_FULL * self.rise_k * np.clip(self.load_fraction, 0, 1.5)
        wear = 1 + 0.6 * self._severity("motor_wear")  # a worn bearing drags
        clogged = 1 + 0.25 * self._severity("clogged_prefilter")  # more pressure drop
        return np.asarray(_CURRENT[self.level] * self.current_k * rise * wear * clogged)

    def reported_pm25(self) -> np.ndarray:
        """What the sensor says: drifting high, or stuck at one value."""
        value = self.pm25 * (1 + 1.5 * self._severity("pm_sensor_drift"))
        stuck = self._severity("pm_sensor_stuck") > 0
        self.stuck_at = np.where(stuck & np.isnan(self.stuck_at), value, self.stuck_at)
        self.stuck_at = np.where(stuck, self.stuck_at, np.nan)
        return np.asarray(np.where(stuck, self.stuck_at, value))

    def filter_life_pct(self) -> np.ndarray:
        """What the device itself reports: rated hours, blind to pollution."""
        return np.asarray(np.clip(100 * (1 - self.used_hours / RATED_HOURS), 0, 100))

    def step(self, t: float, dt: float, outdoor: np.ndarray) -> None:
        """Advance from epoch seconds `t` by `dt` seconds with outdoor PM2.5 `outdoor`."""
        n = len(self)
        hour = (t % DAY_S) / HOUR_S
        # indoor sources (mass per tick, mg): cooking at meal times, cigarettes for smokers
        meal = (np.abs(hour - 7.5) < 0.5) | (np.abs(hour - 12.5) < 0.5) | (np.abs(hour - 19) < 0.75)
        p_cook = np.where(meal, dt / HOUR_S * 0.8, 0.0)
        source_mg = np.where(self.rng.random(n) < p_cook, self.cooking_mg, 0.0)
        awake = (hour >= 7) & (hour < 23)
        p_smoke = np.where(self.smoker & awake, dt / HOUR_S * 1.2, 0.0)
        source_mg += np.where(self.rng.random(n) < p_smoke, 10.0, 0.0)
        works = (t < self.renovating_until) & (hour >= 9) & (hour < 17)
        if works.any():
            source_mg = source_mg + np.where(works, RENOVATION_MG_PER_H * dt / HOUR_S, 0.0)
        # auto mode on what its own sensor reads (a drifting sensor runs the fan harder);
        # sleep mode (level 1) at night
        auto = 1 + np.searchsorted(_AUTO, self.reported_pm25())
        self.level = np.where(awake, auto, 1).astype(int)
        cadr = self.cadr_m3h()
        # well-mixed room: dC/dt = a·(P·C_out) + S/V − k·C, solved exactly over the tick
        k = self.ach + DEPOSITION_PER_H + cadr / self.room_m3  # 1/h
        c_eq = self.ach * PENETRATION * outdoor / k
        decay = np.exp(-k * dt / HOUR_S)
        c_mean = c_eq + (self.pm25 - c_eq) * (1 - decay) / np.maximum(k * dt / HOUR_S, 1e-9)
        self.pm25 = c_eq + (self.pm25 - c_eq) * decay + source_mg * 1000 / self.room_m3
        # captured mass: airflow × efficiency × mean concentration over the tick (µg -> g)
        self.loaded_g = self.loaded_g + cadr * c_mean * dt / HOUR_S * 1e-6
        self.used_hours = self.used_hours + np.where(self.level > 0, dt / HOUR_S, 0.0)
        newly = np.isnan(self.exhausted_at) & (self.loaded_g >= self.capacity_g)
        self.exhausted_at[newly] = t + dt

    def replace_filter(self, mask: np.ndarray) -> None:
        """A technician (or the customer) fitted a new filter on the devices in `mask`."""
        self.loaded_g[mask] = 0.0
        self.used_hours[mask] = 0.0
        self.exhausted_at[mask] = np.nan
        self.capacity_g[mask] = NOMINAL_CAPACITY_G * self.rng.lognormal(0.0, 0.12, int(mask.sum()))

    # -- imperfection (device_sim.imperfection) -----------------------------------------
    def vary(self, rng: np.random.Generator, sigma: float) -> dict[str, np.ndarray]:
        """Each unit off its datasheet by manufacturing tolerance: fan and motor within
        `sigma`; the filter media's loading curve (how airflow falls and current rises
        with the load) twice that. Returns the factors, for the ground truth."""
        n = len(self)
        self.airflow_k, self.current_k = factors(rng, n, sigma), factors(rng, n, sigma)
        self.rise_k, self.loss_k = factors(rng, n, 2 * sigma), factors(rng, n, 2 * sigma)
        return {
            "airflow": self.airflow_k,
            "motor_current": self.current_k,
            "current_rise": self.rise_k,
            "airflow_loss": self.loss_k,
        }

    def change_home(self, kind: str, mask: np.ndarray, rng: np.random.Generator, t: float) -> None:
        """A move (another room, its air and its cooking; the household may smoke), a new
        smoker, or a renovation (weeks of dust in working hours)."""
        k = int(mask.sum())
        if kind == "move":
            self.room_m3[mask] = rng.uniform(30, 90, k)
            self.ach[mask] = rng.uniform(0.3, 1.0, k)
            self.cooking_mg[mask] = rng.uniform(20, 120, k)
            self.smoker[mask] = rng.random(k) < 0.1
        elif kind == "new_smoker":
            self.smoker[mask] = True
        elif kind == "renovation":
            self.renovating_until[mask] = t + rng.uniform(14, 60, k) * DAY_S

    def install(self, mask: np.ndarray) -> None:
        """Installed now: its first filter (the capacity it was made with) starts fresh."""
        self.loaded_g[mask] = 0.0
        self.used_hours[mask] = 0.0
        self.exhausted_at[mask] = np.nan

    def consumed(self) -> dict[str, np.ndarray]:
        """Ground truth: the share of the filter used up (1 = spent)."""
        return {"main": np.asarray(self.loaded_g / self.capacity_g)}

    def metrics(self) -> dict[str, np.ndarray]:
        """The readings the devices report (names and units of telemetry/metrics.py)."""
        return {
            "pm25": np.round(np.clip(self.reported_pm25(), 0, 2000), 1),
            "fan_level": self.level,
            "fan_rpm": _RPM[self.level],
            "motor_current_ma": np.round(self.motor_current_ma(), 1),
            "filter_life_pct": np.round(self.filter_life_pct(), 1),
            "filter_used_hours": np.round(self.used_hours, 2),
        }
