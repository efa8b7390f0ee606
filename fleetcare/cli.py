"""The `fleetcare` command."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fleetcare import logs
from fleetcare.settings import Settings, load_settings

app = typer.Typer(
    help=(
        "FleetCare: telemetry from connected appliances in, proactive service jobs out.\n\n"
        "Start with `fleetcare demo` (no servers needed). Configure with FLEETCARE_* "
        "environment variables (nested with __, e.g. FLEETCARE_STORE__BACKEND=influxdb) "
        "or a TOML file given with --config. See docs/configuration.md."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
db_app = typer.Typer(
    help="The relational database (SQLite by default, PostgreSQL by URL).", no_args_is_help=True
)
dl_app = typer.Typer(
    help="Messages ingest could not accept, each kept with its reason.", no_args_is_help=True
)
devices_app = typer.Typer(help="The device registry.", no_args_is_help=True)
registry_app = typer.Typer(
    help="The service registry: outlets, territories, customers, technicians, parts, "
    "stock, and where each device is.",
    no_args_is_help=True,
)
telemetry_app = typer.Typer(help="Read the telemetry store.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks (results go to docs/benchmarks.md).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(dl_app, name="deadletters")
app.add_typer(devices_app, name="devices")
app.add_typer(registry_app, name="registry")
orders_app = typer.Typer(
    help="Work orders: the queue, dispatch, appointments, SLA, settlement, KPIs, parts.",
    no_args_is_help=True,
)
app.add_typer(orders_app, name="orders")
app.add_typer(telemetry_app, name="telemetry")
app.add_typer(bench_app, name="bench")

console = Console()
err = Console(stderr=True)


class _State:
    config: str | None = None
    overrides: dict[str, Any] = {}


def _settings(**overrides: Any) -> Settings:
    try:
        s = load_settings(_State.config, **{**_State.overrides, **overrides})
    except Exception as exc:  # a bad setting: say which and stop
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    logs.configure(s.log.format, s.log.level)
    return s


@app.callback()
def _root(
    config: Annotated[
        str | None,
        typer.Option("--config", "-c", envvar="FLEETCARE_CONFIG", help="TOML settings file."),
    ] = None,
    data_dir: Annotated[
        str | None, typer.Option(help="Where embedded stores live (FLEETCARE_DATA_DIR).")
    ] = None,
    log_format: Annotated[str | None, typer.Option(help="console or json.")] = None,
) -> None:
    _State.config = config
    _State.overrides = {}
    if data_dir:
        _State.overrides["data_dir"] = data_dir
    if log_format:
        _State.overrides["log"] = {"format": log_format}


def _run_until_signal(main: Any) -> None:
    """Run `main(stop)` until SIGINT/SIGTERM sets `stop`; a second signal aborts."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        hits = {"n": 0}

        def on_signal() -> None:
            hits["n"] += 1
            if hits["n"] > 1:
                err.print("second signal: exiting now")
                raise SystemExit(130)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        await main(stop)

    asyncio.run(runner())


# -- schema ----------------------------------------------------------------------------
@app.command()
def schema(
    device_type: Annotated[
        str | None,
        typer.Argument(help="Only this type (purifier, water_purifier, air_conditioner)."),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
) -> None:
    """Print the JSON Schema of the device contract (topics and v1 payloads)."""
    from telemetry.errors import UnknownDeviceType
    from telemetry.schema import contract_schema, device_type_schema

    try:
        doc = device_type_schema(device_type) if device_type else contract_schema()
    except UnknownDeviceType as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if output:
        output.write_text(text)
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text)


# -- db --------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or upgrade the schema (Alembic migrations)."""
    from workorders.db import Database

    s = _settings()
    db = Database.from_settings(s.db, s.data_dir)
    before = db.current()
    db.upgrade(revision)
    console.print(f"database {db.safe_url}: {before or 'empty'} -> {db.current()}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision and whether it is up to date."""
    from workorders.db import Database

    s = _settings()
    db = Database.from_settings(s.db, s.data_dir)
    current, head = db.current(), db.head()
    state = "up to date" if current == head else "behind: run `fleetcare db upgrade`"
    console.print(f"{db.safe_url}: revision {current or 'none'} (code: {head}) {state}")


# -- ingest ----------------------------------------------------------------------------
@app.command()
def ingest(
    client_id: Annotated[
        str | None,
        typer.Option(help="Fixed MQTT client id; give each worker its own (persistent session)."),
    ] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port; 0 = off.")] = None,
) -> None:
    """Run one ingest worker: MQTT (shared subscription) into the telemetry store.

    Messages are acknowledged only once their batch is durable; rejects become dead
    letters. Stop with Ctrl-C or SIGTERM: it flushes, acknowledges and exits 0. Run more
    workers (each with its own --client-id) to split the load.
    """
    from fleetcare.wiring import run_ingest

    ingest_over: dict[str, Any] = {}
    if client_id:
        ingest_over["client_id"] = client_id
    if metrics_port is not None:
        ingest_over["metrics_port"] = metrics_port
    s = _settings()
    if ingest_over:
        s = s.model_copy(update={"ingest": s.ingest.model_copy(update=ingest_over)})
    from fleetcare.wiring import SettingsError

    try:
        _run_until_signal(lambda stop: run_ingest(s, stop))
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command()
def serve(
    ingest_workers: Annotated[
        int, typer.Option(min=0, help="Ingest workers on the shared subscription.")
    ] = 2,
    evaluators: Annotated[
        int, typer.Option(min=0, help="Rules evaluators, each a partition of the devices.")
    ] = 1,
    api_workers: Annotated[
        int | None, typer.Option(min=1, help="API processes (default: api.workers).")
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            help="Run only these parts, comma-separated: ingest, rules, dispatch, commands, "
            "notify, api."
        ),
    ] = None,
    dispatch_every: Annotated[
        float, typer.Option(min=1, help="Seconds between the dispatcher's runs.")
    ] = 60.0,
    health_port: Annotated[
        int, typer.Option(min=0, help="The supervisor's /healthz and /readyz; 0 = off.")
    ] = 9470,
    grace: Annotated[
        float, typer.Option(min=1, help="Seconds the parts get to stop before SIGKILL.")
    ] = 30.0,
) -> None:
    """Run the production process set, supervised: ingest workers, rules evaluators (with
    the models' daily scoring), the dispatcher, the command and message senders, and the
    API with the ops console.

    Each part is its own process, started as its own command would start it (`fleetcare
    ingest`, `fleetcare evaluate-rules --partition k/n`, `fleetcare orders dispatch
    --every 60`, `fleetcare send-commands`, `fleetcare notify send`, `fleetcare api`), so
    any of them can also run alone. The database is migrated once first. A part that dies
    is restarted (1 s, then longer if it keeps dying). SIGTERM or Ctrl-C stops all
    gracefully. Example: `fleetcare serve --ingest-workers 2 --api-workers 2`; see
    docs/deploy.md.
    """
    from fleetcare.serve import PARTS, ServePlan, Supervisor, parts, serve_health
    from fleetcare.wiring import open_database

    s = _settings()
    chosen = frozenset(PARTS)
    if only:
        chosen = frozenset(x.strip() for x in only.split(",") if x.strip())
        unknown = sorted(chosen - set(PARTS))
        if unknown or not chosen:
            err.print(f"[red]--only {only!r}[/]: choose from {', '.join(PARTS)}")
            raise typer.Exit(2)
    plan = ServePlan(
        ingest_workers=ingest_workers,
        evaluators=evaluators,
        api_workers=api_workers or s.api.workers,
        dispatch_every_s=dispatch_every,
        only=chosen,
    )
    try:
        open_database(s).dispose()  # migrate once, before the parts start
    except Exception as exc:  # the database is down or behind: say which and stop
        err.print(f"[red]database: {exc}[/red]")
        raise typer.Exit(1) from None
    supervisor = Supervisor(s, parts(s, plan), grace_s=grace)
    names = ", ".join(r.part.name for r in supervisor.running)
    console.print(f"serving: {names}" + (f"; health on :{health_port}" if health_port else ""))

    async def main(stop: asyncio.Event) -> None:
        server = await serve_health(supervisor, "0.0.0.0", health_port) if health_port else None
        try:
            await supervisor.run(stop)
        finally:
            if server is not None:
                server.close()
                await server.wait_closed()

    _run_until_signal(main)


