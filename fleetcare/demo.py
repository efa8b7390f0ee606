"""`fleetcare demo`: the whole engine on embedded defaults with a simulated fleet, in one
process: a broker of its own, ingest, the rules, the models, the API and the ops console.

What it shows, in order (at ×3600 a simulated day takes 24 s):
1. a warm-up: the fleet's first days published at once, so every
   device has a history (and the health model its normal) from the start;
2. the first jobs the rules propose (filters near the end of their life), the first one
   walked through the whole service loop;
3. the models, trained once in a process of their own and kept for the next run;
4. a fault no threshold on the readings catches, from half a simulated day after the
   warm-up: the health model names it and the rules propose its job for review.

Each run starts afresh: the previous demo's telemetry and jobs in the data directory are
cleared (its trained models are kept). One Ctrl-C stops every part and the broker, and
removes what the demo made outside the data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uvicorn
from rich.console import Console

from db.database import Database
from db.tables import filter_predictions, model_scores, work_order_evidence, work_orders
from device_sim.fleet import Fleet, FleetSpec
from device_sim.runner import RunOptions, RunStats
from device_sim.runner import run as run_fleet
from fleet.state import DeviceStateRepository
from fleetcare.brokers import AmqttBroker, MosquittoProcess, mosquitto_available, start_mosquitto
from fleetcare.demo_training import BackgroundTraining, missing
from fleetcare.publisher import publish_bad
from fleetcare.registry_gen import generate
from fleetcare.settings import Settings
from fleetcare.walkthrough import Walked, walk_service_loop
from fleetcare.wiring import build_ingest, make_decoder, model_registry, open_database
from ingest.dead_letters import DeadLetterRepository
from ingest.metrics import IngestMetrics
from models.anomaly import DEFAULT
from models.evaluation.training import FILTER_LIFE, HEALTH
from models.filter_life import schema
from models.health import full_schema as health_schema
from models.registry import RegistryError
from models.scoring import FilterLifeScoring
from rules.catalog import Catalog, load_catalog
from rules.evaluator import Evaluator
from rules.outputs import engine_outputs
from service.lifecycle import State
from service.orders import WorkOrders
from service.registry import ServiceRegistry, parse_doc
from telemetry.backends import StoreSettings, create_store
from telemetry.connection import MqttSettings
from telemetry.store import TelemetryStore

log = logging.getLogger("fleetcare.demo")
console = Console()

DEMO_LOGIN = ("ops-demo", "fleetcare-demo")
MARKER = "demo.json"  # a data directory with it is a demo's: the next demo may clear it
WARM_DAYS = 8.0  # the health model judges a device after 7 days of its own baseline
# a fault only the health model sees (no threshold on the readings does), half a
# simulated day after the warm-up; the slower one gives the console a second diagnosis
DEMO_FAULTS = (("water_purifier", "sensor_dropout", 0.5), ("purifier", "clogged_prefilter", 1.0))
DEMO_MIX = {"purifier": 0.3, "water_purifier": 0.25, "air_conditioner": 0.25, "dehumidifier": 0.2}
TRAINING_S = (30, 120)  # the models' first training beside the demo on 2 cores, seconds


class DemoRefused(Exception):
    """The demo will not start here; the message says what to do instead."""


# -- the data directory ------------------------------------------------------------------
def _demo_files(data_dir: Path) -> Iterator[Path]:
    """What a run leaves in its data directory besides the models: the telemetry store,
    the database (with their journals), completion photos and the broker's address."""
    for p in data_dir.iterdir():
        if p.name.startswith(("telemetry.sqlite3", "fleetcare.sqlite3")) or p.name in (
            "photos",
            "broker.url",
        ):
            yield p


