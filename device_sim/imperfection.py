"""What makes a simulated fleet as imperfect as a real one, on by default.

A model that only works when every unit matches its datasheet, every sensor reads true
and every reading arrives is no model for a real fleet. So the simulator gives each unit:

* **its own datasheet** (`unit_variation`): every physical constant a model could lean on
  (clean airflow and motor current, new-membrane salt passage, pump pressure, compressor
  capacity and power per Hz, fan speed) a few per cent off nominal, as manufacturing
  tolerances make them;
* **its own sensors** (`sensors`): each metric's gain error, zero offset, reading noise,
  resolution and slow drift, from the figures its profile's `sensor` block gives
  (datasheet figures; telemetry/profiles);
* **gaps** in its telemetry (`gaps_per_year`, `gap_median_h`, `gap_spread`): Wi-Fi down,
  a router replaced, the unit unplugged for a holiday; and single readings lost (`loss`);
* **its own clock** (`clock_skew_s`, `unsynced`): NTP keeps most within a second or two,
  a few run minutes off;
* **a home that changes** (`home_changes_per_year`): a move (another region, room, feed
  water, household), a new smoker, a renovation's dust;
* **its own install date** (`late_installs`): a share of the fleet is installed during the
  run, silent until then and new from then on.

Every draw comes from random streams of its own, so the physics' stream is untouched:
`Imperfection.clean()` (debugging only) gives exactly the simulator without any of it.
Each imperfection is in the ground truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import numpy as np

from telemetry.profile import Profile, Sensor

YEAR_S = 365.25 * 86400.0
UNSYNCED_MAX_S = 300.0  # an unsynced clock: up to five minutes either way


@dataclass(frozen=True, kw_only=True)
class Imperfection:
    """The knobs, each at the real-world figure it stands for (docs/simulator.md)."""

    unit_variation: float = 0.05  # σ, share: ±5-10 % manufacturing tolerances
    sensors: bool = True  # each metric's `sensor` figures from its profile
    gaps_per_year: float = 12.0  # telemetry gaps per device-year
    gap_median_h: float = 3.0  # median gap length
    gap_spread: float = 1.5  # σ of the gap length's log: about 1 in 30 over two days
    loss: float = 0.01  # single readings lost (a busy network)
    clock_skew_s: float = 1.0  # σ of an NTP-synced clock's offset
    unsynced: float = 0.02  # share of clocks that never synced: up to ±5 minutes
    home_changes_per_year: float = 0.1  # moves (~6 % a year), new smokers, renovations
    late_installs: float = 0.1  # share of units installed during the run

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and value < 0:
                raise ValueError(f"{f.name} cannot be negative")
        for share in ("loss", "unsynced", "late_installs"):
            if getattr(self, share) > 1:
                raise ValueError(f"{share} is a share: 0 to 1")
        if self.gap_median_h <= 0:
            raise ValueError("gap_median_h must be positive")

    @classmethod
    def clean(cls) -> Imperfection:
        """Every unit on its datasheet, every sensor true, every reading sent: for
        debugging a model, never for judging one."""
        return cls(
            unit_variation=0.0,
            sensors=False,
            gaps_per_year=0.0,
            loss=0.0,
            clock_skew_s=0.0,
            unsynced=0.0,
            home_changes_per_year=0.0,
            late_installs=0.0,
        )

    def always_online(self) -> Imperfection:
        """The same units and sensors, every one installed and every reading sent: for a
        benchmark or a test that counts on every unit reporting."""
        return replace(self, gaps_per_year=0.0, loss=0.0, late_installs=0.0)

    @property
    def is_clean(self) -> bool:
        return self == Imperfection.clean()

    def summary(self) -> str:
        if self.is_clean:
            return "clean (no imperfection)"
        parts = [
            f"units ±{100 * self.unit_variation:.0f} %",
            "sensor errors" if self.sensors else "true sensors",
            f"{self.gaps_per_year:g} gaps a year (median {self.gap_median_h:g} h)",
            f"{100 * self.loss:g} % readings lost",
            f"{self.home_changes_per_year:g} home changes a year",
            f"{100 * self.late_installs:g} % installed during the run",
        ]
        return ", ".join(parts)


def factors(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Each unit's multiplier on a nominal constant: 1 ± sigma (normal, cut at 3 sigma);
    exactly 1 when sigma is 0."""
    if sigma <= 0:
        return np.ones(n)
    return np.asarray(1.0 + sigma * np.clip(rng.standard_normal(n), -3, 3))