# -- dead letters ----------------------------------------------------------------------
def _dead_letters(s: Settings) -> Any:
    from fleetcare.wiring import open_database
    from workorders.dead_letters import DeadLetterRepository

    return DeadLetterRepository(open_database(s))


@dl_app.command("list")
def dl_list(
    reason: Annotated[str | None, typer.Option(help="e.g. out_of_range, not_json.")] = None,
    device: Annotated[str | None, typer.Option(help="Device id.")] = None,
    status: Annotated[str, typer.Option(help="pending, replayed, discarded or all.")] = "pending",
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List dead letters with their reasons (newest problems first to fix)."""
    s = _settings()
    repo = _dead_letters(s)
    letters = repo.list(
        status=None if status == "all" else status, reason=reason, device_id=device, limit=limit
    )
    if as_json:
        for d in letters:
            sys.stdout.write(
                json.dumps(
                    {
                        "id": d.id,
                        "reason": d.reason,
                        "detail": d.detail,
                        "topic": d.topic,
                        "count": d.count,
                        "status": d.status,
                        "last_seen_at": d.last_seen_at.isoformat(),
                    }
                )
                + "\n"
            )
        return
    counts = repo.counts(None if status == "all" else status)
    table = Table(
        title=f"dead letters ({status}): "
        + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none")
    )
    for col in ("id", "reason", "topic", "count", "last seen", "detail"):
        table.add_column(col, overflow="fold")
    for d in letters:
        table.add_row(
            str(d.id),
            d.reason,
            d.topic,
            str(d.count),
            d.last_seen_at.strftime("%Y-%m-%d %H:%M:%S"),
            d.detail[:120],
        )
    console.print(table)


@dl_app.command("show")
def dl_show(letter_id: int) -> None:
    """Show one dead letter in full, with its raw payload."""
    from workorders.errors import NotFound

    repo = _dead_letters(_settings())
    try:
        d = repo.get(letter_id)
    except NotFound as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    try:
        body = d.payload.decode("utf-8")
    except UnicodeDecodeError:
        body = "hex: " + d.payload.hex()
    console.print(
        f"id: {d.id}\nstatus: {d.status}\nreason: {d.reason}\ndetail: {d.detail}\n"
        f"topic: {d.topic}\ndevice: {d.device_type}/{d.device_id}\n"
        f"count: {d.count}\nfirst seen: {d.first_seen_at}\nlast seen: {d.last_seen_at}\n"
        f"size: {d.payload_size} bytes{' (truncated)' if d.truncated else ''}"
    )
    console.print("payload:", markup=False)
    sys.stdout.write(body + "\n")


@dl_app.command("replay")
def dl_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead-letter ids.")] = None,
    reason: Annotated[str | None, typer.Option(help="All pending with this reason.")] = None,
    all_pending: Annotated[bool, typer.Option("--all", help="All pending.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Only say what would happen.")] = False,
) -> None:
    """Run dead letters through today's validation again (after fixing the cause).

    What passes is stored and marked replayed; what fails stays pending with its
    current reason.
    """
    if not ids and not reason and not all_pending:
        err.print("name dead-letter ids, --reason REASON or --all")
        raise typer.Exit(2)
    s = _settings()
    asyncio.run(_replay(s, ids, reason, dry_run))


async def _replay(s: Settings, ids: list[int] | None, reason: str | None, dry_run: bool) -> None:
    from fleetcare.wiring import make_decoder, open_database
    from ingest.processor import RegistryCache
    from ingest.replay import replay
    from telemetry.backends import create_store
    from workorders.dead_letters import DeadLetterRepository
    from workorders.device_state import DeviceStateRepository
    from workorders.registry import DeviceRegistry

    db = open_database(s)
    repo = DeadLetterRepository(db)
    store = create_store(s.store, s.data_dir)
    async with store:
        total_ok = total_bad = 0
        after = 0
        while True:
            batch = repo.list(status="pending", reason=reason, ids=ids, limit=1000, after_id=after)
            if not batch:
                break
            after = batch[-1].id
            registry = RegistryCache(DeviceRegistry(db), 0) if s.ingest.require_registered else None
            report = await replay(
                batch,
                decoder=make_decoder(s),
                store=store,
                dead_letters=repo,
                state=DeviceStateRepository(db),
                registry=registry,
                dry_run=dry_run,
            )
            total_ok += len(report.stored)
            total_bad += len(report.still_rejected)
            for letter_id, why, detail in report.still_rejected[:20]:
                console.print(f"  #{letter_id} still rejected: {why}: {detail}")
    verb = "would store" if dry_run else "stored"
    console.print(f"{verb} {total_ok}; still rejected {total_bad}")


# -- work orders -----------------------------------------------------------------------
@orders_app.command("list")
def orders_list(
    state: Annotated[
        list[str] | None, typer.Option(help="Only these states (repeat the option).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """The work-order queue, with SLA status and the reason when nobody can take one."""
    from fleetcare.wiring import open_database
    from workorders.lifecycle import State
    from workorders.orders import WorkOrders

    try:
        states = {State(x) for x in state} if state else None
    except ValueError:
        err.print(f"state is one of {', '.join(s.value for s in State)}")
        raise typer.Exit(2) from None
    orders = WorkOrders(open_database(_settings()))
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


@orders_app.command("dispatch")
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
    load); print who got what and why the rest could not be assigned."""
    from fleetcare.wiring import open_database
    from workorders.dispatch import Dispatcher

    dispatcher = Dispatcher(open_database(_settings()))

    def once(quiet: bool = False) -> None:
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
        while not stop.is_set():
            await asyncio.to_thread(once, True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)

    _run_until_signal(loop)


@orders_app.command("sla")
def orders_sla() -> None:
    """Live orders at risk (due within 4 h) or breached, most overdue first."""
    from fleetcare.wiring import open_database
    from workorders.orders import WorkOrders

    board = WorkOrders(open_database(_settings())).sla_board()
    if not board:
        console.print("nothing at risk or breached")
    for o, status in board:
        due = o.due_at.strftime("%Y-%m-%d %H:%M UTC") if o.due_at else "-"
        console.print(
            f"#{o.id} {status.value:9} due {due}  {o.device_id} {o.problem_kind} ({o.state.value})"
        )


@orders_app.command("settlement")
def orders_settlement(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")],
    end: Annotated[str, typer.Option("--to", help="Day after the last, YYYY-MM-DD (UTC).")],
    output: Annotated[Path | None, typer.Option(help="Write CSV here (default: print).")] = None,
    grace_days: Annotated[int, typer.Option(min=0, help="Days a job waits for a rating.")] = 7,
) -> None:
    """Commission payable per outlet and technician in a period (CSV): a job's commission
    is payable once the customer rated it, or after the grace days without a rating."""
    from datetime import UTC, datetime

    from fleetcare.wiring import open_database
    from workorders.orders import WorkOrders
    from workorders.settlement import Callbacks, settlement_csv

    try:
        a, b = (datetime.strptime(x, "%Y-%m-%d").replace(tzinfo=UTC) for x in (start, end))
    except ValueError:
        err.print("dates are YYYY-MM-DD, e.g. --from 2026-11-01 --to 2026-12-01")
        raise typer.Exit(2) from None
    if b <= a:
        err.print("--to must be after --from")
        raise typer.Exit(2)
    cb = Callbacks(WorkOrders(open_database(_settings())), grace_days=grace_days)
    text = settlement_csv(cb.settlement(a, b))
    if output is None:
        console.print(text, end="")
    else:
        output.write_text(text)
        console.print(f"wrote {output}")


# -- device commands -------------------------------------------------------------------
@app.command("send-commands")
def send_commands(
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between outbox scans.")] = 1.0,
) -> None:
    """Send the device-command outbox (e.g. `filter_replaced` after a completed job) to
    each device's `cmd` topic, QoS 1, marking each sent once the broker acknowledged it.
    Runs until Ctrl-C."""
    from fleetcare.commands import run_command_publisher
    from fleetcare.wiring import open_database
    from workorders.commands import CommandOutbox

    s = _settings()
    outbox = CommandOutbox(open_database(s))
    console.print(f"sending device commands to {s.mqtt.url}; Ctrl-C to stop")
    _run_until_signal(lambda stop: run_command_publisher(outbox, s.mqtt, stop, interval_s=interval))


# -- registry --------------------------------------------------------------------------
@registry_app.command("import")
def registry_import(
    files: Annotated[list[Path], typer.Argument(help=".json (all kinds) or .csv (one kind)")],
    kind: Annotated[
        str | None,
        typer.Option(help="For a CSV not named after its kind (customers.csv, technicians.csv…)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Validate only.")] = False,
) -> None:
    """Import registry rows, all or nothing: a bad row is named by file, line and field.

    JSON: {"outlets": [...], "territories": [...], "customers": [...], "technicians":
    [...], "parts": [...], "stock": [...], "devices": [...]}. CSV: one kind per file;
    lists are `;`-separated, skills `device_type:problem_kind`, working hours
    `mon=08:00-18:00;tue=08:00-18:00`. Rows that exist are updated. See
    docs/workorders.md for every field.
    """
    from fleetcare.wiring import open_database
    from workorders.service_registry import (
        RegistryData,
        RegistryImportError,
        ServiceRegistry,
        read_file,
    )

    merged = RegistryData({})
    try:
        for f in files:
            if not f.exists():
                err.print(f"[red]{f}: no such file[/red]")
                raise typer.Exit(2)
            for k, rows in read_file(f, kind).rows.items():
                merged.rows.setdefault(k, []).extend(rows)
        if dry_run:
            console.print(f"valid: {merged.count()}")
            return
        for k in (
            "outlets",
            "territories",
            "customers",
            "technicians",
            "parts",
            "stock",
            "devices",
        ):
            merged.rows.setdefault(k, [])
        counts = ServiceRegistry(open_database(_settings())).load(merged)
    except RegistryImportError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"imported {counts}")


