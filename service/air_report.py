"""The household's monthly air report: what the home's air was like, how it compares
with the homes around it, and what to do about it.

One report per device and month, for a device whose product profile declares
`air_quality` metrics (an air purifier's PM2.5, an air conditioner's humidity), in the
customer's own time zone (the month, the days and the hours are theirs):

* each declared metric by hour of day and by day, its monthly mean, the **hours out of
  bounds** (hourly means above or below the profile's bounds, e.g. WHO's 15 µg/m³ for
  PM2.5) and the **days out of bounds** (daily means: the basis of WHO's 24-hour
  guideline);
* the **filter's effect**: a week before a replacement in the month against the week
  after it;
* the **neighbourhood**: homes with the same kind of appliance in the same territory in
  the same month (so the same season), as percentiles of the share of time out of bounds
  and of the monthly mean, and the neighbourhood's median by hour of day. It is formed
  only from `min_homes` homes or more (households, not devices), so that no single home
  can be recognised in it; with fewer, the report says so and shows none;
* **advice** in plain words: run the appliance at the hours the air was out of bounds,
  the filter is due (from the filter-life prediction), air the rooms at the hours the
  neighbourhood's air is cleanest (indoor air across many homes follows the outdoor air;
  the engine has no outdoor feed of its own).

`AirReports.issue` queues the "your report is ready" message for every home that wants it
(the customer's `air_reports` preference), once per device and month; the outbox applies
the weekly cap and quiet hours as for every proactive message.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from db.database import Database
from db.errors import NotFound
from db.tables import customers, device_sites, devices, filter_predictions, filter_replacements
from service.errors import ServiceError
from service.messages import Kind
from service.notifications import enqueue
from service.warranty import add_months
from telemetry.profile import AirMetric, Profile, ProfileSet
from telemetry.records import Agg, Aggregation, RangeQuery
from telemetry.store import TelemetryStore

HOUR_MS = 3_600_000
VENTILATE_BELOW = 0.8  # the neighbourhood's cleanest hours at most this share of its median
AVOID_ABOVE = 1.5  # its dirtiest hours at least this many times its cleanest, to name them


class NoAirReport(ServiceError):
    """The device's kind of appliance reports no air quality, or the month is not over
    or not a month."""


@dataclass(frozen=True, kw_only=True)
class ReportPolicy:
    min_homes: int = 10  # fewest households a neighbourhood figure is formed from
    min_hours: int = 72  # fewest hours with readings for a home to count in a month
    filter_window: timedelta = timedelta(days=7)  # before and after a replacement
    filter_due_within: timedelta = timedelta(days=30)  # after the month ends
    neighbours_sampled: int = 60  # homes read hour by hour for the neighbourhood's day


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    mean: float
    max: float
    hours_out: int
    out: bool  # the daily mean is out of bounds


@dataclass(frozen=True, slots=True)
class FilterEffect:
    replaced_at: datetime
    before_mean: float
    after_mean: float
    before_share_out: float  # of the hours with readings
    after_share_out: float

    @property
    def change(self) -> float:
        """Relative change of the mean, after against before (−0.4: 40 % lower)."""
        return (self.after_mean - self.before_mean) / self.before_mean if self.before_mean else 0.0


@dataclass(frozen=True, slots=True)
class Neighbourhood:
    homes: int  # households it is formed from, this one included
    yours: tuple[float, float]  # this home's share of time out of bounds and mean
    share_out: tuple[float, float, float]  # quartiles of the share of time out of bounds
    mean: tuple[float, float, float]  # quartiles of the monthly mean
    better_than: float  # share of the other homes with more time out of bounds
    by_hour: list[float | None]  # median by local hour of day (None: too few homes)


@dataclass(frozen=True, slots=True)
class MetricReport:
    metric: str
    label: str
    unit: str
    above: float | None
    below: float | None
    guideline: str
    hours: int  # hours with readings
    mean: float | None
    hours_out: int
    days_out: int
    share_out: float | None  # of the hours with readings
    by_hour: list[float | None]  # mean by local hour of day, 0-23
    days: list[Day]
    neighbourhood: Neighbourhood | None
    neighbourhood_note: str  # why there is none, when there is none
    filter_effect: FilterEffect | None


@dataclass(frozen=True, slots=True)
class Advice:
    code: str  # out_of_bounds | filter_due | ventilate | all_good
    text: str


@dataclass(frozen=True, slots=True)
class AirReport:
    device_id: str
    device_type: str
    customer_id: str
    month: str  # YYYY-MM, in the customer's time zone
    timezone: str
    start: datetime
    end: datetime
    metrics: list[MetricReport]
    advice: list[Advice] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Home:
    device_id: str
    device_type: str
    customer_id: str
    territory_id: str
    timezone: str
    language: str
    air_reports: bool


def parse_month(text: str) -> date:
    """`YYYY-MM` as the month's first day."""
    try:
        year, month = text.split("-")
        return date(int(year), int(month), 1)
    except ValueError:
        raise NoAirReport(f"month {text!r}: give it as YYYY-MM, e.g. 2026-11") from None


