"""Service KPIs, from the orders themselves, per outlet, territory or technician and period.

Each figure is counted in the period its deciding event happened (see `KpiRow`), so a
period's figures do not change later, except ratings, which belong to the period the
job was completed in and fill in as customers rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from db.database import Database
from db.tables import callbacks, complaints, work_order_events, work_order_parts, work_orders
from service.csvout import dataclass_csv
from service.lifecycle import State

RESOLVED_ONLINE = "resolved_online"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, from Monday
    MONTH = "month"


class GroupBy(StrEnum):
    ALL = "all"
    OUTLET = "outlet"
    TERRITORY = "territory"
    TECHNICIAN = "technician"


@dataclass(frozen=True, slots=True)
class KpiRow:
    """Rates are shares 0–1 (None when nothing was there to count); times are hours."""

    group: str
    period: date  # the first day of the period
    opened: int  # orders created in the period
    completed: int  # orders completed in the period
    first_time_fix: float | None  # of those: fixed, and no repeat within the repeat window
    dispatch_first_time: float | None  # first dispatched in the period: first offer accepted
    parts_fill_rate: float | None  # parts used on jobs completed: share that was in the van
    sla_compliance: float | None  # orders due in the period (and decided): completed in time
    hours_to_dispatch: float | None  # mean, created → first assigned, for those dispatched
    hours_to_complete: float | None  # mean, created → completed
    mean_rating: float | None  # of jobs completed in the period, as rated so far
    nps: float | None  # asked 0–10 at the callback: % promoters (9–10) − % detractors (0–6)
    complaint_rate: float | None  # complaints per job completed in the period
    resolved_online: float | None  # closed without a visit / (that + completed)


@dataclass
class _Acc:
    opened: int = 0
    completed: int = 0
    fixed_first: int = 0
    first_offers: list[bool] = field(default_factory=list)
    parts_van: int = 0
    parts_all: int = 0
    due: int = 0
    met: int = 0
    to_dispatch: list[float] = field(default_factory=list)
    to_complete: list[float] = field(default_factory=list)
    ratings: list[int] = field(default_factory=list)
    recommend: list[int] = field(default_factory=list)
    complaints: int = 0
    online: int = 0


def period_start(moment: datetime, period: Period, tz: ZoneInfo) -> date:
    day = moment.astimezone(tz).date()
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period is Period.MONTH:
        return day.replace(day=1)
    return day


def kpis(
    db: Database,
    start: datetime,
    end: datetime,
    *,
    by: GroupBy = GroupBy.OUTLET,
    period: Period = Period.WEEK,
    timezone: str = "UTC",
    repeat_window: timedelta = timedelta(days=30),
    now: datetime | None = None,
) -> list[KpiRow]:
    """KPIs for events in [start, end), bucketed by `period` in `timezone`."""
    now = now or datetime.now(UTC)
    tz = ZoneInfo(timezone)
    wo = work_orders
    in_window = [sa.and_(c >= start, c < end) for c in (wo.c.created_at, wo.c.completed_at)]
    in_window += [sa.and_(c >= start, c < end) for c in (wo.c.due_at, wo.c.closed_at)]
    with db.engine.connect() as conn:
        orders = conn.execute(sa.select(wo).where(sa.or_(*in_window))).all()
        ids = sa.select(wo.c.id).where(sa.or_(*in_window)).scalar_subquery()
        ev = work_order_events
        first_assign = dict(
            conn.execute(
                sa.select(ev.c.order_id, sa.func.min(ev.c.at))
                .where(ev.c.action == "assign", ev.c.order_id.in_(ids))
                .group_by(ev.c.order_id)
            ).all()
        )
        parts: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for r in conn.execute(
            sa.select(work_order_parts).where(work_order_parts.c.order_id.in_(ids))
        ):
            parts[r.order_id].append((r.source, r.qty))
        rated = {
            r.order_id: (r.rating, r.complaint, r.nps)
            for r in conn.execute(sa.select(callbacks).where(callbacks.c.order_id.in_(ids)))
        }
        # a case about the job, from any channel (a low rating opens one too)
        complained = set(
            conn.execute(
                sa.select(complaints.c.order_id).where(complaints.c.order_id.in_(ids))
            ).scalars()
        )
        later = conn.execute(
            sa.select(wo.c.device_id, wo.c.problem_kind, wo.c.created_at).where(
                wo.c.created_at >= start, wo.c.created_at < end + repeat_window
            )
        ).all()
    repeats: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for device, problem, created in later:
        repeats[(device, problem)].append(created)

    acc: dict[tuple[str, date], _Acc] = defaultdict(_Acc)

    def bucket(o: Any, moment: datetime | None) -> _Acc | None:
        if moment is None or not start <= moment < end:
            return None
        return acc[(_group(o, by), period_start(moment, period, tz))]

    for o in orders:
        if (a := bucket(o, o.created_at)) is not None:
            a.opened += 1
        assigned = first_assign.get(o.id)
        if assigned is not None and (a := bucket(o, _utc(assigned))) is not None:
            a.to_dispatch.append(_hours(_utc(assigned) - o.created_at))
            if o.first_offer_accepted is not None:
                a.first_offers.append(bool(o.first_offer_accepted))
        if (a := bucket(o, o.completed_at)) is not None:
            a.completed += 1
            a.to_complete.append(_hours(o.completed_at - o.created_at))
            came_back = any(
                o.completed_at < t <= o.completed_at + repeat_window
                for t in repeats[(o.device_id, o.problem_kind)]
            )
            if o.outcome == "fixed" and not came_back:
                a.fixed_first += 1
            for source, qty in parts.get(o.id, []):
                a.parts_all += qty
                a.parts_van += qty if source == "van" else 0
            rating, complaint, recommend = rated.get(o.id, (None, False, None))
            if rating is not None:
                a.ratings.append(rating)
            if recommend is not None:
                a.recommend.append(recommend)
            a.complaints += int(bool(complaint) or o.id in complained)
        decided = o.state not in (State.CANCELLED.value, State.REJECTED.value) and (
            o.completed_at is not None or (o.due_at is not None and o.due_at <= now)
        )
        if decided and (a := bucket(o, o.due_at)) is not None:
            a.due += 1
            a.met += int(o.completed_at is not None and o.completed_at <= o.due_at)
        if o.resolution == RESOLVED_ONLINE and (a := bucket(o, o.closed_at)) is not None:
            a.online += 1

    return [_row(group, day, a) for (group, day), a in sorted(acc.items())]


def _group(o: Any, by: GroupBy) -> str:
    if by is GroupBy.ALL:
        return "all"
    value = {
        GroupBy.OUTLET: o.outlet_id,
        GroupBy.TERRITORY: o.territory_id,
        GroupBy.TECHNICIAN: o.technician_id,
    }[by]
    return str(value) if value else "-"


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)  # SQLite's aggregate loses the type


def _hours(d: timedelta) -> float:
    return d.total_seconds() / 3600


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(values: list[float] | list[int]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _row(group: str, day: date, a: _Acc) -> KpiRow:
    promoters = sum(1 for r in a.recommend if r >= 9)
    detractors = sum(1 for r in a.recommend if r <= 6)
    return KpiRow(
        group=group,
        period=day,
        opened=a.opened,
        completed=a.completed,
        first_time_fix=_share(a.fixed_first, a.completed),
        dispatch_first_time=_share(sum(a.first_offers), len(a.first_offers)),
        parts_fill_rate=_share(a.parts_van, a.parts_all),
        sla_compliance=_share(a.met, a.due),
        hours_to_dispatch=_mean(a.to_dispatch),
        hours_to_complete=_mean(a.to_complete),
        mean_rating=_mean(a.ratings),
        nps=round(100 * (promoters - detractors) / len(a.recommend), 1) if a.recommend else None,
        complaint_rate=_share(a.complaints, a.completed),
        resolved_online=_share(a.online, a.online + a.completed),
    )


def kpis_csv(rows: Iterable[KpiRow]) -> str:
    return dataclass_csv(KpiRow, rows)
