"""`fleetcare orders …` for appointments, KPIs and the parts forecast, and `fleetcare
notify …` for the customer-message outbox. Registered on the main command by `cli.py`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fleetcare.settings import Settings

console = Console()
err = Console(stderr=True)


class By(StrEnum):
    ALL = "all"
    OUTLET = "outlet"
    TERRITORY = "territory"
    TECHNICIAN = "technician"


class Every(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def _day(text: str, option: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        err.print(f"{option} is a date, YYYY-MM-DD (e.g. 2026-11-01), not {text!r}")
        raise typer.Exit(2) from None


def _out(text: str, output: Path | None) -> None:
    if output is None:
        console.print(text, end="", markup=False, highlight=False)
    else:
        output.write_text(text)
        console.print(f"wrote {output}")


def register(orders: typer.Typer, root: typer.Typer, settings: Callable[[], Settings]) -> None:
    from workorders.db import Database

    def database() -> Database:
        from fleetcare.wiring import open_database

        return open_database(settings())

    # -- appointments ------------------------------------------------------------------
    @orders.command("slots")
    def orders_slots(
        order_id: Annotated[int, typer.Argument(help="The work order.")],
        offer: Annotated[
            bool, typer.Option(help="Offer them to the customer (queues the message).")
        ] = False,
        count: Annotated[int, typer.Option(min=1, max=10, help="Slots to offer.")] = 3,
    ) -> None:
        """Free visit slots for an accepted order: in the technician's working hours,
        outside the customer's quiet hours, clear of their other visits. With --offer, a
        choice of days within the SLA goes to the customer."""
        from workorders.appointments import Appointments
        from workorders.errors import WorkordersError
        from workorders.orders import WorkOrders

        orders_ = WorkOrders(database())
        appointments = Appointments(orders_)
        try:
            slots = (
                appointments.offer(order_id, count=count)
                if offer
                else appointments.free_slots(order_id)
            )
        except WorkordersError as e:
            err.print(str(e))
            raise typer.Exit(1) from None
        order = orders_.get(order_id)
        for s in slots:
            late = "" if s.before_due else "  (after the SLA due time)"
            console.print(f"{s.start.isoformat()}  {s.end:%H:%M} UTC{late}")
        if offer:
            console.print(f"offered {len(slots)} slots to {order.customer_id}")

    @orders.command("book")
    def orders_book(
        order_id: Annotated[int, typer.Argument(help="The work order.")],
        at: Annotated[
            str, typer.Option(help="Visit start with its offset, e.g. 2026-11-25T10:00+08:00.")
        ],
        actor: Annotated[str, typer.Option(help="Who booked it (audit trail).")] = "ops",
    ) -> None:
        """Book (or move) the visit: refused, with the reason, unless the time is free."""
        from workorders.appointments import Appointments
        from workorders.errors import WorkordersError
        from workorders.orders import WorkOrders

        try:
            start = datetime.fromisoformat(at)
        except ValueError:
            err.print(f"--at is an ISO time with offset, e.g. 2026-11-25T10:00+08:00, not {at!r}")
            raise typer.Exit(2) from None
        try:
            o = Appointments(WorkOrders(database())).confirm(order_id, start, actor=actor)
        except WorkordersError as e:
            err.print(str(e))
            raise typer.Exit(1) from None
        console.print(f"#{o.id} {o.state.value}: {o.scheduled_start} → {o.scheduled_end}")

    @orders.command("book-packages")
    def orders_book_packages() -> None:
        """Book accepted filter replacements of filter-package customers in their first
        free slot; the customer is told and can move it."""
        from workorders.appointments import Appointments
        from workorders.orders import WorkOrders

        booked = Appointments(WorkOrders(database())).book_filter_packages()
        for order_id, slot in booked.items():
            console.print(f"#{order_id} booked {slot.start.isoformat()}")
        console.print(f"booked {len(booked)}")

    # -- KPIs and parts ----------------------------------------------------------------
    @orders.command("kpis")
    def orders_kpis(
        start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
        end: Annotated[str, typer.Option("--to", help="Day after the last, YYYY-MM-DD.")],
        by: Annotated[By, typer.Option(help="Group by.")] = By.OUTLET,
        period: Annotated[Every, typer.Option(help="Bucket by.")] = Every.WEEK,
        timezone: Annotated[str, typer.Option(help="Time zone the periods are in.")] = "UTC",
        output: Annotated[Path | None, typer.Option(help="Write CSV here.")] = None,
    ) -> None:
        """First-time fix, dispatch first-time success, parts fill rate, SLA compliance,
        hours to dispatch and to complete, rating, NPS, complaint rate and resolved
        online, per group and period. See docs/workorders.md for each definition."""
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from workorders.kpis import GroupBy, Period, kpis, kpis_csv

        a, b = _day(start, "--from"), _day(end, "--to")
        if b <= a:
            err.print("--to must be after --from")
            raise typer.Exit(2)
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            err.print(f"unknown time zone {timezone!r}: use an IANA name like Asia/Shanghai")
            raise typer.Exit(2) from None
        rows = kpis(
            database(), a, b, by=GroupBy(by.value), period=Period(period.value), timezone=timezone
        )
        if output is not None:
            _out(kpis_csv(rows), output)
            return
        table = Table(title=f"KPIs {start} – {end}, by {by.value} and {period.value}")
        cols = (
            "group",
            "period",
            "opened",
            "done",
            "FTF",
            "1st offer",
            "fill",
            "SLA",
            "h→disp",
            "h→done",
            "rating",
            "NPS",
            "complaints",
            "online",
        )
        for col in cols:
            table.add_column(col, justify="left" if col in ("group", "period") else "right")
        for r in rows:
            table.add_row(
                r.group, str(r.period), str(r.opened), str(r.completed),
                _pct(r.first_time_fix), _pct(r.dispatch_first_time), _pct(r.parts_fill_rate),
                _pct(r.sla_compliance), _num(r.hours_to_dispatch), _num(r.hours_to_complete),
                _num(r.mean_rating), _num(r.nps), _pct(r.complaint_rate), _pct(r.resolved_online),
            )  # fmt: skip
        console.print(table)

    @orders.command("parts-forecast")
    def orders_parts_forecast(
        weeks: Annotated[int, typer.Option(min=1, max=52, help="Weeks ahead.")] = 8,
        by_territory: Annotated[bool, typer.Option(help="Split outlets by territory.")] = False,
        output: Annotated[
            Path | None, typer.Option(help="Write CSV here (default: print).")
        ] = None,
    ) -> None:
        """Expected parts demand per outlet × SKU × week, from open orders and predicted
        filter exhaustions, with what is on hand and the shortfall (CSV)."""
        from workorders.parts_forecast import forecast, forecast_csv

        _out(forecast_csv(forecast(database(), weeks=weeks, by_territory=by_territory)), output)

    @orders.command("predictions")
    def orders_predictions(
        file: Annotated[Path, typer.Argument(help="JSON list or CSV with a header.")],
    ) -> None:
        """Load predicted filter exhaustions (device_id, stage, exhausted_at ISO with offset,
        probability 0–1, source): what the parts forecast counts. All or nothing."""
        import csv

        from workorders.parts_forecast import BadPrediction, PredictedExhaustion, Predictions

        try:
            text = file.read_text()
        except OSError as e:
            err.print(f"cannot read {file}: {e.strerror}")
            raise typer.Exit(2) from None
        raw: list[dict[str, Any]]
        try:
            raw = (
                json.loads(text)
                if file.suffix == ".json"
                else list(csv.DictReader(text.splitlines()))
            )
            items = [
                PredictedExhaustion(
                    device_id=str(r["device_id"]),
                    stage=str(r["stage"]),
                    exhausted_at=datetime.fromisoformat(str(r["exhausted_at"])),
                    probability=float(r.get("probability") or 1.0),
                    source=str(r.get("source") or file.name),
                )
                for r in raw
            ]
        except (ValueError, KeyError, TypeError) as e:
            err.print(f"{file}: {e!s}: each row needs device_id, stage, exhausted_at")
            raise typer.Exit(2) from None
        try:
            n = Predictions(database()).record(items)
        except BadPrediction as e:
            err.print(f"{file}: {e}; nothing was stored")
            raise typer.Exit(2) from None
        console.print(f"stored {n} predictions")

    # -- notifications -----------------------------------------------------------------
    notify = typer.Typer(
        help="Customer messages: the outbox (channel by preference, quiet hours, weekly "
        "cap) and its delivery.",
        no_args_is_help=True,
    )
    root.add_typer(notify, name="notify")

    @notify.command("send")
    def notify_send(
        once: Annotated[bool, typer.Option(help="Send what is due now, then exit.")] = False,
        interval: Annotated[float, typer.Option(min=0.5, help="Seconds between scans.")] = 5.0,
    ) -> None:
        """Deliver due messages through the webhook (FLEETCARE_NOTIFY__WEBHOOK_URL) or, without
        one, the log. Runs until Ctrl-C unless --once."""
        from fleetcare.cli import _run_until_signal
        from fleetcare.notifier import make_outbox, run_notifier

        s = settings()
        db = database()

        async def go(stop: asyncio.Event) -> None:
            outbox, webhook = make_outbox(db, s.notify)
            try:
                if once:
                    r = await outbox.deliver()
                    console.print(
                        f"sent {r.sent}, held for quiet hours {r.held}, suppressed by the "
                        f"weekly cap {r.suppressed}, retrying {r.retrying}, failed {r.failed}"
                    )
                else:
                    where = s.notify.webhook_url or "the log"
                    console.print(f"delivering customer messages to {where}; Ctrl-C to stop")
                    await run_notifier(outbox, stop, interval_s=interval)
            finally:
                if webhook is not None:
                    await webhook.aclose()

        _run_until_signal(go)

    @notify.command("list")
    def notify_list(
        status: Annotated[
            str | None, typer.Option(help="pending, sent, suppressed or failed.")
        ] = None,
        customer: Annotated[str | None, typer.Option(help="One customer.")] = None,
        order: Annotated[int | None, typer.Option(help="One work order.")] = None,
        limit: Annotated[int, typer.Option(min=1)] = 50,
    ) -> None:
        """The outbox, newest first, with why a message is held, suppressed or failed."""
        from workorders.notifications import Outbox

        if status not in (None, "pending", "sent", "suppressed", "failed"):
            err.print("--status is one of pending, sent, suppressed, failed")
            raise typer.Exit(2)
        rows = Outbox(database(), {}).messages(
            customer_id=customer, order_id=order, status=status, limit=limit
        )
        table = Table()
        for col in ("#", "customer", "order", "kind", "status", "channel", "not before", "note"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                str(r["id"]), r["customer_id"], str(r["order_id"] or "-"), r["kind"],
                r["status"], r["channel"] or "-", f"{r['not_before']:%Y-%m-%d %H:%M}",
                r["note"] or "",
            )  # fmt: skip
        console.print(table)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"
