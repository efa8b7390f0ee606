"""What customers do for themselves from the app: their contact preferences (channel,
quiet hours) and "I replaced the filter myself".

A filter the customer fitted restarts that stage's wear like a technician's would: the
replacement is recorded (without a work order, and without a found-state label: nobody
measured the old filter), the device is told to reset its counter, the stage's
prediction is dropped until the models see the new filter, and a live job to replace
that stage is cancelled, since there is nothing left for it to do; a diy package job
whose filter was shipped is done instead (`service.diy`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from db.database import Database
from db.errors import NotFound
from db.tables import (
    customers,
    device_commands,
    devices,
    packages,
    work_orders,
)
from service.catalog import filter_problem, in_force
from service.diy import Diy, record_fitting_in
from service.errors import ServiceError
from service.lifecycle import LIVE, State
from service.localtime import hhmm
from service.orders import WorkOrders

CHANNELS = ("app", "sms", "phone")


class PreferenceRefused(ServiceError):
    pass


@dataclass(frozen=True, slots=True)
class Preferences:
    channel: str
    quiet_start: str | None
    quiet_end: str | None
    filter_package: bool  # a filter package in force on one of their devices
    language: str
    timezone: str
    air_reports: bool  # the monthly household air report is sent


@dataclass(frozen=True, slots=True)
class SelfReplaced:
    device_id: str
    stage: str
    at: datetime
    cancelled_order: int | None


class SelfService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def preferences(self, customer_id: str) -> Preferences:
        today = datetime.now(UTC).date()
        with self.db.engine.connect() as conn:
            row = conn.execute(sa.select(customers).where(customers.c.id == customer_id)).first()
            packaged = conn.execute(
                sa.select(packages.c.id)
                .where(
                    packages.c.customer_id == customer_id,
                    packages.c.starts_on <= today,
                    packages.c.ends_on > today,
                )
                .limit(1)
            ).first()
        if row is None:
            raise NotFound("customer", customer_id)
        return Preferences(
            channel=row.channel,
            quiet_start=row.quiet_start,
            quiet_end=row.quiet_end,
            filter_package=packaged is not None,
            language=row.language,
            timezone=row.timezone,
            air_reports=bool(row.air_reports),
        )

    def update(
        self,
        customer_id: str,
        *,
        channel: str | None = None,
        quiet_hours: tuple[str, str] | None = None,
        clear_quiet_hours: bool = False,
        air_reports: bool | None = None,
    ) -> Preferences:
        """Change what is given; the rest stays."""
        values: dict[str, object] = {}
        if air_reports is not None:
            values["air_reports"] = air_reports
        if channel is not None:
            if channel not in CHANNELS:
                raise PreferenceRefused(f"channel {channel!r}: choose {', '.join(CHANNELS)}")
            values["channel"] = channel
        if quiet_hours is not None:
            for clock in quiet_hours:
                try:
                    hhmm(clock)
                except ValueError:
                    raise PreferenceRefused(
                        f"quiet hours {clock!r}: give a local time as HH:MM, e.g. 21:30"
                    ) from None
            values["quiet_start"], values["quiet_end"] = quiet_hours
        if clear_quiet_hours:
            values["quiet_start"] = values["quiet_end"] = None
        if values:
            with self.db.engine.begin() as conn:
                done = conn.execute(
                    customers.update().where(customers.c.id == customer_id).values(**values)
                )
            if not done.rowcount:
                raise NotFound("customer", customer_id)
        return self.preferences(customer_id)

    def replaced_filter(
        self,
        device_id: str,
        stage: str,
        *,
        stages: Sequence[str],
        customer_id: str,
        now: datetime | None = None,
    ) -> SelfReplaced:
        """The customer fitted a new `stage` filter (`stages`: the device type's)."""
        if stage not in stages:
            raise PreferenceRefused(
                f"{device_id} has no filter stage {stage!r}: it has {', '.join(stages)}"
            )
        now = now or datetime.now(UTC)
        orders = WorkOrders(self.db)
        profiles = in_force(self.db)
        cancelled = None
        with self.db.engine.begin() as conn:
            device = conn.execute(
                sa.select(devices.c.device_type).where(devices.c.id == device_id)
            ).first()
            if device is None:
                raise NotFound("device", device_id)
            shipped = conn.execute(
                sa.select(work_orders.c.id).where(
                    work_orders.c.device_id == device_id,
                    work_orders.c.problem_kind
                    == filter_problem(profiles, device.device_type, stage),
                    work_orders.c.state == State.IN_PROGRESS.value,
                    work_orders.c.fulfilment == "diy",
                )
            ).scalar_one_or_none()
            if shipped is None:  # else the shipped job records it, with itself
                record_fitting_in(conn, device_id, stage, now)
            conn.execute(
                device_commands.insert().values(
                    device_id=device_id,
                    device_type=device.device_type,
                    cmd="filter_replaced",
                    args={"stage": stage},
                    correlation=f"customer-{customer_id}",
                    created_at=now,
                )
            )
            live = conn.execute(
                sa.select(work_orders.c.id).where(
                    work_orders.c.device_id == device_id,
                    work_orders.c.problem_kind
                    == filter_problem(profiles, device.device_type, stage),
                    work_orders.c.state.in_([s.value for s in LIVE if s is not State.IN_PROGRESS]),
                )
            ).scalar_one_or_none()
            if live is not None:
                orders.transition_in(
                    conn,
                    live,
                    State.CANCELLED,
                    actor=f"customer:{customer_id}",
                    reason="the customer replaced the filter themselves",
                    expect=None,
                    now=now,
                )
                cancelled = live
        if shipped is not None:  # the package's shipped filter: that job is done
            Diy(self.db).fitted(
                shipped, by=f"customer:{customer_id}", how="the customer said so", now=now
            )
        return SelfReplaced(device_id, stage, now, cancelled)
