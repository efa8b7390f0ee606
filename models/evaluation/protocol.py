"""The evaluation protocol (docs/model-quality.md): the models judged on fleets they could
not have been flattered by.

* Training is what `fleetcare train` does: an imperfect fleet from 2026-01-01 (seed 11 for
  filter life, 12 for health). Each evaluation case is another fleet: another seed, another
  year (2027), and a start month of its own (January, April, July, October), each on an
  imperfect fleet and on a clean one.
* Faults come at a realistic rate (5 per 100 device-years by default), so precision is
  what a service team would see; the delay is over every fault, a miss counted as never
  detected.
* Filter-life jobs are judged over every filter life, those still in service at the run's
  end included; a job covers an exhaustion only when it opened at least three days ahead
  and its visit came before the filter was spent. Rated life turns into days at each
  unit's long-run usage.

Cases are independent, so `run_cases` runs them in worker processes (`jobs`).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime

from threadpoolctl import threadpool_limits

from device_sim.faults import PHYSICS
from device_sim.imperfection import Imperfection
from models.anomaly.naming import FaultNamer
from models.evaluation.defaults import EVAL_YEAR, FAULTS_PER_100_DEVICE_YEARS
from models.evaluation.faults import (
    FaultQuality,
    FaultRun,
    fault_quality,
    share_for_rate,
    simulate_faults,
)
from models.evaluation.filter_life import StageQuality, quality, simulate
from models.evaluation.general import fleet_alarms, general_quality, train_namers
from models.filter_life import FilterLife
from models.health import HealthModel
from telemetry.profile import shipped

MONTHS = (1, 4, 7, 10)
FAULT_SEED_OFFSET = 1000  # a case's faulty fleet is another fleet than its filter fleet
NEW_FAMILY_SEED_OFFSET = 2000  # and its fleet of families known only from their profiles
NEW_FAMILY_MIN = 50


@dataclass(frozen=True)
class Case:
    """One evaluation fleet: when it starts, whether it is imperfect, its seed."""

    start: datetime
    noisy: bool
    seed: int

    @property
    def name(self) -> str:
        return f"{self.start:%b %Y}, {'noisy' if self.noisy else 'clean'}"

    @property
    def imperfection(self) -> Imperfection:
        return Imperfection() if self.noisy else Imperfection.clean()


@dataclass(frozen=True)
class Sizes:
    """How big each case's fleets are and how long they run."""

    devices: int = 1000  # filter life
    days: int = 365
    fault_devices: int = 2000
    fault_days: int = 365
    faults_per_100_device_years: float = FAULTS_PER_100_DEVICE_YEARS
    # a share of faulty devices instead of the rate: the gate's small fleets need some
    faulty_share: float | None = None

    @property
    def share(self) -> float:
        if self.faulty_share is not None:
            return self.faulty_share
        return share_for_rate(self.faults_per_100_device_years, self.fault_days)


def cases(
    *,
    months: Sequence[int] = MONTHS,
    clean_months: Sequence[int] = (1,),
    year: int = EVAL_YEAR,
    seed: int = 22,
) -> list[Case]:
    """The protocol's cases: an imperfect fleet from each of `months`, a clean one from
    each of `clean_months` (what imperfection costs), each with a seed of its own."""
    every = [*months, *clean_months]
    if not every:
        raise ValueError("no case: give a start month for a noisy or a clean fleet")
    if not 1 <= min(every) <= max(every) <= 12:
        raise ValueError("start months are 1 to 12")
    out, k = [], 0
    for is_noisy, chosen in ((True, months), (False, clean_months)):
        for m in chosen:
            out.append(Case(datetime(year, m, 1, tzinfo=UTC), is_noisy, seed + k))
            k += 1
    return out


@dataclass
class CaseResult:
    case: Case
    stages: list[StageQuality]
    faults: FaultQuality
    devices: int
    fault_devices: int
    faulty: int
    seconds: float
    general: FaultQuality | None = None  # the general detector alone, when asked for
    named: FaultQuality | None = None  # ... with its fault namer, when one was trained


