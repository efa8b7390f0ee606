"""Quality analytics for R&D: failure rates per 1,000 units in service, time to first
failure (Kaplan–Meier, units still healthy censored) and one group's rate against
another's, checked against small cases worked by hand; and read from the registry and
the technicians' verdicts on both databases."""

from __future__ import annotations

import copy
import math
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from db.database import Database
from db.tables import service_labels
from service.quality import (
    Failure,
    QualityBy,
    Unit,
    WarningPolicy,
    compare,
    early_warnings,
    failure_modes,
    failure_rates,
    failures,
    first_failure_days,
    kaplan_meier,
    survival,
    units,
)
from service.registry import DeviceIn, ServiceRegistry, parse_doc
from tests.service.helpers import repaired
from tests.world import WORLD


def unit(device_id: str, model: str, on: date, batch: str | None = None) -> Unit:
    return Unit(device_id, "purifier", model, "1.0", batch, "r-east", on)


def failed(device_id: str, on: date, fault: str = "motor_wear") -> Failure:
    return Failure(device_id, datetime(on.year, on.month, on.day, 12, tzinfo=UTC), fault)


def test_failure_rates_are_per_1000_units_in_service_each_month() -> None:
    fleet = [
        unit("a1", "X", date(2027, 1, 10)),
        unit("a2", "X", date(2027, 2, 5)),  # in service from February
        unit("b1", "Y", date(2027, 1, 1)),
    ]
    found = [
        failed("a1", date(2027, 1, 20)),
        failed("a1", date(2027, 2, 3)),
        failed("b1", date(2027, 2, 10)),
        failed("elsewhere", date(2027, 2, 10)),  # not in the fleet: not counted
    ]
    rows = failure_rates(fleet, found, QualityBy.MODEL, date(2027, 1, 1), date(2027, 2, 28))
    got = [(r.group, r.month, r.units, r.failures, r.per_1000) for r in rows]
    assert got == [
        ("X", "2027-01", 1, 1, 1000.0),
        ("X", "2027-02", 2, 1, 500.0),
        ("Y", "2027-01", 1, 0, 0.0),
        ("Y", "2027-02", 1, 1, 1000.0),
    ]


def test_a_month_before_any_unit_has_no_rate_rather_than_zero() -> None:
    fleet = [unit("a1", "X", date(2027, 3, 1))]
    rows = failure_rates(fleet, [], QualityBy.MODEL, date(2027, 2, 1), date(2027, 3, 1))
    assert [(r.month, r.units, r.per_1000) for r in rows] == [
        ("2027-02", 0, None),
        ("2027-03", 1, 0.0),
    ]


def test_a_unit_without_the_attribute_is_grouped_as_unknown() -> None:
    fleet = [unit("a1", "X", date(2027, 1, 1), batch="B7"), unit("a2", "X", date(2027, 1, 1))]
    rows = failure_rates(fleet, [], QualityBy.BATCH, date(2027, 1, 1), date(2027, 1, 1))
    assert [r.group for r in rows] == ["(unknown)", "B7"]


def test_top_failure_modes_and_the_parts_fitted_on_them_per_model() -> None:
    fleet = [unit("a1", "X", date(2027, 1, 1)), unit("b1", "Y", date(2027, 1, 1))]
    found = [
        Failure("a1", datetime(2027, 2, 1, tzinfo=UTC), "motor_wear", order_id=1),
        Failure("a1", datetime(2027, 3, 1, tzinfo=UTC), "motor_wear", order_id=2),
        Failure("a1", datetime(2027, 4, 1, tzinfo=UTC), "sensor_fault", order_id=3),
        Failure("b1", datetime(2027, 2, 1, tzinfo=UTC), "sensor_fault", order_id=4),
    ]
    parts = {1: {"MOTOR-1": 1}, 2: {"MOTOR-1": 1, "BELT-2": 2}, 4: {"PM-SENSOR": 1}}
    rows = failure_modes(fleet, found, QualityBy.MODEL, parts, top=5)
    got = [(r.group, r.kind, r.name, r.count, r.share) for r in rows]
    assert got == [
        ("X", "fault", "motor_wear", 2, round(2 / 3, 4)),
        ("X", "fault", "sensor_fault", 1, round(1 / 3, 4)),
        ("X", "part", "BELT-2", 2, 0.5),  # two units of it against two motors: a tie, by name
        ("X", "part", "MOTOR-1", 2, 0.5),
        ("Y", "fault", "sensor_fault", 1, 1.0),
        ("Y", "part", "PM-SENSOR", 1, 1.0),
    ]
    assert [r.name for r in failure_modes(fleet, found, QualityBy.MODEL, parts, top=1)] == [
        "motor_wear",
        "BELT-2",
        "sensor_fault",
        "PM-SENSOR",
    ]


