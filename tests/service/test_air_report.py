"""The household's monthly air report, on readings written into a real (embedded) store:
the hours and days above the guideline in the customer's own time, the neighbourhood
formed only from enough households, the filter's effect, the advice, and the monthly
message within the customer's preferences."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from db.database import Database
from db.errors import NotFound
from db.tables import filter_replacements, notifications
from fleet.predictions import PredictedExhaustion, Predictions
from service.air_report import AirReport, AirReports, NoAirReport, hour_ranges
from service.messages import Kind, render
from service.notifications import OutboundMessage, Outbox
from service.registry import ServiceRegistry, parse_doc
from service.self_service import SelfService
from telemetry.backends import StoreSettings, create_store
from telemetry.profile import shipped
from telemetry.records import Reading
from telemetry.store import TelemetryStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOVEMBER = date(2026, 11, 1)
AFTER = datetime(2026, 12, 2, 3, tzinfo=UTC)  # November is over everywhere


def hours_of(month: date, zone: ZoneInfo) -> Iterator[datetime]:
    """Every local hour of the month, as local times."""
    t = datetime(month.year, month.month, 1, tzinfo=zone)
    while t.month == month.month:
        yield t
        t = (t.astimezone(UTC) + timedelta(hours=1)).astimezone(zone)


def readings(
    device: str, value: Callable[[datetime], float], zone: ZoneInfo, month: date = NOVEMBER
) -> list[Reading]:
    """One PM2.5 reading at each half past the hour of the month, local time."""
    return [
        Reading("purifier", device, 1, i, int((t + timedelta(minutes=30)).timestamp() * 1000),
                {"pm25": value(t)})
        for i, t in enumerate(hours_of(month, zone))
    ]  # fmt: skip


def home_value(t: datetime) -> float:
    """ap-1: dirty in the evening (18-22 h local), and one dirty day, 10 November."""
    if t.day == 10:
        return 40.0
    return 30.0 if 18 <= t.hour < 22 else 8.0


def neighbour_value(i: int) -> Callable[[datetime], float]:
    """Neighbour i: a level of its own (2, 5, ... 32), 4 lower at 3-6 h local."""
    return lambda t: 2.0 + 3 * i - (4.0 if 3 <= t.hour < 6 else 0.0)


def neighbours(n: int, *, devices_each: int = 1, territory: str = "t-1") -> dict[str, object]:
    return {
        "customers": [
            {"id": f"c-n{i}", "name": f"N{i}", "timezone": "Asia/Shanghai"} for i in range(n)
        ],
        "devices": [
            {"id": f"n{i}-{j}", "device_type": "purifier", "serial": f"SN-N{i}-{j}",
             "customer_id": f"c-n{i}", "territory_id": territory, "address": f"{i} Lane"}
            for i in range(n) for j in range(devices_each)
        ],
    }  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TelemetryStore]:
    s = create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts"))
    asyncio.run(s.open())
    yield s
    asyncio.run(s.close())


def write(store: TelemetryStore, items: list[Reading]) -> None:
    asyncio.run(store.write(items))


def report(db: Database, store: TelemetryStore, device: str = "ap-1", **kw: object) -> AirReport:
    return asyncio.run(AirReports(db, store, shipped()).report(device, NOVEMBER, now=AFTER, **kw))  # type: ignore[arg-type]


@pytest.fixture
def street(world: Database, store: TelemetryStore) -> Database:
    """ap-1 (Li, Shanghai) and eleven neighbouring households in its territory, each
    with a purifier that reported all November."""
    ServiceRegistry(world).load(parse_doc(neighbours(11)))  # type: ignore[arg-type]
    write(store, readings("ap-1", home_value, SHANGHAI))
    for i in range(11):
        write(store, readings(f"n{i}-0", neighbour_value(i), SHANGHAI))
    return world


def test_hours_and_days_above_the_guideline_are_counted_in_the_customers_own_time(
    street: Database, store: TelemetryStore
) -> None:
    r = report(street, store)
    (pm,) = r.metrics
    assert (r.month, r.timezone) == ("2026-11", "Asia/Shanghai")
    assert r.start == datetime(2026, 10, 31, 16, tzinfo=UTC)  # local midnight, 1 November
    assert pm.metric == "pm25" and pm.above == 15 and "WHO" in pm.guideline
    assert pm.hours == 30 * 24
    # 29 evenings of 4 hours at 30, and the whole of 10 November at 40
    assert pm.hours_out == 29 * 4 + 24
    assert pm.days_out == 1  # only 10 November's mean is above 15: an evening is not a day
    assert [d.day for d in pm.days if d.out] == [date(2026, 11, 10)]
    assert pm.by_hour[18] == pytest.approx((29 * 30 + 40) / 30)
    assert pm.by_hour[9] == pytest.approx((29 * 8 + 40) / 30)
    assert pm.mean == pytest.approx((29 * (4 * 30 + 20 * 8) + 24 * 40) / 720)


def test_the_neighbourhood_compares_the_home_with_the_households_around_it(
    street: Database, store: TelemetryStore
) -> None:
    hood = report(street, store).metrics[0].neighbourhood
    assert hood is not None
    assert hood.homes == 12
    # out of bounds 140 of 720 hours; neighbours 5..10 are out more of the time, 0..4 less
    assert hood.yours[0] == pytest.approx(140 / 720)
    assert hood.better_than == pytest.approx(6 / 11)
    assert hood.by_hour[4] == pytest.approx(2 + 3 * 5 - 4)  # the median neighbour
    assert hood.by_hour[12] == pytest.approx(2 + 3 * 5)


def test_no_neighbourhood_is_formed_from_too_few_households(
    world: Database, store: TelemetryStore
) -> None:
    # eight neighbouring households with two purifiers each: 16 devices but 9 homes
    ServiceRegistry(world).load(parse_doc(neighbours(8, devices_each=2)))  # type: ignore[arg-type]
    write(store, readings("ap-1", home_value, SHANGHAI))
    for i in range(8):
        for j in range(2):
            write(store, readings(f"n{i}-{j}", neighbour_value(i), SHANGHAI))
    (pm,) = report(world, store, language="en").metrics
    assert pm.neighbourhood is None
    assert "Fewer than 10 homes near you" in pm.neighbourhood_note
    assert not [a for a in report(world, store).advice if a.code == "ventilate"]
    # one more household and there are ten
    ServiceRegistry(world).load(parse_doc(neighbours(9, devices_each=2)))  # type: ignore[arg-type]
    write(store, readings("n8-0", neighbour_value(8), SHANGHAI))
    hood = report(world, store).metrics[0].neighbourhood
    assert hood is not None and hood.homes == 10


def test_a_household_that_reported_too_little_is_not_counted(
    world: Database, store: TelemetryStore
) -> None:
    ServiceRegistry(world).load(parse_doc(neighbours(9)))  # type: ignore[arg-type]
    write(store, readings("ap-1", home_value, SHANGHAI))
    for i in range(8):
        write(store, readings(f"n{i}-0", neighbour_value(i), SHANGHAI))
    write(store, readings("n8-0", neighbour_value(8), SHANGHAI)[:48])  # two days only
    assert report(world, store).metrics[0].neighbourhood is None


def test_advice_names_the_hours_to_run_the_purifier_to_air_the_rooms_and_the_filter_due(
    street: Database, store: TelemetryStore
) -> None:
    Predictions(street).record(
        [PredictedExhaustion("ap-1", "main", datetime(2026, 12, 15, 4, tzinfo=UTC))], now=AFTER
    )
    advice = {a.code: a.text for a in report(street, store, language="en").advice}
    assert "18:00-22:00" in advice["out_of_bounds"]
    assert "03:00-06:00" in advice["ventilate"]
    assert "rather than" not in advice["ventilate"]  # no hour much worse than the rest
    assert "2026-12-15" in advice["filter_due"]
    zh = {a.code: a.text for a in report(street, store).advice}  # Li reads Chinese
    assert "18:00-22:00" in zh["out_of_bounds"] and "净化器" in zh["out_of_bounds"]


def test_the_filters_effect_is_the_week_before_a_replacement_against_the_week_after(
    world: Database, store: TelemetryStore
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    changed = datetime(2026, 11, 15, 12, tzinfo=berlin)
    write(store, readings("ap-3", lambda t: 20.0 if t < changed else 6.0, berlin))
    with world.engine.begin() as conn:
        conn.execute(
            filter_replacements.insert().values(device_id="ap-3", stage="main", at=changed)
        )
    (pm,) = report(world, store, "ap-3").metrics
    effect = pm.filter_effect
    assert effect is not None and effect.replaced_at == changed
    assert (effect.before_mean, effect.after_mean) == (20.0, 6.0)
    assert (effect.before_share_out, effect.after_share_out) == (1.0, 0.0)
    assert effect.change == pytest.approx(-0.7)
    assert report(world, store, "ap-3").timezone == "Europe/Berlin"


def test_a_report_is_refused_for_a_month_not_over_a_device_without_air_metrics_or_unknown(
    world: Database, store: TelemetryStore
) -> None:
    reports = AirReports(world, store, shipped())
    with pytest.raises(NoAirReport, match="once the month is over"):
        asyncio.run(reports.report("ap-1", date(2026, 12, 1), now=AFTER))
    with pytest.raises(NoAirReport, match="declares no `air_quality`"):
        asyncio.run(reports.report("wp-1", NOVEMBER, now=AFTER))
    with pytest.raises(NotFound):
        asyncio.run(reports.report("nope", NOVEMBER, now=AFTER))


def test_the_monthly_message_goes_once_to_each_home_that_wants_it(
    street: Database, store: TelemetryStore
) -> None:
    reports = AirReports(street, store, shipped())
    SelfService(street).update("c-n0", air_reports=False)
    # ap-1 and ten of the eleven neighbours (ap-2 reported nothing, c-n0 said no)
    assert asyncio.run(reports.issue(AFTER)) == 11
    assert asyncio.run(reports.issue(AFTER + timedelta(hours=5))) == 0  # once per month
    with street.engine.connect() as conn:
        row = conn.execute(
            notifications.select().where(
                notifications.c.customer_id == "c-app", notifications.c.kind == "air_report"
            )
        ).one()
    text = render(Kind.AIR_REPORT, row.data, language="en", timezone="Asia/Shanghai")
    assert "2026-11" in text and "19 %" in text and "/my/air/ap-1?month=2026-11" in text


def test_a_customer_who_turns_reports_off_is_not_sent_one_already_queued(
    street: Database, store: TelemetryStore
) -> None:
    asyncio.run(AirReports(street, store, shipped()).issue(AFTER))
    SelfService(street).update("c-n1", air_reports=False)
    sent: list[OutboundMessage] = []

    class App:
        async def send(self, message: OutboundMessage) -> None:
            sent.append(message)

    # noon in Shanghai: outside everyone's quiet hours
    noon = datetime(2026, 12, 2, 4, tzinfo=UTC)
    report = asyncio.run(Outbox(street, {"*": App()}).deliver(noon))
    assert report.suppressed == 1 and report.sent == 11  # twelve queued
    assert "c-n1" not in {m.customer_id for m in sent}
    assert all(m.kind is Kind.AIR_REPORT for m in sent)


def test_hour_ranges_read_as_a_clock() -> None:
    assert hour_ranges([7, 8, 18, 19, 20]) == "07:00-09:00, 18:00-21:00"
    assert hour_ranges([23, 0, 1]) == "23:00-02:00"
    assert hour_ranges([5]) == "05:00-06:00"


def test_no_hour_is_named_to_air_the_rooms_when_the_neighbourhoods_day_is_flat(
    world: Database, store: TelemetryStore
) -> None:
    ServiceRegistry(world).load(parse_doc(neighbours(11)))  # type: ignore[arg-type]
    write(store, readings("ap-1", home_value, SHANGHAI))
    for i in range(11):
        write(store, readings(f"n{i}-0", lambda t, i=i: 2.0 + 3 * i, SHANGHAI))
    codes = [a.code for a in report(world, store).advice]
    assert "out_of_bounds" in codes and "ventilate" not in codes


def test_the_language_is_the_first_choice_of_an_accept_language_header() -> None:
    from service.air_report import _lang

    assert _lang("zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert _lang("en-GB;q=0.9, zh") == "en"
    assert _lang("fr-FR") == "en"  # not shipped: English
