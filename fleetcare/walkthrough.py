"""The demo's walk through the service loop, on the live demo fleet: the first job the
rules propose (a filter one if there is one) goes proposed → approved → dispatched →
accepted → scheduled → on site → completed (parts, serial, bill) → the device told over
MQTT → rated and settled.

The technician reports what the unit really had (the simulator's ground truth stands in
for the diagnosis on site), so a fixed fault reaches the device as `repair`. If the
rules have proposed nothing within `wait_s` (a tiny fleet), the walk opens a filter job
the way they would: origin `auto`, with the telemetry as evidence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import sqlalchemy as sa

from db.database import Database
from db.tables import work_orders
from device_sim.fleet import Fleet
from fleet.commands import CommandOutbox
from fleetcare.commands import send_pending
from fleetcare.registry_gen import generate
from service.appointments import Appointments
from service.callbacks import Call, Callbacks
from service.catalog import in_force
from service.completion import Completion, Fee, visit_report
from service.dispatch import Dispatcher
from service.diy import Diy
from service.intake import Channel, Intake, Report
from service.lifecycle import Origin, State
from service.notifications import OutboundMessage, Outbox
from service.orders import OrderRequest, WorkOrder, WorkOrders
from service.packages import Fulfilment, Packages
from service.registry import ServiceRegistry, parse_doc
from service.self_service import SelfService
from service.settlement import Settlement
from telemetry.connection import MqttSettings
from telemetry.store import TelemetryStore
from telemetry.topics import TopicScheme

WAIT_S = 120.0  # wall seconds the walk waits for the rules' first job


@dataclass(frozen=True)
class Walked:
    """What the walk told a device to do, to watch it happen."""

    device_id: str
    fault: str | None  # repaired; None: a filter was fitted


async def _first_proposed(db: Database, wait_s: float) -> WorkOrder | None:
    """The oldest job the rules proposed, a filter job first; None after `wait_s`."""
    wo = work_orders.c
    q = (
        sa.select(work_orders)
        .where(wo.state == State.PROPOSED.value, wo.origin == Origin.AUTO.value)
        .order_by(wo.problem_kind.not_like("filter_replacement%"), wo.id)
        .limit(1)
    )

    def first() -> WorkOrder | None:
        with db.engine.connect() as conn:
            row = conn.execute(q).first()
        return WorkOrder.from_row(row) if row is not None else None

    deadline = asyncio.get_running_loop().time() + wait_s
    while (found := await asyncio.to_thread(first)) is None:
        if asyncio.get_running_loop().time() > deadline:
            return None
        await asyncio.sleep(1.0)
    return found


def _yuan(cents: int) -> str:
    return f"¥{cents / 100:,.2f}"


async def walk_service_loop(
    *,
    db: Database,
    fleet: Fleet,
    store: TelemetryStore,
    mqtt: MqttSettings,
    photo_dir: Path,
    say: Callable[[str], Any],
    approval: Callable[[int], Awaitable[State]] | None = None,
    wait_s: float = WAIT_S,
) -> Walked | None:
    """Run the loop once; returns what the device was told (to watch it happen).
    With `approval`, a person decides on the proposed job (in the ops console) and the
    walk waits for it; without, the walk approves it as ops would."""
    rows = generate(fleet)
    await asyncio.to_thread(ServiceRegistry(db).load, parse_doc(rows))
    say(
        f"registry: {len(rows['outlets'])} outlets, {len(rows['technicians'])} technicians, "
        f"{len(rows['customers'])} customers for the demo fleet"
    )
    orders = WorkOrders(db)
    o = await _first_proposed(db, wait_s)
    if o is None:
        say(f"the rules proposed no job within {wait_s:g} s: opening one as they would")
        o = await _open_by_hand(orders, rows, store)
    evidence = await asyncio.to_thread(orders.evidence, o.id)
    why = ", ".join(sorted({e["source"] for e in evidence})) or o.origin.value
    due = (
        f"due by {o.due_at:%Y-%m-%d %H:%M} UTC (its own deadline)"
        if o.due_at
        else "its SLA clock starts at approval"
    )
    say(f"#{o.id} proposed (auto) by {why} for {o.device_id}: {o.title}; {due}")
    # the walk plays ops, technician and customer in the fleet's world: on its clock, as
    # the rules that opened the job were (a person in the console acts on the wall clock)
    now = max(datetime.fromtimestamp(fleet.t, UTC), o.updated_at)
    dispatcher = Dispatcher(db)
    if approval is None:
        await asyncio.to_thread(
            orders.transition,
            o.id,
            State.OPEN,
            actor="ops:demo",
            reason="telemetry confirms it",
            now=now,
        )
        approved = await asyncio.to_thread(orders.get, o.id)
        due = f"{approved.due_at:%Y-%m-%d %H:%M} UTC" if approved.due_at else "-"
        say(f"#{o.id} approved by service ops; SLA due {due}")
    else:
        say(f"#{o.id} waits for service ops: approve it (or reject it) in the console")
        decided = await approval(o.id)
        if decided not in (State.OPEN, State.ASSIGNED):
            say(f"#{o.id} is {decided.value} in the console: the walk-through ends here")
            return None
        history = await asyncio.to_thread(orders.history, o.id)
        by = next(e.actor for e in history if e.from_state is State.PROPOSED)
        now = max(now, history[-1].at)
        say(f"#{o.id} approved in the console by {by}")
    if (await asyncio.to_thread(orders.get, o.id)).state is State.OPEN:
        report = await asyncio.to_thread(dispatcher.run, [o.id], now=now)
        if o.id in report.unassignable:
            say(f"#{o.id} cannot be dispatched: {report.unassignable[o.id]}")
            return None
    o = await asyncio.to_thread(orders.get, o.id)
    tech, device = o.technician_id or "", o.device_id
    serial = next(d["serial"] for d in rows["devices"] if d["id"] == device)
    why = (await asyncio.to_thread(orders.history, o.id))[-1].reason
    say(f"#{o.id} dispatched to {tech} ({why})")
    await asyncio.to_thread(dispatcher.accept, o.id, tech, now=now)
    appointments = Appointments(orders, lead=timedelta(0))
    offered = await asyncio.to_thread(appointments.offer, o.id, now=now)
    customer_tz = next(c["timezone"] for c in rows["customers"] if c["id"] == o.customer_id)
    choice = ", ".join(
        s.label(customer_tz) + ("" if s.before_due else " (after the SLA)") for s in offered
    )
    say(f"#{o.id} accepted by {tech}; slots offered to the customer: {choice}")
    picked = ([s for s in offered if s.before_due] or offered)[-1]
    await asyncio.to_thread(
        appointments.confirm, o.id, picked.start, actor=f"customer:{o.customer_id}", now=now
    )
    say(f"#{o.id} the customer picked {picked.label(customer_tz)}")
    await asyncio.to_thread(
        appointments.on_the_way, o.id, tech, picked.start, now=picked.start - timedelta(hours=1)
    )
    await asyncio.to_thread(
        orders.transition, o.id, State.IN_PROGRESS, actor=tech, now=picked.start
    )
    filters = o.problem_kind.startswith("filter_replacement")
    fault = None if filters else fleet.fault_of(device)  # what the technician finds
    done, bill = await asyncio.to_thread(
        Completion(orders, photo_dir).complete,
        o.id,
        visit_report(
            o,
            tech,
            serial,
            fault,
            profiles=in_force(db),
            fees=[Fee("Call-out", 4900)],
            notes="old filter grey; housing cleaned" if filters else f"found: {fault or 'nothing'}",
        ),
        now=picked.start + timedelta(hours=1),  # the demo's clock follows the visit
    )
    items = ", ".join(
        f"{x.item} {_yuan(x.cents)}" + ("" if x.payer == "customer" else f" ({x.payer} pays)")
        for x in bill.lines
    )
    say(
        f"#{o.id} completed on site: serial {serial} confirmed; "
        f"bill {items} = {_yuan(bill.total_cents)}; the customer pays "
        f"{_yuan(bill.customer_cents)} ({bill.cover})"
    )
    addr = mqtt.address()
    async with aiomqtt.Client(addr.host, addr.port, identifier="fleetcare-demo-commands") as client:
        sent = await send_pending(CommandOutbox(db), client, TopicScheme(mqtt.topic_prefix))
    told = "filter_replaced" if filters else f"repair {fault}" if fault else "nothing to do"
    say(f"#{o.id} the device is told: {sent} command(s) on {device}'s cmd topic ({told})")
    rated_at = picked.start + timedelta(hours=3)
    closed = await asyncio.to_thread(Callbacks(orders).rate, o.id, 5, "on time, tidy", now=rated_at)
    say(
        f"#{o.id} rated 5/5 by the customer → {closed.state.value}; commission "
        f"{_yuan(done.commission_cents or 0)} payable to {tech}"
    )
    # what the customer received, as the outbox delivered it by then (quiet hours and
    # the weekly cap apply)
    inbox = _Inbox()
    delivered = await Outbox(db, {"*": inbox}).deliver(rated_at)
    say(f"#{o.id} messages to the customer ({delivered.held} held for quiet hours):")
    for m in inbox.got:
        say(f"  → {m.channel}: {m.text}")
    called = await _call_centre(orders, fleet, device, say)
    await _unhappy_callback(orders, called, rows, photo_dir, say)
    await _package_replacement(orders, rows, photo_dir, say)
    await _diy_replacement(orders, rows, say)
    return Walked(device, fault) if filters or fault else None


async def _call_centre(
    orders: WorkOrders, fleet: Fleet, not_this: str, say: Callable[[str], Any]
) -> WorkOrder:
    """A customer calls: the agent opens a job for them, and a second call about the same
    problem is added to it instead of opening another."""
    caller = next(d for d in fleet.ids if d != not_this)
    intake = Intake(orders, await asyncio.to_thread(in_force, orders.db))
    report = Report(
        device_id=caller,
        problem_kind="inspection",
        channel=Channel.PHONE,
        reporter="agent:demo",
        description="the customer says it smells of burning at high speed",
        contact="the customer, on the phone",
    )
    first = await asyncio.to_thread(intake.report, report)
    o = first.order
    if first.created:
        say(
            f"#{o.id} opened by the call centre for {caller} ({o.origin.value}, "
            f"{o.state.value} at once, no review): {o.title}; the customer is told now"
        )
    else:  # left live by an earlier run of the demo
        say(f"#{o.id} the call centre finds a live job for {caller}: the call is added to it")
    again = await asyncio.to_thread(intake.report, report)
    said = "a second job" if again.created else "added to it, not a second job"
    say(f"#{again.order.id} the customer calls again about it: {said}")
    return again.order


async def _unhappy_callback(
    orders: WorkOrders,
    o: WorkOrder,
    rows: dict[str, list[dict[str, Any]]],
    photo_dir: Path,
    say: Callable[[str], Any],
) -> None:
    """The call-centre job is done, but the callback finds the customer not satisfied:
    a complaint opens and the technician's commission is held until it is resolved."""
    if o.state is not State.OPEN:
        return  # left by an earlier run of the demo, already on its way
    db = orders.db
    tech = await _dispatched(orders, o.id, say)
    if tech is None:
        return
    for to in (State.SCHEDULED, State.IN_PROGRESS):
        await asyncio.to_thread(orders.transition, o.id, to, actor=tech)
    serial = next(d["serial"] for d in rows["devices"] if d["id"] == o.device_id)
    done, _ = await asyncio.to_thread(
        Completion(orders, photo_dir).complete,
        o.id,
        visit_report(o, tech, serial, None, profiles=in_force(db), notes="found nothing"),
    )
    call = await asyncio.to_thread(
        Callbacks(orders).call,
        o.id,
        Call.NOT_SATISFIED,
        agent="agent:demo",
        comment="still smells; nobody explained why",
    )
    case = call.complaint
    held = next(
        (i for i in Settlement(db).items(done.completed_at or o.created_at, datetime.now(UTC))
         if i.order_id == o.id),
        None,
    )  # fmt: skip
    if case is not None and held is not None:
        say(
            f"#{o.id} done by {tech}; the callback finds the customer not satisfied → "
            f"complaint #{case.id} at the {case.level} (due "
            f"{case.due_at:%Y-%m-%d %H:%M} UTC); commission {_yuan(held.cents)} "
            f"{held.status.value}: {held.reason}"
        )


