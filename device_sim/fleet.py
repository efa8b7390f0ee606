"""A fleet of simulated appliances: identity, physics and counters, deterministic by seed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from device_sim.air_conditioner import AirConditioners
from device_sim.environment import DAY_S, REGIONS, OutdoorAir
from device_sim.faults import SENSOR_OF, FaultPlan, apply_sensor_faults
from device_sim.generic import ProfileAppliances
from device_sim.imperfection import (
    Gaps,
    HomeChanges,
    Imperfection,
    Sensors,
    clock_offsets_ms,
    install_times,
)
from device_sim.purifier import Purifiers
from device_sim.truth import DeviceTruth, Exhaustion, FaultTruth, GroundTruth
from device_sim.water_purifier import WaterPurifiers
from telemetry.profile import Profile, ProfileSet, parse_profile, shipped

Model = Purifiers | WaterPurifiers | AirConditioners | ProfileAppliances
# (index in the fleet, device_type, device_id, metrics, boot, seq)
Reading = tuple[int, str, str, dict[str, float | int | bool | str | None], int, int]
_SHORT = {"purifier": "ap", "water_purifier": "wp", "air_conditioner": "ac"}
SUPPORTED = tuple(_SHORT)  # the families with physics of their own


@dataclass(frozen=True, kw_only=True)
class FleetSpec:
    devices: int
    seed: int = 1
    start: float  # simulated epoch seconds at the first tick
    physics_dt: float = 300.0  # seconds of simulated time per physics step
    smoker_share: float = 0.1
    # installed at different times: each unit starts up to this far into its filter life
    initial_wear: float = 0.0
    # faults: per device and year, with onsets spread over the first `fault_window_days`
    faults_per_device_year: float = 0.0
    fault_window_days: float = 365.0
    mix: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType(
            {"purifier": 0.4, "water_purifier": 0.3, "air_conditioner": 0.3}
        )
    )
    # profiles (YAML texts) of families to simulate beyond the shipped ones: any family
    # a maker describes runs from its profile alone (device_sim.generic)
    extra_profiles: tuple[str, ...] = ()
    # what makes the fleet as imperfect as a real one (on by default; `clean()` for
    # debugging only): units off their datasheet, sensor errors, gaps, changing homes,
    # late installs, clocks (device_sim.imperfection)
    imperfection: Imperfection = field(default_factory=Imperfection)

    def __post_init__(self) -> None:
        if self.devices < 1:
            raise ValueError("a fleet needs at least one device")
        if self.physics_dt <= 0:
            raise ValueError("physics_dt must be positive")
        known = self.profiles()
        unknown = set(self.mix) - set(known)
        if not 0 <= self.initial_wear < 1:
            raise ValueError("initial_wear is a share of filter life: 0 <= wear < 1")
        if unknown or not self.mix or min(self.mix.values()) < 0 or sum(self.mix.values()) <= 0:
            raise ValueError(f"mix needs non-negative shares of {', '.join(known)}")

    def profiles(self) -> ProfileSet:
        """The families this fleet can have: the shipped ones and `extra_profiles`."""
        extra = [
            Profile(parse_profile(text, "extra profile"), "file") for text in self.extra_profiles
        ]
        return shipped().overlay(extra)

    def counts(self) -> dict[str, int]:
        total = sum(self.mix.values())
        counts = {t: int(self.devices * share / total) for t, share in self.mix.items()}
        first = next(iter(counts))
        counts[first] += self.devices - sum(counts.values())
        return {t: c for t, c in counts.items() if c > 0}


@dataclass
class Group:
    """The devices of one type: ids, physics state and message counters."""

    device_type: str
    ids: list[str]
    model: Model
    seq: np.ndarray
    boot: np.ndarray
    faults: FaultPlan
    sensor_rng: np.random.Generator  # sensor faults' own stream: never shifts the physics
    shown: np.ndarray | None = None  # error code each unit shows ('' none)
    new_codes: np.ndarray | None = None  # indexes of units whose code appeared this round
    last_round: float | None = None  # a profiled family's codes: when they last could show
    # imperfection (device_sim.imperfection): each unit's sensors, gaps, changing home and
    # install date, and the stream their draws come from
    sensors: Sensors | None = None
    gaps: Gaps | None = None
    home: HomeChanges | None = None
    installed_at: np.ndarray | None = None
    waiting: np.ndarray | None = None  # not installed yet
    clock_ms: np.ndarray | None = None  # each unit's clock offset
    imp_rng: np.random.Generator | None = None
    online: np.ndarray | None = None  # whose readings of the last round arrive

    def stage_exhaustion(self) -> dict[str, np.ndarray]:
        if isinstance(self.model, ProfileAppliances):
            return self.model.exhausted_at
        if isinstance(self.model, Purifiers):
            return {"main": self.model.exhausted_at}
        if isinstance(self.model, AirConditioners):
            return {"main": self.model.clogged_at}  # the return-air dust filter
        return self.model.exhausted_at


@dataclass
class Fleet:
    spec: FleetSpec
    groups: dict[str, Group]
    outdoor: OutdoorAir  # purifiers' outdoor air
    t: float
    truth: GroundTruth = field(default_factory=GroundTruth)

    @property
    def ids(self) -> list[str]:
        return [d for g in self.groups.values() for d in g.ids]

    @classmethod
    def create(cls, spec: FleetSpec) -> Fleet:
        rng = np.random.default_rng(spec.seed)
        fault_rng = np.random.default_rng([spec.seed, 7])  # faults never shift the physics
        profiles = spec.profiles()
        groups: dict[str, Group] = {}
        truth = GroundTruth()
        outdoor = OutdoorAir.create(np.zeros(0, dtype=int), rng)
        for g_index, (device_type, n) in enumerate(spec.counts().items()):
            region = rng.integers(0, len(REGIONS), n)
            short = _SHORT.get(device_type, device_type)
            ids = [f"sim-{short}-{spec.seed}-{i:06d}" for i in range(n)]
            model: Model
            if device_type == "purifier":
                model = Purifiers.create(n, rng, smoker_share=spec.smoker_share)
                outdoor = OutdoorAir.create(region, rng)
            elif device_type == "air_conditioner":
                model = AirConditioners.create(region, rng)
            elif device_type == "water_purifier":
                model = WaterPurifiers.create(region, rng)
            else:
                model = ProfileAppliances.create(profiles[device_type], n, rng, spec.start)
            wear = rng.uniform(0, spec.initial_wear, n) if spec.initial_wear else np.zeros(n)
            _wear(model, wear, rng)
            plan = FaultPlan.sample(
                device_type,
                n,
                fault_rng,
                start=spec.start,
                end=spec.start + spec.fault_window_days * 86400,
                per_device_year=spec.faults_per_device_year,
            )
            group = Group(
                device_type,
                ids,
                model,
                np.zeros(n, dtype=np.int64),
                np.ones(n, dtype=np.int64),
                plan,
                np.random.default_rng([spec.seed, 13, g_index]),
            )
            unit = _imperfect(group, spec, profiles[device_type], g_index)
            groups[device_type] = group
            for i, device_id in enumerate(ids):
                smoker, capacity = _unit_truth(model, i)
                truth.devices[device_id] = DeviceTruth(
                    device_id=device_id,
                    device_type=device_type,
                    region=REGIONS[region[i]],
                    smoker=smoker,
                    capacity={**capacity, "initial_wear": round(float(wear[i]), 4)},
                    installed_at=_installed(group, i, spec.start),
                    unit={k: round(float(v[i]), 4) for k, v in unit.items()}
                    | (group.sensors.truth(i) if group.sensors is not None else {}),
                    clock_skew_ms=int(group.clock_ms[i]) if group.clock_ms is not None else 0,
                )
                if plan.kind[i] >= 0:
                    kind = plan.kinds[plan.kind[i]]
                    truth.devices[device_id].faults.append(
                        FaultTruth(
                            kind=kind.name,
                            onset=float(plan.onset[i]),
                            progression_days=kind.progression_days,
                        )
                    )
        return cls(spec, groups, outdoor, spec.start, truth)

    def advance(self, until: float) -> None:
        """Run the physics up to simulated time `until` in steps of at most physics_dt."""
        while self.t < until:
            dt = min(self.spec.physics_dt, until - self.t)
            for g in self.groups.values():
                self._lives(g)
                before = {s: np.isnan(a) for s, a in g.stage_exhaustion().items()}
                g.model.faults = g.faults.severity(self.t)
                if isinstance(g.model, Purifiers):
                    self.outdoor.step(dt)
                    g.model.step(self.t, dt, self.outdoor.pm25(self.t))
                else:
                    g.model.step(self.t, dt)
                for stage, at in g.stage_exhaustion().items():
                    spent = before[stage] & ~np.isnan(at)
                    if g.waiting is not None:
                        spent &= ~g.waiting  # not installed yet: nobody's filter
                    for i in np.flatnonzero(spent):
                        self.truth.devices[g.ids[i]].exhaustions.append(
                            Exhaustion(stage=stage, at=float(at[i]))
                        )
            self.t += dt

    def _lives(self, g: Group) -> None:
        """What happened in the units' homes up to now: changes, and installs."""
        if g.home is not None and g.imp_rng is not None:
            for at, i, kind in g.home.due(self.t):
                mask = np.zeros(len(g.ids), dtype=bool)
                mask[i] = True
                g.model.change_home(kind, mask, g.imp_rng, self.t)
                if kind == "move" and isinstance(g.model, Purifiers):
                    self.outdoor.region[i] = g.imp_rng.integers(0, len(REGIONS))
                self.truth.devices[g.ids[i]].home_changes.append([kind, at])
        if g.waiting is not None and g.installed_at is not None and g.waiting.any():
            now = g.waiting & (g.installed_at <= self.t)
            if now.any():
                g.model.install(now)
                g.waiting = g.waiting & ~now

    def installed_at(self, device_id: str) -> float:
        """When the unit was installed (the run's start for the installed base)."""
        for g in self.groups.values():
            if device_id in g.ids and g.installed_at is not None:
                return float(g.installed_at[g.ids.index(device_id)])
        return self.spec.start

    @property
    def clock_ms(self) -> np.ndarray:
        """Each unit's clock offset, in the order of `owned` (device_sim.imperfection)."""
        return np.concatenate(
            [
                g.clock_ms if g.clock_ms is not None else np.zeros(len(g.ids), dtype=np.int64)
                for g in self.groups.values()
            ]
        )

    def inject(self, device_id: str, fault: str, onset: float) -> None:
        """Give a device a fault from `onset` (epoch s) on, with its ground truth; it
        replaces any fault the plan had drawn for the device."""
        for g in self.groups.values():
            if device_id in g.ids:
                names = [k.name for k in g.faults.kinds]
                if fault not in names:
                    raise ValueError(f"{g.device_type} has no fault {fault!r}; one of {names}")
                i = g.ids.index(device_id)
                g.faults.kind[i], g.faults.onset[i] = names.index(fault), onset
                kind = g.faults.kinds[names.index(fault)]
                self.truth.devices[device_id].faults = [
                    FaultTruth(kind=fault, onset=onset, progression_days=kind.progression_days)
                ]
                return
        raise ValueError(f"no device {device_id!r} in the fleet")

    def replace_filters(self, device_ids: list[str], stage: str = "main") -> None:
        """Fit new filters (a stage of a water purifier; the filter of a purifier)."""
        for g in self.groups.values():
            index = {d: i for i, d in enumerate(g.ids)}
            mask = np.zeros(len(g.ids), dtype=bool)
            for d in device_ids:
                if d in index:
                    mask[index[d]] = True
                    self.truth.devices[d].replacements.append(Exhaustion(stage=stage, at=self.t))
            if not mask.any():
                continue
            if isinstance(g.model, Purifiers):
                g.model.replace_filter(mask)
            elif isinstance(g.model, AirConditioners):
                g.model.clean_filter(mask)
            else:  # a water purifier's stage, or any profiled family's consumable
                g.model.replace_stage(stage, mask)

    def fault_of(self, device_id: str) -> str | None:
        """The fault the unit has now (its onset passed, not yet repaired): what a
        technician on site would find. Ground truth; None for a healthy unit."""
        for g in self.groups.values():
            if device_id in g.ids:
                i = g.ids.index(device_id)
                k, onset = int(g.faults.kind[i]), float(g.faults.onset[i])
                return g.faults.kinds[k].name if k >= 0 and onset <= self.t else None
        raise KeyError(device_id)

    def repair(self, device_ids: list[str], fault: str) -> None:
        """A technician fixed `fault` on these devices (the device side of `cmd repair`)."""
        for g in self.groups.values():
            index = {d: i for i, d in enumerate(g.ids)}
            mask = np.zeros(len(g.ids), dtype=bool)
            for d in device_ids:
                i = index.get(d)
                if (
                    i is not None
                    and g.faults.kind[i] >= 0
                    and (g.faults.kinds[g.faults.kind[i]].name == fault)
                ):
                    mask[i] = True
                    self.truth.devices[d].repairs.append(Exhaustion(stage=fault, at=self.t))
            g.faults.repair(mask)
            g.model.faults = g.faults.severity(self.t)

    def _error_codes(self, g: Group, metrics: dict[str, np.ndarray]) -> None:
        """Edge-triggered: a code appearing is an event (with the next seq); ground truth.
        A profiled family's codes are momentary: each shown is one event."""
        if isinstance(g.model, ProfileAppliances):
            last = g.last_round if g.last_round is not None else self.t
            g.model.show_codes(self.t - last)
            g.last_round = self.t
            codes = g.model.codes
            g.shown = None  # momentary: every code shown is new
        else:
            assert isinstance(g.model, AirConditioners)
            codes = g.model.error_codes(metrics)
        shown = g.shown if g.shown is not None else np.full(len(codes), "", dtype=object)
        new = np.flatnonzero((codes != "") & (codes != shown))
        g.shown, g.new_codes = codes, new
        g.seq[new] += 1  # events share the device's counter, after this round's telemetry
        for i in new:
            self.truth.devices[g.ids[i]].error_codes.append([str(codes[i]), self.t])

    def events(
        self, shard: tuple[int, int] = (0, 1)
    ) -> list[tuple[int, str, str, dict[str, str], int, int]]:
        """(index, device_type, device_id, data, boot, seq) of the `error_code` events of
        the last round, for the devices of shard k of n."""
        from device_sim.air_conditioner import ERROR_TEXT

        def text(g: Group, code: str) -> str:
            if isinstance(g.model, ProfileAppliances):
                return g.model.code_text(code)
            return ERROR_TEXT[code]

        k, n = shard
        out = []
        offset = 0
        for g in self.groups.values():
            if g.new_codes is not None and g.shown is not None:
                for i in g.new_codes:
                    if g.online is not None and not g.online[i]:
                        continue  # offline: the event is lost with the reading
                    if (offset + i) % n == k:
                        code = str(g.shown[i])
                        data = {"code": code, "text": text(g, code)}
                        out.append(
                            (
                                offset + int(i),
                                g.device_type,
                                g.ids[i],
                                data,
                                int(g.boot[i]),
                                int(g.seq[i]),
                            )
                        )
            offset += len(g.ids)
        return out

    def taken(self, shard: tuple[int, int] = (0, 1)) -> tuple[int, int]:
        """Of the last reading round, in shard k of n: (readings the installed units
        took, how many of them were never sent: a telemetry gap, a reading lost)."""
        k, n = shard
        taken = unsent = offset = 0
        for g in self.groups.values():
            index = np.arange(offset, offset + len(g.ids))
            mine = index % n == k
            installed = mine if g.installed_at is None else mine & (g.installed_at <= self.t)
            taken += int(installed.sum())
            if g.online is not None:
                unsent += int((installed & ~g.online).sum())
            offset += len(g.ids)
        return taken, unsent

    def owned(self, shard: tuple[int, int] = (0, 1)) -> list[tuple[int, str, str]]:
        """(index, device_type, device_id) of the devices shard k of n publishes."""
        k, n = shard
        return [
            (i, g.device_type, d)
            for i, (g, d) in enumerate((g, d) for g in self.groups.values() for d in g.ids)
            if i % n == k
        ]

    def _round(self, g: Group) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One reading round of a group: (each device's seq, what its sensors say as
        columns). `g.online` says whose readings arrive."""
        g.seq += 1
        telemetry_seq = g.seq.copy()  # an error-code event takes the next one
        g.model.faults = g.faults.severity(self.t)
        raw = g.model.metrics()
        if g.sensors is not None:
            raw = g.sensors.read(self.t, raw, self._frozen(g))
        sensor = None
        if isinstance(g.model, AirConditioners | ProfileAppliances):
            self._error_codes(g, raw)  # the controller trips on what it measures
        if isinstance(g.model, ProfileAppliances):
            sensor = g.model.profile.device_type.by_name[g.model.sensor]
        if g.gaps is not None:
            g.online, started = g.gaps.online(self.t)
            for i, begin, end in started:
                self.truth.devices[g.ids[i]].gaps.append([begin, end])
            lost = ~g.online if g.installed_at is None else ~g.online & (g.installed_at <= self.t)
            for i in np.flatnonzero(lost).tolist():
                self.truth.devices[g.ids[i]].unsent += 1
        return telemetry_seq, apply_sensor_faults(raw, g.faults, self.t, g.sensor_rng, sensor)

    def _frozen(self, g: Group) -> dict[str, np.ndarray]:
        """The main sensor of the units a fault holds at one value."""
        held = [i for i, k in enumerate(g.faults.kinds) if k.freezes]
        if not held:
            return {}
        mask = np.isin(g.faults.kind, held) & (np.nan_to_num(g.faults.onset, nan=np.inf) <= self.t)
        if isinstance(g.model, ProfileAppliances):
            return {g.model.sensor: mask}
        return {SENSOR_OF[g.device_type]: mask}

    def columns(self) -> dict[str, dict[str, np.ndarray]]:
        """One reading round of every device as arrays per device type: what `readings`
        sends, before it becomes messages, with NaN (None) where a reading did not
        arrive. Evaluation reads a simulated year this way."""
        out = {}
        for g in self.groups.values():
            cols = self._round(g)[1]
            if g.online is not None and not g.online.all():
                cols = {k: _missing(v, ~g.online) for k, v in cols.items()}
            out[g.device_type] = cols
        return out

    def consumed(self) -> dict[str, dict[str, np.ndarray]]:
        """Ground truth: the share of each filter stage used up (1 = spent), per type."""
        return {g.device_type: g.model.consumed() for g in self.groups.values()}

    def readings(self, shard: tuple[int, int] = (0, 1)) -> list[Reading]:
        """(index, device_type, device_id, metrics, boot, seq) of every device of shard k
        of n, one message each. Every device's counters and sensors advance, whatever the
        shard, so all processes sharing a fleet stay identical."""
        k, n = shard
        out: list[Reading] = []
        offset = 0
        for g in self.groups.values():
            telemetry_seq, cols = self._round(g)
            first = (k - offset) % n  # this shard's first device in the group
            names = list(cols)
            values = [cols[m][first::n].tolist() for m in names]
            seq, boot = telemetry_seq[first::n].tolist(), g.boot[first::n].tolist()
            sent = g.online[first::n].tolist() if g.online is not None else None
            out.extend(
                (
                    offset + first + j * n,
                    g.device_type,
                    device_id,
                    {m: v[j] for m, v in zip(names, values, strict=True)},
                    boot[j],
                    seq[j],
                )
                for j, device_id in enumerate(g.ids[first::n])
                if sent is None or sent[j]
            )
            offset += len(g.ids)
        return out


def _imperfect(
    group: Group, spec: FleetSpec, profile: Profile, g_index: int
) -> dict[str, np.ndarray]:
    """Give a new group its imperfection: units off their datasheet, their sensors, their
    install dates, gaps, home changes and clocks, from streams of their own. Returns the
    units' datasheet factors, for the ground truth."""
    imp, n = spec.imperfection, len(group.ids)
    rng = np.random.default_rng([spec.seed, 17, g_index])
    unit = group.model.vary(rng, imp.unit_variation) if imp.unit_variation else {}
    group.sensors = Sensors.create(profile, n, rng) if imp.sensors else None
    window = spec.fault_window_days * DAY_S
    group.installed_at = install_times(imp, n, rng, spec.start, window)
    late = group.installed_at > spec.start
    group.waiting = late if late.any() else None
    if late.any():  # no fault before the unit is installed: it starts after
        plan = group.faults
        early = late & (np.nan_to_num(plan.onset, nan=np.inf) < group.installed_at)
        left = np.maximum(spec.start + window - group.installed_at, DAY_S)
        plan.onset = np.where(early, group.installed_at + rng.uniform(0, 1, n) * left, plan.onset)
    if not imp.is_clean:
        group.gaps = Gaps(imp, group.installed_at, np.random.default_rng([spec.seed, 19, g_index]))
    group.home = HomeChanges.plan(imp, group.device_type, n, rng, spec.start, window)
    group.clock_ms = clock_offsets_ms(imp, n, rng)
    group.imp_rng = rng
    return unit


