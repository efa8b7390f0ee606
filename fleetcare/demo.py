"""`fleetcare demo`: broker, ingest worker and a simulated fleet in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uvicorn
from rich.console import Console

from db.database import Database
from db.tables import filter_predictions, model_scores
from device_sim.fleet import Fleet, FleetSpec
from device_sim.runner import RunOptions, RunStats
from device_sim.runner import run as run_fleet
from fleet.state import DeviceStateRepository
from fleetcare.brokers import AmqttBroker, MosquittoProcess, mosquitto_available, start_mosquitto
from fleetcare.publisher import publish_bad
from fleetcare.registry_gen import generate
from fleetcare.settings import Settings
from fleetcare.walkthrough import Walked, walk_service_loop
from fleetcare.wiring import build_ingest, make_decoder, model_registry, open_database
from ingest.dead_letters import DeadLetterRepository
from ingest.metrics import IngestMetrics
from models.evaluation.training import (
    FILTER_LIFE,
    HEALTH,
    save_filter_life,
    save_health,
    train_filter_life,
    train_health,
)
from models.filter_life import FilterLife, schema
from models.health import HealthModel
from models.health import full_schema as health_schema
from models.registry import RegistryError
from models.scoring import FilterLifeScoring
from rules.catalog import load_catalog
from rules.evaluator import Evaluator
from rules.outputs import engine_outputs
from service.lifecycle import State
from service.orders import WorkOrders
from service.registry import ServiceRegistry, parse_doc
from telemetry.backends import create_store
from telemetry.connection import MqttSettings
from telemetry.store import TelemetryStore

log = logging.getLogger("fleetcare.demo")
console = Console()


def _value(metrics: IngestMetrics, counter: str) -> float:
    total = 0.0
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == counter + "_total":
                total += sample.value
    return total


async def _broker(
    settings: Settings, broker_url: str | None
) -> tuple[MqttSettings, str, MosquittoProcess | None, AmqttBroker | None]:
    """The demo's broker: the one given, Mosquitto on a free port, or in-process amqtt."""
    if broker_url and broker_url != "amqtt":
        return (
            settings.mqtt.model_copy(update={"url": broker_url}),
            f"broker at {broker_url}",
            None,
            None,
        )
    if mosquitto_available() and broker_url != "amqtt":
        tmp = Path(tempfile.mkdtemp(prefix="fleetcare-mosquitto-"))
        mosquitto = start_mosquitto(tmp)
        return (
            settings.mqtt.model_copy(update={"url": mosquitto.url}),
            f"Mosquitto on {mosquitto.url} (config {mosquitto.config_path})",
            mosquitto,
            None,
        )
    amqtt = AmqttBroker()
    await amqtt.start()
    return (
        settings.mqtt.model_copy(update={"url": amqtt.url}),
        f"in-process amqtt broker on {amqtt.url} (no mosquitto on the PATH)",
        None,
        amqtt,
    )


async def _evaluate(evaluator: Evaluator, sim_t: float, seen: int) -> int:
    """One rules pass at the fleet's simulated time; print the alerts it raised."""
    report = await evaluator.run_pass(datetime.fromtimestamp(sim_t, UTC))
    fresh = [a for a in await asyncio.to_thread(evaluator.alerts.find, limit=50) if a.id > seen]
    if report.fired or report.resolved:
        console.print(
            f"        [bold]rules[/bold]: {report.devices} devices, fired {report.fired}, "
            f"resolved {report.resolved}, jobs opened {report.orders_opened}"
        )
    for a in sorted(fresh, key=lambda a: a.id)[:6]:
        job = f" → job #{a.work_order_id}" if a.work_order_id else ""
        note = f" ({a.inhibited_by})" if a.inhibited_by else ""
        console.print(
            f"        alert #{a.id} {a.severity}: {a.title} on {a.device_id} "
            f"(value {a.value:g}){job}{note}"
            if a.value is not None
            else f"        alert #{a.id} {a.severity}: {a.title} on {a.device_id}{job}{note}"
        )
    return max([seen, *(a.id for a in fresh)])


def _filter_model(settings: Settings) -> tuple[FilterLife, str]:
    """The active filter-life version, or a small one trained now on a simulated fleet
    (about half a minute) and saved, so the demo shows predicted dates from the start."""
    registry = model_registry(settings)
    with contextlib.suppress(RegistryError):
        model, meta = registry.load(FILTER_LIFE, features=schema())
        return model, meta.version
    console.print(
        "[bold]models[/bold]: no filter-life model yet; training one on a simulated fleet "
        "(300 devices × 90 days; `fleetcare train` makes a bigger one) while the fleet runs"
    )
    model, metrics, _ = train_filter_life(300, 90, seed=11)
    meta = save_filter_life(registry, model, metrics, devices=300, days=90, seed=11)
    return model, meta.version