async def _dispatched(orders: WorkOrders, order_id: int, say: Callable[[str], Any]) -> str | None:
    """Dispatch the job now and have its technician accept it; None (said) if nobody can."""
    dispatcher = Dispatcher(orders.db)
    report = await asyncio.to_thread(dispatcher.run, [order_id])
    if order_id in report.unassignable:
        say(f"#{order_id} cannot be dispatched: {report.unassignable[order_id]}")
        return None
    tech = (await asyncio.to_thread(orders.get, order_id)).technician_id or ""
    await asyncio.to_thread(dispatcher.accept, order_id, tech)
    return tech


async def _package_replacement(
    orders: WorkOrders,
    rows: dict[str, list[dict[str, Any]]],
    photo_dir: Path,
    say: Callable[[str], Any],
) -> None:
    """A filter-package customer's replacement: open without review, booked without the
    customer picking, and nothing to pay (the package covers filter and fitting)."""
    packaged = {p["device_id"] for p in rows.get("packages", [])}
    device = next(
        (d for d in rows["devices"] if d["device_type"] == "purifier" and d["id"] in packaged),
        None,
    )
    if device is None:
        return
    request = OrderRequest(
        device_id=device["id"],
        problem_kind="filter_replacement",
        origin=Origin.AUTO,
        source="demo:filter_life",
        title="Purifier filter nearly spent",
    )
    o = (await asyncio.to_thread(orders.open_or_attach, request)).order
    if o.state is not State.OPEN:
        return  # left further along by an earlier run of the demo
    say(
        f"#{o.id} filter job for {device['id']}, whose customer has a filter package: "
        "open at once, no review"
    )
    db = orders.db
    tech = await _dispatched(orders, o.id, say)
    if tech is None:
        return
    slot = (await asyncio.to_thread(Appointments(orders).book_filter_packages)).get(o.id)
    if slot is None:
        say(f"#{o.id} has no free slot before its deadline yet")
        return
    await asyncio.to_thread(orders.transition, o.id, State.IN_PROGRESS, actor=tech, now=slot.start)
    _, bill = await asyncio.to_thread(
        Completion(orders, photo_dir).complete,
        o.id,
        visit_report(
            o, tech, device["serial"], None, profiles=in_force(db), fees=[Fee("Call-out", 4900)]
        ),
        now=slot.start + timedelta(hours=1),
    )
    say(
        f"#{o.id} booked for {slot.start:%Y-%m-%d %H:%M} UTC without the customer picking; "
        f"done by {tech}: bill {_yuan(bill.total_cents)}, the customer pays "
        f"{_yuan(bill.customer_cents)} ({bill.cover})"
    )


