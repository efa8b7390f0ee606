"""Quality analytics for R&D: how often units fail, by model, firmware, production batch
or region, from what technicians found.

A *failure* is a job a technician closed as fixed whose fault (the one they confirmed,
else the one suspected) is a fault rather than a filter or a service visit
(`service.sla.problem_class`). A unit is *in service* from its installation (its
registration when no date was given) on; the registry has no retirements yet, so a unit
stays in service. Rates are failures per 1,000 units in service per month, the figure
quality teams compare across models, firmware and batches.

Pure functions over `Unit` and `Failure` rows (`units()`, `failures()` read them), so the
figures are checked by hand on small cases (tests/service/test_quality.py)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

import sqlalchemy as sa

from db.database import Database
from db.tables import (
    device_sites,
    devices,
    outlets,
    quality_warnings,
    service_labels,
    territories,
    work_order_parts,
)
from db.upsert import insert_for
from service.sla import problem_class
from service.warranty import add_months


class QualityBy(StrEnum):
    MODEL = "model"
    FIRMWARE = "firmware"
    BATCH = "batch"
    REGION = "region"
    DEVICE_TYPE = "device_type"


UNKNOWN = "(unknown)"  # a unit without the attribute grouped by


@dataclass(frozen=True, slots=True)
class Unit:
    device_id: str
    device_type: str
    model: str | None
    firmware: str | None
    batch: str | None
    region: str | None
    in_service_on: date  # installed (or registered) on

    def group(self, by: QualityBy) -> str:
        value: str | None = getattr(self, by.value)
        return value or UNKNOWN


@dataclass(frozen=True, slots=True)
class Failure:
    device_id: str
    at: datetime
    fault: str
    order_id: int | None = None  # the job it was found on: its parts


def units(db: Database) -> list[Unit]:
    """Every registered unit with what it is grouped by (its region: its territory's
    outlet's)."""
    q = (
        sa.select(
            devices.c.id,
            devices.c.device_type,
            devices.c.model,
            devices.c.firmware,
            devices.c.batch,
            devices.c.registered_at,
            device_sites.c.installed_on,
            outlets.c.region_id,
        )
        .select_from(
            devices.outerjoin(device_sites, device_sites.c.device_id == devices.c.id)
            .outerjoin(territories, territories.c.id == device_sites.c.territory_id)
            .outerjoin(outlets, outlets.c.id == territories.c.outlet_id)
        )
        .order_by(devices.c.id)
    )
    with db.engine.connect() as conn:
        return [
            Unit(
                r.id,
                r.device_type,
                r.model,
                r.firmware,
                r.batch,
                r.region_id,
                r.installed_on or r.registered_at.date(),
            )
            for r in conn.execute(q)
        ]


def failures(db: Database) -> list[Failure]:
    """Technicians' confirmed failures, oldest first."""
    q = sa.select(
        service_labels.c.device_id,
        service_labels.c.at,
        sa.func.coalesce(service_labels.c.confirmed_fault, service_labels.c.problem_kind),
        service_labels.c.order_id,
    ).where(service_labels.c.outcome == "fixed")
    with db.engine.connect() as conn:
        rows = conn.execute(q.order_by(service_labels.c.at, service_labels.c.id)).all()
    return [
        Failure(d, at, kind, order_id)
        for d, at, kind, order_id in rows
        if problem_class(kind) == "fault"
    ]


def parts_fitted(db: Database, order_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Per job: the parts fitted on it, SKU → quantity."""
    wanted = sorted(set(order_ids))
    out: dict[int, dict[str, int]] = defaultdict(dict)
    with db.engine.connect() as conn:
        for i in range(0, len(wanted), 5000):
            chunk = wanted[i : i + 5000]
            q = sa.select(
                work_order_parts.c.order_id, work_order_parts.c.sku, work_order_parts.c.qty
            )
            for order_id, sku, qty in conn.execute(q.where(work_order_parts.c.order_id.in_(chunk))):
                out[order_id][sku] = out[order_id].get(sku, 0) + qty
    return dict(out)


# -- failure rates --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RateRow:
    group: str
    month: str  # YYYY-MM
    units: int  # in service at any time in the month
    failures: int
    per_1000: float | None  # failures per 1,000 units in service; None without units


def month_of(d: date, back: int = 0) -> date:
    """The first day of `d`'s month, `back` months earlier."""
    return add_months(date(d.year, d.month, 1), -back)


def months(start: date, end: date) -> list[date]:
    """The first days of the months from `start`'s to `end`'s, both included."""
    out, m = [], month_of(start)
    while m <= end:
        out.append(m)
        m = add_months(m, 1)
    return out


def failure_rates(
    fleet: Sequence[Unit], found: Iterable[Failure], by: QualityBy, start: date, end: date
) -> list[RateRow]:
    """Per group and month from `start`'s to `end`'s: units in service, failures, and
    failures per 1,000 units in service. Groups in name order, months in order."""
    unit_of = {u.device_id: u for u in fleet}
    count: Counter[tuple[str, date]] = Counter()
    for f in found:
        u = unit_of.get(f.device_id)
        if u is not None:
            count[(u.group(by), date(f.at.year, f.at.month, 1))] += 1
    out = []
    members: dict[str, list[Unit]] = defaultdict(list)
    for u in fleet:
        members[u.group(by)].append(u)
    for g in sorted(members):
        for m in months(start, end):
            n = sum(u.in_service_on < add_months(m, 1) for u in members[g])
            k = count[(g, m)]
            rate = round(1000.0 * k / n, 3) if n else None
            out.append(RateRow(g, f"{m:%Y-%m}", n, k, rate))
    return out


# -- what fails -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ModeRow:
    group: str
    kind: str  # "fault" (a failure mode) or "part" (a part fitted on failures)
    name: str  # the fault, or the part's SKU
    count: int  # failures with that fault, or units of the part fitted
    share: float  # of the group's failures (faults), of the parts fitted (parts)


def failure_modes(
    fleet: Sequence[Unit],
    found: Iterable[Failure],
    by: QualityBy,
    parts: dict[int, dict[str, int]] | None = None,
    top: int = 5,
) -> list[ModeRow]:
    """Per group: its `top` failure modes and the `top` parts fitted on its failures,
    most frequent first (ties by name)."""
    unit_of = {u.device_id: u for u in fleet}
    faults: dict[str, Counter[str]] = defaultdict(Counter)
    fitted: dict[str, Counter[str]] = defaultdict(Counter)
    for f in found:
        u = unit_of.get(f.device_id)
        if u is None:
            continue
        g = u.group(by)
        faults[g][f.fault] += 1
        for sku, qty in (parts or {}).get(f.order_id or -1, {}).items():
            fitted[g][sku] += qty
    out = []
    for g in sorted(faults):
        for kind, counts in (("fault", faults[g]), ("part", fitted[g])):
            total = sum(counts.values())
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
            out += [ModeRow(g, kind, name, n, round(n / total, 4)) for name, n in ranked]
    return out


# -- time to first failure ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SurvivalPoint:
    day: int  # days in service
    at_risk: int
    failed: int
    survival: float  # share of units still without a failure after `day`
    low: float  # 95 % band (Greenwood, log-log)
    high: float


@dataclass(frozen=True, slots=True)
class SurvivalCurve:
    group: str
    units: int
    failed: int  # units that had a first failure
    median_days: int | None  # None while more than half have never failed
    points: list[SurvivalPoint]
    followed_days: int = 0  # the longest any unit has been watched: the curve's reach


def first_failure_days(
    fleet: Sequence[Unit], found: Iterable[Failure], asof: date
) -> dict[str, tuple[int, bool]]:
    """Per unit in service by `asof`: (days, failed) — days to its first failure, or
    days in service so far when it has had none (censored)."""
    first: dict[str, date] = {}
    for f in found:
        day = f.at.date()
        if day <= asof and (f.device_id not in first or day < first[f.device_id]):
            first[f.device_id] = day
    out = {}
    for u in fleet:
        if u.in_service_on > asof:
            continue
        failed_on = first.get(u.device_id)
        if failed_on is not None and failed_on >= u.in_service_on:
            out[u.device_id] = ((failed_on - u.in_service_on).days, True)
        elif failed_on is None:
            out[u.device_id] = ((asof - u.in_service_on).days, False)
        # a failure dated before the installation is a data error: the unit is left out
    return out


def kaplan_meier(times: Sequence[tuple[int, bool]], group: str = "") -> SurvivalCurve:
    """The Kaplan–Meier estimate of the share without a failure after each day on which
    one happened; units still healthy count until their last day (censored)."""
    events: Counter[int] = Counter(t for t, failed in times if failed)
    leaving: Counter[int] = Counter(t for t, _ in times)
    at_risk, s, greenwood = len(times), 1.0, 0.0
    points = []
    for day in sorted(leaving):
        d = events.get(day, 0)
        if d:
            s *= 1 - d / at_risk
            if at_risk > d:
                greenwood += d / (at_risk * (at_risk - d))
            low, high = _loglog_band(s, greenwood)
            points.append(SurvivalPoint(day, at_risk, d, round(s, 6), low, high))
        at_risk -= leaving[day]
    median = next((p.day for p in points if p.survival <= 0.5), None)
    followed = max((t for t, _ in times), default=0)
    return SurvivalCurve(group, len(times), sum(events.values()), median, points, followed)


def _loglog_band(s: float, greenwood: float) -> tuple[float, float]:
    """95 % band on S by the log-log transform: it stays inside [0, 1]."""
    if s <= 0.0 or s >= 1.0 or greenwood <= 0.0:
        return round(s, 6), round(s, 6)
    half = 1.96 * math.sqrt(greenwood) / abs(math.log(s))
    return round(s ** math.exp(half), 6), round(s ** math.exp(-half), 6)


def survival(
    fleet: Sequence[Unit], found: Iterable[Failure], by: QualityBy, asof: date
) -> list[SurvivalCurve]:
    """A time-to-first-failure curve per group, in group name order."""
    times = first_failure_days(fleet, found, asof)
    grouped: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    for u in fleet:
        if u.device_id in times:
            grouped[u.group(by)].append(times[u.device_id])
    return [kaplan_meier(grouped[g], g) for g in sorted(grouped)]


# -- is one group's rate really higher? -----------------------------------------------------
@dataclass(frozen=True, slots=True)
class Comparison:
    by: str
    a: str
    b: str
    a_failures: int
    a_unit_months: float
    b_failures: int
    b_unit_months: float
    rate_ratio: float | None  # a's rate over b's
    low: float | None  # its 95 % interval
    high: float | None
    p_value: float | None  # two-sided: the rates are equal
    verdict: str


def unit_months(u: Unit, start: date, end: date) -> float:
    """Months in service within [start, end)."""
    first = max(u.in_service_on, start)
    return max((end - first).days, 0) / 30.4375


def compare(
    fleet: Sequence[Unit],
    found: Iterable[Failure],
    by: QualityBy,
    a: str,
    b: str,
    start: date,
    end: date,
) -> Comparison:
    """Failures per unit-month of group `a` against `b` over [start, end): the rate
    ratio with its 95 % interval (a Poisson rate on each side), and the exact test of
    equal rates (given the failures of both, a's count is binomial with a's share of
    the exposure)."""
    exposure = {a: 0.0, b: 0.0}
    members: dict[str, set[str]] = {a: set(), b: set()}
    for u in fleet:
        g = u.group(by)
        if g in exposure:
            exposure[g] += unit_months(u, start, end)
            members[g].add(u.device_id)
    k = {a: 0, b: 0}
    lo_t = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
    hi_t = datetime.combine(end, datetime.min.time(), tzinfo=UTC)
    for f in found:
        if lo_t <= f.at < hi_t:
            for g in (a, b):
                if f.device_id in members[g]:
                    k[g] += 1
    ratio = low = high = p = None
    if exposure[a] > 0 and exposure[b] > 0:
        ea, eb = exposure[a], exposure[b]
        p = _binomial_two_sided(k[a], k[a] + k[b], ea / (ea + eb))
        if k[a] and k[b]:
            ratio = (k[a] / ea) / (k[b] / eb)
            se = math.sqrt(1 / k[a] + 1 / k[b])
            low, high = ratio * math.exp(-1.96 * se), ratio * math.exp(1.96 * se)
    verdict = _verdict(a, b, ratio, low, high, p, k[a], k[b], exposure)
    return Comparison(
        by.value,
        a,
        b,
        k[a],
        round(exposure[a], 2),
        k[b],
        round(exposure[b], 2),
        None if ratio is None else round(ratio, 4),
        None if low is None else round(low, 4),
        None if high is None else round(high, 4),
        None if p is None else round(p, 6),
        verdict,
    )


def _verdict(
    a: str,
    b: str,
    ratio: float | None,
    low: float | None,
    high: float | None,
    p: float | None,
    ka: int,
    kb: int,
    exposure: dict[str, float],
) -> str:
    if p is None:
        missing = [g for g in (a, b) if exposure[g] <= 0]
        return f"no units in service for {', '.join(missing)} in the period"
    if p >= 0.05:
        return f"no evidence that the rates differ (p = {p:.3f}; {ka} and {kb} failures)"
    higher = a if (ka / exposure[a]) > (kb / exposure[b]) else b
    if ratio is None:
        return f"{higher}'s rate is higher (p = {p:.3f}; {ka} and {kb} failures)"
    return f"{higher}'s rate is higher: {a}/{b} = {ratio:.2f} ({low:.2f}–{high:.2f}), p = {p:.3f}"


def _log_pmf(i: int, n: int, q: float) -> float:
    """log P(X = i) for X ~ Binomial(n, q), 0 < q < 1 (log space: n may be thousands)."""
    return (
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(q)
        + (n - i) * math.log1p(-q)
    )


def _binomial_two_sided(k: int, n: int, q: float) -> float:
    """P of an outcome no more likely than `k` under Binomial(n, q) (log space: n may be
    thousands of failures)."""
    if n == 0:
        return 1.0
    if q <= 0.0 or q >= 1.0:
        return 1.0 if k == round(q * n) else 0.0

    logs = [_log_pmf(i, n, q) for i in range(n + 1)]
    cut = logs[k] + 1e-9
    return min(1.0, sum(math.exp(x) for x in logs if x <= cut))


# -- early warning -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QualityWarning:
    by: str
    group: str
    month: str  # YYYY-MM: the month whose data raised it
    failures: int  # the group's, over the look-back window
    peers_failures: int
    rate_ratio: float | None  # the group's rate over its peers'
    p_value: float


@dataclass(frozen=True, slots=True)
class WarningPolicy:
    """When a group's rate is flagged as above its peers': over the last `window_months`,
    at least `min_failures` failures, a rate at least `min_ratio` times its peers', and
    a one-sided exact test below `p_value` — a level meant to be crossed rarely by chance
    over the many groups and months watched (a Bonferroni-like margin)."""

    window_months: int = 3
    min_failures: int = 3
    min_ratio: float = 1.5
    p_value: float = 0.001


def _binomial_upper(k: int, n: int, q: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, q)."""
    if k <= 0:
        return 1.0
    if q <= 0.0:
        return 0.0
    if q >= 1.0:
        return 1.0

    return min(1.0, sum(math.exp(_log_pmf(i, n, q)) for i in range(k, n + 1)))


def early_warnings(
    fleet: Sequence[Unit],
    found: Iterable[Failure],
    by: QualityBy,
    start: date,
    end: date,
    policy: WarningPolicy | None = None,
) -> list[QualityWarning]:
    """Each month from `start`'s to `end`'s, every group (batch, firmware …) against the
    rest of its fleet over the policy's window: the groups whose rate stands out. Given
    the failures of the group and its peers, the group's count is binomial with its
    share of the unit-months; a small upper tail with enough failures and a big enough
    ratio flags it. Only a group's first flag is returned (R&D is told once)."""
    pol = policy or WarningPolicy()
    found = list(found)
    unit_of = {u.device_id: u for u in fleet}
    flagged: dict[str, QualityWarning] = {}
    for m in months(start, end):
        lo, hi = add_months(m, 1 - pol.window_months), add_months(m, 1)
        exposure: dict[str, float] = defaultdict(float)
        for u in fleet:
            exposure[u.group(by)] += unit_months(u, lo, hi)
        count: Counter[str] = Counter()
        for f in found:
            failed_unit = unit_of.get(f.device_id)
            if failed_unit is not None and lo <= f.at.date() < hi:
                count[failed_unit.group(by)] += 1
        total_k, total_e = sum(count.values()), sum(exposure.values())
        for g, e in exposure.items():
            if g in flagged or g == UNKNOWN or e <= 0 or total_e - e <= 0:
                continue
            k, peers_k = count[g], total_k - count[g]
            if k < pol.min_failures:
                continue
            peers_e = total_e - e
            ratio = (k / e) / (peers_k / peers_e) if peers_k else None
            if ratio is not None and ratio < pol.min_ratio:
                continue
            p = _binomial_upper(k, total_k, e / total_e)
            if p < pol.p_value:
                flagged[g] = QualityWarning(
                    by.value,
                    g,
                    f"{m:%Y-%m}",
                    k,
                    peers_k,
                    None if ratio is None else round(ratio, 3),
                    p,
                )
    return sorted(flagged.values(), key=lambda w: (w.month, w.group))


@dataclass(frozen=True, slots=True)
class RaisedWarning(QualityWarning):
    raised_at: datetime


WATCHED = (QualityBy.BATCH, QualityBy.FIRMWARE)  # what the early warning runs over
WARNING_LOOKBACK_MONTHS = 12


class QualityWarnings:
    """The early warnings raised, kept so each batch or firmware is raised once: the
    daily check records the new ones, the console lists them and the API's metrics
    carry the recent ones to Alertmanager (R&D's channel, not a work order)."""

    def __init__(self, db: Database, policy: WarningPolicy | None = None) -> None:
        self.db, self.policy = db, policy

    def check(self, now: datetime) -> list[QualityWarning]:
        """Run the warning over the last year's months; record and return the groups
        flagged that were not flagged before."""
        today = now.date()
        start = month_of(today, back=WARNING_LOOKBACK_MONTHS)
        fleet, found = units(self.db), failures(self.db)
        known = {(w.by, w.group) for w in self.list()}
        new = [
            w
            for by in WATCHED
            for w in early_warnings(fleet, found, by, start, today, self.policy)
            if (w.by, w.group) not in known
        ]
        if new:
            rows = [
                {
                    "by": w.by,
                    "group": w.group,
                    "month": w.month,
                    "failures": w.failures,
                    "peers_failures": w.peers_failures,
                    "rate_ratio": w.rate_ratio,
                    "p_value": w.p_value,
                    "raised_at": now,
                }
                for w in new
            ]
            with self.db.engine.begin() as conn:
                # another checker may have raised one meanwhile: the pair is unique
                insert = insert_for(conn, quality_warnings).values(rows)
                conn.execute(insert.on_conflict_do_nothing(index_elements=["by", "group"]))
        return new

    def list(self, since: datetime | None = None) -> list[RaisedWarning]:
        """Every warning raised (since `since`), the newest first."""
        q = sa.select(quality_warnings).order_by(
            quality_warnings.c.raised_at.desc(), quality_warnings.c.id.desc()
        )
        if since is not None:
            q = q.where(quality_warnings.c.raised_at >= since)
        with self.db.engine.connect() as conn:
            return [
                RaisedWarning(
                    r.by, r.group, r.month, r.failures, r.peers_failures, r.rate_ratio,
                    r.p_value, r.raised_at,
                )
                for r in conn.execute(q)
            ]  # fmt: skip