def test_kaplan_meier_against_a_case_worked_by_hand() -> None:
    # six units: failed on days 2, 5, 5 and 10; healthy when last seen on days 3 and 8
    times = [(2, True), (3, False), (5, True), (5, True), (8, False), (10, True)]
    curve = kaplan_meier(times, "X")
    got = [(p.day, p.at_risk, p.failed, p.survival) for p in curve.points]
    # S(2) = 5/6; S(5) = 5/6 × (1 − 2/4) = 5/12 (the unit censored on day 3 left the
    # risk set); S(10) = 5/12 × (1 − 1/1) = 0
    assert got == [(2, 6, 1, round(5 / 6, 6)), (5, 4, 2, round(5 / 12, 6)), (10, 1, 1, 0.0)]
    assert curve.units == 6 and curve.failed == 4 and curve.median_days == 5
    assert curve.followed_days == 10
    # the band at day 5: Greenwood's sum 1/(6·5) + 2/(4·2), on the log-log scale
    s, g = 5 / 12, 1 / 30 + 2 / 8
    half = 1.96 * math.sqrt(g) / abs(math.log(s))
    p5 = curve.points[1]
    assert p5.low == pytest.approx(s ** math.exp(half), abs=1e-6)
    assert p5.high == pytest.approx(s ** math.exp(-half), abs=1e-6)
    assert 0 < p5.low < p5.survival < p5.high < 1


def test_a_fleet_with_few_failures_has_no_median_yet() -> None:
    curve = kaplan_meier([(30, True), (400, False), (400, False)])
    assert curve.median_days is None and curve.points[0].survival == round(2 / 3, 6)


def test_time_to_first_failure_counts_from_installation_and_censors_the_healthy() -> None:
    fleet = [
        unit("a1", "X", date(2027, 1, 10)),
        unit("a2", "X", date(2027, 1, 1)),
        unit("late", "X", date(2027, 6, 1)),  # not yet in service on the day of the report
        unit("odd", "X", date(2027, 2, 1)),  # a failure dated before its installation
    ]
    found = [
        failed("a1", date(2027, 1, 20)),
        failed("a1", date(2027, 2, 20)),  # a second failure: only the first counts
        failed("odd", date(2027, 1, 5)),
    ]
    days = first_failure_days(fleet, found, asof=date(2027, 3, 1))
    assert days == {"a1": (10, True), "a2": (59, False)}
    curves = survival(fleet, found, QualityBy.MODEL, asof=date(2027, 3, 1))
    assert [(c.group, c.units, c.failed) for c in curves] == [("X", 2, 1)]


def ten(prefix: str, firmware: str) -> list[Unit]:
    """Ten units in service since before the period, on one firmware."""
    return [
        Unit(f"{prefix}{i}", "purifier", "X", firmware, None, None, date(2026, 6, 1))
        for i in range(10)
    ]