async def _diy_replacement(
    orders: WorkOrders, rows: dict[str, list[dict[str, Any]]], say: Callable[[str], Any]
) -> None:
    """A package taken do-it-yourself: the filter is shipped instead of a visit, and the
    customer's "I fitted it" in the app closes the job with nothing to pay."""
    db = orders.db
    taken = {o.device_id for o in await asyncio.to_thread(orders.find, limit=10_000)}
    purifiers = {d["id"] for d in rows["devices"] if d["device_type"] == "purifier"}
    sale = next(
        (p for p in rows.get("packages", [])
         if p["device_id"] in purifiers and p["device_id"] not in taken),
        None,
    )  # fmt: skip
    if sale is None:
        return
    sold = Packages(db)
    [package] = await asyncio.to_thread(sold.find, device_ids=[sale["device_id"]])
    await asyncio.to_thread(sold.change, package.id, fulfilment=Fulfilment.DIY)
    request = OrderRequest(
        device_id=package.device_id,
        problem_kind="filter_replacement",
        origin=Origin.AUTO,
        source="demo:filter_life",
        title="Purifier filter nearly spent",
    )
    o = (await asyncio.to_thread(orders.open_or_attach, request)).order
    if o.state is not State.OPEN or o.fulfilment != "diy":
        return
    diy = Diy(db)
    await asyncio.to_thread(diy.ship, o.id, carrier="SF Express", tracking="SF0000001", by="ops")
    stages = tuple(c.stage for c in in_force(db).profile("purifier").doc.consumables)
    customer = package.customer_id
    await asyncio.to_thread(
        SelfService(db).replaced_filter, package.device_id, stages[0],
        stages=stages, customer_id=customer,
    )  # fmt: skip
    done = await asyncio.to_thread(orders.get, o.id)
    say(
        f"#{o.id} diy filter-package job for {package.device_id}: no technician sent; the "
        f"filter shipped (SF Express SF0000001), the customer said it is fitted, and the job "
        f"is {done.state.value}: the customer pays {_yuan(done.customer_cents or 0)}"
    )


