"""`fleetcare orders …`: the work-order queue, dispatch, appointments, SLA, settlement,
KPIs, the parts forecast and predictions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from db.errors import DomainError
from fleetcare.cli.common import console, database, err, run_until_signal, settings, utc_days

app = typer.Typer()
orders = typer.Typer(
    help="Work orders: the queue, dispatch, appointments, SLA, settlement, KPIs, parts.",
    no_args_is_help=True,
)
app.add_typer(orders, name="orders")


@orders.command("list")
def orders_list(
    state: Annotated[
        list[str] | None, typer.Option(help="Only these states (repeat the option).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """The work-order queue, with SLA status and the reason when nobody can take one."""
    from fleetcare.wiring import open_database
    from service.lifecycle import State
    from service.orders import WorkOrders

    try:
        states = {State(x) for x in state} if state else None
    except ValueError:
        err.print(f"state is one of {', '.join(s.value for s in State)}")
        raise typer.Exit(2) from None
    orders = WorkOrders(open_database(settings()))
    table = Table()
    for col in ("#", "device", "problem", "origin", "state", "technician", "due", "SLA", "note"):
        table.add_column(col)
    for o in orders.find(states=states, limit=limit):
        table.add_row(
            str(o.id),
            o.device_id,
            o.problem_kind,
            o.origin.value,
            o.state.value,
            o.technician_id or "-",
            o.due_at.strftime("%Y-%m-%d %H:%M") if o.due_at else "-",
            orders.sla_status(o).value,
            o.unassignable_reason or "",
        )
    console.print(table)


@orders.command("dispatch")
def orders_dispatch(
    every: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="Run again every N seconds until Ctrl-C (the production dispatcher; "
            "`fleetcare serve` runs it so).",
        ),
    ] = None,
) -> None:
    """Assign every open order now (territory, skill, calendar, capacity, parts, butler,
    load); print who got what and why the rest could not be assigned. Each pass also
    books the accepted filter replacements of filter-package customers (they do not pick
    a slot), queues filter-package renewal reminders, moves on the jobs an outlet did not
    accept in its hours, and escalates the complaints whose level ran out of time (outlet
    → region → maker). Once a day it also runs the quality early warning over batches and
    firmware (docs/quality.md) and logs each new warning for R&D."""
    from fleetcare.outage import OUTAGE_ERRORS, Outage
    from fleetcare.wiring import open_database
    from service.appointments import Appointments
    from service.complaints import Complaints
    from service.dispatch import Dispatcher
    from service.network import Network
    from service.orders import WorkOrders
    from service.packages import Packages
    from service.quality import QualityWarnings, WarningPolicy

    db = open_database(settings())
    dispatcher, cases, sold = Dispatcher(db), Complaints(db), Packages(db)
    appointments = Appointments(WorkOrders(db))
    checked_on: list[date] = []  # the day the quality warning last ran
    window = WarningPolicy().window_months

    def quality_check() -> None:
        now = datetime.now(UTC)
        if checked_on and checked_on[-1] == now.date():
            return
        for w in QualityWarnings(db).check(now):
            logging.getLogger("fleetcare.quality").warning(
                "quality warning",
                extra={"kv": {"by": w.by, "group": w.group, "month": w.month,
                              "failures": w.failures, "peers_failures": w.peers_failures,
                              "rate_ratio": w.rate_ratio, "p_value": w.p_value}},
            )  # fmt: skip
            times = f", {w.rate_ratio:.1f} × their rate" if w.rate_ratio is not None else ""
            console.print(
                f"quality warning: {w.by} {w.group} fails above its peers ({w.failures} "
                f"failures in {window} months against {w.peers_failures} among its peers{times})"
            )
        checked_on.append(now.date())

    def once(quiet: bool = False) -> None:
        quality_check()
        for case in cases.escalate_due():
            console.print(f"complaint #{case.id} escalated to the {case.level}")
        for order_id in Network(db).expire():
            console.print(f"#{order_id}: its outlet did not answer in time; it moved on")
        reminded = sold.remind_renewals()
        if reminded:
            console.print(f"renewal reminders for {len(reminded)} filter package(s)")
        for order_id, slot in appointments.book_filter_packages().items():
            console.print(
                f"#{order_id} booked for {slot.start:%Y-%m-%d %H:%M} UTC (filter package)"
            )
        report = dispatcher.run()
        if quiet and not (report.assigned or report.unassignable):
            return
        console.print(f"assigned {report.assigned} in {report.seconds:.2f} s")
        for order_id, why in sorted(report.unassignable.items()):
            console.print(f"  #{order_id}: {why}")

    if every is None:
        once()
        return
    period = every

    async def loop(stop: asyncio.Event) -> None:
        log = logging.getLogger("fleetcare.dispatch")
        log.info("dispatching", extra={"kv": {"every_s": period}})
        outage = Outage(log, "dispatch round")
        while not stop.is_set():
            try:
                await asyncio.to_thread(once, True)
            except OUTAGE_ERRORS as exc:  # the next round finds what this one could not
                outage.failed(exc)
            else:
                outage.ok()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)

    run_until_signal(loop)


@orders.command("sla")
def orders_sla() -> None:
    """Live orders at risk (due within 4 h) or breached, most overdue first."""
    from fleetcare.wiring import open_database
    from service.orders import WorkOrders

    board = WorkOrders(open_database(settings())).sla_board()
    if not board:
        console.print("nothing at risk or breached")
    for o, status in board:
        due = o.due_at.strftime("%Y-%m-%d %H:%M UTC") if o.due_at else "-"
        console.print(
            f"#{o.id} {status.value:9} due {due}  {o.device_id} {o.problem_kind} ({o.state.value})"
        )


@orders.command("import-shop-orders")
def orders_import_shop_orders(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON or CSV.")],
) -> None:
    """Shops' orders for installations: each registers the unit, its owner and site and
    opens the installation job. A JSON list of orders, or a CSV with one per row
    (columns: shop_id, shop_order_id, customer_name, phone, device_type, model, serial,
    purchased_on, territory_id, address, preferred_time). Safe to run again: an order
    already received is the same job. A bad row is reported with its line; the others
    are received; the exit code is 1 if any row was bad.

    e.g. fleetcare orders import-shop-orders shop-orders-2026-12-07.csv"""
    import csv

    from pydantic import ValidationError

    from fleetcare.wiring import open_database
    from service.orders import WorkOrders
    from service.shop_orders import ShopOrderIn, ShopOrders

    text = file.read_text(encoding="utf-8-sig")
    if file.suffix.lower() == ".json":
        doc = json.loads(text)
        raw = doc.get("shop_orders", []) if isinstance(doc, dict) else doc
        rows = list(enumerate(raw, 1))
    else:  # the header is line 1; empty cells are absent
        reader = csv.DictReader(text.splitlines())
        rows = [(n, {k: v for k, v in r.items() if v}) for n, r in enumerate(reader, 2)]
    shops = ShopOrders(WorkOrders(open_database(settings())))
    bad = 0
    for line, row in rows:
        try:
            got = shops.receive(ShopOrderIn.model_validate(row))
        except (ValidationError, DomainError) as exc:
            bad += 1
            err.print(f"line {line}: {' '.join(str(exc).split())[:300]}", markup=False)
            continue
        said = "job" if got.created else "received before: job"
        console.print(
            f"line {line}: {row.get('shop_id')}/{row.get('shop_order_id')} → {said} "
            f"#{got.order.id} ({got.order.state.value}) for {got.device_id}",
            markup=False,
        )
    if bad:
        raise typer.Exit(1)


@orders.command("callbacks")
def orders_callbacks(
    limit: Annotated[int, typer.Option(min=1, help="How many to list.")] = 50,
) -> None:
    """The callback queue: completed jobs waiting for their callback, the longest waiting
    first, with the customer's phone and the calls tried (record a call with
    POST /api/v1/orders/{id}/callback or in the console)."""
    from fleetcare.wiring import open_database
    from service.callbacks import Callbacks
    from service.orders import WorkOrders

    due = Callbacks(WorkOrders(open_database(settings()))).due(limit=limit)
    if not due:
        console.print("no job is waiting for its callback")
    for d in due:
        console.print(
            f"#{d.order_id} done {d.completed_at:%Y-%m-%d %H:%M} UTC  {d.customer_name or '-'} "
            f"{d.phone or '(no phone)'}  {d.problem_kind}  tries {d.attempts}",
            markup=False,
        )


@orders.command("complaints")
def orders_complaints(
    state: Annotated[str, typer.Option(help="open, resolved or all.")] = "open",
    limit: Annotated[int, typer.Option(min=1, help="How many to list.")] = 50,
) -> None:
    """Complaint cases, the most urgent first: level (outlet, region, maker), when that
    level's time runs out, the job, outlet and technician. Resolve one with
    POST /api/v1/complaints/{id}/resolution; `orders dispatch` escalates late ones."""
    from fleetcare.wiring import open_database
    from service.complaints import Complaints

    if state not in ("open", "resolved", "all"):
        err.print(f"--state is open, resolved or all, not {state!r}")
        raise typer.Exit(2)
    found = Complaints(open_database(settings())).find(
        state=None if state == "all" else state, limit=limit
    )
    if not found:
        console.print(f"no {'' if state == 'all' else state + ' '}complaints")
    for c in found:
        about = f"job #{c.order_id}" if c.order_id else f"device {c.device_id}"
        when = f"due {c.due_at:%Y-%m-%d %H:%M} UTC" if c.open else f"resolved {c.resolution}"
        console.print(
            f"#{c.id} {c.state} at {c.level}  {about}  outlet {c.outlet_id or '-'}  "
            f"technician {c.technician_id or '-'}  {when}: {c.description}",
            markup=False,
        )


@orders.command("warranty-claims")
def orders_warranty_claims(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")],
    end: Annotated[str, typer.Option("--to", help="Day after the last, YYYY-MM-DD (UTC).")],
    items: Annotated[bool, typer.Option("--items", help="One line per bill line.")] = False,
    output: Annotated[Path | None, typer.Option(help="Write CSV here (default: print).")] = None,
) -> None:
    """What the maker owes each outlet for work under warranty in a period (CSV): the
    jobs, parts and labour the bills put on the maker.

    e.g. fleetcare orders warranty-claims --from 2026-11-01 --to 2026-12-01 --items"""

    from fleetcare.wiring import open_database
    from service.csvout import dataclass_csv
    from service.warranty import ClaimLine, ClaimRow, claim_lines, claims

    a, b = utc_days(start, end)
    lines = claim_lines(open_database(settings()), a, b)
    text = dataclass_csv(ClaimLine, lines) if items else dataclass_csv(ClaimRow, claims(lines))
    if output is None:
        console.print(text, end="", markup=False, highlight=False)
    else:
        output.write_text(text)
        console.print(f"wrote {output}")


@orders.command("settlement")
def orders_settlement(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")],
    end: Annotated[str, typer.Option("--to", help="Day after the last, YYYY-MM-DD (UTC).")],
    output: Annotated[Path | None, typer.Option(help="Write CSV here (default: print).")] = None,
    items: Annotated[
        bool, typer.Option("--items", help="One line per job, with why it is held.")
    ] = False,
    unreachable: Annotated[
        str,
        typer.Option(
            help="A customer agents could not reach after the tries: 'pay' or 'hold' the job."
        ),
    ] = "pay",
    tries: Annotated[int, typer.Option(min=1, help="Unanswered calls before unreachable.")] = 3,
) -> None:
    """Commission per outlet and technician for a period (CSV). A job's commission is
    payable once its callback found the customer satisfied (or unreachable, if the policy
    pays); a not-satisfied callback holds it until the complaint is resolved (upheld:
    forfeit; not upheld: released). With --items, every job and the reason.

    e.g. fleetcare orders settlement --from 2026-11-01 --to 2026-12-01 --items"""

    from fleetcare.wiring import open_database
    from service.callbacks import CallbackPolicy
    from service.settlement import Settlement, items_csv, settlement_csv

    a, b = utc_days(start, end)
    if unreachable not in ("pay", "hold"):
        err.print(f"--unreachable is 'pay' or 'hold', not {unreachable!r}")
        raise typer.Exit(2)
    policy = CallbackPolicy(tries=tries, unreachable_pays=unreachable == "pay")
    settlement = Settlement(open_database(settings()), policy)
    if items:
        text = items_csv(settlement.items(a, b))
    else:
        text = settlement_csv(settlement.statement(a, b))
    if output is None:
        console.print(text, end="", markup=False, highlight=False)
    else:
        output.write_text(text)
        console.print(f"wrote {output}")


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
    from db.errors import DomainError
    from service.appointments import Appointments
    from service.orders import WorkOrders

    orders_ = WorkOrders(database())
    appointments = Appointments(orders_)
    try:
        slots = (
            appointments.offer(order_id, count=count)
            if offer
            else appointments.free_slots(order_id)
        )
    except DomainError as e:
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
    from db.errors import DomainError
    from service.appointments import Appointments
    from service.orders import WorkOrders

    try:
        start = datetime.fromisoformat(at)
    except ValueError:
        err.print(f"--at is an ISO time with offset, e.g. 2026-11-25T10:00+08:00, not {at!r}")
        raise typer.Exit(2) from None
    try:
        o = Appointments(WorkOrders(database())).confirm(order_id, start, actor=actor)
    except DomainError as e:
        err.print(str(e))
        raise typer.Exit(1) from None
    console.print(f"#{o.id} {o.state.value}: {o.scheduled_start} → {o.scheduled_end}")


@orders.command("book-packages")
def orders_book_packages() -> None:
    """Book accepted filter replacements of filter-package customers in their first
    free slot; the customer is told and can move it."""
    from service.appointments import Appointments
    from service.orders import WorkOrders

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

    from service.kpis import GroupBy, Period, kpis, kpis_csv

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
    output: Annotated[Path | None, typer.Option(help="Write CSV here (default: print).")] = None,
) -> None:
    """Expected parts demand per outlet × SKU × week, from open orders and predicted
    filter exhaustions, with what is on hand and the shortfall (CSV)."""
    from service.parts_forecast import forecast, forecast_csv

    _out(forecast_csv(forecast(database(), weeks=weeks, by_territory=by_territory)), output)


@orders.command("predictions")
def orders_predictions(
    file: Annotated[Path, typer.Argument(help="JSON list or CSV with a header.")],
) -> None:
    """Load predicted filter exhaustions (device_id, stage, exhausted_at ISO with offset,
    probability 0–1, source): what the parts forecast counts. All or nothing."""
    import csv

    from fleet.predictions import BadPrediction, PredictedExhaustion, Predictions

    try:
        text = file.read_text()
    except OSError as e:
        err.print(f"cannot read {file}: {e.strerror}")
        raise typer.Exit(2) from None
    raw: list[dict[str, Any]]
    try:
        raw = (
            json.loads(text) if file.suffix == ".json" else list(csv.DictReader(text.splitlines()))
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


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"