@registry_app.command("generate")
def registry_generate(
    devices: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    seed: Annotated[int, typer.Option(help="The fleet's seed, as for `fleetcare sim`.")] = 1,
    output: Annotated[Path, typer.Option(help="Where to write the JSON.")] = Path("registry.json"),
) -> None:
    """Write a registry consistent with `fleetcare sim --devices N --seed S`: the same
    device ids, with owners, territories, outlets, technicians, parts and stock."""
    from fleetcare.registry_gen import for_sim_fleet

    rows = for_sim_fleet(devices, seed)
    output.write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    console.print(
        f"wrote {output}: "
        + ", ".join(f"{len(v)} {k}" for k, v in rows.items())
        + f"; load it with `fleetcare registry import {output}`"
    )


# -- devices ---------------------------------------------------------------------------
@devices_app.command("add")
def devices_add(
    device_id: str,
    device_type: Annotated[
        str, typer.Option("--type", help="purifier, water_purifier, air_conditioner")
    ],
    model: Annotated[str | None, typer.Option()] = None,
    serial: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Register a device (needed when FLEETCARE_INGEST__REQUIRE_REGISTERED=true)."""
    from fleetcare.wiring import open_database
    from telemetry.metrics import DEVICE_TYPES
    from workorders.errors import RegistryError
    from workorders.registry import Device, DeviceRegistry

    if device_type not in DEVICE_TYPES:
        err.print(f"unknown type {device_type!r}; use one of {', '.join(DEVICE_TYPES)}")
        raise typer.Exit(2)
    reg = DeviceRegistry(open_database(_settings()))
    try:
        reg.register([Device(device_id, device_type, model, serial)])
    except RegistryError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"registered {device_id} ({device_type})")


def _broker_auth(s: Settings) -> str:
    """Write Mosquitto's password and ACL files from the database and reload it; what was
    done, in words."""
    import os
    import signal as _signal

    from fleetcare.wiring import open_database
    from workorders.device_credentials import DeviceCredentials, EngineAccount, acl_file

    b = s.broker
    if not (b.password_file and b.acl_file):
        return (
            "broker files not written: set broker.password_file and broker.acl_file "
            "(FLEETCARE_BROKER__PASSWORD_FILE, FLEETCARE_BROKER__ACL_FILE)"
        )
    engine = (
        EngineAccount(s.mqtt.username, s.mqtt.password.get_secret_value())
        if s.mqtt.username and s.mqtt.password
        else None
    )
    for path, text in (
        (b.password_file, DeviceCredentials(open_database(s)).password_file(engine)),
        (b.acl_file, acl_file(s.mqtt.topic_prefix, engine.username if engine else None)),
    ):
        tmp = Path(f"{path}.tmp")
        tmp.write_text(text)
        tmp.chmod(0o600 if path == b.password_file else 0o644)
        tmp.replace(path)  # whole or not at all: the broker never reads half a file
    done = f"wrote {b.password_file} and {b.acl_file}"
    if b.pid_file:
        try:
            os.kill(int(Path(b.pid_file).read_text().strip()), _signal.SIGHUP)
        except (OSError, ValueError) as exc:
            return f"{done}; could not reload Mosquitto from {b.pid_file}: {exc}"
        return f"{done}; Mosquitto reloaded"
    return f"{done}; reload Mosquitto (SIGHUP) to apply them"


@devices_app.command("provision")
def devices_provision(
    device_ids: Annotated[list[str], typer.Argument(help="Registered device ids.")],
) -> None:
    """Give devices their own MQTT credentials: user name = device id, a random password
    shown this once (stored only as the broker's hash). Then writes Mosquitto's password
    and ACL files and reloads it: a device may publish only under its own topics and
    read only its own commands. Example: `fleetcare devices provision ap-0001`."""
    from fleetcare.wiring import open_database
    from workorders.device_credentials import CredentialError, DeviceCredentials
    from workorders.errors import NotFound

    s = _settings()
    creds = DeviceCredentials(open_database(s))
    for device_id in device_ids:
        try:
            issued = creds.provision(device_id)
        except (CredentialError, NotFound) as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
        print(f"{issued.device_id} {issued.password}")
    console.print(_broker_auth(s))


@devices_app.command("import")
def devices_import(
    file: Annotated[
        Path,
        typer.Argument(help="`device_id:password` lines, e.g. from `fleetcare sim-credentials`."),
    ],
    skip_live: Annotated[
        bool, typer.Option(help="Skip devices that already have live credentials (re-runs).")
    ] = False,
) -> None:
    """Provision registered devices with passwords they already have (set in the factory,
    or derived by the simulator): only the hashes are kept. Then writes the broker's files
    and reloads it. A device that already has live credentials is an error, unless
    --skip-live."""
    from fleetcare.wiring import open_database
    from workorders.device_credentials import CredentialError, DeviceCredentials
    from workorders.errors import NotFound

    s = _settings()
    creds = DeviceCredentials(open_database(s))
    try:
        lines = file.read_text().splitlines()
    except OSError as exc:
        err.print(f"[red]cannot read {file}: {exc.strerror}[/red]")
        raise typer.Exit(2) from None
    done = 0
    live = {device_id for device_id, _ in creds.live()} if skip_live else set()
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        device_id, sep, password = line.strip().partition(":")
        if device_id in live:
            continue
        try:
            if not sep:
                raise CredentialError("expected device_id:password")
            creds.provision(device_id, password)
        except (CredentialError, NotFound) as exc:
            err.print(f"[red]{file}:{n}: {exc}[/red] ({done} imported before it)")
            raise typer.Exit(1) from None
        done += 1
    console.print(f"imported {done} devices' credentials; " + _broker_auth(s))


@devices_app.command("sync-broker")
def devices_sync_broker() -> None:
    """Write Mosquitto's password and ACL files from the database and reload it, changing
    no credentials: for a new broker (its first files, with the engine's own account from
    mqtt.username / mqtt.password) or one whose files were lost. Idempotent."""
    console.print(_broker_auth(_settings()))


@devices_app.command("rotate")
def devices_rotate(device_id: str) -> None:
    """A new password for a device (shown once); the old one stops at the broker's reload."""
    issued = _credentials_change(lambda creds: creds.rotate(device_id))
    print(f"{issued.device_id} {issued.password}")
    console.print(_broker_auth(_settings()))


@devices_app.command("revoke")
def devices_revoke(device_id: str) -> None:
    """Take a device's credentials away: it cannot connect once the broker reloads."""
    _credentials_change(lambda creds: creds.revoke(device_id))
    console.print(f"{device_id} revoked; " + _broker_auth(_settings()))


def _credentials_change(act: Any) -> Any:
    from fleetcare.wiring import open_database
    from workorders.device_credentials import CredentialError, DeviceCredentials

    try:
        return act(DeviceCredentials(open_database(_settings())))
    except CredentialError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@devices_app.command("resend")
def devices_resend(
    since: Annotated[
        str,
        typer.Option(
            help="How far back: a duration before now (45s, 10m, 2h) or an ISO-8601 time "
            "(2026-11-25T09:30:00Z; without a zone it is UTC)."
        ),
    ] = "10m",
) -> None:
    """Ask every device to publish again what it sent since a moment (`resend` on the
    fleet-wide cmd topic, with the engine's MQTT account). Ingest asks for this by itself
    after it reconnects; use this for a loss no worker saw, such as the queue of a worker
    removed for good (docs/deploy.md). Repeats are stored once. A device keeps what it
    sent for a while only (the simulator: its last 200,000 messages)."""
    import time
    from datetime import UTC, datetime

    from rules.spec import parse_duration

    try:
        since_s = time.time() - parse_duration(since).total_seconds()
    except ValueError:
        try:
            at = datetime.fromisoformat(since)
        except ValueError:
            err.print(
                f"[red]--since {since!r}:[/red] give a duration (45s, 10m, 2h) "
                "or an ISO-8601 time (2026-11-25T09:30:00Z)"
            )
            raise typer.Exit(2) from None
        since_s = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    import aiomqtt

    from fleetcare.resend import ask_fleet_resend

    s = _settings()
    try:
        topic = asyncio.run(ask_fleet_resend(s.mqtt, since_s))
    except ValueError as exc:
        err.print(f"[red]--since {since!r}:[/red] {exc}")
        raise typer.Exit(2) from None
    except aiomqtt.MqttError as exc:  # refused (credentials, ACL) or away
        err.print(f"[red]could not reach the broker at {s.mqtt.url}:[/red] {exc}")
        raise typer.Exit(1) from None
    at_text = datetime.fromtimestamp(since_s, UTC).isoformat(timespec="seconds")
    console.print(f"asked the fleet to resend what it sent since {at_text} (on {topic})")


@devices_app.command("list")
def devices_list(limit: Annotated[int, typer.Option(min=1)] = 100) -> None:
    """Registered devices with their state (online, last seen, firmware)."""
    from fleetcare.wiring import open_database
    from workorders.device_state import DeviceStateRepository

    db = open_database(_settings())
    table = Table()
    for col in ("device", "type", "online", "via", "last seen (device time)", "firmware", "msgs"):
        table.add_column(col)
    from datetime import UTC, datetime

    for st in DeviceStateRepository(db).list(limit=limit):
        seen = (
            datetime.fromtimestamp(st.last_seen_ts / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
            if st.last_seen_ts
            else "-"
        )
        table.add_row(
            st.device_id,
            st.device_type,
            "yes" if st.online else "no",
            st.online_source,
            seen,
            st.firmware or "-",
            str(st.messages_total),
        )
    console.print(table)


# -- telemetry -------------------------------------------------------------------------
@telemetry_app.command("count")
def telemetry_count(
    device: Annotated[str | None, typer.Option(help="Device id.")] = None,
    device_type: Annotated[str | None, typer.Option("--type")] = None,
) -> None:
    """How many telemetry messages the store holds."""
    from telemetry.backends import create_store

    s = _settings()

    async def run() -> int:
        async with create_store(s.store, s.data_dir) as store:
            return await store.count(device_id=device, device_type=device_type)

    console.print(asyncio.run(run()))


@telemetry_app.command("latest")
def telemetry_latest(device_ids: list[str]) -> None:
    """The newest value of each metric of the given devices."""
    from telemetry.backends import create_store

    s = _settings()

    async def run() -> None:
        async with create_store(s.store, s.data_dir) as store:
            latest = await store.latest(device_ids)
        for d in device_ids:
            if d in latest:
                sys.stdout.write(
                    json.dumps(
                        {
                            "device_id": d,
                            "type": latest[d].device_type,
                            "ts": latest[d].ts,
                            **latest[d].metrics,
                        }
                    )
                    + "\n"
                )
            else:
                err.print(f"{d}: no telemetry stored")

    asyncio.run(run())


# -- demo ------------------------------------------------------------------------------
@app.command()
def demo(
    devices: Annotated[int, typer.Option(min=1, max=1000, help="Devices to simulate.")] = 30,
    speed: Annotated[
        float, typer.Option(min=1, help="Simulated seconds per wall second.")
    ] = 3600.0,
    duration: Annotated[float | None, typer.Option(help="Stop after N seconds.")] = None,
    broker: Annotated[
        str | None,
        typer.Option(
            help="Use this broker (mqtt://host:port) instead of starting one; "
            "`amqtt` forces the in-process fallback broker."
        ),
    ] = None,
    api_port: Annotated[
        int | None,
        typer.Option(help="Port of the ops console and API (default: api.port, else a free one)."),
    ] = None,
    approve_in_console: Annotated[
        bool,
        typer.Option(
            help="The walk-through's job waits for you: approve it in the ops console, then "
            "watch it dispatched, completed and rated (default: the demo approves it)."
        ),
    ] = False,
) -> None:
    """Run the engine on embedded defaults with a simulated fleet.

    Starts a broker of its own (Mosquitto on a free port if installed, else the
    in-process amqtt), the ingest worker and a simulated fleet of purifiers, water
    purifiers and air conditioners aging an hour a second; plus three malformed messages,
    to show dead letters. Serves the ops console and the API (it prints the URL and a
    demo login): review the jobs the rules and models raise, approve them into dispatch.
    Prints what flows; Ctrl-C stops cleanly.
    """
    from fleetcare.demo import run_demo

    s = _settings()
    _run_until_signal(
        lambda stop: run_demo(
            s,
            stop,
            devices=devices,
            speed=speed,
            duration=duration,
            broker_url=broker,
            api_port=api_port,
            approve_in_console=approve_in_console,
        )
    )


# -- sim -------------------------------------------------------------------------------
class SimMode(StrEnum):
    accelerated = "accelerated"
    realtime = "realtime"
    backfill = "backfill"


@app.command()
def sim(
    devices: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    mode: Annotated[
        SimMode,
        typer.Option(
            help="accelerated: --speed times the wall clock, never ahead of now; realtime: "
            "x1; backfill: the history up to now as fast as the engine takes it, then stop."
        ),
    ] = SimMode.accelerated,
    speed: Annotated[
        float,
        typer.Option(min=1, help="Simulated seconds per wall second (3600: an hour a second)."),
    ] = 3600.0,
    report_interval: Annotated[
        float, typer.Option(min=1, help="Simulated seconds between a device's reports.")
    ] = 900.0,
    start_days_ago: Annotated[
        float, typer.Option(min=0, help="Simulated time starts this long ago.")
    ] = 180.0,
    seed: Annotated[int, typer.Option(help="Same seed, same fleet.")] = 1,
    duration: Annotated[float | None, typer.Option(help="Stop after N wall seconds.")] = None,
    broker: Annotated[
        str | None,
        typer.Option(help="mqtt://host:port; default: the running demo's broker, else settings."),
    ] = None,
    truth: Annotated[Path, typer.Option(help="Where to write the ground truth.")] = Path(
        "ground-truth.jsonl"
    ),
    processes: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="Publisher processes, each owning a share of the devices."
        ),
    ] = 1,
    per_device: Annotated[
        bool,
        typer.Option(
            "--per-device",
            help="One MQTT connection per device (user = device id, password from "
            "--device-secret, a real Last Will); default: a few multiplexed connections.",
        ),
    ] = False,
    device_secret: Annotated[
        str,
        typer.Option(
            envvar="FLEETCARE_SIM_DEVICE_SECRET",
            help="Secret the per-device passwords derive from (see `fleetcare sim-credentials`).",
        ),
    ] = "fleetcare-sim",
    max_backlog: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Pause while the broker holds more than this for subscribers "
            "($SYS/broker/store/messages/count); backfill default 100000.",
        ),
    ] = None,
    duplicates: Annotated[
        float, typer.Option(min=0, max=1, help="Chaos: share of messages sent twice.")
    ] = 0.0,
    out_of_order: Annotated[
        float, typer.Option(min=0, max=1, help="Chaos: share sent after a later message.")
    ] = 0.0,
    malformed: Annotated[
        float, typer.Option(min=0, max=1, help="Chaos: share sent broken (dead letters).")
    ] = 0.0,
    outages_per_day: Annotated[
        float, typer.Option(min=0, help="Connection losses per device per simulated day.")
    ] = 0.0,
    outage_hours: Annotated[float, typer.Option(min=0.01, help="Mean outage length.")] = 4.0,
    buffer: Annotated[int, typer.Option(min=1, help="Readings a device keeps offline.")] = 500,
    faults_per_year: Annotated[
        float, typer.Option(min=0, help="Faults per device per year (ground truth records them).")
    ] = 0.0,
    clock_skew: Annotated[
        float, typer.Option(min=0, max=120, help="Std. dev. of device clock offsets, s.")
    ] = 0.0,
) -> None:
    """Simulate a fleet of air purifiers, water purifiers and air conditioners.

    Filters wear and faults grow with real physics; ground truth (capacities, exhaustion
    times, fault onsets) goes to --truth, never over MQTT. With `fleetcare demo` running,
    no --broker is needed.

    Examples:

      fleetcare sim --devices 1000 --speed 3600          # a fleet ages an hour a second

      fleetcare sim --mode backfill --start-days-ago 90  # three months of history, then stop

      fleetcare sim --devices 100000 --processes 2 --speed 86400
    """
    import threading
    import time as _time

    from device_sim.fleet import Fleet, FleetSpec
    from device_sim.link import LinkRefused
    from device_sim.parallel import ShardFailed
    from device_sim.runner import Chaos, Connectivity, RunOptions, RunStats, run
    from device_sim.transport import PerDeviceOptions

    s = _settings()
    demo_url = Path(s.data_dir) / "broker.url"
    url = broker or (demo_url.read_text().strip() if demo_url.exists() else s.mqtt.url)
    mqtt = s.mqtt.model_copy(update={"url": url})
    start = _time.time() - start_days_ago * 86400
    fleet = Fleet.create(
        FleetSpec(
            devices=devices,
            seed=seed,
            start=start,
            faults_per_device_year=faults_per_year,
            fault_window_days=max(start_days_ago, 1.0),
        )
    )
    options = RunOptions(
        mode=mode.value,
        speed=speed,
        report_interval_s=report_interval,
        duration_s=duration,
        processes=processes,
        per_device=PerDeviceOptions(secret=device_secret) if per_device else None,
        max_backlog=max_backlog,
        chaos=Chaos(duplicate=duplicates, out_of_order=out_of_order, malformed=malformed),
        connectivity=Connectivity(
            outages_per_day=outages_per_day,
            outage_hours=outage_hours,
            buffer=buffer,
            clock_skew_s=clock_skew,
        ),
    )
    pace = "" if mode is not SimMode.accelerated else f" at ×{speed:g}"
    console.print(
        f"simulating {devices} devices ({mode.value}{pace}) into {url}"
        f"{f' from {processes} processes' if processes > 1 else ''}; Ctrl-C to stop"
    )
    stop = threading.Event()
    stats = RunStats()
    outcome: dict[str, object] = {}

    def on_signal(*_: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def work() -> None:
        try:
            run(fleet, mqtt, options, stop, stats)
        except (OSError, LinkRefused, ShardFailed) as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="sim")
    worker.start()
    _sim_progress(worker, stats, start, mode is SimMode.backfill)
    worker.join()
    error = outcome.get("error")
    if isinstance(error, LinkRefused):
        err.print(
            f"[red]{error}[/red]. Per-device passwords derive from --device-secret; "
            "provision the broker with `fleetcare sim-credentials`."
        )
        raise typer.Exit(1)
    if error is not None:
        err.print(
            f"[red]cannot run the fleet against {url}: {error}[/red] (start `fleetcare demo` "
            "or pass --broker)"
        )
        raise typer.Exit(1)
    fleet.truth.save(truth)
    exhausted = sum(len(d.exhaustions) for d in fleet.truth.devices.values())
    faults = sum(len(d.faults) for d in fleet.truth.devices.values())
    console.print(
        f"sent {stats.sent}, acknowledged {stats.acknowledged}; simulated up to "
        f"{_time.strftime('%Y-%m-%d %H:%M', _time.gmtime(stats.sim_time))} UTC; "
        f"{exhausted} filter stages exhausted, {faults} faults; ground truth in {truth}"
    )


