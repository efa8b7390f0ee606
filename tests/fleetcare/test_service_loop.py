"""The loop closes on the device: a completed filter replacement reaches the simulated
purifier over MQTT, which fits a new filter (its ground truth records it)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import aiomqtt

from db.database import Database
from device_sim.fleet import Fleet, FleetSpec
from device_sim.runner import RunOptions, RunStats, run
from fleet.commands import CommandOutbox
from fleetcare.brokers import MosquittoProcess
from fleetcare.commands import send_pending
from fleetcare.registry_gen import generate
from service.completion import Completion, CompletionReport, Outcome
from service.lifecycle import Origin, State
from service.orders import OrderRequest, WorkOrders
from service.registry import ServiceRegistry, parse_doc
from telemetry.connection import MqttSettings
from telemetry.topics import TopicScheme


def test_a_completed_filter_replacement_resets_the_simulated_filter(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    fleet = Fleet.create(
        FleetSpec(devices=6, seed=41, start=time.time() - 20 * 86400, initial_wear=0.9)
    )
    db = Database(f"sqlite:///{tmp_path / 'fc.sqlite3'}")
    db.upgrade()
    rows = generate(fleet)
    ServiceRegistry(db).load(parse_doc(rows))
    purifier = next(d for d in fleet.ids if fleet.truth.devices[d].device_type == "purifier")
    tech = next(t["id"] for t in rows["technicians"] if {"device_type": "purifier"} in t["skills"])
    serial = next(d["serial"] for d in rows["devices"] if d["id"] == purifier)

    mqtt = MqttSettings(url=mosquitto.url)
    stop, stats = threading.Event(), RunStats()
    sim = threading.Thread(
        target=run,
        args=(fleet, mqtt, RunOptions(speed=3600, report_interval_s=900), stop, stats),
    )
    sim.start()
    try:
        orders = WorkOrders(db)
        o = orders.open_or_attach(
            OrderRequest(
                device_id=purifier,
                problem_kind="filter_replacement",
                origin=Origin.AUTO,
                source="model:filter_life",
                title="Filter nearly spent",
            )
        ).order
        if o.state is State.PROPOSED:  # (a filter package's needs no review)
            orders.transition(o.id, State.OPEN, actor="ops")
        orders.transition(o.id, State.ASSIGNED, actor="ops", technician_id=tech)
        for to in (State.ACCEPTED, State.SCHEDULED, State.IN_PROGRESS):
            orders.transition(o.id, to, actor=tech)
        Completion(orders, tmp_path / "photos").complete(
            o.id, CompletionReport(technician_id=tech, outcome=Outcome.FIXED, serial=serial)
        )

        async def publish() -> int:
            addr = mqtt.address()
            async with aiomqtt.Client(addr.host, addr.port, identifier="test-commands") as c:
                return await send_pending(CommandOutbox(db), c, TopicScheme(mqtt.topic_prefix))

        assert asyncio.run(publish()) == 1
        assert CommandOutbox(db).pending() == []  # marked sent after the broker's ack
        deadline = time.time() + 15
        while not fleet.truth.devices[purifier].replacements and time.time() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        sim.join(30)
    [fitted] = fleet.truth.devices[purifier].replacements
    assert fitted.stage == "main"
    assert stats.commands == 1
    db.dispose()


def test_the_demo_walks_the_rules_first_filter_job_or_waits_for_one(tmp_path: Path) -> None:
    from fleetcare.walkthrough import _first_proposed

    fleet = Fleet.create(FleetSpec(devices=12, seed=41, start=time.time() - 86400))
    db = Database(f"sqlite:///{tmp_path / 'fc.sqlite3'}")
    db.upgrade()
    rows = generate(fleet)
    ServiceRegistry(db).load(parse_doc(rows))
    assert asyncio.run(_first_proposed(db, wait_s=0)) is None  # nothing proposed: no wait

    # customers without a filter package (a package's filter jobs need no review)
    packaged = {p["device_id"] for p in rows["packages"]}
    wp = [
        d["id"]
        for d in rows["devices"]
        if d["device_type"] == "water_purifier" and d["id"] not in packaged
    ]
    orders = WorkOrders(db)

    def propose(device: str, kind: str, origin: Origin = Origin.AUTO) -> int:
        request = OrderRequest(
            device_id=device, problem_kind=kind, origin=origin, source="rule:t", title=kind
        )
        return orders.open_or_attach(request).order.id

    fault = propose(wp[0], "pump_failure")
    assert asyncio.run(_first_proposed(db, wait_s=0)).id == fault  # type: ignore[union-attr]
    propose(wp[1], "filter_replacement_carbon", Origin.OPS)  # open already: not for review
    filters = propose(wp[1], "filter_replacement_sediment")
    propose(wp[0], "filter_replacement_ro")
    assert asyncio.run(_first_proposed(db, wait_s=0)).id == filters  # type: ignore[union-attr]
