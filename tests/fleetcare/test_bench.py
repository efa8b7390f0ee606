"""The benchmark commands run end to end on a tiny load (their figures live in docs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.ingest import run_bench


@pytest.mark.slow
def test_bench_ingest_measures_the_ceiling_and_fleetcare_storing_everything(
    tmp_path: Path,
) -> None:
    report = tmp_path / "bench.md"
    results = run_bench(
        messages=3000,
        devices=300,
        scenarios=["bare", "embedded"],
        naive_messages=100,
        rss_minutes=0,
        protocol="3.1.1",
        output=report,
    )
    bare, ingest = results
    assert bare.rate > 0 and ingest.rate > 0
    assert ingest.check == "stored 3000"  # every message durable exactly once
    assert "| (b) FleetCare ingest -> embedded (SQLite) | 3000 |" in report.read_text()


def test_bench_dispatch_assigns_on_a_fresh_postgres_database_and_drops_it(
    tmp_path: Path,
) -> None:
    import sqlalchemy as sa

    from bench.dispatch import run_dispatch_bench
    from tests.services import postgres_admin_url

    admin = postgres_admin_url()
    report = tmp_path / "dispatch.md"
    text = run_dispatch_bench(orders=300, technicians=30, admin_url=admin, output=report)
    assert "one `Dispatcher.run()` over all open orders" in report.read_text()
    assigned = int(text.split("| assigned | ")[1].split(" |")[0].replace(",", ""))
    flagged = int(text.split("| flagged unassignable | ")[1].split(" |")[0].replace(",", ""))
    assert assigned + flagged == 300 and assigned > 200
    engine = sa.create_engine(admin)
    with engine.connect() as conn:
        left = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_database WHERE datname LIKE 'fleetcare_bench_dispatch_%'"
            )
        ).scalar_one()
    engine.dispose()
    assert left == 0


def test_bench_rules_times_a_pass_and_the_per_message_latency(tmp_path: Path) -> None:
    from bench.rules import run_rules_bench

    report = tmp_path / "rules.md"
    run_rules_bench(devices=300, rate=500, seconds=3, db_url=None, output=report)
    text = report.read_text()
    assert "one windowed pass, 300 devices" in text
    leaks = text.split("per-message rule")[1]
    alerted, sent = leaks.split("(")[1].split(" leaks")[0].split(" of ")
    assert int(alerted) == int(sent) > 5  # every leak raised its alert


@pytest.mark.slow
def test_bench_models_times_the_scoring_pass_and_the_training(tmp_path: Path) -> None:
    from bench.models import run_models_bench

    report = tmp_path / "models.md"
    run_models_bench(
        devices=300,
        train_devices=100,
        days=30,
        db_url=None,
        output=report,
        health_devices=120,
        health_days=30,
    )
    text = report.read_text()
    assert "daily scoring pass, 300 devices (480 stage predictions, 300 devices judged" in text
    assert "training (`FilterLife.fit`) on 100 devices × 30 days" in text


def test_bench_api_loads_the_api_from_another_process_and_times_the_queue_pages(
    tmp_path: Path,
) -> None:
    from bench.api import run_api_bench
    from tests.services import postgres_admin_url

    report = tmp_path / "api.md"
    text = run_api_bench(
        devices=600,
        orders=300,
        customers=20,
        database="postgresql",
        admin_url=postgres_admin_url(),
        workers=2,
        connections=8,
        rate=50,
        seconds=2,
        repeats=2,
        output=report,
    )
    assert "### API" in report.read_text()
    for row in ("| closed loop (the ceiling) |", "| open loop, due at 50/s |"):
        cells = text.split(row)[1].split("\n")[0].split("|")
        answered, ok, other = (int(cells[i].strip().replace(",", "")) for i in (0, 5, 6))
        assert answered > 0 and ok == answered and other == 0  # every request a 200
    for page in ("`/console`", "`/console/sla`", "`/api/v1/orders?sla=breached&limit=100`"):
        assert f"({page}) | 200 |" in text, page


@pytest.mark.slow
@pytest.mark.serial  # the whole engine at a sustained rate: it must keep up to pass
def test_bench_soak_reports_every_minute_and_the_engine_drains(tmp_path: Path) -> None:
    """A short soak: the whole engine up, the fleet's messages all acknowledged by ingest
    at the end, a row per minute with memory, lag and latencies, and the API answering."""
    from bench.soak import run_soak
    from tests.services import postgres_admin_url, start_influxd

    start_influxd(tmp_path / "probe").stop()  # skips, or fails under CI, without influxd
    report = tmp_path / "soak.md"
    text, rows, stats = run_soak(
        minutes=0.5, devices=40, rate=200, admin_url=postgres_admin_url(), output=report
    )
    assert "### Soak" in report.read_text() and "| 1 | " in text
    assert "): everything." in text and "restarted during the run: none." in text
    assert len(rows) == 1 and stats.acknowledged > 100
    assert sum(r.acked for r in rows) >= stats.acknowledged * 0.9  # ingest kept up
    assert all(r.api_errors == 0 for r in rows), text  # the report says what failed
    assert rows[0].api_p99_ms > 0
    assert set(rows[0].rss) == {
        *("ingest-0", "rules-0", "dispatch", "commands", "notify", "api", "influxd")
    }
    assert "* Work orders at the end, by state:" in text and "* The field crew:" in text
    assert rows[0].influxd_cpu_pct > 0  # the store did work: its CPU is read
    assert 0 < rows[0].store_p99_ms <= rows[0].batch_p99_ms  # the write is part of a batch
    assert rows[0].rules_p99_ms >= 0  # the per-message rules ran, after the acks
    assert all(mb > 20 for mb in rows[0].rss.values())


def test_soak_trends_compare_the_first_full_minutes_with_the_last() -> None:
    from bench.soak import Minute, _trends

    rows = [Minute(m, rss={"api": 100.0 + m}, ack_p99_ms=10.0 * m) for m in range(8)]
    lines = _trends(rows, ["api"])
    # minutes 2-3 against 6-7 (the first warms up, the last is partial)
    assert lines[:3] == [
        "* Trend, minutes 2–3 against 6–7:",
        "  * RSS api: 102 → 106 MB (+4)",
        "  * ingest ack p99 ms: 15.00 → 55.00",
    ]


def test_the_soaks_field_crew_closes_the_loop_the_engine_opens(tmp_path: Path) -> None:
    """Ops approve what the rules propose; a technician completes what the dispatcher
    assigned, with what the unit really had, so the device is told to repair it; the
    customer's rating closes it; the warehouse refills what the visits took."""
    import time

    import sqlalchemy as sa

    from bench.crew import FieldCrew
    from db.database import Database
    from db.tables import outlet_stock
    from device_sim.fleet import Fleet, FleetSpec
    from fleet.commands import CommandOutbox
    from fleetcare.registry_gen import generate
    from service.dispatch import Dispatcher
    from service.lifecycle import Origin, State
    from service.orders import OrderRequest, WorkOrders
    from service.registry import ServiceRegistry, parse_doc

    fleet = Fleet.create(FleetSpec(devices=9, seed=41, start=time.time() - 86400))
    wp = [d for d in fleet.ids if fleet.truth.devices[d].device_type == "water_purifier"]
    broken, worn = wp[0], wp[1]
    fleet.inject(broken, "pump_failure", onset=fleet.t - 3600)
    db = Database(f"sqlite:///{tmp_path / 'fc.sqlite3'}")
    db.upgrade()
    rows = generate(fleet)
    ServiceRegistry(db).load(parse_doc(rows))
    opening = {(r["outlet_id"], r["sku"]): r["qty"] for r in rows["stock"] if "outlet_id" in r}
    crew = FieldCrew(
        db,
        serials={d["id"]: d["serial"] for d in rows["devices"]},
        fault_of=fleet.fault_of,
        opening_stock=opening,
        photo_dir=tmp_path / "photos",
    )
    orders = WorkOrders(db)
    ids = [
        orders.open_or_attach(
            OrderRequest(
                device_id=d, problem_kind=kind, origin=Origin.AUTO, source="rule:t", title=kind
            )
        ).order.id
        for d, kind in ((broken, "pump_failure"), (worn, "filter_replacement_sediment"))
    ]
    assert fleet.fault_of(broken) == "pump_failure" and fleet.fault_of(worn) is None

    crew.work()
    assert [orders.get(i).state for i in ids] == [State.OPEN, State.OPEN]  # approved only
    assert Dispatcher(db).run().assigned == 2
    (outlet, sku), qty = next(iter(opening.items()))
    with db.engine.begin() as conn:  # a shelf sold out elsewhere
        conn.execute(
            outlet_stock.update()
            .where(outlet_stock.c.outlet_id == outlet, outlet_stock.c.sku == sku)
            .values(qty=0)
        )
    tally = crew.work()

    assert [orders.get(i).state for i in ids] == [State.CLOSED, State.CLOSED]
    assert (tally.approved, tally.completed, tally.repairs, tally.refused) == (2, 2, 1, 0)
    told = {
        (c.device_id, c.cmd, tuple(sorted(c.args.items()))) for c in CommandOutbox(db).pending()
    }
    assert told == {
        (broken, "repair", (("fault", "pump_failure"),)),
        (worn, "filter_replaced", (("stage", "sediment"),)),
    }
    with db.engine.connect() as conn:
        shelves = {(o, s): q for o, s, q in conn.execute(sa.select(outlet_stock))}
    assert shelves == opening and tally.restocked >= qty