def _sim_progress(worker: Any, stats: Any, start: float, backfill: bool) -> None:
    """A progress bar over simulated time while the fleet runs (to now, in a backfill)."""
    import time as _time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    total = max(_time.time() - start, 1.0)
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[sim]}  sent {task.fields[sent]:,}  {task.fields[rate]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(
            "backfill" if backfill else "simulated", total=total, sim="", sent=0, rate=""
        )
        last_sent, last_t = 0, _time.monotonic()
        while worker.is_alive():
            worker.join(timeout=1.0)
            now = _time.monotonic()
            rate = (stats.sent - last_sent) / max(now - last_t, 1e-6)
            last_sent, last_t = stats.sent, now
            sim_t = stats.sim_time or start
            bar.update(
                task,
                completed=min(sim_t - start, total),
                sim=_time.strftime("%Y-%m-%d %H:%M", _time.gmtime(sim_t)),
                sent=stats.sent,
                rate=f"{rate:,.0f} msg/s" + ("  waiting for the engine" if stats.waits else ""),
            )


@app.command("sim-credentials")
def sim_credentials(
    devices: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    seed: Annotated[int, typer.Option(help="The fleet's seed (device ids depend on it).")] = 1,
    device_secret: Annotated[
        str, typer.Option(envvar="FLEETCARE_SIM_DEVICE_SECRET", help="As for `fleetcare sim`.")
    ] = "fleetcare-sim",
    prefix: Annotated[str, typer.Option(help="Topic prefix.")] = "fleetcare",
    passwords: Annotated[
        Path, typer.Option(help="Write `device:password` lines here (for mosquitto_passwd -U).")
    ] = Path("sim-passwords.txt"),
    acl: Annotated[Path, typer.Option(help="Write a Mosquitto ACL file here.")] = Path(
        "sim-acl.conf"
    ),
) -> None:
    """Broker credentials for `fleetcare sim --per-device`: each device logs in as itself.

    Then: `mosquitto_passwd -U sim-passwords.txt` (hashes in place) and in mosquitto.conf
    `password_file sim-passwords.txt`, `acl_file sim-acl.conf`, `allow_anonymous false`.
    The ACL lets a device write only its own topics and read only its own commands.
    """
    import time as _time

    from device_sim.credentials import password_lines
    from device_sim.fleet import Fleet, FleetSpec

    fleet = Fleet.create(FleetSpec(devices=devices, seed=seed, start=_time.time()))
    passwords.write_text("\n".join(password_lines(device_secret, fleet.ids)) + "\n")
    passwords.chmod(0o600)
    from workorders.device_credentials import acl_file

    acl.write_text(acl_file(prefix, engine_user=None))
    console.print(f"{devices} devices' credentials in {passwords}; ACL in {acl}")


# -- bench -----------------------------------------------------------------------------
@bench_app.command("ingest")
def bench_ingest(
    messages: Annotated[int, typer.Option(min=1000, help="Messages per scenario.")] = 200_000,
    devices: Annotated[int, typer.Option(min=1)] = 10_000,
    scenarios: Annotated[
        str,
        typer.Option(
            help="Comma list of: bare, embedded, influxdb, shared, naive, rss, bare-v5, embedded-v5"
        ),
    ] = "bare,embedded,influxdb,shared,naive",
    naive_messages: Annotated[int, typer.Option(help="Messages for the naive pipeline.")] = 5_000,
    rss_minutes: Annotated[float, typer.Option(help="Length of the rss soak.")] = 10.0,
    protocol: Annotated[str, typer.Option(help="3.1.1 or 5")] = "3.1.1",
    output: Annotated[Path | None, typer.Option(help="Append a markdown report here.")] = None,
) -> None:
    """Measure ingest throughput against a bare paho subscriber (ARCHITECTURE targets)."""
    from bench.ingest import run_bench

    _settings()
    run_bench(
        messages=messages,
        devices=devices,
        scenarios=scenarios.split(","),
        naive_messages=naive_messages,
        rss_minutes=rss_minutes,
        protocol=protocol,
        output=output,
    )


@bench_app.command("sim")
def bench_sim(
    devices: Annotated[int, typer.Option(min=1000)] = 100_000,
    seconds: Annotated[float, typer.Option(min=1, help="Length of the publish test.")] = 20.0,
    output: Annotated[Path | None, typer.Option(help="Append a markdown report here.")] = None,
) -> None:
    """Measure the simulator: memory for N devices, physics per simulated day, publish rate."""
    from bench.sim import run_sim_bench

    _settings()
    run_sim_bench(devices=devices, seconds=seconds, output=output)


@bench_app.command("dispatch")
def bench_dispatch(
    orders: Annotated[int, typer.Option(min=10)] = 10_000,
    technicians: Annotated[int, typer.Option(min=1)] = 1_000,
    postgres: Annotated[
        str,
        typer.Option(
            help="Admin URL of a PostgreSQL server; a fresh database is created and dropped."
        ),
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    output: Annotated[Path | None, typer.Option(help="Append a markdown report here.")] = None,
) -> None:
    """Time one auto-dispatch run of N open orders over M technicians (target ≤ 10 s)."""
    from bench.dispatch import run_dispatch_bench

    _settings()
    run_dispatch_bench(orders=orders, technicians=technicians, admin_url=postgres, output=output)


@bench_app.command("rules")
def bench_rules(
    devices: Annotated[int, typer.Option(min=100, help="Devices in the windowed pass.")] = 100_000,
    rate: Annotated[float, typer.Option(min=10, help="Background msg/s.")] = 5_000.0,
    seconds: Annotated[float, typer.Option(min=2, help="Length of the latency test.")] = 20.0,
    db_url: Annotated[
        str | None, typer.Option(help="Database for the windowed pass (default: SQLite).")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Append a markdown report here.")] = None,
) -> None:
    """Time one evaluation pass of every built-in rule over N simulated devices (target
    ≤ 60 s), and publish → alert latency of a per-message rule under load (p99 ≤ 1 s)."""
    from bench.rules import run_rules_bench

    _settings()
    run_rules_bench(devices=devices, rate=rate, seconds=seconds, db_url=db_url, output=output)


@bench_app.command("models")
def bench_models(
    devices: Annotated[int, typer.Option(min=100, help="Devices in the scoring pass.")] = 100_000,
    train_devices: Annotated[
        int, typer.Option(min=100, help="Simulated devices to train on.")
    ] = 10_000,
    days: Annotated[int, typer.Option(min=30, max=730, help="Simulated days to train on.")] = 365,
    db_url: Annotated[
        str | None, typer.Option(help="Database for the scoring pass (default: SQLite).")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Append a markdown report here.")] = None,
) -> None:
    """Time the daily filter-life scoring pass over N devices (target ≤ 60 s) and the
    model's training on a simulated year of M devices (target ≤ 10 min)."""
    from bench.models import run_models_bench

    _settings()
    run_models_bench(
        devices=devices, train_devices=train_devices, days=days, db_url=db_url, output=output
    )


@bench_app.command("store")
def bench_store(
    rows: Annotated[int, typer.Option(min=10_000)] = 1_000_000,
    devices: Annotated[int, typer.Option(min=1)] = 10_000,
    output: Annotated[Path | None, typer.Option(help="Append a markdown report here.")] = None,
) -> None:
    """Measure the embedded store's contract operations on SQLite and on DuckDB.

    Needs the bench extra (`pip install -e '.[bench]'`, for DuckDB).
    """
    from bench.store import run_store_bench

    _settings()
    run_store_bench(rows=rows, devices=devices, output=output)


@bench_app.command("api")
def bench_api(
    devices: Annotated[int, typer.Option(min=100, help="Devices in the registry.")] = 100_000,
    orders: Annotated[int, typer.Option(min=100, help="Work orders, in every state.")] = 50_000,
    customers: Annotated[
        int, typer.Option(min=1, help="Customers' keys the load calls with.")
    ] = 1_000,
    database: Annotated[
        str, typer.Option(help="postgresql (a fresh database on --postgres) or sqlite.")
    ] = "postgresql",
    postgres: Annotated[
        str, typer.Option(help="Admin URL of a PostgreSQL server.")
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    workers: Annotated[int, typer.Option(min=1, help="`fleetcare api --workers`.")] = 2,
    connections: Annotated[
        int, typer.Option(min=1, help="Keep-alive connections (clients) the load comes over.")
    ] = 128,
    rate: Annotated[
        float, typer.Option(min=1, help="Open-loop requests a second (the latency test).")
    ] = 1_500.0,
    seconds: Annotated[float, typer.Option(min=1, help="Length of each load.")] = 20.0,
    repeats: Annotated[int, typer.Option(min=1, help="Requests per ops page.")] = 20,
    output: Annotated[Path | None, typer.Option(help="Append a markdown report here.")] = None,
) -> None:
    """Load the API from a separate process: device health at a fixed rate (target p99
    ≤ 20 ms at 1,500 req/s) and as fast as it answers, then ops' queue pages (target
    ≤ 200 ms) — with 100k devices and 50k work orders seeded in a fresh database.

    Example: `fleetcare bench api --output docs/benchmarks.md`."""
    from bench.api import run_api_bench

    if database not in ("postgresql", "sqlite"):
        err.print(f"[red]--database {database!r}[/]: postgresql or sqlite")
        raise typer.Exit(2)
    _settings()
    run_api_bench(
        devices=devices,
        orders=orders,
        customers=customers,
        database=database,
        admin_url=postgres,
        workers=workers,
        connections=connections,
        rate=rate,
        seconds=seconds,
        repeats=repeats,
        output=output,
    )


@bench_app.command("soak")
def bench_soak(
    minutes: Annotated[float, typer.Option(min=0.2, help="How long the load runs.")] = 30.0,
    devices: Annotated[int, typer.Option(min=10, help="Simulated devices.")] = 1_000,
    rate: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="Messages a second; default: half of one ingest worker's ceiling, "
            "measured first on the same broker and store.",
        ),
    ] = None,
    postgres: Annotated[
        str, typer.Option(help="Admin URL of a PostgreSQL server; a fresh database is used.")
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    output: Annotated[Path | None, typer.Option(help="Append a markdown report here.")] = None,
) -> None:
    """The whole engine (`fleetcare serve`: ingest, rules on the devices' clock,
    dispatcher, command and message senders, API) under a sustained simulated fleet, with
    a field crew that approves, completes and rates the jobs it opens so the devices get
    repaired: memory, ingest lag and p99 latencies a minute at a time, so a leak or a
    growing backlog shows as a trend, and what became of the jobs. Needs mosquitto,
    influxd and PostgreSQL.

    Example: `fleetcare bench soak --minutes 30 --output docs/benchmarks.md`."""
    from bench.soak import run_soak

    _settings()
    try:
        run_soak(minutes=minutes, devices=devices, rate=rate, admin_url=postgres, output=output)
    except (RuntimeError, FileNotFoundError) as exc:
        err.print(f"[red]soak failed: {exc}[/red]")
        raise typer.Exit(1) from None


def _register_service_commands() -> None:
    from fleetcare.cli_service import register

    register(orders_app, app, _settings)
    from fleetcare.cli_rules import register as register_rules

    register_rules(app, _settings)
    from fleetcare.cli_models import register as register_models

    register_models(app, _settings)
    from fleetcare.cli_api import register as register_api

    register_api(app, _settings)


_register_service_commands()


def main() -> None:
    app()
