"""Any product family, simulated from its profile alone: no physics of its own.

What the profile says drives everything, one array element per device:
* **when it runs**: `simulation.usage` — a share of the time, higher in the peak hours and
  at weekends, and more or less in each home (some run it twice as much as others); each
  unit switches on and off as a two-state chain (runs last an hour or so on average) that
  keeps that share;
* **each metric**: its `sim` hints — a typical value per unit (units differ by a few per
  cent), another while idle, a daily rhythm (highest mid-afternoon), a weekend offset,
  sensor noise, counters that grow per running hour; a relation's `sim` coefficients
  make its `y` from its `x`; a consumable's wear moves a degradation signal;
* **consumables**: used up by their drivers in their rated units, each unit's capacity
  a little off the rating; spent (ground truth) when the first rated unit runs out;
* **fault codes**: shown at their `per_device_year` rate, as `error_code` events;
* **generic faults** (`device_sim.faults`, kinds for any family): the main sensor drifts,
  sticks or steps, a relation breaks; spikes and dropouts as for every family.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from device_sim.environment import DAY_S, HOUR_S
from device_sim.imperfection import factors
from telemetry.profile import Profile

MONTH_S = 30.44 * DAY_S
MEAN_RUN_S = 3600.0  # a run lasts an hour or so
NUMERIC = ("float", "int")


def main_sensor(profile: Profile) -> str:
    """The metric generic sensor faults hit: the first numeric, non-counter metric on the
    health card, else the first such metric."""
    specs = {m.name: m for m in profile.doc.metrics}
    card = [i.metric for i in profile.doc.health_card if i.metric]
    for name in [*card, *specs]:
        m = specs.get(name or "")
        if m is not None and m.kind in NUMERIC and not m.counter:
            return m.name
    raise ValueError(f"{profile.label} has no numeric metric a sensor fault could hit")


@dataclass
class ProfileAppliances:
    """N devices of one profile's family. Construct with `create`; advance with `step`."""

    profile: Profile
    rng: np.random.Generator
    running: np.ndarray  # bool
    unit_factor: dict[str, np.ndarray]  # per metric: this unit's offset from the typical
    counters: dict[str, np.ndarray]
    used: dict[str, dict[str, np.ndarray]]  # stage -> rated unit -> used since fitted
    capacity: dict[str, dict[str, np.ndarray]]  # stage -> rated unit -> this unit's life
    fitted_at: dict[str, np.ndarray]  # stage -> epoch s the consumable was fitted
    usage: np.ndarray  # how much more (or less) than typical each home runs it
    faults: dict[str, np.ndarray] = field(default_factory=dict)  # severity 0..1 by kind
    exhausted_at: dict[str, np.ndarray] = field(default_factory=dict)
    stuck_at: np.ndarray = field(init=False)
    # per counter: this unit's growth rate over the profile's (imperfection; 1 when clean)
    rate_k: dict[str, np.ndarray] = field(default_factory=dict)
    t: float = 0.0
    codes: np.ndarray = field(init=False)  # the code each unit shows this round ('' none)

    def __post_init__(self) -> None:
        n = len(self.running)
        self.stuck_at = np.full(n, np.nan)
        self.codes = np.full(n, "", dtype=object)
        for c in self.profile.doc.consumables:
            self.exhausted_at.setdefault(c.stage, np.full(n, np.nan))
        self.sensor = main_sensor(self.profile)

    @classmethod
    def create(
        cls, profile: Profile, n: int, rng: np.random.Generator, start: float
    ) -> ProfileAppliances:
        doc = profile.doc
        usage = doc.simulation.usage
        running = rng.random(n) < usage.base
        factor = {m.name: rng.lognormal(0.0, 0.05, n) for m in doc.metrics}
        counters = {m.name: np.zeros(n) for m in doc.metrics if m.counter}
        used, capacity = {}, {}
        for c in doc.consumables:
            rated = c.rated.given()
            used[c.stage] = {u: np.zeros(n) for u in rated if u != "months"}
            capacity[c.stage] = {u: v * rng.lognormal(0.0, 0.12, n) for u, v in rated.items()}
        fitted = {c.stage: np.full(n, start) for c in doc.consumables}
        usage_factor = rng.lognormal(0.0, 0.35, n)
        return cls(profile, rng, running, factor, counters, used, capacity, fitted, usage_factor)

    def __len__(self) -> int:
        return len(self.running)

    # -- time ------------------------------------------------------------------------
    def _share(self, t: float) -> np.ndarray:
        u = self.profile.doc.simulation.usage
        hour = (t % DAY_S) / HOUR_S
        lo, hi = u.peak_hours
        peak = lo <= hour < hi if lo <= hi else (hour >= lo or hour < hi)
        weekend = int(t // DAY_S + 4) % 7 >= 5  # 1970-01-01 was a Thursday
        typical = (u.peak if peak else u.base) * (u.weekend if weekend else 1.0)
        return np.asarray(np.minimum(0.98, typical * self.usage))

    def step(self, t: float, dt: float) -> None:
        """Advance from epoch seconds `t` by `dt` seconds."""
        n = len(self)
        share = self._share(t)
        p_off = min(1.0, dt / MEAN_RUN_S)
        p_on = np.minimum(1.0, p_off * share / np.maximum(1e-6, 1 - share))
        u = self.rng.random(n)
        self.running = np.where(self.running, u >= p_off, u < p_on)
        hours_running = np.where(self.running, dt / HOUR_S, 0.0)
        specs = {m.name: m for m in self.profile.doc.metrics}
        grown: dict[str, np.ndarray] = {}
        for name, value in self.counters.items():
            sim = specs[name].sim
            if sim is not None:
                grown[name] = (
                    sim.per_running_hour * hours_running + sim.per_hour * dt / HOUR_S
                ) * self.rate_k.get(name, 1.0)
                self.counters[name] = value + grown[name]
        values = self._values(t, noise=False)
        for c in self.profile.doc.consumables:
            for d in c.drivers:
                if d.counter is not None:
                    add = grown.get(d.counter, np.zeros(n))
                elif d.running is not None:
                    x, bound = values[d.running.metric], d.running
                    on = x > bound.above if bound.above is not None else x < bound.below
                    add = np.where(on, dt / HOUR_S, 0.0)
                else:
                    product = np.ones(n)
                    for name in d.integral or ():
                        product = product * values[name]
                    add = product * dt / HOUR_S * d.scale
                self.used[c.stage][d.unit] = self.used[c.stage][d.unit] + add
        self.t = t + dt
        for stage, share_used in self.consumed().items():
            newly = np.isnan(self.exhausted_at[stage]) & (share_used >= 1.0)
            self.exhausted_at[stage][newly] = t + dt

    def consumed(self) -> dict[str, np.ndarray]:
        """Ground truth: the share of each consumable used up (1 = spent, whichever rated
        unit runs out first)."""
        out = {}
        for c in self.profile.doc.consumables:
            shares = [self.used[c.stage][u] / self.capacity[c.stage][u] for u in self.used[c.stage]]
            if "months" in self.capacity[c.stage]:
                age = (self.t - self.fitted_at[c.stage]) / MONTH_S
                shares.append(age / self.capacity[c.stage]["months"])
            out[c.stage] = np.max(np.vstack(shares), axis=0) if shares else np.zeros(len(self))
        return out

    def replace_stage(self, stage: str, mask: np.ndarray) -> None:
        """A new consumable on the devices in `mask`: its wear restarts, and so do the
        counters the device restarts with it."""
        c = self.profile.consumable(stage)
        if c is None:
            return
        for unit in self.used[stage]:
            self.used[stage][unit][mask] = 0.0
        for unit, rated in c.rated.given().items():
            self.capacity[stage][unit][mask] = rated * self.rng.lognormal(
                0.0, 0.12, int(mask.sum())
            )
        self.fitted_at[stage][mask] = self.t
        self.exhausted_at[stage][mask] = np.nan
        for d in c.drivers:
            if d.counter is not None and d.resets:
                self.counters[d.counter][mask] = 0.0

    # -- imperfection (device_sim.imperfection) -----------------------------------------
    def vary(self, rng: np.random.Generator, sigma: float) -> dict[str, np.ndarray]:
        """Each unit's counters grow at a rate of its own, within `sigma` of the profile's
        (a dehumidifier extracting a few per cent more water an hour than the next);
        typical values and capacities already differ by unit. Returns the factors."""
        out = {}
        for name in self.counters:
            self.rate_k[name] = factors(rng, len(self), sigma)
            out[f"{name}.rate"] = self.rate_k[name]
        return out

    def change_home(self, kind: str, mask: np.ndarray, rng: np.random.Generator, t: float) -> None:
        """A move: another household, which runs it more or less."""
        if kind == "move":
            self.usage[mask] = rng.lognormal(0.0, 0.35, int(mask.sum()))

    def install(self, mask: np.ndarray) -> None:
        """Installed now: every consumable fresh (the ones it was made with), every
        counter at zero."""
        for stage, by_unit in self.used.items():
            for unit in by_unit:
                by_unit[unit][mask] = 0.0
            self.fitted_at[stage][mask] = self.t
            self.exhausted_at[stage][mask] = np.nan
        for name in self.counters:
            self.counters[name][mask] = 0.0

    def wear_to(self, share: np.ndarray) -> None:
        """Start units `share` (0..1) of the way through their consumables' life."""
        for stage, by_unit in self.used.items():
            for unit in by_unit:
                by_unit[unit] = share * self.capacity[stage][unit]
            if "months" in self.capacity[stage]:
                self.fitted_at[stage] = (
                    self.fitted_at[stage] - share * self.capacity[stage]["months"] * MONTH_S
                )
        for c in self.profile.doc.consumables:
            for d in c.drivers:
                if d.counter is not None and d.unit in self.used[c.stage]:
                    self.counters[d.counter] = np.maximum(
                        self.counters[d.counter], self.used[c.stage][d.unit]
                    )

    # -- what the devices report --------------------------------------------------------
    def _values(self, t: float, *, noise: bool) -> dict[str, np.ndarray]:
        doc = self.profile.doc
        n = len(self)
        hour = (t % DAY_S) / HOUR_S
        weekend = int(t // DAY_S + 4) % 7 >= 5
        rhythm = np.sin(2 * np.pi * (hour - 9) / 24)  # highest at 15:00
        consumed = self.consumed() if any(m.sim and m.sim.wear for m in doc.metrics) else {}
        state = doc.simulation.usage.state
        out: dict[str, np.ndarray] = {}
        relations = {r.y: r for r in doc.relations if r.sim is not None}
        for m in doc.metrics:
            if m.name in relations:
                continue
            sim = m.sim
            if m.counter:
                out[m.name] = self.counters[m.name]
            elif m.kind == "bool":
                out[m.name] = self.running.copy() if m.name == state else np.zeros(n, dtype=bool)
            elif m.kind == "enum":
                choices = np.array(m.choices or ["?"], dtype=object)
                out[m.name] = np.where(self.running, choices[min(1, len(choices) - 1)], choices[0])
            else:
                mean = (sim.mean if sim else 0.0) * self.unit_factor[m.name]
                v = (
                    mean
                    + (sim.daily * rhythm if sim else 0.0)
                    + (sim.weekly if sim and weekend else 0.0)
                )
                if sim is not None and sim.wear and sim.consumable in consumed:
                    v = v + sim.wear * mean * np.clip(consumed[sim.consumable], 0, 1.5)
                if noise and sim is not None and sim.noise:
                    v = v + self.rng.normal(0, sim.noise, n)
                if sim is not None and sim.idle is not None:  # an idle unit reads its idle value
                    v = np.where(self.running, v, sim.idle)
                out[m.name] = np.asarray(v, dtype=float)
        for r in doc.relations:  # in declared order: one may use another's y
            if r.sim is None:
                continue
            y = r.sim.intercept + sum(s * out[x] for s, x in zip(r.sim.slopes, r.x, strict=True))
            if noise and r.sim.noise:
                y = y + self.rng.normal(0, r.sim.noise, n)
            y_spec = next(m for m in doc.metrics if m.name == r.y)
            if y_spec.sim is not None and y_spec.sim.idle is not None:
                y = np.where(self.running, y, y_spec.sim.idle)
            out[r.y] = np.asarray(y, dtype=float)
        return out

    def _faulty(self, values: dict[str, np.ndarray]) -> None:
        """The generic faults' effect on what the sensors say."""
        n = len(self)

        def sev(kind: str) -> np.ndarray:
            return self.faults.get(kind, np.zeros(n))

        s = self.sensor
        base = np.asarray(values[s], dtype=float)
        base = base * (1 + 0.5 * sev("sensor_drift"))
        base = base + 0.3 * np.abs(np.nanmean(base) or 1.0) * (sev("step_change") > 0)
        stuck = sev("sensor_stuck") > 0
        self.stuck_at = np.where(stuck & np.isnan(self.stuck_at), base, self.stuck_at)
        self.stuck_at = np.where(stuck, self.stuck_at, np.nan)
        values[s] = np.where(stuck, self.stuck_at, base)
        broken = sev("broken_relation")
        if broken.any() and self.profile.doc.relations:
            y = self.profile.doc.relations[0].y
            values[y] = np.asarray(values[y], dtype=float) * (1 + 0.4 * broken)

    def show_codes(self, dt: float) -> None:
        """Each unit shows a code this round at the codes' rates (ground truth)."""
        n = len(self)
        self.codes = np.full(n, "", dtype=object)
        for f in self.profile.doc.fault_codes:
            if f.per_device_year <= 0:
                continue
            hit = self.rng.random(n) < f.per_device_year * dt / (365.25 * DAY_S)
            self.codes = np.where(hit & (self.codes == ""), f.code, self.codes)

    def metrics(self) -> dict[str, np.ndarray]:
        """The readings the devices report, in the units, ranges and steps of the profile."""
        values = self._values(self.t, noise=True)
        self._faulty(values)
        out: dict[str, np.ndarray] = {}
        for m in self.profile.doc.metrics:
            v = values[m.name]
            if m.kind in NUMERIC:
                lo, hi = m.range if m.range is not None else (-np.inf, np.inf)
                v = np.clip(np.asarray(v, dtype=float), lo, hi)
                decimals = m.sim.decimals if m.sim is not None else 1
                v = np.round(v).astype(np.int64) if m.kind == "int" else np.round(v, decimals)
            out[m.name] = v
        return out

    def code_text(self, code: str) -> str:
        return next((f.title for f in self.profile.doc.fault_codes if f.code == code), code)
