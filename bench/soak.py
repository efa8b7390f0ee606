"""`fleetcare bench soak`: the whole engine under a sustained load for a long time.

A simulated fleet publishes at half the single-worker ceiling (measured first, in the same
run, on the same broker and store, unless --rate is given) into `fleetcare serve` running
every part (an ingest worker, a rules evaluator on the devices' clock, the dispatcher, the
command and message senders, the API), against a Mosquitto and an InfluxDB of the bench's
own and a fresh PostgreSQL database. A field crew (bench/crew.py) works the jobs the
engine opens, so repaired devices stop firing as in production. A probe asks the API for
a device's health ten times a second. Every ten seconds the bench reads each
part's memory and the ingest worker's and evaluator's Prometheus metrics; the report has a
row per minute, so a leak or a growing lag shows as a trend, and compares the last
minutes with the first ones, then says what became of the jobs.
"""

from __future__ import annotations

import logging
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from api.accounts import Accounts, Role
from bench.crew import CrewTally, FieldCrew
from bench.ingest import _ingest
from bench.report import emit
from bench.services import Influxd, cpu_seconds, fresh_postgres, rss_mb, scrape, start_influxd
from db.database import Database
from db.tables import LIVE_STATES, alerts, device_commands, notifications, work_orders
from device_sim.fleet import Fleet, FleetSpec
from device_sim.runner import RunOptions, RunStats, run
from fleetcare.brokers import MosquittoProcess, free_port, start_mosquitto
from fleetcare.registry_gen import generate
from fleetcare.serve import PARTS
from service.registry import ServiceRegistry, parse_doc
from telemetry.connection import MqttSettings

console = Console()
REPORT_S = 900.0  # a device reports every 15 simulated minutes
SAMPLE_S = 10.0
CREW_S = 10.0  # the dispatcher's and the field crew's pass (wall seconds)
CEILING_MESSAGES = 100_000


def shard_days(simulated_s: float) -> int:
    """A shard group duration (days) that holds the simulated span in one or two shards,
    within the 400-day retention InfluxDB must not exceed."""
    return max(1, min(400, math.ceil(simulated_s / 86400) + 1))


