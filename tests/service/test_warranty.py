"""Warranty and who pays: each bill line says who pays it, the customer is charged only
their share, and the maker's share is the outlet's warranty claim. In warranty, out of it,
and partly in (parts cover outlasts labour); a model's own terms over its type's; free
visits counted; a filter is a consumable that only a filter package pays for."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from db.database import Database
from db.tables import device_sites, devices
from service.completion import Completion, Fee, PartUsed
from service.orders import WorkOrders
from service.packages import Packages
from service.registry import RegistryImportError, ServiceRegistry, parse_doc
from service.warranty import add_months, claim_lines, claims
from tests.service.test_completion import NOW, make_site, on_site, report

Site = tuple[WorkOrders, Completion, Database]
TODAY = NOW.date()
VISIT = Fee("Call-out", 5000)


@pytest.fixture
def site(db: Database, tmp_path: Path) -> Site:
    orders, completion, db = make_site(db, tmp_path)
    ServiceRegistry(db).load(
        parse_doc(
            {
                "warranties": [
                    {"device_type": "water_purifier", "parts_months": 24, "labour_months": 12},
                    {"device_type": "air_conditioner", "parts_months": 12, "labour_months": 12},
                    {
                        "model": "AC-9",
                        "parts_months": 72,
                        "labour_months": 36,
                        "free_visits": 1,
                        "starts": "installation",
                    },
                ]
            }
        )
    )
    return orders, completion, db


def bought(db: Database, device: str, months_ago: int, **more: object) -> None:
    with db.engine.begin() as conn:
        conn.execute(
            device_sites.update()
            .where(device_sites.c.device_id == device)
            .values(purchased_on=add_months(TODAY, -months_ago), **more)
        )


def fix(site: Site, device: str, problem: str, **kw: object):  # type: ignore[no-untyped-def]
    orders, completion, _ = site
    serial = "SN-WP-1" if device == "wp-1" else "SN-AC-1"
    oid = on_site(orders, device, problem)
    return completion.complete(oid, report(serial=serial, fees=[VISIT], **kw), now=NOW)[1]


def payers(bill) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    return [(x.cents, x.payer) for x in bill.lines]


def test_in_warranty_the_maker_pays_and_the_outlet_claims_it(site: Site) -> None:
    bought(site[2], "wp-1", 6)
    bill = fix(site, "wp-1", "ro_membrane_failure", parts=[PartUsed("WP-RO-01")])
    assert payers(bill) == [(49900, "maker"), (5000, "maker")]
    assert (bill.total_cents, bill.customer_cents) == (54900, 0)
    assert bill.cover.startswith("under warranty: parts to ")
    [row] = claims(claim_lines(site[2], NOW - timedelta(days=1), NOW + timedelta(days=1)))
    assert (row.outlet_id, row.jobs, row.parts_cents, row.labour_cents) == ("o-1", 1, 49900, 5000)
    # a period without the job claims nothing
    assert claim_lines(site[2], NOW + timedelta(days=1), NOW + timedelta(days=30)) == []


def test_partly_in_warranty_the_parts_are_covered_and_the_labour_is_not(site: Site) -> None:
    bought(site[2], "wp-1", 18)  # parts for 24 months, labour for 12
    bill = fix(site, "wp-1", "ro_membrane_failure", parts=[PartUsed("WP-RO-01")])
    assert payers(bill) == [(49900, "maker"), (5000, "customer")]
    assert bill.customer_cents == 5000
    assert "labour ended" in bill.cover
    with site[2].engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT total_cents, customer_cents FROM work_orders")).one()
    assert tuple(stored) == (54900, 5000)


def test_out_of_warranty_the_customer_pays_all(site: Site) -> None:
    bought(site[2], "wp-1", 30)
    bill = fix(site, "wp-1", "pump_failure")
    assert payers(bill) == [(5000, "customer")] and bill.customer_cents == 5000
    ended = add_months(add_months(TODAY, -30), 24)
    assert bill.cover == f"warranty ended {ended}"


def test_a_models_own_terms_from_installation_with_one_free_visit(site: Site) -> None:
    db = site[2]
    with db.engine.begin() as conn:
        conn.execute(devices.update().where(devices.c.id == "ac-1").values(model="AC-9"))
    # bought long ago (the type's 12 months are over), installed 20 months ago: the
    # model's 36 months of labour from installation still run
    bought(db, "ac-1", 40, installed_on=add_months(TODAY, -20))
    first = fix(site, "ac-1", "fan_bearing_wear")
    assert payers(first) == [(5000, "maker")]
    second = fix(site, "ac-1", "refrigerant_leak")  # the one free visit is used
    assert payers(second) == [(5000, "customer")]


def test_no_date_on_record_means_no_warranty_and_says_so(site: Site) -> None:
    bill = fix(site, "wp-1", "pump_failure")
    assert payers(bill) == [(5000, "customer")]
    assert bill.cover == "no purchase or installation date on record"


def test_a_filter_is_a_consumable_only_a_filter_package_pays(site: Site) -> None:
    db = site[2]
    bought(db, "wp-1", 2)  # well inside the warranty: a filter is still the customer's
    bill = fix(site, "wp-1", "filter_replacement_ro", parts=[PartUsed("WP-RO-01")])
    assert payers(bill) == [(49900, "customer"), (5000, "customer")]
    assert bill.cover == "a filter is a consumable: not under warranty"
    ServiceRegistry(db).load(
        parse_doc(
            {
                "package_plans": [
                    {"id": "care", "name": "Care", "device_type": "water_purifier",
                     "replacements": 1, "months": 12, "price_cents": 39900}
                ]
            }
        )
    )  # fmt: skip
    Packages(db).sell("wp-1", "care", sale_id="s-1", sold_by="agent", channel="agent", now=NOW)
    bill = fix(site, "wp-1", "filter_replacement_ro", parts=[PartUsed("WP-RO-01")])
    assert payers(bill) == [(49900, "package"), (5000, "package")]
    assert bill.customer_cents == 0
    assert claim_lines(db, NOW - timedelta(days=1), NOW + timedelta(days=1)) == []


def test_terms_name_a_model_or_a_device_type_not_both(db: Database) -> None:
    db.upgrade()
    with pytest.raises(RegistryImportError, match="exactly one of model and device_type"):
        ServiceRegistry(db).load(
            parse_doc(
                {
                    "warranties": [
                        {
                            "model": "X",
                            "device_type": "purifier",
                            "parts_months": 1,
                            "labour_months": 1,
                        }
                    ]
                }
            )
        )
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
