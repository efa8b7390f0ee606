"""Faults: a declarative table of what can go wrong, and per-device plans of when.

Each fault has an onset (ground truth) and grows from severity 0 to 1 over its
progression time; the physics models read the severities and change what they measure
and report. Adding a fault is adding a row here and its effect in the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from telemetry.metrics import Metric
from telemetry.metrics import device_type as device_type_row

ANY = "*"  # a fault any device type can have
PROFILED = "profile"  # a fault any family simulated from its profile alone can have
PHYSICS = ("purifier", "water_purifier", "air_conditioner")  # families with physics of their own
# the sensor that sensor faults hit, per device type
SENSOR_OF = {"purifier": "pm25", "water_purifier": "tds_out_ppm", "air_conditioner": "room_temp_c"}
SPIKE_RATE = 0.05  # share of readings spiked at full severity
DROPOUT_RATE = 0.4  # share of readings missing at full severity


@dataclass(frozen=True, kw_only=True)
class FaultKind:
    name: str
    device_type: str  # or ANY
    progression_days: float  # from onset to full severity
    description: str
    freezes: bool = False  # holds the main sensor at one value (no noise reaches it)


FAULTS: tuple[FaultKind, ...] = (
    FaultKind(
        name="motor_wear",
        device_type="purifier",
        progression_days=20,
        description="Fan motor bearing wear: current rises at the same speed.",
    ),
    FaultKind(
        name="pm_sensor_drift",
        device_type="purifier",
        progression_days=30,
        description="PM2.5 sensor reads high, increasingly (up to +150 %).",
    ),
    FaultKind(
        name="pm_sensor_stuck",
        device_type="purifier",
        progression_days=0.01,
        description="PM2.5 sensor repeats one value.",
        freezes=True,
    ),
    FaultKind(
        name="ro_membrane_failure",
        device_type="water_purifier",
        progression_days=5,
        description="RO membrane breach: salt rejection collapses, TDS out climbs.",
    ),
    FaultKind(
        name="pump_failure",
        device_type="water_purifier",
        progression_days=3,
        description="Booster pump failing: pressure falls, current rises.",
    ),
    FaultKind(
        name="clogged_prefilter",
        device_type="purifier",
        progression_days=10,
        description="Pre-filter matted with lint and hair: airflow falls, current rises.",
    ),
    FaultKind(
        name="leak",
        device_type="water_purifier",
        progression_days=0.01,
        description="Water under the unit: the leak sensor trips.",
    ),
    FaultKind(
        name="refrigerant_leak",
        device_type="air_conditioner",
        progression_days=45,
        description="Slow refrigerant leak: capacity and suction pressure fall.",
    ),
    FaultKind(
        name="condenser_fouling",
        device_type="air_conditioner",
        progression_days=60,
        description="Dirty condenser: head pressure and power rise.",
    ),
    FaultKind(
        name="compressor_degradation",
        device_type="air_conditioner",
        progression_days=90,
        description="Worn compressor valves: capacity falls and power rises at the same "
        "frequency; suction pressure up, discharge down.",
    ),
    FaultKind(
        name="fan_bearing_wear",
        device_type="air_conditioner",
        progression_days=30,
        description="Indoor fan bearing wear: the fan slows and hunts, airflow and capacity "
        "fall, fan power rises.",
    ),
    FaultKind(
        name="sensor_spikes",
        device_type=ANY,
        progression_days=1,
        description="A loose sensor connection: occasional readings several times the true "
        "value (inside the sensor's range), up to 5 % of readings.",
    ),
    FaultKind(
        name="sensor_dropout",
        device_type=ANY,
        progression_days=1,
        description="A failing sensor: readings missing (null), up to 40 % of them.",
    ),
)
# what can go wrong with any family, whatever it is: its main sensor, or a relation
FAULTS += (
    FaultKind(
        name="sensor_drift",
        device_type=PROFILED,
        progression_days=20,
        description="The main sensor reads high, increasingly (up to +50 %).",
    ),
    FaultKind(
        name="sensor_stuck",
        device_type=PROFILED,
        progression_days=0.01,
        description="The main sensor repeats one value.",
        freezes=True,
    ),
    FaultKind(
        name="step_change",
        device_type=PROFILED,
        progression_days=0.01,
        description="The main sensor's level shifts at once (a part fitted wrong, a move).",
    ),
    FaultKind(
        name="broken_relation",
        device_type=PROFILED,
        progression_days=10,
        description="The first relation's y departs from its x (up to +40 %): a part wearing.",
    ),
)
BY_NAME = {f.name: f for f in FAULTS}


def kinds_for(device_type: str) -> tuple[FaultKind, ...]:
    """The faults a family can develop: its own and any family's; a family simulated from
    its profile alone gets the generic ones."""
    own = (device_type, ANY) if device_type in PHYSICS else (ANY, PROFILED)
    return tuple(f for f in FAULTS if f.device_type in own)


def apply_sensor_faults(
    metrics: dict[str, np.ndarray],
    plan: FaultPlan,
    t: float,
    rng: np.random.Generator,
    sensor: Metric | None = None,
) -> dict[str, np.ndarray]:
    """Spikes and dropouts on the type's main sensor. Draws come from their own stream,
    for every device, so they never shift the physics or differ between processes."""
    severity = plan.severity(t)
    spikes = severity.get("sensor_spikes")
    dropout = severity.get("sensor_dropout")
    if spikes is None or dropout is None or not (spikes.any() or dropout.any()):
        return metrics
    row = (
        sensor
        if sensor is not None
        else device_type_row(plan.device_type).by_name[SENSOR_OF[plan.device_type]]
    )
    name = row.name
    n = len(spikes)
    u_spike, factor, u_drop = rng.random(n), rng.uniform(3, 8, n), rng.random(n)
    values = np.asarray(metrics[name], dtype=float)
    spiked = u_spike < SPIKE_RATE * spikes
    hi = row.maximum if row.maximum is not None else np.inf
    values = np.where(spiked, np.minimum(np.abs(values) * factor + 50, hi), values)
    out = dict(metrics)
    values = np.round(values) if row.kind.value == "int" else np.round(values, 2)
    missing = u_drop < DROPOUT_RATE * dropout
    if missing.any():
        obj = values.astype(object)
        obj[missing] = None
        out[name] = obj
    else:
        out[name] = values
    return out


@dataclass
class FaultPlan:
    """At most one fault per device: which (index into `kinds`, -1 none) and from when."""

    device_type: str
    kinds: tuple[FaultKind, ...]
    kind: np.ndarray
    onset: np.ndarray  # epoch s, nan = healthy

    @classmethod
    def healthy(cls, device_type: str, n: int) -> FaultPlan:
        return cls(device_type, kinds_for(device_type), np.full(n, -1), np.full(n, np.nan))

    @classmethod
    def sample(
        cls,
        device_type: str,
        n: int,
        rng: np.random.Generator,
        *,
        start: float,
        end: float,
        per_device_year: float,
    ) -> FaultPlan:
        """Each device gets a fault with probability rate × years, onset uniform in the
        window, kind uniform among its type's kinds."""
        plan = cls.healthy(device_type, n)
        if not plan.kinds or per_device_year <= 0 or end <= start:
            return plan
        years = (end - start) / (365.25 * 86400)
        faulty = rng.random(n) < min(1.0, per_device_year * years)
        plan.kind = np.where(faulty, rng.integers(0, len(plan.kinds), n), -1)
        plan.onset = np.where(faulty, rng.uniform(start, end, n), np.nan)
        return plan

    def severity(self, t: float) -> dict[str, np.ndarray]:
        """Severity 0..1 of each kind at time t (0 where a device does not have it)."""
        # one pass over the faulty devices, not one per kind: the simulator asks this
        # several times per reading round
        grid = np.zeros((len(self.kinds), len(self.kind)))
        on = np.flatnonzero((self.kind >= 0) & (self.onset <= t))
        if len(on):
            kind = self.kind[on]
            days = np.array([k.progression_days for k in self.kinds])[kind]
            grid[kind, on] = np.clip((t - self.onset[on]) / (days * 86400), 0, 1)
        return {k.name: grid[i] for i, k in enumerate(self.kinds)}

    def repair(self, mask: np.ndarray) -> None:
        self.kind[mask] = -1
        self.onset[mask] = np.nan
