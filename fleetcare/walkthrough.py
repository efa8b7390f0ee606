"""The demo's scripted walk through the service loop, on the live demo fleet: a purifier's
filter order goes proposed → approved → dispatched → accepted → scheduled → on site →
completed (part, serial, bill) → the device told over MQTT → rated and settled.

Until rules and models open orders by themselves (issues 5 and 6), the walk-through
opens one the way they will: origin `auto`, with the telemetry as evidence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from device_sim.fleet import Fleet
from fleetcare.commands import send_pending
from fleetcare.registry_gen import generate
from telemetry.connection import MqttSettings
from telemetry.store import TelemetryStore
from telemetry.topics import TopicScheme
from workorders.appointments import Appointments
from workorders.commands import CommandOutbox
from workorders.completion import Completion, CompletionReport, Fee, Outcome, PartUsed
from workorders.db import Database
from workorders.dispatch import Dispatcher
from workorders.lifecycle import Origin, State
from workorders.notifications import OutboundMessage, Outbox
from workorders.orders import OrderRequest, WorkOrders
from workorders.service_registry import ServiceRegistry, parse_doc
from workorders.settlement import Callbacks


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
) -> str | None:
    """Run the loop once; returns the purifier's id (to watch it fit the filter).
    With `approval`, a person decides on the proposed job (in the ops console) and the
    walk waits for it; without, the walk approves it as ops would."""
    rows = generate(fleet)
    await asyncio.to_thread(ServiceRegistry(db).load, parse_doc(rows))
    say(
        f"registry: {len(rows['outlets'])} outlets, {len(rows['technicians'])} technicians, "
        f"{len(rows['customers'])} customers for the demo fleet"
    )
    device = next(d for d in fleet.ids if fleet.truth.devices[d].device_type == "purifier")
    serial = next(d["serial"] for d in rows["devices"] if d["id"] == device)
    latest = (await store.latest([device])).get(device)
    evidence = dict(latest.metrics) if latest else {}
    orders = WorkOrders(db)
    request = OrderRequest(
        device_id=device,
        problem_kind="filter_replacement",
        origin=Origin.AUTO,
        source="demo:filter_life",
        title="Purifier filter nearly spent",
        evidence={k: evidence.get(k) for k in ("filter_life_pct", "motor_current_ma", "pm25")},
    )
    opened = await asyncio.to_thread(orders.open_or_attach, request)
    # the rules may have proposed this very job already (its evidence is now attached);
    # one further along was left by an interrupted demo: start that over
    if not opened.created and opened.order.state is not State.PROPOSED:
        await asyncio.to_thread(
            orders.transition, opened.order.id, State.CANCELLED, actor="demo", reason="restart"
        )
        opened = await asyncio.to_thread(orders.open_or_attach, request)
    o = opened.order
    due = o.due_at.strftime("%Y-%m-%d %H:%M UTC") if o.due_at else "-"
    say(f"#{o.id} proposed (auto) for {device}: {o.title}; SLA due {due}")
    dispatcher = Dispatcher(db)
    if approval is None:
        await asyncio.to_thread(
            orders.transition, o.id, State.OPEN, actor="ops:demo", reason="telemetry confirms it"
        )
        say(f"#{o.id} approved by service ops")
    else:
        say(f"#{o.id} waits for service ops: approve it (or reject it) in the console")
        decided = await approval(o.id)
        if decided not in (State.OPEN, State.ASSIGNED):
            say(f"#{o.id} is {decided.value} in the console: the walk-through ends here")
            return None
        history = await asyncio.to_thread(orders.history, o.id)
        by = next(e.actor for e in history if e.from_state is State.PROPOSED)
        say(f"#{o.id} approved in the console by {by}")
    if (await asyncio.to_thread(orders.get, o.id)).state is State.OPEN:
        report = await asyncio.to_thread(dispatcher.run, [o.id])
        if o.id in report.unassignable:
            say(f"#{o.id} cannot be dispatched: {report.unassignable[o.id]}")
            return None
    o = await asyncio.to_thread(orders.get, o.id)
    tech = o.technician_id or ""
    why = (await asyncio.to_thread(orders.history, o.id))[-1].reason
    say(f"#{o.id} dispatched to {tech} ({why})")
    await asyncio.to_thread(dispatcher.accept, o.id, tech)
    appointments = Appointments(orders, lead=timedelta(0))
    offered = await asyncio.to_thread(appointments.offer, o.id)
    customer_tz = next(c["timezone"] for c in rows["customers"] if c["id"] == o.customer_id)
    choice = ", ".join(
        s.label(customer_tz) + ("" if s.before_due else " (after the SLA)") for s in offered
    )
    say(f"#{o.id} accepted by {tech}; slots offered to the customer: {choice}")
    picked = ([s for s in offered if s.before_due] or offered)[-1]
    await asyncio.to_thread(
        appointments.confirm, o.id, picked.start, actor=f"customer:{o.customer_id}"
    )
    say(f"#{o.id} the customer picked {picked.label(customer_tz)}")
    await asyncio.to_thread(
        appointments.on_the_way, o.id, tech, picked.start, now=picked.start - timedelta(hours=1)
    )
    await asyncio.to_thread(
        orders.transition, o.id, State.IN_PROGRESS, actor=tech, now=picked.start
    )
    done, bill = await asyncio.to_thread(
        Completion(orders, photo_dir).complete,
        o.id,
        CompletionReport(
            technician_id=tech,
            outcome=Outcome.FIXED,
            serial=serial,
            parts=[PartUsed("AP-HEPA-01")],
            fees=[Fee("Call-out", 4900)],
            notes="old filter grey; housing cleaned",
        ),
        now=picked.start + timedelta(hours=1),  # the demo's clock follows the visit
    )
    items = ", ".join(f"{item} {_yuan(c)}" for item, c in bill.lines)
    say(
        f"#{o.id} completed on site: serial {serial} confirmed; "
        f"bill {items} = {_yuan(bill.total_cents)}"
    )
    addr = mqtt.address()
    async with aiomqtt.Client(addr.host, addr.port, identifier="fleetcare-demo-commands") as client:
        sent = await send_pending(CommandOutbox(db), client, TopicScheme(mqtt.topic_prefix))
    say(f"#{o.id} the device is told: {sent} command(s) on {device}'s cmd topic (filter_replaced)")
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
    return device


class _Inbox:
    """The demo's delivery adapter: keeps the messages to print them."""

    def __init__(self) -> None:
        self.got: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> None:
        self.got.append(message)
