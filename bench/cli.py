"""`fleetcare bench …`: the benchmarks, mounted on the `fleetcare` command through the
`fleetcare.commands` entry point (the CLI never imports the benchmarks). Each command
imports its benchmark only when it runs, so `fleetcare --help` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetcare.cli.common import err, settings

app = typer.Typer(help="Benchmarks (results go to docs/benchmarks.md).", no_args_is_help=True)


@app.command("ingest")
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
    """Measure ingest throughput against a bare paho subscriber (targets: docs/benchmarks.md)."""
    from bench.ingest import run_bench

    settings()
    run_bench(
        messages=messages,
        devices=devices,
        scenarios=scenarios.split(","),
        naive_messages=naive_messages,
        rss_minutes=rss_minutes,
        protocol=protocol,
        output=output,
    )


@app.command("sim")
def bench_sim(
    devices: Annotated[int, typer.Option(min=1000)] = 100_000,
    seconds: Annotated[float, typer.Option(min=1, help="Length of the publish test.")] = 20.0,
    output: Annotated[Path | None, typer.Option(help="Append a markdown report here.")] = None,
) -> None:
    """Measure the simulator: memory for N devices, physics per simulated day, publish rate."""
    from bench.sim import run_sim_bench

    settings()
    run_sim_bench(devices=devices, seconds=seconds, output=output)


@app.command("dispatch")
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

    settings()
    run_dispatch_bench(orders=orders, technicians=technicians, admin_url=postgres, output=output)


@app.command("rules")
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

    settings()
    run_rules_bench(devices=devices, rate=rate, seconds=seconds, db_url=db_url, output=output)


@app.command("models")
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

    settings()
    run_models_bench(
        devices=devices, train_devices=train_devices, days=days, db_url=db_url, output=output
    )


@app.command("anomaly")
def bench_anomaly(
    devices: Annotated[int, typer.Option(min=10, help="Devices in the scoring pass.")] = 100_000,
    metrics: Annotated[int, typer.Option(min=1, max=8, help="Metrics per device.")] = 1,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes for the pass.")] = 2,
    warm_days: Annotated[
        int, typer.Option(min=0, help="Days scored (not timed) before the timed one.")
    ] = 1,
    output: Annotated[Path | None, typer.Option(help="Append a markdown report here.")] = None,
) -> None:
    """Time the general streaming anomaly detector: µs per point (target ≤ 20), state
    bytes per device × metric (≤ 1 KB), and a day's scoring pass over N devices with
    states restored and saved (≤ 60 s on 2 cores)."""
    from bench.anomaly import run_anomaly_bench

    settings()
    run_anomaly_bench(
        devices=devices, metrics=metrics, workers=workers, warm_days=warm_days, output=output
    )


@app.command("quality")
def bench_quality(
    seeds: Annotated[int, typer.Option(min=1, help="Fleets of each kind (healthy, planted).")] = 3,
    units_per_month: Annotated[int, typer.Option(min=10, help="Units installed a month.")] = 2000,
    months: Annotated[int, typer.Option(min=6, max=60, help="Months the fleet runs.")] = 24,
    output: Annotated[Path | None, typer.Option(help="Append a markdown report here.")] = None,
) -> None:
    """The quality early warning on simulated fleets: a batch planted at 3 × the fleet's
    failure rate and a firmware at 2 ×, run month by month; when each is flagged and
    every false flag (on healthy fleets too). Results: docs/quality.md."""
    import sys

    from bench.quality import run_quality_bench

    settings()
    command = "fleetcare bench quality " + " ".join(sys.argv[3:])
    text = run_quality_bench(
        seeds=seeds,
        units_per_month=units_per_month,
        months=months,
        output=output,
        command=command.strip(),
    )
    print(text)


@app.command("stock")
def bench_stock(
    seeds: Annotated[int, typer.Option(min=1, help="Simulated years (each its own demand).")] = 3,
    output: Annotated[Path | None, typer.Option(help="Append a markdown report here.")] = None,
) -> None:
    """The stock plan backtested on a simulated year with an 11.11 peak (a central
    warehouse, two depots, six outlets, twelve vans; installation kits, filters, fan
    motors): fill rate and stock held against stocking from last year's usage, both
    planned with the engine's replenishment. Results: docs/parts.md."""
    import sys

    from bench.stock import run_stock_bench

    settings()
    command = "fleetcare bench stock " + " ".join(sys.argv[3:])
    print(run_stock_bench(seeds=seeds, output=output, command=command.strip()))


@app.command("store")
def bench_store(
    rows: Annotated[int, typer.Option(min=10_000)] = 1_000_000,
    devices: Annotated[int, typer.Option(min=1)] = 10_000,
    output: Annotated[Path | None, typer.Option(help="Append a markdown report here.")] = None,
) -> None:
    """Measure the embedded store's contract operations on SQLite and on DuckDB.

    Needs the bench extra (`pip install -e '.[bench]'`, for DuckDB).
    """
    from bench.store import run_store_bench

    settings()
    run_store_bench(rows=rows, devices=devices, output=output)


@app.command("api")
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
    settings()
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


@app.command("soak")
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

    settings()
    try:
        run_soak(minutes=minutes, devices=devices, rate=rate, admin_url=postgres, output=output)
    except (RuntimeError, FileNotFoundError) as exc:
        err.print(f"[red]soak failed: {exc}[/red]")
        raise typer.Exit(1) from None