# -- sensors ------------------------------------------------------------------------------
@dataclass
class Sensors:
    """Each unit's sensor errors for one family: per metric a gain (with a slow drift in
    log space), a zero offset, noise and a resolution; counters accumulate their
    increments at the gain (a flow meter reading 5 % high counts 5 % more litres)."""

    specs: dict[str, Sensor]
    is_int: dict[str, bool]
    counter: dict[str, bool]
    bounds: dict[str, tuple[float, float]]
    gain: dict[str, np.ndarray]
    offset: dict[str, np.ndarray]
    drift: dict[str, np.ndarray]  # log-gain random walk
    rng: np.random.Generator
    true_total: dict[str, np.ndarray] = field(default_factory=dict)
    reported_total: dict[str, np.ndarray] = field(default_factory=dict)
    last_t: float | None = None

    @classmethod
    def create(cls, profile: Profile, n: int, rng: np.random.Generator) -> Sensors:
        specs = {m.name: m.sensor for m in profile.doc.metrics if m.sensor is not None}
        rows = {m.name: m for m in profile.doc.metrics}
        gain = {k: factors(rng, n, s.accuracy) for k, s in specs.items()}
        offset = {k: s.offset * np.clip(rng.standard_normal(n), -3, 3) for k, s in specs.items()}
        bounds = {}
        for k in specs:
            r = rows[k].range
            bounds[k] = (float(r[0]), float(r[1])) if r is not None else (-np.inf, np.inf)
        return cls(
            specs=specs,
            is_int={k: rows[k].kind == "int" for k in specs},
            counter={k: rows[k].counter for k in specs},
            bounds=bounds,
            gain=gain,
            offset=offset,
            drift={k: np.zeros(n) for k in specs},
            rng=rng,
        )

    def truth(self, i: int) -> dict[str, float]:
        """Unit `i`'s sensor errors, for the ground truth."""
        out = {}
        for k, spec in self.specs.items():
            if spec.accuracy or spec.drift_per_year:
                out[f"{k}.gain"] = round(float(self.gain[k][i] * np.exp(self.drift[k][i])), 4)
            if spec.offset:
                out[f"{k}.offset"] = round(float(self.offset[k][i]), 3)
        return out

    def read(
        self, t: float, metrics: dict[str, np.ndarray], frozen: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """What the units' sensors say, given the true `metrics`. `frozen`: per metric,
        the units whose sensor a fault holds at one value (no noise, no drift on it)."""
        dt = 0.0 if self.last_t is None else max(0.0, t - self.last_t)
        self.last_t = t
        out = dict(metrics)
        for k, spec in self.specs.items():
            if k not in metrics:
                continue
            true = np.asarray(metrics[k], dtype=float)
            n = len(true)
            if spec.drift_per_year and dt:
                step = spec.drift_per_year * np.sqrt(dt / YEAR_S)
                self.drift[k] = self.drift[k] + self.rng.normal(0.0, step, n)
            gain = self.gain[k] * np.exp(self.drift[k])
            if self.counter[k]:
                value = self._count(k, true, gain)
            else:
                value = gain * true + self.offset[k]
                if spec.noise or spec.noise_abs:
                    sigma = spec.noise * np.abs(true) + spec.noise_abs
                    value = value + sigma * self.rng.standard_normal(n)
                held = (frozen or {}).get(k)
                if held is not None and held.any():
                    value = np.where(held, self.gain[k] * true + self.offset[k], value)
                value = np.where(true == 0, 0.0, value)  # a stopped fan, no flow: the unit says 0
            lo, hi = self.bounds[k]
            # ufuncs and array methods, not np.clip / np.round: their Python wrappers cost
            # more than the arithmetic at a few hundred units per call
            value = np.minimum(np.maximum(value, lo), hi)
            if spec.resolution:
                value = (value / spec.resolution).round() * spec.resolution
                decimals = max(0, math.ceil(-math.log10(spec.resolution)) + 1)
                value = value.round(decimals)
            out[k] = value.astype(np.int64) if self.is_int[k] else value
        return out

    def _count(self, k: str, true: np.ndarray, gain: np.ndarray) -> np.ndarray:
        """A counter counts its increments at the meter's gain; a reset restarts it."""
        last = self.true_total.get(k)
        if last is None:
            reported = gain * true
        else:
            reset = true < last
            step = np.maximum(true - last, 0.0)
            reported = np.where(reset, gain * true, self.reported_total[k] + gain * step)
        self.true_total[k], self.reported_total[k] = true.copy(), reported
        return np.asarray(reported)


# -- gaps --------------------------------------------------------------------------------
@dataclass
class Gaps:
    """When each unit's telemetry does not arrive: gaps of log-normal length starting at
    random, and single readings lost. Before its install a unit sends nothing."""

    imperfection: Imperfection
    installed_at: np.ndarray  # epoch s
    rng: np.random.Generator
    offline_until: np.ndarray = field(init=False)
    last_t: float | None = None

    def __post_init__(self) -> None:
        self.offline_until = np.full(len(self.installed_at), -np.inf)

    def online(self, t: float) -> tuple[np.ndarray, list[tuple[int, float, float]]]:
        """Which units' readings of time `t` arrive, and the gaps that started now
        (unit, start, end)."""
        imp = self.imperfection
        n = len(self.installed_at)
        dt = 0.0 if self.last_t is None else max(0.0, t - self.last_t)
        self.last_t = t
        installed = t >= self.installed_at
        started: list[tuple[int, float, float]] = []
        if imp.gaps_per_year and dt:
            p = 1.0 - np.exp(-imp.gaps_per_year * dt / YEAR_S)
            up = installed & (t >= self.offline_until)
            begin = up & (self.rng.random(n) < p)
            if begin.any():
                hours = imp.gap_median_h * np.exp(imp.gap_spread * self.rng.standard_normal(n))
                self.offline_until = np.where(begin, t + hours * 3600.0, self.offline_until)
                started = [(int(i), t, float(self.offline_until[i])) for i in np.flatnonzero(begin)]
        arrive = installed & (t >= self.offline_until)
        if imp.loss:
            arrive &= self.rng.random(n) >= imp.loss
        return arrive, started


def install_times(
    imperfection: Imperfection, n: int, rng: np.random.Generator, start: float, window_s: float
) -> np.ndarray:
    """When each unit is installed: at the start, or (a `late_installs` share) at a
    uniform time within the window."""
    late = rng.random(n) < imperfection.late_installs
    when = start + rng.uniform(0.0, window_s, n)
    return np.where(late, when, start)


def clock_offsets_ms(imperfection: Imperfection, n: int, rng: np.random.Generator) -> np.ndarray:
    """Each unit's clock offset: NTP-synced within a second or two, a few never synced."""
    synced = rng.normal(0.0, imperfection.clock_skew_s * 1000.0, n)
    off = rng.uniform(-UNSYNCED_MAX_S, UNSYNCED_MAX_S, n) * 1000.0
    return np.asarray(np.where(rng.random(n) < imperfection.unsynced, off, synced), dtype=np.int64)


# -- homes that change ---------------------------------------------------------------------
HOME_CHANGES = {
    # family -> (kind, share of the changes)
    "purifier": (("move", 0.6), ("new_smoker", 0.15), ("renovation", 0.25)),
    "air_conditioner": (("move", 0.7), ("renovation", 0.3)),
    "water_purifier": (("move", 1.0),),
}
DEFAULT_CHANGES = (("move", 1.0),)


@dataclass
class HomeChanges:
    """The changes each unit's home goes through, in time order: (time, unit, kind)."""

    pending: list[tuple[float, int, str]]

    @classmethod
    def plan(
        cls,
        imperfection: Imperfection,
        device_type: str,
        n: int,
        rng: np.random.Generator,
        start: float,
        window_s: float,
    ) -> HomeChanges:
        rate = imperfection.home_changes_per_year
        if rate <= 0 or window_s <= 0:
            return cls([])
        kinds = HOME_CHANGES.get(device_type, DEFAULT_CHANGES)
        names = [k for k, _ in kinds]
        weights = np.array([w for _, w in kinds])
        counts = rng.poisson(rate * window_s / YEAR_S, n)
        events = []
        for i in np.flatnonzero(counts):
            for _ in range(int(counts[i])):
                kind = names[int(rng.choice(len(names), p=weights / weights.sum()))]
                events.append((float(start + rng.uniform(0, window_s)), int(i), kind))
        return cls(sorted(events))

    def due(self, t: float) -> list[tuple[float, int, str]]:
        """The changes up to `t`, taken off the plan."""
        k = 0
        while k < len(self.pending) and self.pending[k][0] <= t:
            k += 1
        out, self.pending = self.pending[:k], self.pending[k:]
        return out
