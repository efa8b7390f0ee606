"""Local time for people: a technician's working day, a customer's quiet hours.

Both are written in local wall-clock time ("08:00–18:00", "21:00–08:00") and live in a
time zone; everything else in the service domain is UTC. These helpers do the walk from
one to the other, so a DST change moves a working day with the clocks instead of
stretching or shrinking it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

DEFAULT_QUIET = ("21:00", "08:00")


def hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def at_local(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The instant `clock` on `day` in `tz`. A wall time skipped by a DST jump resolves
    forward (fold=0 maps 02:30 on a spring-forward day to 03:30)."""
    return datetime.combine(day, clock, tzinfo=tz).astimezone(tz)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No proactive message, no visit, from `start` to `end` local time (may span
    midnight). Equal start and end means no quiet hours."""

    timezone: str
    start: time
    end: time

    @classmethod
    def of(cls, timezone: str, start: str | None, end: str | None) -> QuietHours:
        s, e = (start or DEFAULT_QUIET[0]), (end or DEFAULT_QUIET[1])
        return cls(timezone, hhmm(s), hhmm(e))

    def _windows(self, around: datetime) -> Iterator[tuple[datetime, datetime]]:
        if self.start == self.end:
            return
        tz = ZoneInfo(self.timezone)
        today = around.astimezone(tz).date()
        for offset in (-1, 0, 1):
            day = today + timedelta(days=offset)
            ends_on = day + timedelta(days=1) if self.end <= self.start else day
            yield at_local(day, self.start, tz), at_local(ends_on, self.end, tz)

    def until(self, moment: datetime) -> datetime | None:
        """When the quiet window holding `moment` ends, or None if it is not quiet."""
        for begin, end in self._windows(moment):
            if begin <= moment < end:
                return end
        return None

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return any(b < end and start < e for b, e in self._windows(start)) or any(
            b < end and start < e for b, e in self._windows(end)
        )


def working_windows(
    hours: Mapping[str, Sequence[str]], timezone: str, first: date, days: int
) -> Iterator[tuple[date, datetime, datetime]]:
    """(local day, start, end) of each working day from `first` for `days` days; `hours`
    is `{"mon": ["08:00", "18:00"], ...}` and a missing weekday is a day off."""
    tz = ZoneInfo(timezone)
    for i in range(days):
        day = first + timedelta(days=i)
        span = hours.get(WEEKDAYS[day.weekday()])
        if span:
            yield day, at_local(day, hhmm(span[0]), tz), at_local(day, hhmm(span[1]), tz)