def _health_model(settings: Settings, start: datetime) -> tuple[HealthModel, str]:
    """The active health version, or a small one trained now on a simulated fleet with
    faults, in the demo fleet's season (about ten seconds), and saved."""
    registry = model_registry(settings)
    with contextlib.suppress(RegistryError):
        model, meta = registry.load(HEALTH, features=health_schema())
        return model, meta.version
    console.print(
        "[bold]models[/bold]: no health model yet; training one on a simulated fleet with "
        "faults (400 devices × 90 days; `fleetcare train` makes a bigger one)"
    )
    model, metrics, run = train_health(400, 90, seed=12, start=start)
    meta = save_health(registry, model, metrics, run, seed=12)
    return model, meta.version


# faults the demo fleet develops a week in, once the health model knows each device's
# normal: only the model catches these (no threshold on the readings does)
DEMO_FAULTS = (("purifier", "clogged_prefilter", 7.0), ("water_purifier", "sensor_dropout", 8.0))


def _inject_demo_faults(fleet: Fleet) -> list[str]:
    lines = []
    for device_type, fault, after_days in DEMO_FAULTS:
        group = fleet.groups.get(device_type)
        if group is None or len(group.ids) < 2:
            continue
        device = group.ids[1]
        fleet.inject(device, fault, fleet.t + after_days * 86400)
        lines.append(f"{fault} on {device} from day {after_days:g}")
    return lines


def _models(
    settings: Settings, db: Database, store: TelemetryStore, season: datetime
) -> FilterLifeScoring:
    model, version = _filter_model(settings)
    health, health_version = _health_model(settings, season)
    return FilterLifeScoring(
        db, store, model, version, health=health, health_version=health_version
    )


async def _score(scoring: FilterLifeScoring, db: Database, sim_t: float) -> None:
    """A scoring pass at the fleet's simulated time; show the predictions closest to now
    and the devices the health model finds anomalous."""
    now = datetime.fromtimestamp(sim_t, UTC)
    report = await scoring.run(now)
    if report.scores:
        await asyncio.to_thread(_show_anomalies, db, report.scores)
    if not report.predictions:
        return

    def soonest() -> list[Any]:
        fp = filter_predictions
        with db.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(fp)
                    .where(fp.c.exhausted_at > now)
                    .order_by(fp.c.exhausted_at)
                    .limit(3)
                )
            )

    rows = await asyncio.to_thread(soonest)
    console.print(
        f"        [bold]filter life[/bold] ({scoring.version}): {report.predictions} stage "
        f"predictions for {report.devices} devices; soonest spent:"
    )
    for r in rows:
        rated = f", rated life says {r.rated_at:%b %d}" if r.rated_at else ""
        band = f" ({r.low:%b %d} – {r.high:%b %d})" if r.low and r.high else ""
        console.print(
            f"        {r.device_id} {r.stage}: {100 * (r.consumed or 0):.0f} % used, spent "
            f"{r.exhausted_at:%b %d}{band}{rated}"
        )


def _show_anomalies(db: Database, judged: int) -> None:
    ms = model_scores
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(ms.c.device_id, ms.c.output, ms.c.value, ms.c.model_version)
            .where(ms.c.model == "anomaly", ms.c.output != "score", ms.c.value >= 1.0)
            .order_by(ms.c.value.desc())
            .limit(3)
        ).all()
    names = ", ".join(f"{r.device_id} ({r.output}, score {r.value:.1f})" for r in rows)
    console.print(
        f"        [bold]health[/bold]: {judged} devices judged against their own baselines; "
        + (f"anomalous: {names}" if rows else "none anomalous")
    )


async def _walk(
    settings: Settings,
    db: Database,
    fleet: Fleet,
    store: TelemetryStore,
    mqtt: MqttSettings,
    approve_in_console: bool,
) -> Walked | None:
    """The service loop, once; a failure is shown, never fatal to the demo."""
    console.print("[bold]service loop[/bold] (the first job the rules propose, walked through)")
    orders = WorkOrders(db)

    async def decided(order_id: int) -> State:
        while True:  # a person clicks in the console; the order's state says what they did
            state = (await asyncio.to_thread(orders.get, order_id)).state
            if state is not State.PROPOSED:
                return state
            await asyncio.sleep(1.0)

    try:
        return await walk_service_loop(
            db=db,
            fleet=fleet,
            store=store,
            mqtt=mqtt,
            photo_dir=Path(settings.data_dir) / "photos",
            say=lambda line: console.print(f"        {line}"),
            approval=decided if approve_in_console else None,
        )
    except Exception as exc:  # the demo goes on; the reason is on screen
        console.print(f"        [red]the walk-through stopped: {exc}[/red]")
        return None


