"""Service levels: when an order is due, and whether it is at risk or breached.

A rule per problem class × customer tier gives a duration, counted either on the
calendar (elapsed time: "a fault resolved within 48 hours") or in the outlet's business
hours (its time zone, opening hours, weekdays and holidays). A filter replacement is due
no later than the predicted exhaustion the request carries. The clock starts when the
order is created, except for a proposal of an origin in `clock_at_approval` (the rules'
and models' own, by default): its clock starts when ops approve it, so time spent
waiting for review is not the field's to make up. Business time is walked
in the outlet's local wall-clock time, so a DST change neither adds nor removes
business hours; calendar time is elapsed time, so across a DST change the local due
time moves by the hour the clocks did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

from service.localtime import WEEKDAYS


class SlaStatus(StrEnum):
    OK = "ok"
    AT_RISK = "at_risk"  # due within the warning window
    BREACHED = "breached"  # past due, not completed (or completed late)
    MET = "met"  # completed in time


@dataclass(frozen=True, kw_only=True)
class BusinessCalendar:
    timezone: str
    opens: time = time(8, 0)
    closes: time = time(20, 0)
    days: frozenset[str] = frozenset(WEEKDAYS)
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if self.opens >= self.closes:
            raise ValueError("a business day must close after it opens")
        ZoneInfo(self.timezone)  # an unknown zone fails here, not at the first order

    def _open_on(self, day: date) -> bool:
        return WEEKDAYS[day.weekday()] in self.days and day not in self.holidays

    def add_business_hours(self, start: datetime, hours: float) -> datetime:
        """`start` plus `hours` of opening time, walking local days."""
        tz = ZoneInfo(self.timezone)
        local = start.astimezone(tz)
        left = timedelta(hours=hours)
        day = local.date()
        cursor = local.replace(tzinfo=None)  # naive local wall time
        while True:
            if self._open_on(day):
                opens = datetime.combine(day, self.opens)
                closes = datetime.combine(day, self.closes)
                begin = max(cursor, opens)
                if begin < closes:
                    available = closes - begin
                    if left <= available:
                        return (begin + left).replace(tzinfo=tz).astimezone(UTC)
                    left -= available
            day += timedelta(days=1)
            cursor = datetime.combine(day, time(0, 0))


@dataclass(frozen=True)
class SlaRule:
    hours: float
    clock: Literal["calendar", "business"]


def problem_class(problem_kind: str) -> str:
    if problem_kind.startswith("filter_replacement"):
        return "filter"
    if problem_kind in ("inspection", "installation", "advice"):
        return "service"
    return "fault"


DEFAULT_RULES: Mapping[tuple[str, str], SlaRule] = MappingProxyType(
    {
        ("fault", "standard"): SlaRule(48, "calendar"),
        ("fault", "vip"): SlaRule(24, "calendar"),
        ("filter", "standard"): SlaRule(36, "business"),  # three 12-hour business days
        ("filter", "vip"): SlaRule(24, "business"),
        ("service", "standard"): SlaRule(60, "business"),
        ("service", "vip"): SlaRule(36, "business"),
    }
)


@dataclass(frozen=True, kw_only=True)
class SlaPolicy:
    rules: Mapping[tuple[str, str], SlaRule] = field(default_factory=lambda: DEFAULT_RULES)
    at_risk: timedelta = timedelta(hours=4)
    opens: time = time(8, 0)
    closes: time = time(20, 0)
    holidays: frozenset[date] = frozenset()
    # origins whose proposals start the clock when ops approve them, not when created
    clock_at_approval: frozenset[str] = frozenset({"auto"})

    def starts_at_approval(self, origin: str) -> bool:
        return str(origin) in self.clock_at_approval

    def calendar(self, timezone: str) -> BusinessCalendar:
        return BusinessCalendar(
            timezone=timezone, opens=self.opens, closes=self.closes, holidays=self.holidays
        )

    def due(
        self,
        *,
        problem_kind: str,
        tier: str,
        opened: datetime,
        timezone: str,
        not_after: datetime | None = None,
    ) -> datetime:
        rule = (
            self.rules.get((problem_class(problem_kind), tier))
            or self.rules[(problem_class(problem_kind), "standard")]
        )
        if rule.clock == "calendar":
            due = opened.astimezone(UTC) + timedelta(hours=rule.hours)
        else:
            due = self.calendar(timezone).add_business_hours(opened, rule.hours)
        return min(due, not_after) if not_after is not None else due

    def status(
        self, *, due_at: datetime | None, completed_at: datetime | None, now: datetime
    ) -> SlaStatus:
        if due_at is None:
            return SlaStatus.OK
        if completed_at is not None:
            return SlaStatus.MET if completed_at <= due_at else SlaStatus.BREACHED
        if now > due_at:
            return SlaStatus.BREACHED
        if due_at - now <= self.at_risk:
            return SlaStatus.AT_RISK
        return SlaStatus.OK