async def _open_by_hand(
    orders: WorkOrders, rows: dict[str, list[dict[str, Any]]], store: TelemetryStore
) -> WorkOrder:
    """A purifier's filter job, opened as the rules would: origin auto, with evidence (for
    a customer without a filter package, whose job waits for review)."""
    packaged = {p["device_id"] for p in rows.get("packages", [])}
    device = next(
        d["id"]
        for d in rows["devices"]
        if d["device_type"] == "purifier" and d["id"] not in packaged
    )
    latest = (await store.latest([device])).get(device)
    evidence = dict(latest.metrics) if latest else {}
    request = OrderRequest(
        device_id=device,
        problem_kind="filter_replacement",
        origin=Origin.AUTO,
        source="demo:filter_life",
        title="Purifier filter nearly spent",
        evidence={k: evidence.get(k) for k in ("filter_life_pct", "motor_current_ma", "pm25")},
    )
    opened = await asyncio.to_thread(orders.open_or_attach, request)
    # one further along was left by an interrupted demo: start that over
    if not opened.created and opened.order.state is not State.PROPOSED:
        await asyncio.to_thread(
            orders.transition, opened.order.id, State.CANCELLED, actor="demo", reason="restart"
        )
        opened = await asyncio.to_thread(orders.open_or_attach, request)
    return opened.order


class _Inbox:
    """The demo's delivery adapter: keeps the messages to print them."""

    def __init__(self) -> None:
        self.got: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> None:
        self.got.append(message)