def month_bounds(month: date, timezone: str) -> tuple[datetime, datetime]:
    """The month from local midnight on its first day to local midnight on the next
    month's, in UTC."""
    zone = ZoneInfo(timezone)
    start = datetime(month.year, month.month, 1, tzinfo=zone)
    nxt = add_months(month, 1)
    end = datetime(nxt.year, nxt.month, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def out_of_bounds(value: float, air: AirMetric) -> bool:
    return (air.above is not None and value > air.above) or (
        air.below is not None and value < air.below
    )


def hour_ranges(hours: Sequence[int]) -> str:
    """Local hours of day as ranges: [7, 8, 18, 19, 20] → "07:00-09:00, 18:00-21:00"."""
    runs: list[list[int]] = []
    for h in sorted(set(hours)):
        if runs and h == runs[-1][-1] + 1:
            runs[-1].append(h)
        else:
            runs.append([h])
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][-1] == 23:  # across midnight
        runs[0] = runs.pop() + runs[0]
    return ", ".join(f"{r[0]:02d}:00-{(r[-1] + 1) % 24:02d}:00" for r in runs)


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return (values[0],) * 3
    q = statistics.quantiles(values, n=4, method="inclusive")
    return (q[0], q[1], q[2])


ADVICE: Mapping[str, Mapping[str, str]] = {
    "en": {
        "filter_due": "The {name} is due around {date}: book a replacement or order one in "
        "the app.",
        "ventilate": "Homes around you had their cleanest air at {hours}, when the outdoor "
        "air is usually cleanest too: open the windows then{not_at}.",
        "not_at": " rather than at {hours}",
        "all_good": "Your {label} stayed within the guideline all month. Keep it up.",
        "no_neighbourhood": "Fewer than {n} homes near you reported this month, too few to "
        "compare without revealing one of them.",
    },
    "zh": {
        "filter_due": "{name}预计在 {date} 左右需要更换，请在 App 中预约更换或购买。",
        "ventilate": "您周边的家庭在 {hours} 空气最好，此时室外空气通常也最干净，建议在这"
        "些时段开窗通风{not_at}。",
        "not_at": "，避免在 {hours} 开窗",
        "all_good": "本月您家的{label}一直在指导值以内，请继续保持。",
        "no_neighbourhood": "本月您周边报告数据的家庭少于 {n} 户，"
        "无法在不暴露个别家庭的情况下进行比较。",
    },
}


def _lang(language: str) -> str:
    """The report's language from a language tag or an Accept-Language header
    ("zh-CN,zh;q=0.9,en;q=0.8" is Chinese): its first choice, English unless known."""
    first = language.split(",", maxsplit=1)[0].split(";", maxsplit=1)[0].strip()
    base = first.split("-", maxsplit=1)[0].lower()
    return base if base in ADVICE else "en"


