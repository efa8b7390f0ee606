"""A family known only from its profile gets health from its own data in the engine: the
scoring pass streams each device's days through its own detector (the state survives
between passes), stores the score and the metric that raised it, the family's rule opens
a job for ops to review, and the console's evidence shows that series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api import ApiContext, create_app
from api.accounts import Accounts, Role
from bench.rules_replay import stored_readings
from db.database import Database
from db.tables import detector_states, model_scores, service_labels
from device_sim.fleet import Fleet, FleetSpec
from device_sim.imperfection import Imperfection
from fleet.state import DeviceStateRepository, StateUpdate
from fleetcare.registry_gen import generate
from models.anomaly import StreamingDetector
from models.anomaly import fleet as general
from models.general_scoring import GeneralScoring
from rules.catalog import load_catalog
from rules.evaluator import Evaluator
from rules.outputs import engine_outputs
from service.orders import WorkOrders
from service.registry import ServiceRegistry, parse_doc
from telemetry.backends import StoreSettings, create_store

START = datetime(2026, 3, 2, tzinfo=UTC)
DAY = 86400.0
STEP = 3600.0


def general_scores(db: Database) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with db.engine.connect() as conn:
        for r in conn.execute(sa.select(model_scores).where(model_scores.c.model == "general")):
            out.setdefault(r.device_id, {})[r.output] = r.value
    return out


async def test_a_new_family_is_judged_from_its_own_data_and_a_fault_opens_a_job(
    db: Database, tmp_path: Path
) -> None:
    db.upgrade()
    t0 = START.timestamp()
    fleet = Fleet.create(
        FleetSpec(
            devices=12,
            seed=4,
            start=t0,
            physics_dt=STEP,
            mix={"dehumidifier": 1.0},
            imperfection=Imperfection().always_online(),
        )
    )
    faulty = fleet.ids[0]
    fleet.inject(faulty, "step_change", t0 + 60.3 * DAY)  # a metric's level jumps
    ServiceRegistry(db).load(parse_doc(generate(fleet)))
    async with create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts")) as store:

        async def run_to(day: float) -> None:
            while fleet.t < t0 + day * DAY:
                fleet.advance(fleet.t + STEP)
                batch = stored_readings(fleet, fleet.t)
                await store.write(batch)
            # what ingest keeps per device: the evaluator judges the devices it has seen
            seen = datetime.fromtimestamp(fleet.t, UTC)
            DeviceStateRepository(db).apply([StateUpdate.of_reading(r, seen) for r in batch])

        scoring = GeneralScoring(db, store, catch_up_days=90)
        await run_to(58)
        first = await scoring.run(START + timedelta(days=58, hours=1))
        assert first.devices == 12
        before = general_scores(db)
        assert set(before) == set(fleet.ids) and all(v["score"] < 0.5 for v in before.values())

        await run_to(63)  # the next passes fold only the new days, from the saved states
        again = await scoring.run(START + timedelta(days=63, hours=1))
        assert again.days_folded == 5
        after = general_scores(db)
        assert after[faulty]["score"] >= 0.5
        [named] = [o for o in after[faulty] if o.startswith("metric.")]
        assert sum(v["score"] >= 0.5 for d, v in after.items() if d != faulty) <= 1
        with db.engine.connect() as conn:
            sizes = [len(r.state) for r in conn.execute(sa.select(detector_states))]
        metrics = len(general.metrics(fleet.spec.profiles()["dehumidifier"]))
        assert len(sizes) == 12 and max(sizes) <= 1024 * metrics  # ≤ 1 KB per metric

        now = START + timedelta(days=63, hours=2)
        await Evaluator(
            db=db, store=store, catalog=load_catalog(), outputs=engine_outputs(db)
        ).run_pass(now)
    orders = WorkOrders(db).find(limit=100)
    [order] = [o for o in orders if o.problem_kind == "inspection"]  # one, for the faulty unit
    assert order.device_id == faulty and order.origin == "auto"
    [evidence] = [e["data"] for e in WorkOrders(db).evidence(order.id) if "metric" in e["data"]]
    assert evidence["model"] == "general" and evidence["metric"] == named.removeprefix("metric.")

    # the technician fixes it: from that day the unit's baseline is learned again
    with db.engine.begin() as conn:
        conn.execute(
            service_labels.insert().values(
                order_id=order.id,
                device_id=faulty,
                device_type="dehumidifier",
                problem_kind="inspection",
                outcome="fixed",
                confirmed_fault="step_change",
                at=now + timedelta(hours=1),
            )
        )
    async with create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts")) as store:
        await run_to(64)
        await GeneralScoring(db, store, catch_up_days=90).run(START + timedelta(days=64, hours=1))
    with db.engine.connect() as conn:
        rows = {
            r.device_id: StreamingDetector.from_bytes(r.state).rows
            for r in conn.execute(sa.select(detector_states))
        }
    assert rows[faulty] == 1 and min(v for d, v in rows.items() if d != faulty) == 64

    # ops see the series that raised it, charted from the device's telemetry
    accounts = Accounts(db)
    accounts.create("ops", name="Ops", role=Role.OPS)
    accounts.set_password("ops", "a long enough password")
    store = create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts"))
    ctx = ApiContext(db=db, store=store, photo_dir=tmp_path / "photos")
    with TestClient(create_app(ctx)) as client:
        signed = client.post(
            "/console/login", data={"username": "ops", "password": "a long enough password"}
        )
        assert signed.status_code == 200, signed.text
        page = client.get("/console").text
    metric = evidence["metric"]
    assert f"The series that raised it: <strong>{metric}</strong>" in page
    assert (
        f"data-metrics='[&#34;{metric}&#34;]'" in page or f"data-metrics='[\"{metric}\"]'" in page
    )
