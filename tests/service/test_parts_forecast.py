"""Parts demand per outlet × SKU × week: open orders plus predicted filter exhaustions,
weighted by probability, never counted twice, against the stock on hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from db.database import Database
from db.errors import DomainError
from db.tables import filter_predictions, filter_replacements
from fleet.predictions import BadPrediction, PredictedExhaustion, Predictions
from service.lifecycle import State
from service.orders import WorkOrders
from service.parts_forecast import forecast, forecast_csv
from service.registry import ServiceRegistry, parse_doc
from tests.service.helpers import accepted, opened

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # a Monday
D = timedelta(days=1)
W0, W1, W2 = date(2026, 11, 23), date(2026, 11, 30), date(2026, 12, 7)


def little_stock(db: Database) -> None:
    """One HEPA filter in the van, none on the shelf."""
    stock = [
        {"technician_id": "tech-1", "sku": "AP-HEPA-01", "qty": 1},
        {"outlet_id": "o-1", "sku": "AP-HEPA-01", "qty": 0},
    ]
    ServiceRegistry(db).load(parse_doc({"stock": stock}))


def test_open_orders_and_predictions_add_up_per_week(world: Database) -> None:
    little_stock(world)
    opened(world, "ap-1", "filter_replacement", T0)  # due this week
    leak = accepted(world, "ac-1", "refrigerant_leak", T0)
    WorkOrders(world).transition(
        leak,
        State.SCHEDULED,
        actor="c",
        now=T0,
        scheduled_start=T0 + 8 * D,
        scheduled_end=T0 + 8 * D + timedelta(hours=2),
    )  # booked for next week
    Predictions(world).record(
        [
            PredictedExhaustion("ap-1", "main", T0 + 2 * D, 0.9),  # the open order has it
            PredictedExhaustion("ap-3", "main", T0 + 9 * D, 1.0),
            PredictedExhaustion("ap-2", "main", T0 + 15 * D, 0.8),
            PredictedExhaustion("wp-1", "ro", T0 + 3 * D, 0.5),
            PredictedExhaustion("ap-1", "main", T0 + 200 * D, 1.0),  # replaces the first
        ],
        now=T0,
    )
    rows = {(r.sku, r.week): r for r in forecast(world, weeks=8, now=T0)}
    assert set(rows) == {
        ("AP-HEPA-01", W0),
        ("AP-HEPA-01", W1),
        ("AP-HEPA-01", W2),
        ("AC-R32-1KG", W1),
        ("WP-RO-01", W0),
    }
    hepa = [rows[("AP-HEPA-01", w)] for w in (W0, W1, W2)]
    assert [(r.from_orders, r.from_predictions) for r in hepa] == [(1, 0.0), (0, 1.0), (0, 0.8)]
    assert [r.on_hand for r in hepa] == [1, 1, 1]
    assert [r.shortfall for r in hepa] == [0.0, 1.0, 1.8]  # cumulative demand beyond stock
    assert rows[("AC-R32-1KG", W1)].from_orders == 1
    assert rows[("WP-RO-01", W0)].expected == 0.5
    assert rows[("WP-RO-01", W0)].shortfall == 0.0  # one RO membrane on the shelf


def test_a_prediction_made_before_the_filter_was_replaced_is_stale(world: Database) -> None:
    Predictions(world).record([PredictedExhaustion("ap-3", "main", T0 + 3 * D)], now=T0)
    assert forecast(world, now=T0)
    with world.engine.begin() as conn:
        conn.execute(filter_replacements.insert().values(device_id="ap-3", stage="main", at=T0 + D))
    assert forecast(world, now=T0 + D) == []


def test_overdue_demand_falls_in_the_current_week(world: Database) -> None:
    Predictions(world).record([PredictedExhaustion("ap-3", "main", T0 - 20 * D)], now=T0)
    (row,) = forecast(world, now=T0 + 2 * D)
    assert row.week == W0


def test_by_territory(world: Database) -> None:
    Predictions(world).record(
        [
            PredictedExhaustion("ap-2", "main", T0 + D, 1.0),  # t-1
            PredictedExhaustion("ap-3", "main", T0 + D, 0.5),  # t-2
        ],
        now=T0,
    )
    rows = forecast(world, by_territory=True, now=T0)
    assert {(r.territory_id, r.expected) for r in rows} == {("t-1", 1.0), ("t-2", 0.5)}
    assert all(r.shortfall is None for r in rows)
    (total,) = forecast(world, now=T0)
    assert total.expected == 1.5


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (PredictedExhaustion("ap-1", "main", T0, 1.5), "probability"),
        (PredictedExhaustion("ap-1", "main", datetime(2026, 12, 1)), "zone"),
        (PredictedExhaustion("nope", "main", T0), "unknown devices: nope"),
    ],
)
def test_a_bad_prediction_is_refused_and_nothing_is_stored(
    world: Database, bad: PredictedExhaustion, why: str
) -> None:
    good = PredictedExhaustion("ap-2", "main", T0)
    with pytest.raises(BadPrediction, match=why):
        Predictions(world).record([good, bad], now=T0)
    with world.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(filter_predictions)).scalar() == 0
        )
    assert issubclass(BadPrediction, DomainError)


def test_forecast_as_csv(world: Database) -> None:
    Predictions(world).record([PredictedExhaustion("ap-3", "main", T0 + D, 0.25)], now=T0)
    header, line = forecast_csv(forecast(world, now=T0)).splitlines()
    assert header == (
        "outlet_id,territory_id,sku,week,from_orders,from_predictions,expected,on_hand,shortfall"
    )
    assert line == "o-1,,AP-HEPA-01,2026-11-23,0,0.25,0.25,5,0.0"