class AirReports:
    def __init__(
        self,
        db: Database,
        store: TelemetryStore,
        profiles: ProfileSet,
        policy: ReportPolicy | None = None,
    ) -> None:
        self.db, self.store, self.profiles = db, store, profiles
        self.policy = policy or ReportPolicy()

    # -- the report -----------------------------------------------------------------------
    async def report(
        self,
        device_id: str,
        month: date | None = None,
        *,
        now: datetime | None = None,
        language: str | None = None,
    ) -> AirReport:
        """One home's report for a month that has ended in its time zone (default: the
        last one), in `language` (default: the customer's)."""
        now = now or datetime.now(UTC)
        home = await self._home(device_id)
        profile = self._profile_of(home)
        month = month or self.last_month(now, home.timezone)
        start, end = month_bounds(month, home.timezone)
        if end > now:
            raise NoAirReport(
                f"the report for {month:%Y-%m} is made once the month is over "
                f"({end.isoformat()} in UTC); the last complete month is "
                f"{self.last_month(now, home.timezone):%Y-%m}"
            )
        lang = _lang(language or home.language)
        zone = ZoneInfo(home.timezone)
        neighbours = await self._neighbours(home, start, end)
        metrics = [
            await self._metric(home, profile, air, start, end, now, zone, neighbours, lang)
            for air in profile.doc.air_quality
        ]
        advice = await self._advice(home, profile, metrics, end, zone, lang)
        return AirReport(
            device_id=home.device_id,
            device_type=home.device_type,
            customer_id=home.customer_id,
            month=f"{month:%Y-%m}",
            timezone=home.timezone,
            start=start,
            end=end,
            metrics=metrics,
            advice=advice,
        )

    @staticmethod
    def last_month(now: datetime, timezone: str) -> date:
        """The last month that is over in the time zone."""
        local = now.astimezone(ZoneInfo(timezone)).date()
        return add_months(date(local.year, local.month, 1), -1)

    async def _metric(
        self,
        home: _Home,
        profile: Profile,
        air: AirMetric,
        start: datetime,
        end: datetime,
        now: datetime,
        zone: ZoneInfo,
        neighbours: dict[str, list[str]],
        lang: str,
    ) -> MetricReport:
        hourly = await self._hourly(home.device_type, home.device_id, air.metric, start, end)
        by_hour = _by_hour(hourly, zone)
        days = _days(hourly, zone, air)
        values = list(hourly.values())
        share = _share_out(values, air)
        neighbourhood, note = await self._neighbourhood(home, air, start, end, zone, neighbours)
        if neighbourhood is None:
            note = ADVICE[lang]["no_neighbourhood"].format(n=self.policy.min_homes)
        return MetricReport(
            metric=air.metric,
            label=air.label.text(lang),
            unit=profile.device_type.by_name[air.metric].unit,
            above=air.above,
            below=air.below,
            guideline=air.guideline,
            hours=len(values),
            mean=statistics.fmean(values) if values else None,
            hours_out=sum(out_of_bounds(v, air) for v in values),
            days_out=sum(d.out for d in days),
            share_out=share,
            by_hour=by_hour,
            days=days,
            neighbourhood=neighbourhood,
            neighbourhood_note=note,
            filter_effect=await self._filter_effect(home, air, start, end, now),
        )

    async def _hourly(
        self, device_type: str, device_id: str, metric: str, start: datetime, end: datetime
    ) -> dict[int, float]:
        frame = await self.store.query(
            RangeQuery(
                device_type=device_type,
                device_id=device_id,
                metrics=(metric,),
                start=int(start.timestamp() * 1000),
                end=int(end.timestamp() * 1000),
                every_ms=HOUR_MS,
                aggregation=Aggregation.MEAN,
            )
        )
        return {
            t: float(v)
            for t, v in zip(frame.ts, frame.columns.get(metric, []), strict=False)
            if isinstance(v, int | float)
        }

    # -- the neighbourhood ----------------------------------------------------------------
    async def _neighbours(
        self, home: _Home, start: datetime, end: datetime
    ) -> dict[str, list[str]]:
        """The other households' devices of the same kind in the home's territory."""

        def read() -> dict[str, list[str]]:
            with self.db.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(device_sites.c.device_id, device_sites.c.customer_id)
                    .join(devices, devices.c.id == device_sites.c.device_id)
                    .where(
                        device_sites.c.territory_id == home.territory_id,
                        devices.c.device_type == home.device_type,
                        device_sites.c.customer_id != home.customer_id,
                    )
                ).all()
            out: dict[str, list[str]] = defaultdict(list)
            for r in rows:
                out[r.customer_id].append(r.device_id)
            return dict(out)

        return await asyncio.to_thread(read)

    async def _neighbourhood(
        self,
        home: _Home,
        air: AirMetric,
        start: datetime,
        end: datetime,
        zone: ZoneInfo,
        neighbours: dict[str, list[str]],
    ) -> tuple[Neighbourhood | None, str]:
        p = self.policy
        too_few = "too few homes"
        if len(neighbours) + 1 < p.min_homes:
            return None, too_few
        ids = [d for ds in neighbours.values() for d in ds] + [home.device_id]
        figures = await self.home_figures(home.device_type, air, start, end, ids)
        mine = figures.get(home.device_id)
        others: list[tuple[float, float]] = []
        for ds in neighbours.values():
            got = [figures[d] for d in ds if d in figures]
            if got:  # a household with two units counts once
                others.append(
                    (statistics.fmean(g[0] for g in got), statistics.fmean(g[1] for g in got))
                )
        if mine is None or len(others) + 1 < p.min_homes:
            return None, too_few
        everyone = [*others, mine]
        better = sum(o[0] > mine[0] for o in others) + 0.5 * sum(o[0] == mine[0] for o in others)
        sampled = sorted(neighbours)[: p.neighbours_sampled]
        hours: list[list[float]] = [[] for _ in range(24)]
        for customer in sampled:
            hourly = await self._hourly(
                home.device_type, neighbours[customer][0], air.metric, start, end
            )
            for h, v in enumerate(_by_hour(hourly, zone)):
                if v is not None:
                    hours[h].append(v)
        return (
            Neighbourhood(
                homes=len(everyone),
                yours=mine,
                share_out=_quartiles([e[0] for e in everyone]),
                mean=_quartiles([e[1] for e in everyone]),
                better_than=better / len(others),
                by_hour=[statistics.median(h) if len(h) >= p.min_homes else None for h in hours],
            ),
            "",
        )

    async def home_figures(
        self,
        device_type: str,
        air: AirMetric,
        start: datetime,
        end: datetime,
        device_ids: Sequence[str] | None = None,
    ) -> dict[str, tuple[float, float]]:
        """Per device with enough readings: (share of readings out of bounds, mean) over
        the range, from the store's fleet-wide aggregates (a few queries for every home)."""
        s, e = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        every = await self.store.aggregate(device_type, s, e, [air.metric], device_ids)
        out_counts: dict[str, int] = defaultdict(int)
        for op, bound in ((">", air.above), ("<", air.below)):
            if bound is None:
                continue
            found = await self.store.aggregate(
                device_type, s, e, [air.metric], device_ids, where=[(air.metric, op, bound)]
            )
            for device, aggs in found.items():
                out_counts[device] += aggs[air.metric].count if air.metric in aggs else 0
        profile = self.profiles.profile(device_type)
        cadence = profile.device_type.by_name[air.metric].cadence_s or 900.0
        least = self.policy.min_hours * 3600 / cadence
        figures: dict[str, tuple[float, float]] = {}
        for device, aggs in every.items():
            agg: Agg | None = aggs.get(air.metric)
            if agg is None or agg.mean is None or agg.count < least:
                continue
            figures[device] = (out_counts.get(device, 0) / agg.count, agg.mean)
        return figures

    # -- the filter -----------------------------------------------------------------------
    async def _filter_effect(
        self, home: _Home, air: AirMetric, start: datetime, end: datetime, now: datetime
    ) -> FilterEffect | None:
        if air.filtered_by is None:
            return None

        def read() -> datetime | None:
            with self.db.engine.connect() as conn:
                return conn.execute(
                    sa.select(sa.func.max(filter_replacements.c.at)).where(
                        filter_replacements.c.device_id == home.device_id,
                        filter_replacements.c.stage == air.filtered_by,
                        filter_replacements.c.at >= start,
                        filter_replacements.c.at < end,
                    )
                ).scalar_one_or_none()

        at = await asyncio.to_thread(read)
        if at is None:
            return None
        window = self.policy.filter_window
        before = await self._hourly(home.device_type, home.device_id, air.metric, at - window, at)
        after = await self._hourly(
            home.device_type, home.device_id, air.metric, at, min(at + window, now)
        )
        if len(before) < 24 or len(after) < 24:  # too little either side to tell
            return None
        b, a = list(before.values()), list(after.values())
        return FilterEffect(
            replaced_at=at,
            before_mean=statistics.fmean(b),
            after_mean=statistics.fmean(a),
            before_share_out=_share_out(b, air) or 0.0,
            after_share_out=_share_out(a, air) or 0.0,
        )

    # -- advice ---------------------------------------------------------------------------
    async def _advice(
        self,
        home: _Home,
        profile: Profile,
        metrics: list[MetricReport],
        end: datetime,
        zone: ZoneInfo,
        lang: str,
    ) -> list[Advice]:
        words = ADVICE[lang]
        out: list[Advice] = []
        airs = {a.metric: a for a in profile.doc.air_quality}
        for m in metrics:
            air = airs[m.metric]
            bad = [h for h, v in enumerate(m.by_hour) if v is not None and out_of_bounds(v, air)]
            if bad and air.advice is not None:
                out.append(
                    Advice("out_of_bounds", air.advice.text(lang).format(hours=hour_ranges(bad)))
                )
            elif m.hours and not m.hours_out:
                out.append(Advice("all_good", words["all_good"].format(label=m.label)))
            hood = m.neighbourhood
            if air.below is None and hood is not None:
                known = [(v, h) for h, v in enumerate(hood.by_hour) if v is not None]
                if len(known) >= 12:
                    ordered = sorted(known)
                    clean = statistics.fmean(v for v, _ in ordered[:3])
                    dirty = statistics.fmean(v for v, _ in ordered[-3:])
                    typical = statistics.median(v for v, _ in known)
                    # only when the clean hours stand out from the day, and meet the
                    # guideline: otherwise no hour is worth opening the windows for
                    if clean <= VENTILATE_BELOW * typical and (
                        air.above is None or clean <= air.above
                    ):
                        not_at = (
                            words["not_at"].format(hours=hour_ranges([h for _, h in ordered[-3:]]))
                            if dirty >= AVOID_ABOVE * clean
                            else ""
                        )
                        cleanest = hour_ranges([h for _, h in ordered[:3]])
                        text = words["ventilate"].format(hours=cleanest, not_at=not_at)
                        out.append(Advice("ventilate", text))
        out += await self._filter_due(home, profile, end, zone, lang)
        return out

    async def _filter_due(
        self, home: _Home, profile: Profile, end: datetime, zone: ZoneInfo, lang: str
    ) -> list[Advice]:
        stages = {a.filtered_by for a in profile.doc.air_quality if a.filtered_by}
        if not stages:
            return []

        def read() -> list[tuple[str, datetime]]:
            f = filter_predictions
            with self.db.engine.connect() as conn:
                return [
                    (r.stage, r.exhausted_at)
                    for r in conn.execute(
                        sa.select(f.c.stage, f.c.exhausted_at).where(
                            f.c.device_id == home.device_id, f.c.stage.in_(stages)
                        )
                    )
                ]

        out = []
        for stage, at in await asyncio.to_thread(read):
            if at <= end + self.policy.filter_due_within:
                spec = profile.consumable(stage)
                name = spec.name if spec is not None else stage
                when = at.astimezone(zone).date().isoformat()
                text = ADVICE[lang]["filter_due"].format(name=name, date=when)
                out.append(Advice("filter_due", text))
        return out

    # -- who -------------------------------------------------------------------------------
    async def _home(self, device_id: str) -> _Home:
        homes = await asyncio.to_thread(self._homes, [device_id])
        if not homes:
            raise NotFound("device", device_id)
        return homes[0]

    def _homes(
        self, device_ids: Sequence[str] | None = None, types: Sequence[str] = ()
    ) -> list[_Home]:
        query = (
            sa.select(
                devices.c.id, devices.c.device_type, device_sites.c.customer_id,
                device_sites.c.territory_id, customers.c.timezone, customers.c.language,
                customers.c.air_reports,
            )
            .join(device_sites, device_sites.c.device_id == devices.c.id)
            .join(customers, customers.c.id == device_sites.c.customer_id)
        )  # fmt: skip
        if device_ids is not None:
            query = query.where(devices.c.id.in_(device_ids))
        if types:
            query = query.where(devices.c.device_type.in_(types))
        with self.db.engine.connect() as conn:
            rows = conn.execute(query.order_by(devices.c.id)).all()
        return [_Home(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows]

    def _profile_of(self, home: _Home) -> Profile:
        profile = self.profiles.get(home.device_type)
        if profile is None or not profile.doc.air_quality:
            raise NoAirReport(
                f"a {home.device_type} reports no air quality: its product profile declares "
                "no `air_quality` metrics"
            )
        return profile

    # -- telling the households -------------------------------------------------------------
    async def issue(self, now: datetime | None = None) -> int:
        """Queue "your air report is ready" for last month, for every home whose
        customer wants it and whose appliance reported enough that month; once per
        device and month however often it runs. Returns how many were queued."""
        now = now or datetime.now(UTC)
        types = [n for n, p in self.profiles.items() if p.doc.air_quality]
        homes = [h for h in await asyncio.to_thread(self._homes, None, types) if h.air_reports]
        queued = 0
        by_month: dict[tuple[str, date, str], list[_Home]] = defaultdict(list)
        for h in homes:
            by_month[(h.device_type, self.last_month(now, h.timezone), h.timezone)].append(h)
        for (device_type, month, timezone), group in sorted(by_month.items()):
            start, end = month_bounds(month, timezone)
            air = self.profiles.profile(device_type).doc.air_quality[0]
            figures = await self.home_figures(
                device_type, air, start, end, [h.device_id for h in group]
            )
            ready = [h for h in group if h.device_id in figures]
            queued += await asyncio.to_thread(self._queue, ready, month, figures, air, now)
        return queued

    def _queue(
        self,
        homes: Sequence[_Home],
        month: date,
        figures: Mapping[str, tuple[float, float]],
        air: AirMetric,
        now: datetime,
    ) -> int:
        queued = 0
        with self.db.engine.begin() as conn:
            for h in homes:
                share, mean = figures[h.device_id]
                got = enqueue(
                    conn,
                    customer_id=h.customer_id,
                    kind=Kind.AIR_REPORT,
                    data={
                        "device_type": h.device_type,
                        "device_id": h.device_id,
                        "month": f"{month:%Y-%m}",
                        "metric": air.metric,
                        "label": air.label.as_dict(),
                        "share_out": round(share, 4),
                        "mean": round(mean, 1),
                        "link": f"/my/air/{h.device_id}?month={month:%Y-%m}",
                    },
                    now=now,
                    key=f"{h.device_id}:{month:%Y-%m}",
                )
                queued += got is not None
        return queued


def _by_hour(hourly: Mapping[int, float], zone: ZoneInfo) -> list[float | None]:
    buckets: list[list[float]] = [[] for _ in range(24)]
    for t, v in hourly.items():
        buckets[datetime.fromtimestamp(t / 1000, zone).hour].append(v)
    return [statistics.fmean(b) if b else None for b in buckets]


def _days(hourly: Mapping[int, float], zone: ZoneInfo, air: AirMetric) -> list[Day]:
    buckets: dict[date, list[float]] = defaultdict(list)
    for t, v in sorted(hourly.items()):
        buckets[datetime.fromtimestamp(t / 1000, zone).date()].append(v)
    return [
        Day(
            day=d,
            mean=(m := statistics.fmean(vs)),
            max=max(vs),
            hours_out=sum(out_of_bounds(v, air) for v in vs),
            out=out_of_bounds(m, air),
        )
        for d, vs in sorted(buckets.items())
    ]


def _share_out(values: Sequence[float], air: AirMetric) -> float | None:
    return sum(out_of_bounds(v, air) for v in values) / len(values) if values else None