def prepare_data_dir(data_dir: Path) -> list[str]:
    """Make `data_dir` this run's: clear a previous demo's telemetry and jobs (never
    another deployment's data); returns the names of what was cleared."""
    data_dir.mkdir(parents=True, exist_ok=True)
    found = sorted(_demo_files(data_dir))
    marker = data_dir / MARKER
    if found and not marker.exists():
        raise DemoRefused(
            f"{data_dir} holds FleetCare data that is not a demo's "
            f"({', '.join(p.name for p in found)}): give the demo a folder of its own, "
            "e.g. `fleetcare --data-dir demo-data demo`"
        )
    for p in found:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    marker.write_text(json.dumps({"started": datetime.now(UTC).isoformat()}) + "\n")
    return [p.name for p in found]


# -- the broker ----------------------------------------------------------------------------
@dataclass
class DemoBroker:
    """The demo's broker: one given, Mosquitto on a free port, or in-process amqtt."""

    mqtt: MqttSettings
    description: str
    mosquitto: MosquittoProcess | None = None
    amqtt: AmqttBroker | None = None

    @classmethod
    async def start(cls, settings: Settings, broker_url: str | None) -> DemoBroker:
        if broker_url and broker_url != "amqtt":
            mqtt = settings.mqtt.model_copy(update={"url": broker_url})
            return cls(mqtt, f"broker at {broker_url}")
        if mosquitto_available() and broker_url != "amqtt":
            tmp = Path(tempfile.mkdtemp(prefix="fleetcare-mosquitto-"))
            try:
                mosquitto = await asyncio.to_thread(start_mosquitto, tmp)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            mqtt = settings.mqtt.model_copy(update={"url": mosquitto.url})
            return cls(mqtt, f"Mosquitto on {mosquitto.url}", mosquitto=mosquitto)
        amqtt = AmqttBroker()
        await amqtt.start()
        mqtt = settings.mqtt.model_copy(update={"url": amqtt.url})
        return cls(mqtt, f"in-process amqtt on {amqtt.url} (no mosquitto installed)", amqtt=amqtt)

    async def stop(self) -> None:
        if self.mosquitto is not None:
            await asyncio.to_thread(self.mosquitto.stop)
            await asyncio.to_thread(shutil.rmtree, self.mosquitto.data_dir, True)
        if self.amqtt is not None:
            await self.amqtt.stop()


# -- what the demo prints ----------------------------------------------------------------
def _value(metrics: IngestMetrics, counter: str) -> float:
    total = 0.0
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == counter + "_total":
                total += sample.value
    return total


def _secs(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


def timeline(*, speed: float, faults: list[tuple[str, float]], training: bool) -> list[str]:
    """What to expect and when, in wall time from the start, for the lines up front;
    `faults`: what begins how many simulated days after the warm-up."""
    day = 86400 / speed
    first = min((days for _, days in faults), default=0.0) * day
    found = (first + 1.0 * day, first + 2.5 * day)  # a simulated day or two later
    if training:  # and never before the models are ready
        found = (max(found[0], TRAINING_S[0]), max(found[1], TRAINING_S[1] + day))
    steps: list[tuple[float, str, str]] = [
        (0, "now", f"the fleet's first {WARM_DAYS:g} days, published at once (stored within "
         "seconds)"),
        (10, "~10 s", "the first jobs the rules propose (filters near their end); the first "
         "one is walked through the whole service loop"),
        (TRAINING_S[0], f"~{_secs(TRAINING_S[0])}–{_secs(TRAINING_S[1])}", "the models, "
         "trained once in a process of their own (progress below; kept for the next run)")
        if training
        else (0, "now", "the models (trained by an earlier run)"),
        *((days * day, f"~{_secs(days * day)}", f"{what} begins: no threshold on its "
           "readings catches it") for what, days in faults),
    ]  # fmt: skip
    if faults:
        when = f"~{_secs(found[0])}–{_secs(found[1])}"
        what = "the health model names the first fault and the rules propose its job for review"
        steps.append((found[0], when, what))
    lines = [f"  what to expect (at ×{speed:g} a simulated day takes {_secs(day)}):"]
    lines += [f"    {when:<14} {what}" for _, when, what in sorted(steps, key=lambda s: s[0])]
    return lines


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
        value = f" (value {a.value:g})" if a.value is not None else ""
        console.print(
            f"        alert #{a.id} {a.severity}: {a.title} on {a.device_id}{value}{job}{note}"
        )
    return max([seen, *(a.id for a in fresh)])


def anomaly_rules(catalog: Catalog) -> set[str]:
    """The rules that read the health model's scores: their jobs are its diagnoses."""
    return {
        r.id
        for r in catalog.enabled()
        if r.when.prediction is not None and r.when.prediction.model == "anomaly"
    }


def _anomaly_jobs(db: Database, rules: set[str]) -> list[Any]:
    """Jobs a health-model rule opened or joined, oldest first."""
    wo, ev = work_orders.c, work_order_evidence.c
    with db.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(wo.id, wo.device_id, wo.title, wo.state, wo.due_at)
                .where(
                    sa.exists().where(
                        ev.order_id == wo.id, ev.source.in_([f"rule:{r}" for r in rules])
                    )
                )
                .order_by(wo.id)
            )
        )