def test_a_rate_four_times_its_peers_is_called_higher_with_its_interval() -> None:
    start, end = date(2027, 1, 1), date(2027, 7, 1)
    fleet = ten("a", firmware="2.0") + ten("b", firmware="1.0")
    found = [failed(f"a{i % 10}", date(2027, 3, 1 + i)) for i in range(12)]
    found += [failed(f"b{i}", date(2027, 3, 1)) for i in range(3)]
    found += [failed("a0", date(2027, 8, 1))]  # after the period
    c = compare(fleet, found, QualityBy.FIRMWARE, "2.0", "1.0", start, end)
    assert (c.a_failures, c.b_failures) == (12, 3)
    assert c.a_unit_months == c.b_unit_months == round(10 * 181 / 30.4375, 2)
    assert c.rate_ratio == 4.0
    se = math.sqrt(1 / 12 + 1 / 3)
    assert c.low == pytest.approx(4 * math.exp(-1.96 * se), abs=1e-4)
    assert c.high == pytest.approx(4 * math.exp(1.96 * se), abs=1e-4)
    # equal exposure: 12 of 15 is binomial(15, 1/2); both tails, by hand
    tail = sum(math.comb(15, k) for k in (12, 13, 14, 15)) / 2**15
    assert c.p_value == pytest.approx(2 * tail, abs=1e-6)
    assert c.verdict.startswith("2.0's rate is higher")


def test_close_rates_are_not_called_different() -> None:
    start, end = date(2027, 1, 1), date(2027, 7, 1)
    fleet = ten("a", firmware="2.0") + ten("b", firmware="1.0")
    found = [failed(f"a{i}", date(2027, 3, 1)) for i in range(5)]
    found += [failed(f"b{i}", date(2027, 3, 1)) for i in range(4)]
    c = compare(fleet, found, QualityBy.FIRMWARE, "2.0", "1.0", start, end)
    assert c.p_value is not None and c.p_value > 0.05
    assert c.verdict.startswith("no evidence that the rates differ")
    none = compare(fleet, found, QualityBy.FIRMWARE, "2.0", "9.9", start, end)
    assert none.p_value is None and "no units in service for 9.9" in none.verdict


def test_the_registry_carries_batch_and_manufacture_date_and_refuses_the_impossible() -> None:
    row = {
        "id": "ap-9",
        "device_type": "purifier",
        "customer_id": "c-app",
        "territory_id": "t-1",
        "address": "9 Tianlin Rd",
        "batch": "L2027-03",
        "manufactured_on": "2027-03-02",
        "installed_on": "2027-03-01",
    }
    with pytest.raises(ValidationError, match="made before it is installed"):
        DeviceIn.model_validate(row)
    ok = DeviceIn.model_validate({**row, "installed_on": "2027-04-01"})
    assert ok.batch == "L2027-03" and ok.manufactured_on == date(2027, 3, 2)


def test_units_and_failures_come_from_the_registry_and_the_technicians_verdicts(
    db: Database,
) -> None:
    doc = copy.deepcopy(WORLD)
    doc["devices"][0].update(batch="L7", manufactured_on="2026-11-02", installed_on="2027-01-05")
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(doc))  # type: ignore[arg-type]
    fleet = {u.device_id: u for u in units(db)}
    ap1 = fleet["ap-1"]
    assert (ap1.batch, ap1.in_service_on) == ("L7", date(2027, 1, 5))
    assert ap1.region is None  # the world's outlets name no region
    assert ap1.group(QualityBy.REGION) == "(unknown)"
    at = datetime(2027, 2, 1, tzinfo=UTC)
    repaired(db, "ap-1", at)  # a failure, as suspected
    repaired(db, "ap-1", at, found="filter_replacement")  # routine: not a failure
    repaired(db, "ap-1", at, outcome="no_fault_found")  # nothing wrong: not a failure
    order_id = repaired(db, "ap-1", at, found="inspection")
    with db.engine.begin() as conn:  # found on a visit: a failure
        conn.execute(
            service_labels.update()
            .where(service_labels.c.order_id == order_id)
            .values(confirmed_fault="pm_sensor_stuck")
        )
    assert sorted(f.fault for f in failures(db)) == ["motor_wear", "pm_sensor_stuck"]