def _heard(fleet: Fleet, walked: Walked) -> bool:
    """The simulated unit applied what the completion told it (its ground truth)."""
    truth = fleet.truth.devices[walked.device_id]
    if walked.fault is None:
        return bool(truth.replacements)
    return any(r.stage == walked.fault for r in truth.repairs)


DEMO_LOGIN = ("ops-demo", "fleetcare-demo")


async def _serve_api(
    settings: Settings, db: Database, store: TelemetryStore, port: int | None
) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """The API and ops console on the demo's database and store, with a demo ops login."""
    from api import ApiContext, create_app
    from api.accounts import Accounts, Role

    user, password = DEMO_LOGIN
    accounts = Accounts(db)
    if await asyncio.to_thread(accounts.principal, user) is None:
        await asyncio.to_thread(accounts.create, user, name="Demo ops", role=Role.OPS)
    await asyncio.to_thread(accounts.set_password, user, password)
    ctx = ApiContext(
        db=db,
        store=store,
        photo_dir=Path(settings.data_dir) / "photos",
        decoder=make_decoder(settings),
        models=model_registry(settings),
        auth_cache_s=settings.api.auth_cache_s,
        owns_store=False,
    )
    host = settings.api.host
    port = settings.api.port if port is None else port
    if port and not await asyncio.to_thread(_port_free, host, port):
        port = 0
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(ctx),
            host=host,
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn sets a flag
        await asyncio.sleep(0.05)
    if task.done():
        await task  # raises why it could not start
    bound = server.servers[0].sockets[0].getsockname()[1]
    console.print(
        f"  ops console: http://{host}:{bound}/console\n"
        f"  demo login: {user} / {password}\n"
        f"  API: http://{host}:{bound}/docs"
    )
    return server, task


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


