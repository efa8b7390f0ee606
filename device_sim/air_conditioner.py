"""Inverter split air conditioner physics, vectorised over devices.

Room: one thermal mass C with losses UA to outdoors and internal gains. The unit cools or
heats by season, holds a setpoint on an occupancy schedule with an inverter compressor
(frequency follows the temperature error), and its capacity falls as the return-air dust
filter loads (less airflow over the coil). Refrigerant (R32) pressures come from the
evaporating and condensing temperatures. Equations: docs/simulator.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from device_sim.environment import DAY_S, HOUR_S, YEAR_S
from device_sim.imperfection import factors

# outdoor temperature by region (north, east, south): annual mean, seasonal amplitude, °C
_T_MEAN = np.array([12.0, 17.0, 22.0])
_T_AMP = np.array([15.0, 11.0, 7.0])
F_MIN, F_MAX = 15.0, 110.0  # compressor Hz
KW_PER_HZ = 0.05  # capacity at a clean filter and mild lift: 5.5 kW at 110 Hz
AIRFLOW_M3S = 0.16  # indoor fan at a clean filter
FILTER_AIRFLOW_LOSS = 0.45  # airflow at full dust load
FILTER_CAPACITY_H = 1500.0  # fan hours to a full filter in a typical home
RPM_INDOOR = 1100
W_PER_HZ = 12.0  # compressor power per Hz at no lift
SPEED_CONTROLLED = 0.2  # a closed-loop fan's speed varies a fifth as much as the rest
RENOVATION_DUST = 3.0  # the filter loads this many times faster while the works last
# device error codes, in priority order: (code, what the manual says, when it trips)
ERROR_CODES = (
    ("P1", "high discharge pressure protection", "discharge above 4,200 kPa"),
    ("E6", "low refrigerant: suction pressure low while cooling", "suction below 750 kPa"),
    ("E4", "indoor fan speed abnormal", "fan below 85 % of its set speed while running"),
)
ERROR_TEXT = {code: text for code, text, _ in ERROR_CODES}


def r32_pressure_kpa(sat_temp_c: np.ndarray) -> np.ndarray:
    """R32 saturation pressure (kPa, absolute): ln P = a − b/T fitted to 813 kPa at 0 °C and
    2,478 kPa at 40 °C (within ~1 % from −20 to 60 °C)."""
    return np.asarray(np.exp(15.425 - 2382.0 / (sat_temp_c + 273.15)))


@dataclass
class AirConditioners:
    """State of N air conditioners; advance with `step`."""

    region: np.ndarray
    ua_w_per_k: np.ndarray
    capacitance_kj_per_k: np.ndarray
    dust_rate: np.ndarray  # filter load per fan hour (fraction), unit and home variation
    cool_setpoint: np.ndarray
    heat_setpoint: np.ndarray
    room_c: np.ndarray
    filter_load: np.ndarray  # fraction of a full filter
    filter_hours: np.ndarray
    freq: np.ndarray
    mode: np.ndarray  # 0 off, 1 cool, 2 heat
    outdoor_c: np.ndarray
    rng: np.random.Generator
    faults: dict[str, np.ndarray] = field(default_factory=dict)  # severity 0..1 by kind
    clogged_at: np.ndarray = field(init=False)
    compressor_on: np.ndarray = field(init=False)
    # this unit's datasheet (nominal until `vary`): capacity and power per Hz, the indoor
    # fan's speed, and how much airflow a full filter takes away
    kw_per_hz: np.ndarray = field(init=False)
    w_per_hz: np.ndarray = field(init=False)
    rpm_set: np.ndarray = field(init=False)
    filter_loss: np.ndarray = field(init=False)
    dusty_until: np.ndarray = field(init=False)  # epoch s: a renovation's dust

    def __post_init__(self) -> None:
        n = len(self.region)
        self.clogged_at = np.full(n, np.nan)
        self.compressor_on = np.zeros(n, dtype=bool)
        self.kw_per_hz, self.w_per_hz = np.full(n, KW_PER_HZ), np.full(n, W_PER_HZ)
        self.rpm_set = np.full(n, float(RPM_INDOOR))
        self.filter_loss = np.full(n, FILTER_AIRFLOW_LOSS)
        self.dusty_until = np.full(n, -np.inf)

    @classmethod
    def create(cls, region: np.ndarray, rng: np.random.Generator) -> AirConditioners:
        n = len(region)
        return cls(
            region=region,
            ua_w_per_k=rng.uniform(80, 180, n),
            capacitance_kj_per_k=rng.uniform(2000, 5000, n),
            dust_rate=rng.lognormal(0.0, 0.3, n) / FILTER_CAPACITY_H,
            cool_setpoint=rng.choice([24.0, 25.0, 26.0, 27.0], n),
            heat_setpoint=rng.choice([19.0, 20.0, 21.0, 22.0], n),
            room_c=rng.uniform(18, 26, n),
            filter_load=np.zeros(n),
            filter_hours=np.zeros(n),
            freq=np.zeros(n),
            mode=np.zeros(n, dtype=int),
            outdoor_c=np.zeros(n),
            rng=rng,
        )

    def __len__(self) -> int:
        return len(self.region)

    def _severity(self, kind: str) -> np.ndarray:
        return self.faults.get(kind, np.zeros(len(self.region)))

    def outdoor(self, t: float) -> np.ndarray:
        day = (t % YEAR_S) / DAY_S
        season = -np.cos(2 * np.pi * (day - 15) / 365.25)  # -1 mid-January, +1 mid-July
        hour = (t % DAY_S) / HOUR_S
        diurnal = 4.0 * np.cos(2 * np.pi * (hour - 15) / 24)  # warmest at 15:00
        return np.asarray(_T_MEAN[self.region] + _T_AMP[self.region] * season + diurnal)

    def airflow_factor(self) -> np.ndarray:
        fan = 1 - 0.25 * self._severity("fan_bearing_wear")  # a dragging fan moves less air
        return np.asarray((1 - self.filter_loss * np.clip(self.filter_load, 0, 1.5)) * fan)

    def capacity_kw(self) -> np.ndarray:
        """Heat moved at the current frequency: less with a dirty filter and a big lift."""
        lift = np.abs(self.outdoor_c - self.room_c)
        return np.asarray(
            self.kw_per_hz
            * self.freq
            * self.airflow_factor()
            * np.clip(1 - 0.008 * (lift - 8), 0.5, 1.1)
            * (1 - 0.6 * self._severity("refrigerant_leak"))  # less refrigerant, less heat moved
            * (1 - 0.4 * self._severity("compressor_degradation"))  # leaky valves pump less
        )

    def power_w(self) -> np.ndarray:
        lift = np.abs(self.outdoor_c - self.room_c)
        compressor = self.freq * self.w_per_hz * (1 + 0.02 * lift)
        compressor = compressor * (1 + 0.35 * self._severity("condenser_fouling"))
        compressor = compressor * (1 + 0.25 * self._severity("compressor_degradation"))
        fan = 45.0 + 30.0 * self._severity("fan_bearing_wear")  # the motor works harder
        return np.asarray(np.where(self.mode > 0, compressor + fan, 3.0))

    def indoor_fan_rpm(self) -> np.ndarray:
        """A worn bearing drags the fan down and makes it hunt around its speed."""
        wear = self._severity("fan_bearing_wear")
        hunt = self.rng.normal(0, 1, len(self)) * 60 * wear
        return np.asarray(np.round(self.rpm_set * (1 - 0.25 * wear) + hunt).astype(int))

    def error_codes(self, metrics: dict[str, np.ndarray]) -> np.ndarray:
        """The code each unit's controller shows now ('' = none), from what it measures."""
        running = self.mode > 0
        tripped = [
            metrics["discharge_pressure_kpa"] > 4200,
            (self.mode == 1) & (self.freq > 0) & (metrics["suction_pressure_kpa"] < 750),
            running & (metrics["indoor_fan_rpm"] < 0.85 * RPM_INDOOR),
        ]
        codes = np.full(len(self), "", dtype=object)
        for (code, _text, _when), hit in reversed(list(zip(ERROR_CODES, tripped, strict=True))):
            codes[hit] = code  # the first in priority order wins
        return codes

    def step(self, t: float, dt: float) -> None:
        hour = (t % DAY_S) / HOUR_S
        self.outdoor_c = self.outdoor(t) + self.rng.normal(0, 0.3, len(self))
        home = (hour < 8.5) | (hour >= 17.5)  # occupied mornings, evenings and nights
        want_cool = home & (self.outdoor_c > 26) | (self.mode == 1) & home & (self.outdoor_c > 24)
        want_heat = home & (self.outdoor_c < 10) | (self.mode == 2) & home & (self.outdoor_c < 12)
        self.mode = np.where(want_cool, 1, np.where(want_heat, 2, 0))
        setpoint = np.where(self.mode == 1, self.cool_setpoint, self.heat_setpoint)
        error = np.where(self.mode == 1, self.room_c - setpoint, setpoint - self.room_c)
        # inverter: frequency follows the error, with a floor while running; below the
        # setpoint the compressor stops (the fan runs on) and restarts once above it again
        self.compressor_on = np.where(
            error > 0.3, True, np.where(error < -0.7, False, self.compressor_on)
        ) & (self.mode > 0)
        target = np.clip(F_MIN + 40.0 * error, F_MIN, F_MAX)
        self.freq = np.where(
            self.compressor_on, 0.6 * np.maximum(self.freq, F_MIN) + 0.4 * target, 0.0
        )
        q_ac = self.capacity_kw() * 1000 * np.where(self.mode == 1, -1, 1)  # W into the room
        internal = np.where(home, 300.0, 150.0)
        heat_in = self.ua_w_per_k * (self.outdoor_c - self.room_c) + internal + q_ac
        self.room_c = self.room_c + heat_in * dt / (self.capacitance_kj_per_k * 1000)
        running = self.mode > 0
        self.filter_hours = self.filter_hours + np.where(running, dt / HOUR_S, 0.0)
        dust = self.dust_rate
        if (t < self.dusty_until).any():
            dust = dust * np.where(t < self.dusty_until, RENOVATION_DUST, 1.0)
        self.filter_load = self.filter_load + np.where(running, dust * dt / HOUR_S, 0.0)
        newly = np.isnan(self.clogged_at) & (self.filter_load >= 1)
        self.clogged_at[newly] = t + dt

    # -- imperfection (device_sim.imperfection) -----------------------------------------
    def vary(self, rng: np.random.Generator, sigma: float) -> dict[str, np.ndarray]:
        """Each unit off its datasheet within `sigma`: capacity and power per Hz, the
        airflow a full filter takes; the indoor fan's speed a fifth of that, since its
        drive holds the set speed from the fan's own Hall sensor. Returns the factors."""
        n = len(self)
        cap, power = factors(rng, n, sigma), factors(rng, n, sigma)
        rpm = factors(rng, n, sigma * SPEED_CONTROLLED)
        loss = factors(rng, n, sigma)
        self.kw_per_hz, self.w_per_hz = KW_PER_HZ * cap, W_PER_HZ * power
        self.rpm_set, self.filter_loss = RPM_INDOOR * rpm, FILTER_AIRFLOW_LOSS * loss
        return {"capacity": cap, "compressor_power": power, "fan_speed": rpm, "filter_loss": loss}

    def change_home(self, kind: str, mask: np.ndarray, rng: np.random.Generator, t: float) -> None:
        """A move (another room, maybe another region, other habits) or a renovation
        (the filter loads three times faster for a month or two)."""
        k = int(mask.sum())
        if kind == "move":
            self.region[mask] = rng.integers(0, len(_T_MEAN), k)
            self.ua_w_per_k[mask] = rng.uniform(80, 180, k)
            self.capacitance_kj_per_k[mask] = rng.uniform(2000, 5000, k)
            self.cool_setpoint[mask] = rng.choice([24.0, 25.0, 26.0, 27.0], k)
            self.heat_setpoint[mask] = rng.choice([19.0, 20.0, 21.0, 22.0], k)
        elif kind == "renovation":
            self.dusty_until[mask] = t + rng.uniform(14, 60, k) * DAY_S

    def install(self, mask: np.ndarray) -> None:
        """Installed now: a clean filter, its hours at zero."""
        self.clean_filter(mask)

    def clean_filter(self, mask: np.ndarray) -> None:
        self.filter_load[mask] = 0
        self.filter_hours[mask] = 0
        self.clogged_at[mask] = np.nan

    def consumed(self) -> dict[str, np.ndarray]:
        """Ground truth: the share of the return-air filter's dust load (1 = clogged)."""
        return {"main": self.filter_load.copy()}

    def metrics(self) -> dict[str, np.ndarray]:
        n = len(self)
        cooling, heating = self.mode == 1, self.mode == 2
        load = self.freq / F_MAX
        # evaporating / condensing temperatures: indoor coil in cooling, outdoor in heating
        leak, fouling = self._severity("refrigerant_leak"), self._severity("condenser_fouling")
        t_evap = np.where(cooling, self.room_c - 10 - 6 * load, self.outdoor_c - 6 - 6 * load)
        t_evap = t_evap - 8 * leak  # an undercharged evaporator runs colder and starved
        t_cond = np.where(cooling, self.outdoor_c + 8 + 10 * load, self.room_c + 15 + 12 * load)
        t_cond = t_cond + np.where(cooling, 12 * fouling, 0.0)  # a dirty condenser runs hot
        # worn valves leak discharge gas back: the pressure ratio collapses
        worn = self._severity("compressor_degradation") * (self.freq > 0)
        t_evap, t_cond = t_evap + 5 * worn, t_cond - 6 * worn
        idle = ~(cooling | heating) | (self.freq == 0)
        equal = r32_pressure_kpa(np.maximum(self.room_c, self.outdoor_c))  # pressures settle
        suction = np.where(idle, equal, r32_pressure_kpa(t_evap))
        discharge = np.where(idle, equal, r32_pressure_kpa(t_cond))
        airflow = AIRFLOW_M3S * self.airflow_factor()
        delta_t = self.capacity_kw() * 1000 / (1.2 * 1005 * airflow)
        supply = np.where(
            cooling, self.room_c - delta_t, np.where(heating, self.room_c + delta_t, self.room_c)
        )
        coil = np.where(cooling, t_evap + 2, np.where(heating, t_cond - 3, self.room_c))
        modes = np.array(["off", "cool", "heat"])
        return {
            "mode": modes[self.mode],
            "setpoint_c": np.where(cooling, self.cool_setpoint, self.heat_setpoint),
            "room_temp_c": np.round(self.room_c, 2),
            "outdoor_temp_c": np.round(self.outdoor_c, 2),
            "humidity_pct": np.round(
                np.clip(55 + 15 * cooling - 15 * heating + self.rng.normal(0, 4, n), 5, 95), 1
            ),
            "compressor_hz": np.round(self.freq, 1),
            "power_w": np.round(self.power_w(), 1),
            "suction_pressure_kpa": np.round(suction, 0),
            "discharge_pressure_kpa": np.round(discharge, 0),
            "coil_temp_c": np.round(coil, 2),
            "supply_air_temp_c": np.round(supply, 2),
            "indoor_fan_rpm": np.where(self.mode > 0, self.indoor_fan_rpm(), 0),
            "filter_used_hours": np.round(self.filter_hours, 2),
        }
