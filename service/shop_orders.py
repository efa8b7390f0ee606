"""Shop orders (门店订单): a shop sold a unit that needs installing.

Each order registers the unit (its model, serial and purchase date, which starts its
warranty), its owner (found by phone, or new) and its site, and opens the installation
job, in one transaction. A shop order is kept by the shop's own order id: the same order
sent again, imported twice or posted twice at once, is the same job (`created` false), so
a shop's system can retry freely. The job is open at once, like any job a person asked
for, and the customer hears of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.engine import Connection

from db.errors import DomainError, NotFound
from db.tables import customers, device_sites, devices, outlets, shop_orders, territories
from service.catalog import in_force
from service.lifecycle import Origin
from service.orders import OrderRequest, WorkOrder, WorkOrders

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
PROBLEM = "installation"


class ShopOrderIn(BaseModel):
    """One order as a shop sends it (JSON, or a CSV row with these columns)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    shop_id: Id
    shop_order_id: Id
    customer_name: str = Field(min_length=1, max_length=128)
    phone: str = Field(min_length=3, max_length=32)
    device_type: str
    model: str | None = Field(default=None, max_length=64)
    serial: str | None = Field(default=None, max_length=64)
    purchased_on: date
    territory_id: Id
    address: str = Field(min_length=1, max_length=256)
    preferred_time: str | None = Field(default=None, max_length=200)
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")] = "zh-CN"


@dataclass(frozen=True, slots=True)
class Received:
    order: WorkOrder
    created: bool  # False: this shop order was received before; its job as it is now
    device_id: str
    customer_id: str


class UnknownDeviceType(DomainError):
    def __init__(self, device_type: str, known: list[str]) -> None:
        super().__init__(
            f"unknown device type {device_type!r}; one of {', '.join(known)} "
            "(or import its profile)"
        )


class ShopOrders:
    def __init__(self, orders: WorkOrders) -> None:
        self.orders = orders

    def receive(self, o: ShopOrderIn, *, now: datetime | None = None) -> Received:
        now = now or datetime.now(UTC)
        families = in_force(self.orders.db)  # shipped and imported; before the write lock
        if o.device_type not in families:
            raise UnknownDeviceType(o.device_type, sorted(families))
        try:
            with self.orders.db.engine.begin() as conn:
                return self._receive_in(conn, o, now)
        except sa.exc.IntegrityError:  # the same order at the same moment: the first holds
            with self.orders.db.engine.connect() as conn:
                seen = self._seen(conn, o)
            if seen is None:
                raise
            return seen

    def _seen(self, conn: Connection, o: ShopOrderIn) -> Received | None:
        row = conn.execute(
            sa.select(shop_orders.c.order_id, shop_orders.c.device_id).where(
                shop_orders.c.shop_id == o.shop_id,
                shop_orders.c.shop_order_id == o.shop_order_id,
            )
        ).one_or_none()
        if row is None:
            return None
        order = self.orders.get_in(conn, row.order_id)
        return Received(order, False, row.device_id, order.customer_id or "")

    def _receive_in(self, conn: Connection, o: ShopOrderIn, now: datetime) -> Received:
        seen = self._seen(conn, o)
        if seen is not None:
            return seen
        zone = conn.execute(
            sa.select(outlets.c.timezone)
            .join(territories, territories.c.outlet_id == outlets.c.id)
            .where(territories.c.id == o.territory_id)
        ).scalar_one_or_none()
        if zone is None:
            raise NotFound("territory", o.territory_id)
        customer = conn.execute(
            sa.select(customers.c.id).where(customers.c.phone == o.phone).order_by(customers.c.id)
        ).scalars().first()  # fmt: skip
        if customer is None:
            customer = _id("c", o)
            conn.execute(
                customers.insert().values(
                    id=customer, name=o.customer_name, tier="standard", channel="sms",
                    phone=o.phone, timezone=zone, language=o.language,
                    quiet_start="21:00", quiet_end="08:00",
                )
            )  # fmt: skip
        device = _id("d", o)
        conn.execute(
            devices.insert().values(
                id=device, device_type=o.device_type, model=o.model, serial=o.serial,
                enabled=True, registered_at=now,
            )
        )  # fmt: skip
        conn.execute(
            device_sites.insert().values(
                device_id=device, customer_id=customer, territory_id=o.territory_id,
                address=o.address, purchased_on=o.purchased_on,
            )
        )  # fmt: skip
        evidence: dict[str, object] = {
            "channel": "shop",
            "shop_id": o.shop_id,
            "shop_order_id": o.shop_order_id,
            "purchased_on": o.purchased_on.isoformat(),
        }
        if o.preferred_time:
            evidence["preferred_time"] = o.preferred_time
        opened = self.orders.open_or_attach_in(
            conn,
            OrderRequest(
                device_id=device,
                problem_kind=PROBLEM,
                origin=Origin.SHOP,
                source=f"shop:{o.shop_id}",
                title="Install the new unit",
                description=f"shop {o.shop_id} order {o.shop_order_id}",
                evidence=evidence,
            ),
            actor=f"shop:{o.shop_id}",
            now=now,
        )
        conn.execute(
            shop_orders.insert().values(
                shop_id=o.shop_id, shop_order_id=o.shop_order_id, order_id=opened.order.id,
                device_id=device, received_at=now,
            )
        )  # fmt: skip
        return Received(opened.order, True, device, customer)


def _id(prefix: str, o: ShopOrderIn) -> str:
    """A registry id from the shop's: readable, and the same for the same order."""
    raw = f"{prefix}-{o.shop_id}-{o.shop_order_id}"
    return re.sub(r"[^A-Za-z0-9_.:-]", "-", raw)[:64]
