"""Shop orders (门店订单): a shop sold a unit that needs installing.

Each order registers the unit (its model, serial and purchase date, which starts its
warranty), its owner (found by phone, or new) and its site, and opens the installation
job, in one transaction. A shop order is kept by the shop's own order id: the same order
sent again, imported twice or posted twice at once, is the same job (`created` false), so
a shop's system can retry freely. The job is open at once, like any job a person asked
for, and the customer hears of it.
"""

from __future__ import annotations

import hashlib
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


class InstallationRequest(BaseModel):
    """A customer's request, in the app, to install a unit they bought."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    request_id: Id = Field(description="The app's id for it: sending it again is the same")
    device_type: str
    model: str | None = Field(default=None, max_length=64)
    serial: str | None = Field(default=None, max_length=64)
    purchased_on: date
    address: str | None = Field(
        default=None, min_length=1, max_length=256, description="Default: yours on record"
    )
    territory_id: Id | None = Field(default=None, description="Default: yours on record")
    preferred_time: str | None = Field(default=None, max_length=200)


class InstallationRefused(DomainError):
    """An installation request that cannot be taken as it is; the message says why."""


class ShopOrders:
    def __init__(self, orders: WorkOrders) -> None:
        self.orders = orders

    def receive(
        self, o: ShopOrderIn, *, now: datetime | None = None, customer_id: str | None = None
    ) -> Received:
        now = now or datetime.now(UTC)
        families = in_force(self.orders.db)  # shipped and imported; before the write lock
        if o.device_type not in families:
            raise UnknownDeviceType(o.device_type, sorted(families))
        try:
            with self.orders.db.engine.begin() as conn:
                return self._receive_in(conn, o, now, customer_id)
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

    def request_installation(
        self, customer_id: str, r: InstallationRequest, *, now: datetime | None = None
    ) -> Received:
        """A customer asks in the app to have a unit they bought installed: the unit is
        registered to them at their address (by default the one on record) and the
        installation job opens at once. The same `request_id` again is the same job."""
        with self.orders.db.engine.connect() as conn:
            who = conn.execute(
                sa.select(customers.c.name, customers.c.phone, customers.c.language).where(
                    customers.c.id == customer_id
                )
            ).first()
            if who is None:
                raise NotFound("customer", customer_id)
            home = conn.execute(
                sa.select(device_sites.c.territory_id, device_sites.c.address)
                .where(device_sites.c.customer_id == customer_id)
                .order_by(device_sites.c.device_id)
            ).first()
        territory = r.territory_id or (home.territory_id if home else None)
        address = r.address or (home.address if home else None)
        if territory is None or address is None:
            raise InstallationRefused(
                "we have no address of yours on record: give `address` and `territory_id` "
                "(your area)"
            )
        key = f"{customer_id}.{r.request_id}"
        if len(key) > 64:  # kept readable, and still one key per request
            key = f"{key[:55]}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
        order = ShopOrderIn(
            shop_id="app", shop_order_id=key, customer_name=who.name,
            phone=who.phone or "n/a", device_type=r.device_type, model=r.model,
            serial=r.serial, purchased_on=r.purchased_on, territory_id=territory,
            address=address, preferred_time=r.preferred_time, language=who.language,
        )  # fmt: skip
        return self.receive(order, now=now, customer_id=customer_id)

    def _receive_in(
        self, conn: Connection, o: ShopOrderIn, now: datetime, customer_id: str | None = None
    ) -> Received:
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
        customer = customer_id or conn.execute(
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
        app = customer_id is not None  # the customer's own request, from the app
        evidence: dict[str, object] = {
            "channel": "app" if app else "shop",
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
                origin=Origin.APP if app else Origin.SHOP,
                source=f"customer:{customer_id}" if app else f"shop:{o.shop_id}",
                title="Install the new unit",
                description=(
                    "requested in the app" if app else f"shop {o.shop_id} order {o.shop_order_id}"
                ),
                evidence=evidence,
            ),
            actor=f"customer:{customer_id}" if app else f"shop:{o.shop_id}",
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
    """A registry id from the shop's: readable, and the same for the same order (a long
    one is cut and given a digest of the whole, so two orders never share one)."""
    raw = re.sub(r"[^A-Za-z0-9_.:-]", "-", f"{prefix}-{o.shop_id}-{o.shop_order_id}")
    if len(raw) <= 64:
        return raw
    return f"{raw[:55]}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}"