async def _score(scoring: FilterLifeScoring, db: Database, sim_t: float) -> None:
    """A scoring pass at the fleet's simulated time; show the predictions closest to now
    and the devices the health model finds anomalous."""
    now = datetime.fromtimestamp(sim_t, UTC)
    report = await scoring.run(now)
    if report.scores:
        await asyncio.to_thread(_show_anomalies, db, report.scores)
    if report.general_devices:
        console.print(
            f"        [bold]general detector[/bold]: {report.general_devices} devices learning "
            f"from their own days ({report.general_alarms} alarms; it judges a device after "
            f"{DEFAULT.warmup} days of its own history)"
        )
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


# -- the parts -----------------------------------------------------------------------------
def _scoring(settings: Settings, db: Database, store: TelemetryStore) -> FilterLifeScoring | None:
    """The daily scoring pass with the active models, or None while one is missing."""
    registry = model_registry(settings)
    try:
        model, meta = registry.load(FILTER_LIFE, features=schema())
        health, health_meta = registry.load(HEALTH, features=health_schema())
    except RegistryError:
        return None
    return FilterLifeScoring(
        db, store, model, meta.version, health=health, health_version=health_meta.version
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


class _Server(uvicorn.Server):
    """uvicorn inside the demo: the demo handles the signals. uvicorn's own capture would
    take a Ctrl-C for itself and raise it again once the API stopped: a second signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_api(
    settings: Settings, db: Database, store: TelemetryStore, port: int | None
) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """The API and ops console on the demo's database and store, with a demo ops login
    that the sign-in page shows."""
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
        sign_in_hint=DEMO_LOGIN,
    )
    host = settings.api.host
    port = settings.api.port if port is None else port
    if port and not await asyncio.to_thread(_port_free, host, port):
        port = 0
    server = _Server(
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
    return server, task, f"http://{host}:{bound}"


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _inject_faults(fleet: Fleet, after: float) -> list[tuple[str, float]]:
    """The demo's faults, from `after` (epoch s) on; one line each for the timeline."""
    lines = []
    for device_type, fault, days in DEMO_FAULTS:
        group = fleet.groups.get(device_type)
        # a unit installed later is silent until then: its fault would never show
        installed = [d for d in group.ids if fleet.installed_at(d) <= after] if group else []
        if len(installed) < 2:
            continue
        device = installed[1]
        fleet.inject(device, fault, after + days * 86400)
        lines.append((f"{fault.replace('_', ' ')} on {device}", days))
    return lines


def _embedded(settings: Settings) -> tuple[Settings, list[str]]:
    """The demo keeps everything in its data directory, whatever the settings name for
    `serve` and `ingest`; says what it leaves aside."""
    aside = []
    if settings.db.url:
        aside.append("db.url")
    if settings.store.backend != "embedded" or settings.store.path:
        aside.append("store")
    embedded = settings.model_copy(
        update={"db": settings.db.model_copy(update={"url": None}), "store": StoreSettings()}
    )
    return embedded, aside


# -- the demo ------------------------------------------------------------------------------
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
    started = time.monotonic()
    data_dir = Path(await asyncio.to_thread(os.path.abspath, settings.data_dir))
    cleared = await asyncio.to_thread(prepare_data_dir, data_dir)
    settings, aside = _embedded(settings.model_copy(update={"data_dir": str(data_dir)}))
    broker = await DemoBroker.start(settings, broker_url)
    parts = _Parts(broker=broker)
    try:
        await _run(
            settings,
            stop,
            parts,
            devices=devices,
            speed=speed,
            duration=duration,
            days=days,
            api_port=api_port,
            approve_in_console=approve_in_console,
            notes=_notes(cleared, aside),
            started=started,
        )
    finally:
        await parts.close()
    console.print(f"stopped after {_secs(time.monotonic() - started)}; nothing left running")


def _notes(cleared: list[str], aside: list[str]) -> list[str]:
    out = []
    if cleared:
        out.append(f"a fresh run: the previous demo's {', '.join(cleared)} cleared (models kept)")
    if aside:
        out.append(
            f"the demo keeps its data here; the {' and '.join(aside)} settings are for serve"
        )
    return out


@dataclass
class _Parts:
    """What the demo started, stopped in reverse by `close`, whatever happened."""

    broker: DemoBroker
    db: Database | None = None
    store: TelemetryStore | None = None
    training: BackgroundTraining | None = None
    api: tuple[uvicorn.Server, asyncio.Task[None]] | None = None
    broker_file: Path | None = None

    async def close(self) -> None:
        if self.training is not None:
            await asyncio.to_thread(self.training.stop)
        if self.api is not None:
            server, task = self.api
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
        if self.store is not None:
            await self.store.close()
        if self.db is not None:
            self.db.dispose()
        if self.broker_file is not None:
            self.broker_file.unlink(missing_ok=True)
        await self.broker.stop()


async def _run(
    settings: Settings,
    stop: asyncio.Event,
    parts: _Parts,
    *,
    devices: int,
    speed: float,
    duration: float | None,
    days: float,
    api_port: int | None,
    approve_in_console: bool,
    notes: list[str],
    started: float,
) -> None:
    mqtt = parts.broker.mqtt
    ingest_opts = settings.ingest.model_copy(
        update={"client_id": "fleetcare-demo-ingest", "metrics_port": 0, "state_flush_s": 1.0}
    )
    if parts.broker.amqtt is not None:  # amqtt speaks 3.1.1 only and has no shared subscriptions
        ingest_opts = ingest_opts.model_copy(update={"shared_group": None})
    settings = settings.model_copy(update={"mqtt": mqtt, "ingest": ingest_opts})
    data_dir = Path(settings.data_dir)
    # `fleetcare sim` started with the same data dir finds the demo's broker here
    parts.broker_file = data_dir / "broker.url"
    await asyncio.to_thread(parts.broker_file.write_text, mqtt.url + "\n")
    db = parts.db = await asyncio.to_thread(open_database, settings)
    store = parts.store = create_store(settings.store, settings.data_dir)
    await store.open()

    # units installed at different times: some filters run out within minutes of the demo;
    # four families, the dehumidifier simulated from its profile alone
    begin = time.time() - days * 86400
    fleet = Fleet.create(
        FleetSpec(devices=devices, seed=1, start=begin, initial_wear=0.95, mix=DEMO_MIX)
    )
    warm_until = begin + WARM_DAYS * 86400
    faults = _inject_faults(fleet, warm_until)
    # who owns each simulated device, where, and who serves it: before the first message,
    # so the first alerts can open jobs
    await asyncio.to_thread(ServiceRegistry(db).load, parse_doc(generate(fleet)))

    registry = model_registry(settings)
    lacking = await asyncio.to_thread(missing, registry)
    if lacking:  # in the fleet's season, a month before it starts
        season = datetime.fromtimestamp(begin, UTC) - timedelta(days=30)
        parts.training = BackgroundTraining(registry, lacking, season)
    server, task, url = await _serve_api(settings, db, store, api_port)
    parts.api = (server, task)
    user, password = DEMO_LOGIN
    console.print(
        f"[bold]FleetCare demo[/bold]\n"
        f"  ops console: {url}/console\n"
        f"  demo login: {user} / {password}\n"
        f"  API: {url}/docs\n"
        f"  broker: {parts.broker.description}\n"
        f"  data: {data_dir} (telemetry store, database, models)"
        + "".join(f"\n  note: {n}" for n in notes)
        + f"\n  fleet: {devices} simulated purifiers, water purifiers, air conditioners and "
        f"dehumidifiers (the last known from its product profile alone), from {days:g} days "
        f"ago at ×{speed:g}\n"
        + "\n".join(
            timeline(
                speed=speed,
                faults=faults,
                training=parts.training is not None,
            )
        )
        + "\n  Ctrl-C stops everything"
        + (f"; it ends by itself after {duration:g} s" if duration else "")
        + ". Another fleet can join from a second terminal (same directory):\n"
        "    fleetcare sim --devices 1000 --speed 3600\n"
    )

    metrics = IngestMetrics()
    worker = build_ingest(settings, store, db, metrics)
    worker_stop, fleet_stop = asyncio.Event(), threading.Event()
    worker_task = asyncio.create_task(worker.run(worker_stop))
    logging.getLogger("device_sim").setLevel(logging.WARNING)  # the demo prints its own lines
    sim_stats = RunStats()
    fleet_task = asyncio.create_task(
        asyncio.to_thread(
            run_fleet,
            fleet,
            mqtt,
            RunOptions(
                speed=speed,
                report_interval_s=900,
                client_id="fleetcare-demo-fleet",
                fast_until=warm_until,
            ),
            fleet_stop,
            sim_stats,
        )
    )
    catalog = load_catalog()
    evaluator = Evaluator(
        db=db, store=store, catalog=catalog, outputs=engine_outputs(db), device_time=True
    )
    watch = _Watch(anomaly_rules(catalog))
    try:
        await _loop(
            settings, stop, parts, fleet, store, db, metrics, sim_stats, evaluator, watch,
            fleet_task, duration=duration, approve_in_console=approve_in_console,
            warm_until=warm_until, started=started,
        )  # fmt: skip
    finally:
        fleet_stop.set()
        if watch.walk is not None and not watch.walk.done():
            watch.walk.cancel()
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
        count = await store.count()
        console.print(
            f"\n{count} readings in the store. Look around: "
            f"`fleetcare --data-dir {data_dir} devices list`, "
            f"`fleetcare --data-dir {data_dir} orders list`, "
            f"`fleetcare --data-dir {data_dir} deadletters list`."
        )


@dataclass
class _Watch:
    """What the demo loop has shown so far."""

    anomaly_rules: set[str]
    walk: asyncio.Task[Walked | None] | None = None
    walked: bool = False
    watched: Walked | None = None
    seen_alert: int = 0
    anomaly_jobs: int = 0
    scoring: FilterLifeScoring | None = None
    scored_day: int = -1
    models_said: str = ""


async def _loop(
    settings: Settings,
    stop: asyncio.Event,
    parts: _Parts,
    fleet: Fleet,
    store: TelemetryStore,
    db: Database,
    metrics: IngestMetrics,
    sim_stats: RunStats,
    evaluator: Evaluator,
    watch: _Watch,
    fleet_task: asyncio.Task[RunStats],
    *,
    duration: float | None,
    approve_in_console: bool,
    warm_until: float,
    started: float,
) -> None:
    mqtt = parts.broker.mqtt
    state, dead = DeviceStateRepository(db), DeadLetterRepository(db)
    bad_sent = False
    sample = fleet.ids[0]
    while not stop.is_set() and not fleet_task.done():
        elapsed = time.monotonic() - started
        wait = 5.0 if duration is None else max(0.1, min(5.0, duration - elapsed))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait)
        if stop.is_set():
            break
        elapsed = time.monotonic() - started
        warm = fleet.t >= warm_until
        if not bad_sent:
            await publish_bad(mqtt)  # three broken messages: see them as dead letters
            bad_sent = True
        if watch.walk is None and warm:
            # in the background: it may wait for a person in the console
            watch.walk = asyncio.create_task(
                _walk(settings, db, fleet, store, mqtt, approve_in_console)
            )
        if watch.walk is not None and not watch.walked and watch.walk.done():
            watch.walked, watch.watched = True, watch.walk.result()
        await _models(settings, db, store, parts, watch, fleet)
        if watch.walk is not None:
            watch.seen_alert = await _evaluate(evaluator, fleet.t, watch.seen_alert)
            await _announce_anomaly_jobs(db, watch, elapsed)
        if watch.watched and _heard(fleet, watch.watched):
            w = watch.watched
            did = f"repaired its {w.fault}" if w.fault else "fitted its new filter"
            console.print(f"        {w.device_id} {did}: the loop is closed")
            watch.watched = None
        letters = await asyncio.to_thread(dead.counts)
        online = await asyncio.to_thread(state.counts)
        sim_date = time.strftime("%Y-%m-%d %H:%M", time.gmtime(fleet.t))
        phase = "" if warm else " (warm-up)"
        console.print(
            f"[{elapsed:5.0f}s] simulated {sim_date}{phase}"
            f"  sent {sim_stats.sent}  stored {_value(metrics, 'fleetcare_ingest_stored'):.0f}"
            f"  dead letters {sum(letters.values())} {dict(letters) or ''}"
            f"  online {online['online']}/{online['online'] + online['offline']}"
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


async def _models(
    settings: Settings,
    db: Database,
    store: TelemetryStore,
    parts: _Parts,
    watch: _Watch,
    fleet: Fleet,
) -> None:
    """Report the training, pick the models up once trained, score each finished day."""
    if watch.scoring is None:
        training = parts.training
        if training is not None:
            progress = await asyncio.to_thread(training.poll)
            said = progress.line()
            if said != watch.models_said:
                colour = "red" if progress.error else "bold"
                console.print(f"[{colour}]models[/{colour}]: {said}")
                watch.models_said = said
            if not progress.finished:
                return
            parts.training = None
        watch.scoring = await asyncio.to_thread(_scoring, settings, db, store)
        if watch.scoring is None:
            return
        console.print("[bold]models[/bold]: ready; scoring every simulated day")
    day = int(fleet.t // 86400)
    if day > watch.scored_day:  # a day is complete
        watch.scored_day = day
        await _score(watch.scoring, db, fleet.t)


async def _announce_anomaly_jobs(db: Database, watch: _Watch, elapsed: float) -> None:
    jobs = await asyncio.to_thread(_anomaly_jobs, db, watch.anomaly_rules)
    for job in jobs[watch.anomaly_jobs :]:
        due = (
            f"; SLA due {job.due_at:%Y-%m-%d %H:%M} UTC"
            if job.due_at
            else "; its SLA clock starts when ops approve it"
        )
        console.print(
            f"        [bold]anomaly job[/bold] #{job.id} ({job.state}): {job.title} on "
            f"{job.device_id}, the health model's diagnosis, {elapsed:.0f} s in{due}"
        )
    watch.anomaly_jobs = len(jobs)
