"""A fleet of simulated purifiers: identity, physics and counters, deterministic by seed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from device_sim.environment import REGIONS, OutdoorAir
from device_sim.purifier import Purifiers
from device_sim.truth import DeviceTruth, GroundTruth


@dataclass(frozen=True, kw_only=True)
class FleetSpec:
    devices: int
    seed: int = 1
    start: float  # simulated epoch seconds at the first tick
    physics_dt: float = 300.0  # seconds of simulated time per physics step
    smoker_share: float = 0.1

    def __post_init__(self) -> None:
        if self.devices < 1:
            raise ValueError("a fleet needs at least one device")
        if self.physics_dt <= 0:
            raise ValueError("physics_dt must be positive")


@dataclass
class Fleet:
    spec: FleetSpec
    ids: list[str]
    purifiers: Purifiers
    outdoor: OutdoorAir
    t: float
    seq: np.ndarray
    boot: np.ndarray
    truth: GroundTruth = field(default_factory=GroundTruth)

    @classmethod
    def create(cls, spec: FleetSpec) -> Fleet:
        rng = np.random.default_rng(spec.seed)
        region = rng.integers(0, len(REGIONS), spec.devices)
        purifiers = Purifiers.create(spec.devices, rng, smoker_share=spec.smoker_share)
        ids = [f"sim-ap-{spec.seed}-{i:06d}" for i in range(spec.devices)]
        truth = GroundTruth()
        for i, device_id in enumerate(ids):
            truth.devices[device_id] = DeviceTruth(
                device_id=device_id,
                device_type="purifier",
                region=REGIONS[region[i]],
                smoker=bool(purifiers.smoker[i]),
                filter_capacity_g=float(purifiers.capacity_g[i]),
            )
        return cls(
            spec,
            ids,
            purifiers,
            OutdoorAir.create(region, rng),
            spec.start,
            np.zeros(spec.devices, dtype=np.int64),
            np.ones(spec.devices, dtype=np.int64),
            truth,
        )

    def advance(self, until: float) -> None:
        """Run the physics up to simulated time `until` in steps of at most physics_dt."""
        while self.t < until:
            dt = min(self.spec.physics_dt, until - self.t)
            self.outdoor.step(dt)
            before = np.isnan(self.purifiers.exhausted_at)
            self.purifiers.step(self.t, dt, self.outdoor.pm25(self.t))
            self.t += dt
            for i in np.flatnonzero(before & ~np.isnan(self.purifiers.exhausted_at)):
                self.truth.devices[self.ids[i]].exhaustions.append(
                    float(self.purifiers.exhausted_at[i])
                )

    def replace_filters(self, device_ids: list[str]) -> None:
        index = {d: i for i, d in enumerate(self.ids)}
        mask = np.zeros(len(self.ids), dtype=bool)
        for d in device_ids:
            mask[index[d]] = True
            self.truth.devices[d].replacements.append(self.t)
        self.purifiers.replace_filter(mask)

    def readings(self) -> list[tuple[str, dict[str, float | int], int, int]]:
        """(device_id, metrics, boot, seq) for every device, counting one message each."""
        self.seq += 1
        cols = self.purifiers.metrics()
        names = list(cols)
        values = [cols[n].tolist() for n in names]
        seq, boot = self.seq.tolist(), self.boot.tolist()
        return [
            (device_id, {n: v[i] for n, v in zip(names, values, strict=True)}, boot[i], seq[i])
            for i, device_id in enumerate(self.ids)
        ]