async def run_demo(
    settings: Settings,
    stop: asyncio.Event,
    *,
    devices: int,
    speed: float,
    duration: float | None,
    broker_url: str | None,
    days: float = 60.0,
    api_port: int | None = None,
    approve_in_console: bool = False,
) -> None:
    await asyncio.to_thread(Path(settings.data_dir).mkdir, parents=True, exist_ok=True)
    mqtt, kind, mosquitto, amqtt = await _broker(settings, broker_url)
    ingest_opts = settings.ingest.model_copy(
        update={"client_id": "fleetcare-demo-ingest", "metrics_port": 0, "state_flush_s": 1.0}
    )
    if amqtt is not None:  # amqtt speaks 3.1.1 only and has no shared subscriptions
        ingest_opts = ingest_opts.model_copy(update={"shared_group": None})
    settings = settings.model_copy(update={"mqtt": mqtt, "ingest": ingest_opts})
    # `fleetcare sim` started with the same data dir finds the demo's broker here
    broker_file = Path(settings.data_dir) / "broker.url"
    await asyncio.to_thread(broker_file.write_text, mqtt.url + "\n")
    db = await asyncio.to_thread(open_database, settings)
    store = create_store(settings.store, settings.data_dir)
    await store.open()
    metrics = IngestMetrics()
    worker = build_ingest(settings, store, db, metrics)
    # units installed at different times: some filters run out within minutes of the demo
    fleet = Fleet.create(
        FleetSpec(devices=devices, seed=1, start=time.time() - days * 86400, initial_wear=0.95)
    )
    injected = _inject_demo_faults(fleet)
    logging.getLogger("device_sim").setLevel(logging.WARNING)  # the demo prints its own lines
    # who owns each simulated device, where, and who serves it: before the first message,
    # so the first alerts can open jobs
    await asyncio.to_thread(ServiceRegistry(db).load, parse_doc(generate(fleet)))
    data_dir = await asyncio.to_thread(os.path.abspath, settings.data_dir)
    console.print(
        f"[bold]FleetCare demo[/bold]\n  broker: {kind}\n"
        f"  telemetry store: {store.name} in {data_dir}\n  database: {db.safe_url}\n"
        f"  fleet: {devices} simulated purifiers, water purifiers and air conditioners, "
        f"aging from {days:g} days ago at ×{speed:g} (an hour a second at 3600)\n"
        f"  faults to catch: {'; '.join(injected) or 'none'}\n"
        "  Ctrl-C to stop. Another fleet can join from a second terminal (same directory):\n"
        "    fleetcare sim --devices 1000 --speed 3600\n"
    )
    api_server, api_task = await _serve_api(settings, db, store, api_port)
    worker_stop, fleet_stop = asyncio.Event(), threading.Event()
    worker_task = asyncio.create_task(worker.run(worker_stop))
    sim_stats = RunStats()
    fleet_task = asyncio.create_task(
        asyncio.to_thread(
            run_fleet,
            fleet,
            mqtt,
            RunOptions(speed=speed, report_interval_s=900, client_id="fleetcare-demo-fleet"),
            fleet_stop,
            sim_stats,
        )
    )
    started = time.monotonic()
    bad_sent = False
    walk: asyncio.Task[Walked | None] | None = None
    walked, watched = False, None
    state, dead = DeviceStateRepository(db), DeadLetterRepository(db)
    sample = fleet.ids[0]
    # rules on the simulated clock: the fleet ages an hour a second
    evaluator = Evaluator(
        db=db, store=store, catalog=load_catalog(), outputs=engine_outputs(db), device_time=True
    )
    seen_alert = 0
    # the models load (or train, the first time) in the background while the fleet runs;
    # their first pass then catches up on the days already stored
    season = datetime.fromtimestamp(fleet.t, UTC) - timedelta(days=30)
    models = asyncio.create_task(asyncio.to_thread(_models, settings, db, store, season))
    scoring: FilterLifeScoring | None = None
    models_failed = False
    scored_day = int(fleet.t // 86400)
    try:
        while not stop.is_set() and not fleet_task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(5.0, duration or 5.0))
            elapsed = time.monotonic() - started
            if not bad_sent and elapsed > 1:
                await publish_bad(mqtt)  # three broken messages: see them as dead letters
                bad_sent = True
            if walk is None and elapsed > 3:
                # in the background: it may wait for a person in the console
                walk = asyncio.create_task(
                    _walk(settings, db, fleet, store, mqtt, approve_in_console)
                )
            if walk is not None and not walked and walk.done():
                walked, watched = True, walk.result()
            if scoring is None and models.done() and not models_failed:
                if (exc := models.exception()) is not None:  # the demo goes on without them
                    console.print(f"[red]models: training failed: {exc}[/red]")
                    models_failed = True
                else:
                    scoring = models.result()
                    console.print("[bold]models[/bold]: ready; scoring every simulated day")
                    scored_day = -1
            if scoring is not None and int(fleet.t // 86400) > scored_day:  # a day is complete
                scored_day = int(fleet.t // 86400)
                await _score(scoring, db, fleet.t)
            if walk is not None:
                seen_alert = await _evaluate(evaluator, fleet.t, seen_alert)
            if watched and _heard(fleet, watched):
                did = f"repaired its {watched.fault}" if watched.fault else "fitted its new filter"
                console.print(f"        {watched.device_id} {did}: the loop is closed")
                watched = None
            letters = await asyncio.to_thread(dead.counts)
            online = await asyncio.to_thread(state.counts)
            exhausted = sum(len(d.exhaustions) for d in fleet.truth.devices.values())
            sim_date = time.strftime("%Y-%m-%d %H:%M", time.gmtime(fleet.t))
            console.print(
                f"[{elapsed:5.0f}s] simulated {sim_date}"
                f"  sent {sim_stats.sent}  stored {_value(metrics, 'fleetcare_ingest_stored'):.0f}"
                f"  dead letters {sum(letters.values())} {dict(letters) or ''}"
                f"  online {online['online']}/{online['online'] + online['offline']}"
                f"  filter stages spent {exhausted}"
            )
            latest = (await store.latest([sample])).get(sample)
            if latest:
                m = latest.metrics
                console.print(
                    f"        {sample}: pm25 {m.get('pm25')} µg/m³, filter life "
                    f"{m.get('filter_life_pct')} % (the device's own estimate), "
                    f"motor {m.get('motor_current_ma')} mA"
                )
            if duration is not None and elapsed >= duration:
                break
    finally:
        fleet_stop.set()
        if walk is not None and not walk.done():
            walk.cancel()
        await fleet_task
        # the broker has acknowledged everything the fleet sent: let the worker drain it
        # before it stops (the demo's broker, and its queues, go away with the demo)
        deadline = time.monotonic() + 10
        while (  # noqa: ASYNC110 - polling a metric; there is no event to wait on
            _value(metrics, "fleetcare_ingest_stored") < sim_stats.sent
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.1)
        worker_stop.set()
        await worker_task
        api_server.should_exit = True
        with contextlib.suppress(Exception):
            await api_task
        if not models.done():  # a thread cannot be interrupted: let it finish and save
            console.print("finishing the models' training (saved for the next start)")
        with contextlib.suppress(Exception):  # a failure is shown in the loop
            await models
        count = await store.count()
        await store.close()
        db.dispose()
        broker_file.unlink(missing_ok=True)
        if mosquitto:
            mosquitto.stop()
        if amqtt:
            await amqtt.stop()
        console.print(
            f"\nstopped. {count} readings in the store; see them with "
            f"`fleetcare --data-dir {settings.data_dir} devices list` and "
            f"`fleetcare --data-dir {settings.data_dir} deadletters list`."
        )
