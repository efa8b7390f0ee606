"""The quality early warning measured on a simulated fleet: units installed month by
month, each production batch a month's output, a second firmware shipped from a given
month; failures drawn by the simulator's fault plan (its fault table and kinds, at a
realistic rate per unit-year), the technician's verdict a few days after the onset. A
batch and a firmware are planted with a higher rate; the warning is run month by month,
as R&D would see it. Reported: when each planted group is flagged, and every flag on a
group that was not planted (on a healthy fleet, all of them are false)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from device_sim.faults import FaultPlan
from service.quality import Failure, QualityBy, QualityWarning, Unit, early_warnings, months
from service.warranty import add_months

DAY_S = 86400.0


@dataclass(frozen=True)
class Planted:
    by: QualityBy  # batch or firmware
    group: str
    factor: float  # its failure rate over the fleet's


@dataclass
class SimFleet:
    units: list[Unit]
    failures: list[Failure]
    first_in_service: dict[tuple[str, str], date]  # (by, group) -> its first unit's day


@dataclass(frozen=True)
class FleetPlan:
    start: date = date(2026, 1, 1)
    months: int = 24
    units_per_month: int = 2000
    faults_per_100_unit_years: float = 5.0
    firmware_from_month: int = 9  # the second firmware ships from this month on (0-based)
    firmware_share: float = 0.5  # of the units installed from then
    verdict_days: tuple[int, int] = (2, 14)  # onset to the technician's verdict
    planted: tuple[Planted, ...] = field(default_factory=tuple)


def simulate_fleet(plan: FleetPlan, seed: int) -> SimFleet:
    rng = np.random.default_rng(seed)
    end = add_months(plan.start, plan.months)
    end_s = datetime.combine(end, datetime.min.time(), tzinfo=UTC).timestamp()
    factor = {(p.by, p.group): p.factor for p in plan.planted}
    fleet: list[Unit] = []
    found: list[Failure] = []
    first: dict[tuple[str, str], date] = {}
    for m in range(plan.months):
        month = add_months(plan.start, m)
        batch = f"B{add_months(month, -1):%Y-%m}"  # made the month before
        for firmware in ("1.0", "2.0"):
            share = plan.firmware_share if m >= plan.firmware_from_month else 0.0
            n = round(plan.units_per_month * (share if firmware == "2.0" else 1 - share))
            if n == 0:
                continue
            days = rng.integers(0, 28, n)
            rate = plan.faults_per_100_unit_years / 100.0
            rate *= factor.get((QualityBy.BATCH, batch), 1.0)
            rate *= factor.get((QualityBy.FIRMWARE, firmware), 1.0)
            for d in np.unique(days):
                on = month + timedelta(days=int(d))
                ids = [f"u{len(fleet) + i}" for i in range(int((days == d).sum()))]
                cohort = [Unit(i, "purifier", "AP-100", firmware, batch, None, on) for i in ids]
                fleet += cohort
                for key in ((QualityBy.BATCH, batch), (QualityBy.FIRMWARE, firmware)):
                    first.setdefault((key[0].value, key[1]), on)
                start_s = datetime.combine(on, datetime.min.time(), tzinfo=UTC).timestamp()
                faults = FaultPlan.sample(
                    "purifier", len(ids), rng, start=start_s, end=end_s, per_device_year=rate
                )
                for i in np.flatnonzero(faults.kind >= 0):
                    lag = rng.integers(plan.verdict_days[0], plan.verdict_days[1] + 1)
                    at = datetime.fromtimestamp(float(faults.onset[i]) + lag * DAY_S, UTC)
                    if at.timestamp() < end_s:
                        found.append(Failure(ids[i], at, faults.kinds[faults.kind[i]].name))
    return SimFleet(fleet, found, first)


@dataclass(frozen=True)
class CaseResult:
    name: str
    seed: int
    units: int
    failures: int
    flags: list[QualityWarning]
    planted: tuple[Planted, ...]
    first_in_service: dict[tuple[str, str], date]
    group_months: int  # (group, month) pairs watched, batch and firmware together


def run_case(name: str, plan: FleetPlan, seed: int) -> CaseResult:
    sim = simulate_fleet(plan, seed)
    end = add_months(plan.start, plan.months - 1)
    flags, watched = [], 0
    for by in (QualityBy.BATCH, QualityBy.FIRMWARE):
        flags += early_warnings(sim.units, sim.failures, by, plan.start, end)
        for m in months(plan.start, end):
            watched += len({u.group(by) for u in sim.units if u.in_service_on <= m})
    return CaseResult(
        name,
        seed,
        len(sim.units),
        len(sim.failures),
        flags,
        plan.planted,
        sim.first_in_service,
        watched,
    )


def _months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def report(cases: list[CaseResult], command: str, seconds: float) -> str:
    lines = [
        f"### Early warning on simulated fleets, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{command}` ({seconds:.0f} s)",
        "",
        "| fleet | seed | units | failures | planted | flagged (months after its first "
        "unit entered service) | false flags | group-months watched |",
        "|---|---:|---:|---:|---|---|---:|---:|",
    ]
    for c in cases:
        planted = {(p.by.value, p.group) for p in c.planted}
        hits = []
        for p in c.planted:
            key = (p.by.value, p.group)
            flag = next((f for f in c.flags if (f.by, f.group) == key), None)
            if flag is None:
                hits.append(f"{p.group}: never")
            else:
                y, m = (int(x) for x in flag.month.split("-"))
                after = _months_between(c.first_in_service[key], date(y, m, 1))
                hits.append(f"{p.group}: {flag.month} ({after})")
        false = [f for f in c.flags if (f.by, f.group) not in planted]
        what = ", ".join(f"{p.by.value} {p.group} ×{p.factor:g}" for p in c.planted) or "none"
        false_text = str(len(false)) + (
            " (" + ", ".join(f"{f.by} {f.group} {f.month}" for f in false) + ")" if false else ""
        )
        lines.append(
            f"| {c.name} | {c.seed} | {c.units:,} | {c.failures:,} | {what} | "
            f"{'; '.join(hits) or '–'} | {false_text} | {c.group_months:,} |"
        )
    return "\n".join(lines) + "\n"


def run_quality_bench(
    *, seeds: int, units_per_month: int, months: int, output: Path | None, command: str
) -> str:
    began = time.perf_counter()
    base = FleetPlan(units_per_month=units_per_month, months=months)
    bad_batch = f"B{add_months(base.start, 5):%Y-%m}"  # made in the fleet's sixth month
    planted = (
        Planted(QualityBy.BATCH, bad_batch, 3.0),
        Planted(QualityBy.FIRMWARE, "2.0", 2.0),
    )
    cases = []
    for k in range(seeds):
        cases.append(run_case("healthy", base, 100 + k))
        bad = FleetPlan(units_per_month=units_per_month, months=months, planted=planted)
        cases.append(run_case("a bad batch and a bad firmware", bad, 200 + k))
    text = report(cases, command, time.perf_counter() - began)
    if output is not None:
        with output.open("a") as f:
            f.write("\n" + text)
    return text
