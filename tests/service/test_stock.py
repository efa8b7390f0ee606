"""Stock at the four levels: transfers, receipts and counts kept in the ledger, never
below zero however many people move it at once; the sales plan; the plan that turns the
installed base, the jobs and the sales plan into transfers and purchases in time."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from db.database import Database
from db.errors import NotFound
from db.tables import outlet_stock, van_stock
from service.registry import ServiceRegistry, parse_doc
from service.stock import Level, Location, NotEnoughStock, Stock, StockRefused
from service.stock_plan import (
    Node,
    PlanPolicy,
    SalesPlan,
    SalesPlanRefused,
    SalesPlanRow,
    StockPlanner,
    lead_weeks,
    parse_sales_plan_csv,
    replenish,
)
from telemetry.profile import shipped

NOW = datetime(2026, 10, 5, 2, tzinfo=UTC)  # a Monday, five weeks before 11.11
CENTRAL = Location(Level.CENTRAL, "cn")
EAST = Location(Level.DISTRIBUTION, "dc-east")
OUTLET = Location(Level.OUTLET, "o-1")
VAN = Location(Level.VAN, "tech-1")

NETWORK = {
    "regions": [{"id": "east", "name": "East"}],
    "depots": [
        {"id": "dc-east", "name": "East DC", "level": "distribution", "parent_id": "cn",
         "region_id": "east", "lead_days": 7},
        {"id": "cn", "name": "Central", "level": "central", "lead_days": 21},
    ],
    "outlets": [{"id": "o-1", "name": "Xuhui", "timezone": "Asia/Shanghai",
                 "region_id": "east", "depot_id": "dc-east", "supply_days": 3}],
    "parts": [{"sku": "AC-INSTALL-KIT", "name": "AC installation kit", "price_cents": 29900}],
    "stock": [
        {"depot_id": "cn", "sku": "AP-HEPA-01", "qty": 40},
        {"depot_id": "dc-east", "sku": "AP-HEPA-01", "qty": 10},
    ],
}  # fmt: skip


@pytest.fixture
def network(world: Database) -> Database:
    """The test world's outlet o-1 (3 HEPA filters; tech-1's van 2) supplied by the East
    distribution depot (10), supplied by the central one (40)."""
    ServiceRegistry(world).load(parse_doc(NETWORK))  # type: ignore[arg-type]
    return world


def qty(db: Database, at: Location, sku: str = "AP-HEPA-01") -> int:
    return sum(h.qty for h in Stock(db).held(at, sku))


def test_a_transfer_moves_stock_down_the_levels_and_is_kept_in_the_ledger(
    network: Database,
) -> None:
    stock = Stock(network)
    stock.transfer("AP-HEPA-01", 4, CENTRAL, EAST, actor="planner", now=NOW)
    stock.transfer("AP-HEPA-01", 6, EAST, OUTLET, actor="planner", note="peak", now=NOW)
    stock.transfer("AP-HEPA-01", 5, OUTLET, VAN, actor="mei", now=NOW)
    assert [qty(network, at) for at in (CENTRAL, EAST, OUTLET, VAN)] == [36, 8, 4, 7]
    ledger = stock.moves(sku="AP-HEPA-01")
    assert [(m.from_location, m.to_location, m.qty) for m in ledger] == [
        ("outlet:o-1", "van:tech-1", 5),
        ("distribution:dc-east", "outlet:o-1", 6),
        ("central:cn", "distribution:dc-east", 4),
    ]
    assert ledger[1].note == "peak" and ledger[0].actor == "mei"
    assert [m.to_location for m in stock.moves(location=VAN)] == ["van:tech-1"]


def test_a_transfer_of_more_than_there_is_is_refused_with_what_there_is(
    network: Database,
) -> None:
    with pytest.raises(NotEnoughStock, match="outlet:o-1 holds 3 of AP-HEPA-01, not the 5"):
        Stock(network).transfer("AP-HEPA-01", 5, OUTLET, VAN, actor="mei")
    assert (qty(network, OUTLET), qty(network, VAN)) == (3, 2)  # nothing moved
    assert Stock(network).moves() == []


def test_a_bad_location_part_or_quantity_says_what_to_fix(network: Database) -> None:
    stock = Stock(network)
    with pytest.raises(StockRefused, match="write it level:id"):
        Location.parse("warehouse-7")
    with pytest.raises(StockRefused, match="is a distribution depot"):
        stock.transfer("AP-HEPA-01", 1, Location(Level.CENTRAL, "dc-east"), OUTLET, actor="x")
    with pytest.raises(NotFound):
        stock.transfer("AP-HEPA-01", 1, OUTLET, Location(Level.VAN, "nobody"), actor="x")
    with pytest.raises(NotFound):
        stock.transfer("NO-SUCH-SKU", 1, OUTLET, VAN, actor="x")
    with pytest.raises(StockRefused, match="move one or more"):
        stock.transfer("AP-HEPA-01", 0, OUTLET, VAN, actor="x")
    with pytest.raises(StockRefused, match="to itself"):
        stock.transfer("AP-HEPA-01", 1, OUTLET, OUTLET, actor="x")


def test_a_count_sets_the_stock_and_the_ledger_keeps_the_difference(network: Database) -> None:
    stock = Stock(network)
    move = stock.count("AP-HEPA-01", 1, OUTLET, actor="mei", note="two missing", now=NOW)
    assert (move.kind, move.qty, qty(network, OUTLET)) == ("count", -2, 1)
    stock.count("AC-INSTALL-KIT", 4, VAN, actor="mei", now=NOW)  # a part it never held
    assert qty(network, VAN, "AC-INSTALL-KIT") == 4
    stock.receive("AC-INSTALL-KIT", 100, CENTRAL, actor="buyer", note="PO-17", now=NOW)
    assert qty(network, CENTRAL, "AC-INSTALL-KIT") == 100
    with pytest.raises(StockRefused):
        stock.count("AP-HEPA-01", -1, OUTLET, actor="mei")


def test_racing_transfers_never_take_stock_below_zero(network: Database) -> None:
    """Twelve people take one filter each from an outlet holding three, at once: three
    get one, nine are refused, the shelf ends at zero and the ledger has three moves."""
    stock = Stock(network)
    outcomes: list[str] = []
    start = threading.Barrier(12)

    def take() -> None:
        start.wait()
        try:
            stock.transfer("AP-HEPA-01", 1, OUTLET, VAN, actor="racer")
            outcomes.append("moved")
        except NotEnoughStock:
            outcomes.append("refused")

    threads = [threading.Thread(target=take) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["moved"] * 3 + ["refused"] * 9
    with network.engine.connect() as conn:
        shelf = conn.execute(
            sa.select(outlet_stock.c.qty).where(outlet_stock.c.sku == "AP-HEPA-01")
        ).scalar()
        van = conn.execute(
            sa.select(van_stock.c.qty).where(van_stock.c.sku == "AP-HEPA-01")
        ).scalar()
    assert (shelf, van) == (0, 5)
    assert len(stock.moves()) == 3


# -- the sales plan ------------------------------------------------------------------------
def test_the_sales_plan_keeps_weeks_by_their_monday_and_replaces_a_week_given_again(
    network: Database,
) -> None:
    plan = SalesPlan(network, shipped())
    plan.save(
        [SalesPlanRow(region_id="east", model="KFR-35GW", week=date(2026, 11, 11), units=500)]
    )
    plan.save([SalesPlanRow(region_id="east", model="KFR-35GW", week=date(2026, 11, 9), units=800)])
    assert [(r.week, r.units) for r in plan.rows()] == [(date(2026, 11, 9), 800)]


def test_a_bad_sales_plan_is_refused_whole_with_each_bad_row_named(network: Database) -> None:
    plan = SalesPlan(network, shipped())
    with pytest.raises(SalesPlanRefused) as refused:
        plan.save(
            [
                SalesPlanRow(region_id="east", model="KFR-35GW", week=date(2026, 11, 9), units=1),
                SalesPlanRow(region_id="west", model="KFR-35GW", week=date(2026, 11, 9), units=1),
                SalesPlanRow(region_id="east", model="XYZ-1", week=date(2026, 11, 9), units=1),
            ]
        )
    assert "row 2: no region 'west'" in str(refused.value)
    assert "row 3: no product profile lists the model 'XYZ-1'" in str(refused.value)
    assert plan.rows() == []
    with pytest.raises(SalesPlanRefused) as bad_csv:
        parse_sales_plan_csv(
            "region_id,model,week,units\neast,KFR-35GW,2026-11-09,10\neast,KFR-35GW,next week,-3\n"
        )
    assert "line 3, week" in str(bad_csv.value) and "line 3, units" in str(bad_csv.value)
    with pytest.raises(SalesPlanRefused, match="the header must name"):
        parse_sales_plan_csv("region,model,week\n")
    with pytest.raises(SalesPlanRefused, match="not CSV"):
        parse_sales_plan_csv("region_id,model,week,units\n" + "e" * 200_000 + ",M,2026-11-09,1\n")


# -- replenishment --------------------------------------------------------------------------
def test_replenishment_orders_each_level_its_lead_time_ahead_worked_by_hand() -> None:
    """Without safety stock: an outlet (10 on hand, 4 a week, 1 week from its depot) and
    the central depot above it (nothing, 2 weeks from the supplier)."""
    nodes = [Node(OUTLET, CENTRAL, 1), Node(CENTRAL, None, 2, purchases=True)]
    done = replenish(
        nodes, {("outlet:o-1", "F"): 10}, {("outlet:o-1", "F"): [4.0] * 6}, 6, PlanPolicy(z=0)
    )
    outlet = done.weeks[("outlet:o-1", "F")]
    assert [w.end for w in outlet] == [6, 2, 0, 0, 0, 0]
    assert [w.receipts for w in outlet] == [0, 0, 2, 4, 4, 4]
    # the outlet's orders leave the central depot a week before they arrive
    central = done.weeks[("central:cn", "F")]
    assert [w.demand for w in central] == [0, 2, 4, 4, 4, 0]
    assert [w.end for w in central] == [0, -2, 0, 0, 0, 0]
    first = next(p for p in done.proposals if p.destination == "central:cn")
    # central is short in week 1; a purchase takes two weeks: late, arriving in week 2
    assert (first.kind, first.source, first.qty, first.release_week, first.arrival_week) == (
        "purchase", None, 6, 0, 2,
    )  # fmt: skip
    assert first.late
    transfer = next(p for p in done.proposals if p.destination == "outlet:o-1")
    assert (transfer.kind, transfer.source, transfer.qty, transfer.release_week) == (
        "transfer", "central:cn", 2, 1,
    )  # fmt: skip
    assert not transfer.late


def test_safety_stock_covers_the_lead_time_and_review_week() -> None:
    nodes = [Node(OUTLET, CENTRAL, 1), Node(CENTRAL, None, 2, purchases=True)]
    done = replenish(nodes, {}, {("outlet:o-1", "F"): [4.0] * 4}, 4)
    weeks = done.weeks[("outlet:o-1", "F")]
    assert weeks[1].safety == pytest.approx(1.65 * 8**0.5, abs=1e-3)
    assert all(w.end >= w.safety - 1e-9 for w in weeks[1:])  # from when an order can arrive
    assert lead_weeks(0) == 0 and lead_weeks(3) == 1 and lead_weeks(7) == 1 and lead_weeks(10) == 2


# -- the engine's plan -------------------------------------------------------------------------
def test_the_plan_stocks_installation_kits_for_the_peak_at_every_level(network: Database) -> None:
    SalesPlan(network, shipped()).save(
        [SalesPlanRow(region_id="east", model="KFR-35GW", week=date(2026, 11, 9), units=120)]
    )
    plan = StockPlanner(network, shipped()).plan(weeks=8, now=NOW)
    assert plan.start == date(2026, 10, 5)
    kits = [r for r in plan.demand if r.sku == "AC-INSTALL-KIT"]
    van = {r.week: r for r in kits if r.location == "van:tech-1"}
    assert van[date(2026, 11, 9)].from_sales == 120  # tech-1 is o-1's only van
    assert van[date(2026, 11, 2)].from_sales == 0
    # every level plans for it: the van from the outlet, the outlet from the East depot,
    # the depot from the central one, which buys from the supplier three weeks ahead
    moves = [m for m in plan.moves if m.sku == "AC-INSTALL-KIT"]
    assert {(m.source, m.destination) for m in moves} >= {
        ("outlet:o-1", "van:tech-1"),
        ("distribution:dc-east", "outlet:o-1"),
        ("central:cn", "distribution:dc-east"),
        (None, "central:cn"),
    }
    buy = [m for m in moves if m.kind == "purchase"]
    assert sum(m.qty for m in buy) >= 120
    assert all(m.arrival - m.release == timedelta(weeks=3) for m in buy)
    assert all(m.arrival <= date(2026, 11, 9) for m in moves if m.destination == "van:tech-1")
    by_level = {r.level for r in kits}
    assert by_level == {"van", "outlet", "distribution", "central"}
    assert plan.unsupplied == []


def test_a_purchase_on_its_way_is_counted_in_its_week_and_closed_when_received(
    network: Database,
) -> None:
    SalesPlan(network, shipped()).save(
        [SalesPlanRow(region_id="east", model="KFR-35GW", week=date(2026, 11, 9), units=120)]
    )
    planner = StockPlanner(network, shipped())
    before = planner.plan(weeks=8, now=NOW)
    buy = [m for m in before.moves if m.kind == "purchase" and m.sku == "AC-INSTALL-KIT"]
    wanted = sum(m.qty for m in buy)
    stock = Stock(network)
    po = stock.order(
        "AC-INSTALL-KIT", wanted, CENTRAL, buy[0].arrival, actor="buyer", reference="PO-9", now=NOW
    )
    after = planner.plan(weeks=8, now=NOW)
    assert [m for m in after.moves if m.kind == "purchase" and m.sku == "AC-INSTALL-KIT"] == []
    central = {r.week: r for r in after.demand if r.location == "central:cn" and r.sku == po.sku}
    assert central[buy[0].arrival].on_hand_end >= 0
    with pytest.raises(StockRefused, match="purchase order #1 is for"):
        stock.receive("AP-HEPA-01", 1, CENTRAL, actor="dock", order_id=po.id)
    stock.receive("AC-INSTALL-KIT", wanted - 10, CENTRAL, actor="dock", order_id=po.id)
    assert [p.due for p in stock.purchase_orders()] == [10]
    stock.receive("AC-INSTALL-KIT", 10, CENTRAL, actor="dock", order_id=po.id)
    assert stock.purchase_orders() == []
    assert stock.purchase_orders(open_only=False)[0].state == "received"
    assert qty(network, CENTRAL, "AC-INSTALL-KIT") == wanted
