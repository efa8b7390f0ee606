"""A job offered to its outlet (派单到网点): an outlet with hours to accept (`accept_hours`)
sees each job of its territories first and accepts or declines it within them; its
technicians see the job only once it is accepted (`service.network` takes the answers).
An outlet without such hours is the maker's own station: it takes every job at once."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.tables import outlet_offers, outlets, work_orders

OFFERED, ACCEPTED, DECLINED, EXPIRED = "offered", "accepted", "declined", "expired"
# the job's outlet answered yes, or it takes jobs at once: dispatch may send it
DISPATCHABLE = (None, ACCEPTED)


def offer_in(conn: Connection, order_id: int, outlet_id: str | None, now: datetime) -> str | None:
    """Offer a job that just opened to `outlet_id` when that outlet accepts its jobs;
    the job's outlet state after (None: the outlet takes it at once)."""
    if outlet_id is None:
        return None
    hours = conn.execute(
        sa.select(outlets.c.accept_hours).where(outlets.c.id == outlet_id)
    ).scalar_one_or_none()
    if not hours:
        return None
    conn.execute(
        outlet_offers.insert().values(
            order_id=order_id, outlet_id=outlet_id, offered_at=now,
            due_at=now + timedelta(hours=hours), state=OFFERED,
        )
    )  # fmt: skip
    conn.execute(
        work_orders.update().where(work_orders.c.id == order_id).values(outlet_state=OFFERED)
    )
    return OFFERED