def test_the_quality_warning_catches_a_planted_batch_and_firmware_and_spares_a_healthy_fleet() -> (
    None
):
    from bench.quality import FleetPlan, Planted, run_case
    from service.quality import QualityBy

    planted = (
        Planted(QualityBy.BATCH, "B2026-06", 3.0),  # made in June, in service from July
        Planted(QualityBy.FIRMWARE, "2.0", 2.0),  # shipped from October
    )
    bad = run_case("planted", FleetPlan(planted=planted), seed=200)
    flagged = {(w.by, w.group): w.month for w in bad.flags}
    assert flagged[("batch", "B2026-06")] <= "2026-09"  # within two months of its first unit
    assert flagged[("firmware", "2.0")] <= "2027-05"
    healthy = run_case("healthy", FleetPlan(), seed=100)
    assert healthy.flags == [] and healthy.units == 48_000 and healthy.failures > 2000


def test_the_stock_backtest_reproduces_and_the_plan_fills_the_peak_where_last_year_does_not() -> (
    None
):
    from bench.stock import PEAK, run_case

    first, again = run_case(1), run_case(1)
    for policy in first:
        assert first[policy].filled == again[policy].filled  # the same seed, the same year
        assert first[policy].held == again[policy].held
    plan, last = first["the plan"], first["last year's usage"]
    kit = "AC-INSTALL-KIT"
    assert plan.peak_demand[kit] > 0 and len(PEAK) == 5
    assert plan.peak_filled[kit] / plan.peak_demand[kit] >= 0.95
    assert last.peak_filled[kit] / last.peak_demand[kit] < 0.8  # last year's peak was smaller
    assert run_case(2)["the plan"].filled != plan.filled  # another year, other demand
