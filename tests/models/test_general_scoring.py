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
from db.tables import detector_states, general_labels, model_scores, service_labels
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


def fixed(conn: sa.Connection, order_id: int, device_id: str, fault: str, at: datetime) -> int:
    """A technician's verdict on a dehumidifier's job: fixed, the fault confirmed."""
    return int(
        conn.execute(
            service_labels.insert().values(
                order_id=order_id,
                device_id=device_id,
                device_type="dehumidifier",
                problem_kind="inspection",
                outcome="fixed",
                confirmed_fault=fault,
                at=at,
            )
        ).inserted_primary_key[0]
    )


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
        fixed(conn, order.id, faulty, "step_change", now + timedelta(hours=1))
    async with create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts")) as store:
        await run_to(64)
        await GeneralScoring(db, store, catch_up_days=90).run(START + timedelta(days=64, hours=1))
    with db.engine.connect() as conn:
        rows = {
            r.device_id: StreamingDetector.from_bytes(r.state).rows
            for r in conn.execute(sa.select(detector_states))
        }
    assert rows[faulty] == 1 and min(v for d, v in rows.items() if d != faulty) == 64
    # ... and the verdict, with what the alarm showed, is a training row for the namer
    with db.engine.connect() as conn:
        [label] = conn.execute(sa.select(general_labels)).all()
    assert (label.device_id, label.device_type, label.kind) == (
        faulty,
        "dehumidifier",
        "step_change",
    )
    assert sum(v for k, v in label.evidence.items() if k.startswith("stat.")) == 1.0
    assert f"z.{evidence['metric']}" in label.evidence

    # with enough verdicts the family's alarms are named: here its technicians found a
    # level jump like this one half the time, and a silent sensor the other half
    with db.engine.begin() as conn:
        for i in range(40):
            kind = "step_change" if i % 2 else "sensor_dropout"
            shown = (
                {**label.evidence, "score": label.evidence["score"] + 0.001 * i}
                if i % 2
                else {"stat.dropout": 1.0, "missing": 1.0, "score": 0.6, "age": 4.0}
            )
            at = now - timedelta(days=30)
            verdict = fixed(conn, order.id, faulty, kind, at)
            conn.execute(
                general_labels.insert().values(
                    service_label_id=verdict,
                    device_id=faulty,
                    device_type="dehumidifier",
                    at=at,
                    evidence=shown,
                    kind=kind,
                )
            )
    second = fleet.ids[1]
    fleet.inject(second, "step_change", t0 + 64.3 * DAY)
    async with create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts")) as store:
        await run_to(67)
        await GeneralScoring(db, store, catch_up_days=90).run(START + timedelta(days=67, hours=1))
        await Evaluator(
            db=db, store=store, catalog=load_catalog(), outputs=engine_outputs(db)
        ).run_pass(START + timedelta(days=67, hours=2))
    scores = general_scores(db)
    assert scores[second]["score"] >= 0.5 and scores[second]["fault.step_change"] >= 0.5
    [job] = [o for o in WorkOrders(db).find(limit=100) if o.device_id == second]
    [shown] = [e["data"] for e in WorkOrders(db).evidence(job.id) if "metric" in e["data"]]
    assert shown["fault"] == "step_change" and shown["confidence"] >= 0.5

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
    assert "likely <strong>step_change</strong>" in page  # the second job, named
    assert (
        f"data-metrics='[&#34;{metric}&#34;]'" in page or f"data-metrics='[\"{metric}\"]'" in page
    )