def buckets(sample: dict[str, float], metric: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of a histogram, in order."""
    out = []
    prefix = f'{metric}_bucket{{le="'
    for name, value in sample.items():
        if name.startswith(prefix):
            le = name[len(prefix) : name.index('"', len(prefix))]
            out.append((float("inf") if le == "+Inf" else float(le), value))
    return sorted(out)


def quantile(
    q: float, before: list[tuple[float, float]], after: list[tuple[float, float]]
) -> float:
    """`histogram_quantile` over the increase between two scrapes (linear in a bucket,
    as Prometheus does); NaN when nothing was observed."""
    prev = dict(before)
    inc = [(le, n - prev.get(le, 0.0)) for le, n in after]
    if not inc or inc[-1][1] <= 0:
        return float("nan")
    rank, lower, below = q * inc[-1][1], 0.0, 0.0
    for le, n in inc:
        if n >= rank:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * ((rank - below) / max(n - below, 1e-12))
        lower, below = le, n
    return lower


@dataclass
class Minute:
    minute: int
    sent: int = 0
    acked: float = 0.0
    lag_s: float = 0.0  # the oldest unacknowledged message's age, worst sample
    ack_p99_ms: float = float("nan")
    batch_p99_ms: float = float("nan")  # making a batch durable: store and database
    store_p99_ms: float = float("nan")  # the store's write, part of the batch
    rules_p99_ms: float = float("nan")  # per-message rules over a batch, after its ack
    pass_p99_s: float = float("nan")
    api_p50_ms: float = float("nan")
    api_p99_ms: float = float("nan")
    api_errors: int = 0
    rss: dict[str, float] = field(default_factory=dict)  # part -> MB, worst sample
    influxd_cpu_pct: float = float("nan")  # the store's CPU over the minute (100 = a core)


@dataclass
class Probe:
    """Device health from the API, ten times a second, as the consumer app asks it."""

    port: int
    key: str
    devices: list[str]
    samples: list[tuple[float, float, bool]] = field(default_factory=list)  # (t, ms, ok)
    failures: list[str] = field(default_factory=list)  # what each failed probe got
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        rng = random.Random(3)
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers=headers) as c:
            while not self.stop.wait(0.1):
                device = rng.choice(self.devices)
                t0 = time.perf_counter()
                try:
                    r = c.get(f"/api/v1/devices/{device}/health", timeout=10)
                    ok = r.status_code == 200
                    if not ok:
                        self.failures.append(f"{device}: {r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    ok = False
                    self.failures.append(f"{device}: {exc!r}")
                self.samples.append((time.time(), (time.perf_counter() - t0) * 1000, ok))


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


@contextmanager
def _serve(env: dict[str, str], data: Path, health: int) -> Iterator[subprocess.Popen[bytes]]:
    log = (data / "serve.log").open("ab")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "fleetcare", "--data-dir", str(data), "serve"),
            *("--ingest-workers", "1", "--evaluators", "1", "--api-workers", "1"),
            *("--dispatch-every", str(CREW_S), "--health-port", str(health)),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _parts(health: int) -> dict[str, dict[str, Any]]:
    """The supervisor's view of each part: pid (None while down) and restarts."""
    try:
        body = httpx.get(f"http://127.0.0.1:{health}/healthz", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return {}
    parts: dict[str, dict[str, Any]] = body.get("parts", {})
    return parts


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(what: str, check: object, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{what}: not within {timeout:g} s\n{tail}")
        time.sleep(0.3)


def measure_ceiling(root: Path, influxd: Influxd) -> float:
    """One ingest worker's rate on a broker like the soak's and this store, fed as fast as
    it takes. A broker of its own: the worker's persistent session stays in the shared
    group after it stops, and on the soak's broker would take its share of the soak's
    messages (a first 30-minute soak stored half of them that way)."""
    broker = start_mosquitto(root / "ceiling-broker")
    store_env = {
        "FLEETCARE_STORE__BACKEND": "influxdb",
        "FLEETCARE_STORE__INFLUX_URL": influxd.url,
        "FLEETCARE_STORE__INFLUX_DATABASE": "ceiling",
    }
    try:
        elapsed, _, workers, _ = _ingest(root, broker, CEILING_MESSAGES, 10_000, store_env, "3.1.1")
        for w in workers:
            w.stop()
    finally:
        broker.stop()
    return CEILING_MESSAGES / elapsed


def run_soak(
    *,
    minutes: float,
    devices: int,
    rate: float | None,
    admin_url: str,
    output: Path | None,
) -> tuple[str, list[Minute], RunStats]:
    with tempfile.TemporaryDirectory(prefix="fleetcare-soak-") as tmp:
        root = Path(tmp)
        broker = start_mosquitto(root / "broker")
        influxd = start_influxd(root / "influxdb")
        try:
            ceiling = None
            if rate is None:
                console.print("measuring one ingest worker's ceiling (its own broker, this store)")
                ceiling = measure_ceiling(root, influxd)
                rate = ceiling / 2
                console.print(f"ceiling {ceiling:,.0f} msg/s: the soak runs at {rate:,.0f}")
            with fresh_postgres(admin_url, "fleetcare_soak") as (url, where):
                text, rows, stats = _soak(
                    root, broker, influxd, url, minutes=minutes, devices=devices, rate=rate
                )
        finally:
            broker.stop()
            influxd.stop()
    head = (
        f"\n### Soak, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
        f"Command: `fleetcare bench soak --minutes {minutes:g} --devices {devices}"
        + ("" if ceiling is not None else f" --rate {rate:g}")
        + "`  \n"
        f"Machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; PostgreSQL at "
        f"{where}, InfluxDB 1.x and Mosquitto of the bench's own. `fleetcare serve` with one "
        f"ingest worker, one rules evaluator (devices' clock), the dispatcher (every "
        f"{CREW_S:g} s), the command and message senders and one API process, a field crew "
        f"working the jobs every {CREW_S:g} s; "
        f"{devices:,} simulated devices at {rate:,.0f} msg/s"
        + (
            f" (half the single-worker ceiling of {ceiling:,.0f} msg/s measured first)"
            if ceiling
            else ""
        )
        + "; the API probed for device health 10 times a second.\n\n"
    )
    report = emit(head + text, output)
    return report, rows, stats


def _soak(
    root: Path,
    broker: MosquittoProcess,
    influxd: Influxd,
    url: str,
    *,
    minutes: float,
    devices: int,
    rate: float,
) -> tuple[str, list[Minute], RunStats]:
    seconds = minutes * 60
    speed = rate * REPORT_S / devices
    logging.getLogger("device_sim").setLevel(logging.WARNING)  # the progress bar says it
    fleet = Fleet.create(
        FleetSpec(
            devices=devices,
            seed=7,
            start=time.time() - speed * seconds - 86400,  # never runs into the future
            faults_per_device_year=2.0,
            fault_window_days=max(1.0, speed * seconds / 86400),
            initial_wear=0.5,
        )
    )
    db = Database(url)
    try:
        db.upgrade()
        registry = generate(fleet)
        ServiceRegistry(db).load(parse_doc(registry))
        key = Accounts(db).create("ops-soak", name="Soak", role=Role.OPS).key
    finally:
        db.dispose()
    crew_db = Database(url)
    crew = FieldCrew(
        crew_db,
        serials={d["id"]: d["serial"] for d in registry["devices"]},
        fault_of=fleet.fault_of,
        opening_stock={
            (r["outlet_id"], r["sku"]): r["qty"] for r in registry["stock"] if "outlet_id" in r
        },
        photo_dir=root / "photos",
    )
    ingest_port, rules_port, api_port, health = free_port(), free_port(), free_port(), free_port()
    data = root / "data"
    data.mkdir()
    env = {
        **os.environ,
        "FLEETCARE_MQTT__URL": broker.url,
        "FLEETCARE_STORE__BACKEND": "influxdb",
        "FLEETCARE_STORE__INFLUX_URL": influxd.url,
        # InfluxDB opens a shard group per 7 simulated days: the accelerated fleet would
        # open one every minute or two of wall time, which production does once a week,
        # and each keeps its write cache until it has been cold for 10 minutes (a first
        # soak's influxd grew 1.5 GB that way: docs/benchmarks.md). Shards sized to the
        # simulated span give the store production's shape: one or two shards written.
        "FLEETCARE_STORE__INFLUX_SHARD_DURATION": f"{shard_days(speed * seconds)}d",
        "FLEETCARE_DB__URL": url,
        "FLEETCARE_INGEST__METRICS_PORT": str(ingest_port),
        "FLEETCARE_RULES__METRICS_PORT": str(rules_port),
        "FLEETCARE_RULES__DEVICE_TIME": "true",
        "FLEETCARE_RULES__INTERVAL_S": "5",
        "FLEETCARE_API__PORT": str(api_port),
        "FLEETCARE_API__JWT_SECRET": "soak-" + "s" * 32,
        "FLEETCARE_LOG__LEVEL": "WARNING",
        "FLEETCARE_LOG__FORMAT": "json",
    }
    log = data / "serve.log"
    rows: list[Minute] = []
    stats = RunStats()
    with _serve(env, data, health) as proc:
        _wait(
            "every part running",
            lambda: sum(bool(p.get("pid")) for p in _parts(health).values()) == len(PARTS),
            120,
            log,
        )
        _wait(
            "the ingest worker subscribed",
            lambda: scrape(ingest_port).get("fleetcare_ingest_mqtt_connected") == 1,
            60,
            log,
        )
        # the supervisor names the API's pid as soon as it is spawned; it answers later
        _wait("the API ready", lambda: _ready(api_port), 60, log)
        time.sleep(0.5)
        probe = Probe(api_port, key, list(fleet.ids))
        stop = threading.Event()
        sim = threading.Thread(
            target=run,
            args=(
                fleet,
                MqttSettings(url=broker.url),
                RunOptions(speed=speed, report_interval_s=REPORT_S, duration_s=seconds),
                stop,
                stats,
            ),
            daemon=True,
        )
        prober = threading.Thread(target=probe.run, daemon=True)
        crewing = threading.Thread(target=crew.run, args=(stop, CREW_S), daemon=True)
        started = time.time()
        sim.start()
        prober.start()
        crewing.start()
        last_ingest, last_rules = scrape(ingest_port), scrape(rules_port)
        assert influxd.proc is not None
        store_pid = influxd.proc.pid
        last_cpu, last_cpu_at = cpu_seconds(store_pid), time.monotonic()
        minute, row = 0, Minute(0)
        sent_before = 0
        progress = Progress(
            TextColumn("soak"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
        )
        with progress:
            task = progress.add_task("soak", total=seconds, status="")
            try:
                while sim.is_alive() or minute == 0:
                    time.sleep(SAMPLE_S)
                    if proc.poll() is not None:
                        raise RuntimeError(f"serve died: {log.read_text()[-3000:]}")
                    now = time.time() - started
                    for name, part in _parts(health).items():
                        if part.get("pid"):
                            row.rss[name] = max(row.rss.get(name, 0.0), rss_mb(part["pid"]))
                    row.rss["influxd"] = max(row.rss.get("influxd", 0.0), rss_mb(store_pid))
                    cur = scrape(ingest_port)
                    row.lag_s = max(
                        row.lag_s, cur.get("fleetcare_ingest_oldest_pending_seconds", 0)
                    )
                    if int(now // 60) > minute or not sim.is_alive():
                        rules = scrape(rules_port)
                        _close(row, last_ingest, cur, last_rules, rules, probe, started)
                        cpu, at = cpu_seconds(store_pid), time.monotonic()
                        row.influxd_cpu_pct = 100 * (cpu - last_cpu) / max(at - last_cpu_at, 1e-9)
                        last_cpu, last_cpu_at = cpu, at
                        row.sent, sent_before = stats.sent - sent_before, stats.sent
                        rows.append(row)
                        last_ingest, last_rules = cur, rules
                        minute = int(now // 60)
                        row = Minute(minute)
                    progress.update(
                        task,
                        completed=min(now, seconds),
                        status=f"sent {stats.sent:,}  lag {row.lag_s:.1f} s",
                    )
                    if not sim.is_alive():
                        break
            finally:
                stop.set()
                probe.stop.set()
                sim.join(60)
                prober.join(10)
                crewing.join(60)
        # drained: everything acknowledged to the fleet is stored and acknowledged by
        # ingest (whose count includes status messages and broken ones: at least)
        drained, acked = False, 0.0
        deadline = time.monotonic() + 120
        while not drained and time.monotonic() < deadline:
            acked = scrape(ingest_port).get("fleetcare_ingest_acknowledged_total", acked)
            drained = acked >= stats.acknowledged
            time.sleep(0.5)
        restarts = {n: int(p.get("restarts", 0)) for n, p in _parts(health).items()}
        loop = _service_loop(crew_db, crew.tally, fleet)
    crew_db.dispose()
    table = _table(rows, stats, drained, acked, restarts, probe.failures)
    return table + "\n".join(loop) + "\n", rows, stats


def _unrepaired(fleet: Fleet, faults: dict[str, str], live: set[str], alerted: set[str]) -> str:
    """Where each fault left at the end stood: a job open for its device, an alert only,
    or nothing yet, with how far the silent ones had grown (simulated days since onset,
    against the days the kind takes to reach full severity)."""
    silent: dict[str, list[float]] = {}
    for d, kind in faults.items():
        if d in live or d in alerted:
            continue
        onset = max(f.onset for f in fleet.truth.devices[d].faults if f.kind == kind)
        grown = [f.progression_days for f in fleet.truth.devices[d].faults if f.kind == kind]
        silent.setdefault(kind, []).append((fleet.t - onset) / 86400 / grown[-1])
    jobs = sum(d in live for d in faults)
    alerts_only = sum(d in alerted and d not in live for d in faults)
    kinds = ", ".join(
        f"{k} {len(v)} (median {statistics.median(v):.0%} grown)"
        for k, v in sorted(silent.items(), key=lambda kv: -len(kv[1]))
    )
    return (
        f"* Of those, {jobs:,} had a live job, {alerts_only:,} a firing alert without one, "
        f"and {sum(map(len, silent.values())):,} no alert yet, by kind: {kinds or 'none'}."
    )


def _service_loop(db: Database, tally: CrewTally, fleet: Fleet) -> list[str]:
    """What became of the jobs the engine opened, and whether the devices heard."""
    cmd = device_commands.c
    with db.engine.connect() as conn:
        states: dict[str, int] = dict(
            conn.execute(
                sa.select(work_orders.c.state, sa.func.count()).group_by(work_orders.c.state)
            ).all()
        )
        sent, unsent = (
            conn.execute(
                sa.select(sa.func.count()).where(cond).select_from(device_commands)
            ).scalar_one()
            for cond in (cmd.sent_at.is_not(None), cmd.sent_at.is_(None))
        )
        told: dict[str, int] = dict(
            conn.execute(
                sa.select(notifications.c.status, sa.func.count()).group_by(notifications.c.status)
            ).all()
        )
        live = set(
            conn.execute(
                sa.select(work_orders.c.device_id).where(work_orders.c.state.in_(LIVE_STATES))
            ).scalars()
        )
        alerted = set(
            conn.execute(sa.select(alerts.c.device_id).where(alerts.c.state == "firing")).scalars()
        )
    truth = fleet.truth.devices.values()
    faults = {d: f for d in fleet.ids if (f := fleet.fault_of(d)) is not None}
    faulty = len(faults)
    by_state = ", ".join(f"{k} {v:,}" for k, v in sorted(states.items())) or "none"
    return [
        f"* Work orders at the end, by state: {by_state}.",
        f"* The field crew: {tally.approved:,} approved, {tally.completed:,} completed "
        f"({tally.repairs:,} with a fault fixed), {tally.refused:,} moves refused; the "
        f"warehouse put {tally.restocked:,} parts back on outlet shelves.",
        f"* Device commands: {sent:,} sent, {unsent:,} unsent. The simulated devices "
        f"applied {sum(len(t.repairs) for t in truth):,} repairs and "
        f"{sum(len(t.replacements) for t in truth):,} filter replacements; "
        f"{faulty:,} of {len(fleet.ids):,} devices had a fault at the end.",
        _unrepaired(fleet, faults, live, alerted),
        "* Customer messages: "
        + (", ".join(f"{k} {v:,}" for k, v in sorted(told.items())) or "none")
        + ".",
    ]


def _close(
    row: Minute,
    ingest0: dict[str, float],
    ingest1: dict[str, float],
    rules0: dict[str, float],
    rules1: dict[str, float],
    probe: Probe,
    started: float,
) -> None:
    key = "fleetcare_ingest_acknowledged_total"
    row.acked = ingest1.get(key, 0.0) - ingest0.get(key, 0.0)
    lat = "fleetcare_ingest_ack_latency_seconds"
    row.ack_p99_ms = 1000 * quantile(0.99, buckets(ingest0, lat), buckets(ingest1, lat))
    batch = "fleetcare_ingest_batch_seconds"
    row.batch_p99_ms = 1000 * quantile(0.99, buckets(ingest0, batch), buckets(ingest1, batch))
    store = "fleetcare_ingest_store_seconds"
    row.store_p99_ms = 1000 * quantile(0.99, buckets(ingest0, store), buckets(ingest1, store))
    rules = "fleetcare_ingest_rules_seconds"
    row.rules_p99_ms = 1000 * quantile(0.99, buckets(ingest0, rules), buckets(ingest1, rules))
    passes = "fleetcare_rules_pass_seconds"
    row.pass_p99_s = quantile(0.99, buckets(rules0, passes), buckets(rules1, passes))
    lo, hi = started + row.minute * 60, started + (row.minute + 1) * 60
    mine = [(ms, ok) for t, ms, ok in probe.samples if lo <= t < hi]
    row.api_p50_ms = _pct([ms for ms, ok in mine if ok], 0.5)
    row.api_p99_ms = _pct([ms for ms, ok in mine if ok], 0.99)
    row.api_errors = sum(not ok for _, ok in mine)


def _table(
    rows: list[Minute],
    stats: RunStats,
    drained: bool,
    acked: float,
    restarts: dict[str, int],
    failures: list[str],
) -> str:
    parts = sorted({p for r in rows for p in r.rss})
    lines = [
        "| minute | sent msg/s | stored msg/s | ingest lag s (worst) | ack p99 ms | batch p99 ms | "
        "store write p99 ms | ingest rules p99 ms | rules pass p99 s | "
        "API health p50 / p99 ms | API errors | influxd CPU % | "
        + " | ".join(f"RSS {p} MB" for p in parts)
        + " |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(parts),
    ]
    for r in rows:
        lines.append(
            f"| {r.minute + 1} | {r.sent / 60:,.0f} | {r.acked / 60:,.0f} | {r.lag_s:.1f} | "
            f"{r.ack_p99_ms:.0f} | {r.batch_p99_ms:.0f} | {r.store_p99_ms:.0f} | "
            f"{r.rules_p99_ms:.0f} | {r.pass_p99_s:.2f} | "
            f"{r.api_p50_ms:.1f} / {r.api_p99_ms:.1f} "
            f"| {r.api_errors} | {r.influxd_cpu_pct:.0f} | "
            + " | ".join(f"{r.rss.get(p, 0):.0f}" for p in parts)
            + " |"
        )
    lines.append("")
    lines.append(
        f"* Sent {stats.sent:,} readings, {stats.acknowledged:,} acknowledged by the broker; "
        + (
            f"the ingest worker had acknowledged {acked:,.0f} messages at the end (readings, "
            "status and broken ones): everything."
            if drained
            else f"**NOT DRAINED**: the ingest worker had acknowledged only {acked:,.0f} "
            "messages two minutes after the fleet stopped."
        )
    )
    lines.append(
        "* Parts restarted during the run: "
        + (", ".join(f"{n} {k}" for n, k in sorted(restarts.items()) if k) or "none")
        + "."
    )
    if failures:  # what the API answered, so a failed probe can be looked into
        shown = "; ".join(failures[:5]) + (f"; … ({len(failures)} in all)" * (len(failures) > 5))
        lines.append(f"* API probes that failed: {shown}")
    lines += _trends(rows, parts)
    return "\n".join(lines) + "\n"


def _trends(rows: list[Minute], parts: list[str]) -> list[str]:
    """First full minutes against the last ones: the flatness the soak is for."""
    full = rows[1:-1] if len(rows) > 3 else rows  # the first warms up, the last is partial
    if len(full) < 2:
        return []
    k = max(1, len(full) // 3)
    head, tail = full[:k], full[-k:]

    def avg(rs: list[Minute], f: Callable[[Minute], float]) -> float:
        vals = [v for v in (f(r) for r in rs) if not math.isnan(v)]
        return sum(vals) / len(vals) if vals else float("nan")

    out = [f"* Trend, minutes {head[0].minute + 1}–{head[-1].minute + 1} against "
           f"{tail[0].minute + 1}–{tail[-1].minute + 1}:"]  # fmt: skip
    for p in parts:
        a = avg(head, lambda r, p=p: r.rss.get(p, 0.0))  # type: ignore[misc]
        b = avg(tail, lambda r, p=p: r.rss.get(p, 0.0))  # type: ignore[misc]
        out.append(f"  * RSS {p}: {a:.0f} → {b:.0f} MB ({b - a:+.0f})")
    measures: list[tuple[str, Callable[[Minute], float]]] = [
        ("ingest ack p99 ms", lambda r: r.ack_p99_ms),
        ("ingest batch p99 ms", lambda r: r.batch_p99_ms),
        ("store write p99 ms", lambda r: r.store_p99_ms),
        ("rules at ingest p99 ms", lambda r: r.rules_p99_ms),
        ("influxd CPU %", lambda r: r.influxd_cpu_pct),
        ("ingest lag s", lambda r: r.lag_s),
        ("API health p99 ms", lambda r: r.api_p99_ms),
        ("rules pass p99 s", lambda r: r.pass_p99_s),
    ]
    for name, f in measures:
        out.append(f"  * {name}: {avg(head, f):.2f} → {avg(tail, f):.2f}")
    return out
