"""Do-it-yourself filter replacements under a package: the filter is shipped, the
customer fits it, and the device's own report closes the job.

* `ship`: an open diy job's filter leaves the outlet's stock with a carrier and a
  tracking number; the job is in progress and the customer is told what is coming.
* `fitted`: the new filter is in. The device said so (its counter restarted, so the
  rule that opened the job resolved: `on_device_report`), or the customer did in the app.
  The filter's wear restarts from then (a replacement on record, the old prediction
  dropped), and the job completes and closes with a bill the package pays: there was no
  visit, so there is no technician to rate or call back about, and no commission.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.database import Database
from db.tables import (
    filter_predictions,
    filter_replacements,
    outlet_stock,
    parts,
    shipments,
    work_order_parts,
    work_orders,
)
from service.catalog import in_force, parts_for
from service.completion import Bill, BillLine, stages_for
from service.errors import ServiceError
from service.lifecycle import State
from service.messages import Kind
from service.orders import WorkOrder, WorkOrders
from service.warranty import Payer


def record_fitting_in(
    conn: Connection, device_id: str, stage: str, at: datetime, *, order_id: int | None = None
) -> None:
    """A filter the customer fitted in `stage`: its wear restarts from `at` (the
    replacement on record, with its job if any) and its old prediction is dropped until
    the models see the new filter."""
    conn.execute(
        filter_replacements.insert().values(
            device_id=device_id, stage=stage, at=at, order_id=order_id
        )
    )
    conn.execute(
        filter_predictions.delete().where(
            filter_predictions.c.device_id == device_id, filter_predictions.c.stage == stage
        )
    )


class NotDiy(ServiceError):
    """The job is not a diy replacement in the state the step needs."""


class OutOfStock(ServiceError):
    """The outlet has none of the filter to ship."""


class Diy:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.orders = WorkOrders(db)

    def ship(
        self, order_id: int, *, carrier: str, tracking: str, by: str, now: datetime | None = None
    ) -> WorkOrder:
        """The filter is handed to the carrier: taken from the outlet's stock."""
        now = now or datetime.now(UTC)
        carrier, tracking = carrier.strip(), tracking.strip()
        if not carrier or not tracking:
            raise NotDiy(f"order {order_id}: give the carrier and the tracking number")
        profiles = in_force(self.db)
        with self.db.engine.begin() as conn:
            order = self._diy(conn, order_id, State.OPEN, "be shipped")
            skus = parts_for(profiles, order.device_type, order.problem_kind)
            if not skus:
                raise NotDiy(
                    f"order {order_id}: {order.device_type}'s profile names no part for "
                    f"{order.problem_kind}, so there is nothing to ship"
                )
            sku = skus[0]
            taken = conn.execute(
                outlet_stock.update()
                .where(
                    outlet_stock.c.outlet_id == order.outlet_id,
                    outlet_stock.c.sku == sku,
                    outlet_stock.c.qty >= 1,
                )
                .values(qty=outlet_stock.c.qty - 1)
            ).rowcount
            if not taken:
                raise OutOfStock(
                    f"order {order_id}: {sku} is not in stock at outlet {order.outlet_id}: "
                    "restock it first"
                )
            conn.execute(
                shipments.insert().values(
                    order_id=order_id, sku=sku, carrier=carrier, tracking=tracking,
                    shipped_at=now, shipped_by=by,
                )
            )  # fmt: skip
            moved = self.orders.transition_in(
                conn, order_id, State.IN_PROGRESS, actor=by,
                reason=f"filter {sku} shipped: {carrier} {tracking}", expect=State.OPEN, now=now,
            )  # fmt: skip
            self.orders.tell_in(
                conn, moved, Kind.FILTER_SHIPPED, now, carrier=carrier, tracking=tracking
            )
            return moved

    def fitted(
        self, order_id: int, *, by: str, how: str, now: datetime | None = None
    ) -> tuple[WorkOrder, Bill]:
        """The customer fitted the shipped filter (`how`: who said so, for the trail)."""
        now = now or datetime.now(UTC)
        profiles = in_force(self.db)
        with self.db.engine.begin() as conn:
            order = self._diy(conn, order_id, State.IN_PROGRESS, "have its filter fitted")
            sent = conn.execute(
                sa.select(shipments.c.sku, parts.c.name, parts.c.price_cents)
                .join(parts, parts.c.sku == shipments.c.sku)
                .where(shipments.c.order_id == order_id)
            ).one()
            conn.execute(
                work_order_parts.insert().values(
                    order_id=order_id, sku=sent.sku, qty=1, source="shipped",
                    unit_price_cents=sent.price_cents, payer=Payer.PACKAGE.value,
                )
            )  # fmt: skip
            for stage in stages_for(profiles, order.device_type, order.problem_kind, ()):
                record_fitting_in(conn, order.device_id, stage, now, order_id=order_id)
            line = BillLine(f"1 × {sent.name} ({sent.sku})", sent.price_cents, Payer.PACKAGE)
            done = self.orders.transition_in(
                conn, order_id, State.COMPLETED, actor=by, reason=f"fitted by the customer ({how})",
                expect=State.IN_PROGRESS, now=now, outcome="fixed", total_cents=line.cents,
                customer_cents=0, commission_cents=0,
            )  # fmt: skip
            self.orders.tell_in(
                conn, done, Kind.COMPLETED, now, lines=[[line.item, line.cents, line.payer.value]],
                total_cents=line.cents, customer_cents=0,
            )  # fmt: skip
            closed = self.orders.transition_in(
                conn, order_id, State.CLOSED, actor=by,
                reason="a diy replacement: no visit to call back about", expect=State.COMPLETED,
                now=now,
            )  # fmt: skip
        return closed, Bill([line], line.cents, 0, "the filter package covers the filter")

    def on_device_report(self, order_id: int, *, now: datetime | None = None) -> WorkOrder | None:
        """The rule that opened (or joined) the job resolved: the device reports a new
        filter. Completes the job if it is a shipped diy replacement; None otherwise."""
        with self.db.engine.connect() as conn:
            row = conn.execute(
                sa.select(work_orders.c.state, work_orders.c.fulfilment).where(
                    work_orders.c.id == order_id
                )
            ).first()
        if row is None or row.fulfilment != "diy" or row.state != State.IN_PROGRESS.value:
            return None
        done, _ = self.fitted(order_id, by="device", how="the device reported it", now=now)
        return done

    def _diy(self, conn: Connection, order_id: int, state: State, to_do: str) -> WorkOrder:
        order = self.orders.get_in(conn, order_id)
        if order.fulfilment != "diy":
            raise NotDiy(f"order {order_id} is a technician's visit, not a diy replacement")
        if order.state is not state:
            raise NotDiy(
                f"order {order_id} is {order.state.value}: only "
                f"{'an' if state.value[0] in 'aeiou' else 'a'} {state.value} diy job can {to_do}"
            )
        return order