def test_a_batch_failing_well_above_its_peers_is_flagged_once_in_the_month_it_shows() -> None:
    # 100 units of each of three batches since 2026; batch B fails 12 times in March
    # 2027, A and C once each: given 14 failures, B's count is binomial(14, 1/3)
    fleet = [unit(f"{b}{i}", "X", date(2026, 1, 1), batch=b) for b in "ABC" for i in range(100)]
    found = [failed(f"B{i}", date(2027, 3, 2 + i)) for i in range(12)]
    found += [failed("A0", date(2027, 3, 5)), failed("C0", date(2027, 3, 6))]
    found += [failed(f"B{i}", date(2027, 4, 2)) for i in range(12, 16)]  # still high
    flags = early_warnings(fleet, found, QualityBy.BATCH, date(2027, 1, 1), date(2027, 5, 1))
    assert [(w.group, w.month, w.failures, w.peers_failures) for w in flags] == [
        ("B", "2027-03", 12, 2)
    ]
    tail = sum(math.comb(14, k) * 2 ** (14 - k) for k in (12, 13, 14)) / 3**14
    assert flags[0].p_value == pytest.approx(tail, rel=1e-6)
    assert flags[0].rate_ratio == 12.0  # 12 per 100 units against 2 per 200
    # 8 of 10 (p = 201 / 3^10 = 0.0034) is not yet enough at the policy's 0.001
    weaker = [f for f in found if f.at.month == 3][4:]
    assert early_warnings(fleet, weaker, QualityBy.BATCH, date(2027, 3, 1), date(2027, 3, 1)) == []


def test_no_flag_on_too_few_failures_or_a_modest_excess() -> None:
    fleet = [unit(f"{b}{i}", "X", date(2026, 1, 1), batch=b) for b in "AB" for i in range(100)]
    few = [failed(f"B{i}", date(2027, 3, 2)) for i in range(2)]  # two: below the minimum
    assert early_warnings(fleet, few, QualityBy.BATCH, date(2027, 3, 1), date(2027, 3, 1)) == []
    modest = [failed(f"B{i}", date(2027, 3, 2)) for i in range(12)]
    modest += [failed(f"A{i}", date(2027, 3, 2)) for i in range(9)]  # 12 against 9
    assert early_warnings(fleet, modest, QualityBy.BATCH, date(2027, 3, 1), date(2027, 3, 1)) == []
    strict = WarningPolicy(min_ratio=10.0)
    eight = [failed(f"B{i}", date(2027, 3, 2)) for i in range(8)] + [failed("A0", date(2027, 3, 2))]
    flags = early_warnings(
        fleet, eight, QualityBy.BATCH, date(2027, 3, 1), date(2027, 3, 1), policy=strict
    )
    assert flags == []  # 8 against 1 is a ratio of 8, under the policy's 10


def test_the_daily_check_records_a_warning_once_and_the_api_metrics_carry_it(
    db: Database,
) -> None:
    from api.metrics import api_registry
    from db.tables import device_sites, devices
    from service.quality import QualityWarnings

    db.upgrade()
    ServiceRegistry(db).load(parse_doc(copy.deepcopy(WORLD)))  # type: ignore[arg-type]
    now = datetime.now(UTC)
    with db.engine.begin() as conn:  # ap-1 on a batch of its own, the rest on another
        conn.execute(devices.update().values(batch="L-ok"))
        conn.execute(devices.update().where(devices.c.id == "ap-1").values(batch="L-bad"))
        conn.execute(device_sites.update().values(installed_on=date(2025, 1, 1)))
    for day in range(1, 8):  # seven failures of ap-1 this week, none elsewhere
        repaired(db, "ap-1", now - timedelta(days=day))
    warnings = QualityWarnings(db)
    new = warnings.check(now)
    assert [(w.by, w.group, w.peers_failures) for w in new] == [("batch", "L-bad", 0)]
    assert warnings.check(now) == []  # raised once
    assert [(w.group, w.raised_at) for w in warnings.list()] == [("L-bad", now)]
    samples = [
        s.labels
        for family in api_registry(db).collect()
        for s in family.samples
        if s.name == "fleetcare_quality_warnings"
    ]
    assert samples == [{"by": "batch", "group": "L-bad"}]