def run_case(
    case: Case,
    sizes: Sizes,
    filter_model: FilterLife,
    health_model: HealthModel,
    general: bool = False,
    namers: Mapping[str, FaultNamer] | None = None,
) -> CaseResult:
    """Simulate the case's two fleets and judge both models on them (and, with
    `general`, the general detector alone on the fault fleet, and with `namers` too)."""
    began = time.perf_counter()
    run = simulate(
        sizes.devices,
        seed=case.seed,
        days=sizes.days,
        start=case.start,
        model=filter_model,
        imperfection=case.imperfection,
    )
    stages = quality(run)
    frun = simulate_faults(
        sizes.fault_devices,
        seed=case.seed + FAULT_SEED_OFFSET,
        days=sizes.fault_days,
        start=case.start,
        faulty_share=sizes.share,
        imperfection=case.imperfection,
    )
    alone, named = _general(case, sizes, frun, namers) if general else (None, None)
    return CaseResult(
        case,
        stages,
        fault_quality(health_model, frun),
        sizes.devices,
        sizes.fault_devices,
        sum(f is not None for v in frun.faults.values() for f in v),
        time.perf_counter() - began,
        alone,
        named,
    )


def new_family_fleet(
    devices: int, *, seed: int, days: int, start: datetime, share: float, imperfection: Imperfection
) -> FaultRun:
    """A fleet of the families known only from their profiles, with their generic faults."""
    return simulate_faults(
        max(NEW_FAMILY_MIN, devices),
        seed=seed,
        days=days,
        start=start,
        faulty_share=share,
        imperfection=imperfection,
        mix=dict.fromkeys(new_families(), 1.0),
    )


def train_general_namers(
    health_run: FaultRun, devices: int, days: int, seed: int, start: datetime
) -> dict[str, FaultNamer]:
    """Each family's fault namer, from the verdicts a technician would give on every
    alarm of the health training fleet and of a training fleet of the new families
    (a quarter its size, half of it faulty)."""
    new = new_family_fleet(
        devices // 4, seed=seed, days=days, start=start, share=0.5, imperfection=Imperfection()
    )
    return train_namers([health_run, new])


def _general(
    case: Case, sizes: Sizes, frun: FaultRun, namers: Mapping[str, FaultNamer] | None
) -> tuple[FaultQuality, FaultQuality | None]:
    """The general detector on the case's fault fleet, and on a fleet of the families
    known only from their profiles (a quarter its size, the same share of faults, the
    generic fault kinds): a new category is what the general detector is for. Judged
    alone, and with `namers` when given."""
    new = new_family_fleet(
        sizes.fault_devices // 4,
        seed=case.seed + NEW_FAMILY_SEED_OFFSET,
        days=sizes.fault_days,
        start=case.start,
        share=sizes.share,
        imperfection=case.imperfection,
    )
    devices = sum(map(len, frun.device_ids.values())) + sum(map(len, new.device_ids.values()))
    found = (fleet_alarms(frun), fleet_alarms(new))

    def judged(names: Mapping[str, FaultNamer] | None) -> FaultQuality:
        physics = general_quality(frun, namers=names, found=found[0])
        other = general_quality(new, namers=names, found=found[1])
        return FaultQuality(
            physics.kinds + other.kinds,
            physics.healthy_device_days + other.healthy_device_days,
            physics.healthy_alerts + other.healthy_alerts,
            devices=devices,
        )

    fitted = namers is not None and any(n.fitted for n in namers.values())
    return judged(None), (judged(namers) if fitted else None)


def new_families() -> list[str]:
    """The shipped families no physics knows: simulated from their profiles alone."""
    return [name for name in shipped() if name not in PHYSICS]


def _run_case_one_thread(
    case: Case,
    sizes: Sizes,
    filter_model: FilterLife,
    health_model: HealthModel,
    general: bool,
    namers: Mapping[str, FaultNamer] | None,
) -> CaseResult:
    """`run_case` in a worker process: one BLAS/OpenMP thread, since the workers already
    keep the cores busy (pools sized to the machine spin against each other)."""
    with threadpool_limits(limits=1):
        return run_case(case, sizes, filter_model, health_model, general, namers)


def run_cases(
    the_cases: Sequence[Case],
    sizes: Sizes,
    filter_model: FilterLife,
    health_model: HealthModel,
    *,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
    general: bool = False,
    namers: Mapping[str, FaultNamer] | None = None,
) -> list[CaseResult]:
    """Every case, `jobs` at a time in worker processes (1: in this one), in the order
    given; `progress` is told how many are done."""
    if jobs <= 1:
        out = []
        for i, case in enumerate(the_cases):
            out.append(run_case(case, sizes, filter_model, health_model, general, namers))
            if progress:
                progress(i + 1)
        return out
    results: dict[int, CaseResult] = {}
    # spawned, not forked: the caller may run threads (a progress bar) holding locks
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn) as pool:
        futures = {
            pool.submit(
                _run_case_one_thread, case, sizes, filter_model, health_model, general, namers
            ): i
            for i, case in enumerate(the_cases)
        }
        for done in as_completed(futures):
            results[futures[done]] = done.result()
            if progress:
                progress(len(results))
    return [results[i] for i in range(len(the_cases))]
