"""Completion on site: stock never negative, serial checked, photos checked, the bill
itemised, labels for the models, and the device told its filter was replaced."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from db.database import Database
from db.tables import (
    device_commands,
    filter_replacements,
    outlet_stock,
    service_labels,
    van_stock,
    work_order_photos,
)
from service.completion import Completion, CompletionReport, Fee, Outcome, PartUsed
from service.errors import (
    BadPhoto,
    CompletionRefused,
    NotTheAssignee,
    PartNotInStock,
    SerialMismatch,
)
from service.lifecycle import Origin, State
from service.orders import OrderRequest, WorkOrders
from service.photos import Photo
from service.registry import ServiceRegistry, parse_doc

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


@pytest.fixture
def site(db: Database, tmp_path: Path) -> tuple[WorkOrders, Completion, Database]:
    return make_site(db, tmp_path)


def make_site(db: Database, tmp_path: Path) -> tuple[WorkOrders, Completion, Database]:
    """An outlet, its technician with stock, a water purifier and an air conditioner."""
    db.upgrade()
    rows = {
        "outlets": [{"id": "o-1", "name": "Xuhui", "timezone": "Asia/Shanghai"}],
        "territories": [{"id": "t-1", "name": "A", "outlet_id": "o-1"}],
        "customers": [{"id": "c-1", "name": "Li", "timezone": "Asia/Shanghai"}],
        "parts": [
            {"sku": "WP-RO-01", "name": "RO membrane", "price_cents": 49900},
            {"sku": "AC-R32-1KG", "name": "R32, 1 kg", "price_cents": 19900},
        ],
        "technicians": [
            {
                "id": "tech-1",
                "name": "Zhang",
                "outlet_id": "o-1",
                "timezone": "Asia/Shanghai",
                "working_hours": {"mon": ["08:00", "18:00"]},
                "skills": [{"device_type": "water_purifier"}, {"device_type": "air_conditioner"}],
                "territories": ["t-1"],
            }
        ],
        "stock": [
            {"technician_id": "tech-1", "sku": "WP-RO-01", "qty": 1},
            {"outlet_id": "o-1", "sku": "WP-RO-01", "qty": 1},
            {"outlet_id": "o-1", "sku": "AC-R32-1KG", "qty": 0},
        ],
        "devices": [
            {
                "id": "wp-1",
                "device_type": "water_purifier",
                "serial": "SN-WP-1",
                "customer_id": "c-1",
                "territory_id": "t-1",
                "address": "x",
            },
            {
                "id": "ac-1",
                "device_type": "air_conditioner",
                "customer_id": "c-1",
                "territory_id": "t-1",
                "address": "x",
            },
        ],
    }
    ServiceRegistry(db).load(parse_doc(rows))
    orders = WorkOrders(db)
    return orders, Completion(orders, tmp_path / "photos"), db


def on_site(orders: WorkOrders, device: str, problem: str) -> int:
    o = orders.open_or_attach(
        OrderRequest(
            device_id=device, problem_kind=problem, origin=Origin.OPS, source="ops", title=problem
        ),
        now=NOW,
    ).order
    orders.transition(o.id, State.ASSIGNED, actor="d", technician_id="tech-1")
    for to in (State.ACCEPTED, State.SCHEDULED, State.IN_PROGRESS):
        orders.transition(o.id, to, actor="tech-1")
    return o.id


def stock(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        van = {f"van:{s}": q for _, s, q in conn.execute(sa.select(van_stock))}
        outlet = {f"outlet:{s}": q for _, s, q in conn.execute(sa.select(outlet_stock))}
    return {**van, **outlet}


def rows(db: Database, table: sa.Table) -> list[dict[str, object]]:
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table))]


def report(**kw: object) -> CompletionReport:
    base: dict[str, object] = {
        "technician_id": "tech-1",
        "outcome": Outcome.FIXED,
        "serial": "SN-WP-1",
    }
    return CompletionReport(**{**base, **kw})  # type: ignore[arg-type]


def test_a_filter_replacement_bills_the_part_resets_wear_and_tells_the_device(
    site: tuple[WorkOrders, Completion, Database],
) -> None:
    orders, completion, db = site
    oid = on_site(orders, "wp-1", "filter_replacement_ro")
    done, bill = completion.complete(
        oid,
        report(
            parts=[PartUsed("WP-RO-01")],
            fees=[Fee("Call-out", 5000)],
            photos=[Photo("after.jpg", JPEG)],
            notes="flushed",
        ),
        now=NOW,
    )
    assert done.state is State.COMPLETED and done.completed_at == NOW
    assert done.total_cents == 54900 == bill.total_cents
    assert [(x.item, x.cents, x.payer) for x in bill.lines] == [
        ("1 × RO membrane (WP-RO-01)", 49900, "customer"),
        ("Call-out", 5000, "customer"),
    ]
    assert bill.customer_cents == 54900
    assert stock(db)["van:WP-RO-01"] == 0 and stock(db)["outlet:WP-RO-01"] == 1  # van first
    assert [(r["device_id"], r["stage"]) for r in rows(db, filter_replacements)] == [("wp-1", "ro")]
    [cmd] = rows(db, device_commands)
    assert (cmd["cmd"], cmd["args"], cmd["sent_at"]) == ("filter_replaced", {"stage": "ro"}, None)
    [label] = rows(db, service_labels)
    assert (label["problem_kind"], label["outcome"]) == ("filter_replacement_ro", "fixed")
    [photo] = rows(db, work_order_photos)
    assert photo["content_type"] == "image/jpeg" and Path(str(photo["path"])).read_bytes() == JPEG


def test_a_part_in_neither_van_nor_outlet_is_refused_and_nothing_changes(
    site: tuple[WorkOrders, Completion, Database],
) -> None:
    orders, completion, db = site
    oid = on_site(orders, "ac-1", "refrigerant_leak")
    before = stock(db)
    with pytest.raises(
        PartNotInStock, match="AC-R32-1KG is neither in tech-1's van nor at outlet o-1"
    ):
        completion.complete(
            oid,
            report(serial="SN-AC-1", parts=[PartUsed("AC-R32-1KG")], photos=[Photo("a.png", PNG)]),
        )
    assert stock(db) == before and orders.get(oid).state is State.IN_PROGRESS
    assert rows(db, work_order_photos) == [] and not any((completion.photo_dir).rglob("*.png"))
    # two of a part with one in the van and one at the outlet: neither source has two
    wp = on_site(orders, "wp-1", "filter_replacement_ro")
    with pytest.raises(PartNotInStock):
        completion.complete(wp, report(parts=[PartUsed("WP-RO-01", qty=2)]))
    assert stock(db) == before  # never negative, never half-taken


def test_the_serial_must_match_the_registry_or_is_recorded(
    site: tuple[WorkOrders, Completion, Database],
) -> None:
    orders, completion, db = site
    wp = on_site(orders, "wp-1", "pump_failure")
    with pytest.raises(SerialMismatch, match="registered with 'SN-WP-1'"):
        completion.complete(wp, report(serial="SN-OTHER"))
    ac = on_site(orders, "ac-1", "inspection")
    completion.complete(ac, report(serial="SN-AC-1", outcome=Outcome.NO_FAULT_FOUND))
    with db.engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT serial FROM devices WHERE id = 'ac-1'")).scalar_one()
            == "SN-AC-1"
        )


def test_photos_are_checked_by_their_bytes_and_size(
    site: tuple[WorkOrders, Completion, Database],
) -> None:
    orders, completion, _ = site
    oid = on_site(orders, "wp-1", "pump_failure")
    with pytest.raises(BadPhoto, match="not a JPEG, PNG or WebP"):
        completion.complete(oid, report(photos=[Photo("fake.jpg", b"GIF89a....")]))
    with pytest.raises(BadPhoto, match="at most 10 MB"):
        completion.complete(oid, report(photos=[Photo("huge.jpg", JPEG + b"\x00" * 11_000_000)]))
    with pytest.raises(NotTheAssignee):
        completion.complete(oid, report(technician_id="tech-2"))
    assert orders.get(oid).state is State.IN_PROGRESS


def test_a_fixed_fault_is_a_label_and_a_repair_command(
    site: tuple[WorkOrders, Completion, Database],
) -> None:
    orders, completion, db = site
    oid = on_site(orders, "wp-1", "pump_failure")
    completion.complete(oid, report(confirmed_fault="pump_failure"))
    [label] = rows(db, service_labels)
    assert label["confirmed_fault"] == "pump_failure"
    assert [(c["cmd"], c["args"]) for c in rows(db, device_commands)] == [
        ("repair", {"fault": "pump_failure"})
    ]


def test_the_state_a_filter_was_found_in_is_kept_as_a_label(
    site: tuple[WorkOrders, Completion, Database],
) -> None:
    orders, completion, db = site
    oid = on_site(orders, "wp-1", "filter_replacement_ro")
    completion.complete(
        oid, report(parts=[PartUsed("WP-RO-01")], filter_found={"ro": 0.85}), now=NOW
    )
    (fitted,) = rows(db, filter_replacements)
    assert fitted["stage"] == "ro" and fitted["consumed_found"] == 0.85


@pytest.mark.parametrize(
    ("found", "why"),
    [({"ro": 2.5}, "at most 1.5"), ({"carbon": 0.5}, "the stages fitted are ro")],
)
def test_a_found_state_out_of_range_or_for_a_stage_not_fitted_is_refused(
    site: tuple[WorkOrders, Completion, Database], found: dict[str, float], why: str
) -> None:
    orders, completion, db = site
    oid = on_site(orders, "wp-1", "filter_replacement_ro")
    with pytest.raises(CompletionRefused, match=why):
        completion.complete(oid, report(parts=[PartUsed("WP-RO-01")], filter_found=found), now=NOW)
    assert rows(db, filter_replacements) == []