def _installed(group: Group, i: int, start: float) -> float | None:
    if group.installed_at is None or group.installed_at[i] <= start:
        return None
    return round(float(group.installed_at[i]), 3)


def _missing(values: np.ndarray, off: np.ndarray) -> np.ndarray:
    """A column with the readings that did not arrive blanked: NaN for numbers, None
    for the rest."""
    if values.dtype.kind in "fiub":
        out = values.astype(np.float64)
        out[off] = np.nan
        return out
    obj = values.astype(object)
    obj[off] = None
    return obj


def _unit_truth(model: Model, i: int) -> tuple[bool, dict[str, float]]:
    """(smoker, capacities) of unit `i`, for the ground truth."""
    if isinstance(model, ProfileAppliances):
        return False, {
            f"{stage}_{unit}": round(float(cap[i]), 2)
            for stage, by_unit in model.capacity.items()
            for unit, cap in by_unit.items()
        }
    if isinstance(model, Purifiers):
        return bool(model.smoker[i]), {"main_g": round(float(model.capacity_g[i]), 3)}
    if isinstance(model, AirConditioners):
        return False, {"filter_fan_hours": round(1 / float(model.dust_rate[i]), 1)}
    return False, {
        "sediment_l": round(float(model.sediment_capacity[i]), 1),
        "carbon_l": round(float(model.carbon_capacity_l[i]), 1),
        "feed_tds_ppm": round(float(model.tds_in[i]), 1),
    }


def _wear(model: Model, wear: np.ndarray, rng: np.random.Generator) -> None:
    """Start units `wear` (0..1) of the way through their filters' life."""
    if not wear.any():
        return
    if isinstance(model, ProfileAppliances):
        model.wear_to(wear)
    elif isinstance(model, Purifiers):
        model.loaded_g = wear * model.capacity_g
        # run hours to get there depend on the home's air: not the same for every unit
        model.used_hours = wear * 3500.0 * rng.lognormal(0.0, 0.35, len(wear))
    elif isinstance(model, AirConditioners):
        model.filter_load = wear.copy()
        model.filter_hours = wear / model.dust_rate
    else:
        litres = wear * model.sediment_capacity / model.turbidity
        model.sediment_load = litres * model.turbidity
        model.carbon_l = litres.copy()
        model.ro_dose = litres * model.tds_in
        model.volume_stage_l = np.vstack([litres, litres, litres])
        model.volume_total_l = litres.copy()
        model.age_s = np.vstack([litres / 10.0 * 86400.0] * 3)  # ~10 L a day
