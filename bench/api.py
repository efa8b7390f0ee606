"""`fleetcare bench api`: the consumer app's device health and ops' queue page under load.

Targets: device health p99 ≤ 20 ms and ≥ 1,500 requests a second on 2 cores
with 100k devices in the registry, measured from a separate load-generator process; the
queue page ≤ 200 ms with 50k work orders.

The database is seeded in bulk (not timed) with a registry of `devices` devices, each
with its live state and latest readings, filter predictions, a few firing alerts, and
`orders` work orders in every state (a tenth proposed by the rules, with evidence).
`fleetcare api` then runs as its own process (`--workers` uvicorn workers) and
`bench.httpload` loads it from another process: first closed loop (the ceiling, which
also warms it up), then open loop at `--rate` requests a second (the latency figures).
Customers' keys call their own devices, so every request pays for scoping, and for
authentication as `fleetcare api` is configured (`api.auth_cache_s`).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from rich.progress import Progress

from api.accounts import Accounts, Role
from bench.httpload import LoadResult, encode, run_load
from bench.report import command, console, emit
from bench.services import fresh_postgres, rss_mb
from db.database import Database
from db.tables import alerts, device_state, filter_predictions, work_order_evidence, work_orders
from fleetcare.brokers import free_port
from models.wear import STAGES
from service.lifecycle import State
from service.registry import ServiceRegistry, parse_doc
from telemetry.metrics import DEVICE_TYPES, MetricKind
from telemetry.profile import shipped

TYPES = ("purifier", "water_purifier", "air_conditioner")
PROBLEM = {
    "purifier": "filter_replacement",
    "water_purifier": "filter_replacement_ro",
    "air_conditioner": "filter_replacement",
}
# the mix of states 50k orders are in: most are history, a tenth await review
STATE_MIX = [
    (State.CLOSED, 0.45),
    (State.COMPLETED, 0.10),
    (State.CANCELLED, 0.08),
    (State.REJECTED, 0.04),
    (State.PROPOSED, 0.10),
    (State.OPEN, 0.05),
    (State.ASSIGNED, 0.06),
    (State.ACCEPTED, 0.04),
    (State.SCHEDULED, 0.06),
    (State.IN_PROGRESS, 0.02),
]
CHUNK = 5000


@dataclass(frozen=True)
class Seeded:
    ops_key: str
    ops_password: str
    customer_calls: list[tuple[str, str]]  # (key, device id) pairs the load draws from
    seconds: float


def _registry(devices: int, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    week = {d: ["08:30", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}
    outlets = [f"o-{i}" for i in range(20)]
    zones = [f"t-{i}-{z}" for i in range(20) for z in range(4)]
    return {
        "outlets": [{"id": o, "name": o, "timezone": "Asia/Shanghai"} for o in outlets],
        "territories": [{"id": z, "name": z, "outlet_id": "o-" + z.split("-")[1]} for z in zones],
        "parts": [
            {
                "sku": part.sku,
                "name": part.name,
                "device_type": name,
                "price_cents": part.price_cents or 0,
            }
            for name, profile in shipped().items()
            for part in profile.doc.parts
        ],
        "technicians": [
            {
                "id": f"tech-{i}",
                "name": f"Tech {i}",
                "outlet_id": outlets[i % 20],
                "timezone": "Asia/Shanghai",
                "working_hours": week,
                "daily_capacity": 8,
                "skills": [{"device_type": t} for t in TYPES],
                "territories": [z for z in zones if z.startswith(f"t-{i % 20}-")],
            }
            for i in range(200)
        ],
        "stock": [],
        "customers": [
            {"id": f"c-{i}", "name": f"Customer {i}", "timezone": "Asia/Shanghai"}
            for i in range(devices)
        ],
        "devices": [
            {
                "id": f"d-{i}",
                "device_type": TYPES[i % 3],
                "serial": f"SN{i:09d}",
                "customer_id": f"c-{i}",
                "territory_id": zones[rng.randrange(len(zones))],
                "address": f"{i} Renmin Rd",
            }
            for i in range(devices)
        ],
    }


def _readings(device_type: str, rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in DEVICE_TYPES[device_type].metrics:
        if m.kind in (MetricKind.FLOAT, MetricKind.INT):
            lo = m.minimum if m.minimum is not None else 0.0
            hi = m.maximum if m.maximum is not None else lo + 100.0
            v = rng.uniform(lo, min(hi, lo + 1000.0))
            out[m.name] = round(v, 2) if m.kind is MetricKind.FLOAT else int(v)
        elif m.kind is MetricKind.ENUM:
            out[m.name] = m.choices[0]
    return out


def _chunks(rows: list[dict[str, Any]]) -> Any:
    for i in range(0, len(rows), CHUNK):
        yield rows[i : i + CHUNK]


def seed(db: Database, *, devices: int, orders: int, customers: int, now: datetime) -> Seeded:
    """Fill an empty, migrated database; returns the keys the load uses."""
    rng = random.Random(7)
    t0 = time.perf_counter()
    orders = min(orders, devices)  # one order per device keeps live orders unique
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("seeding", total=5)
        ServiceRegistry(db).load(parse_doc(_registry(devices, rng)))
        bar.advance(task)
        with db.engine.begin() as conn:
            states = []
            for i in range(devices):
                t = TYPES[i % 3]
                seen = now - timedelta(seconds=rng.randrange(3600))
                states.append(
                    {
                        "device_id": f"d-{i}",
                        "device_type": t,
                        "online": rng.random() < 0.9,
                        "online_source": "telemetry",
                        "online_changed_at": seen,
                        "last_seen_ts": int(seen.timestamp() * 1000),
                        "last_received_at": seen,
                        "latest_ts": int(seen.timestamp() * 1000),
                        "latest_metrics": _readings(t, rng),
                        "messages_total": rng.randrange(100_000),
                    }
                )
            for part in _chunks(states):
                conn.execute(device_state.insert(), part)
            bar.advance(task)
            predictions = []
            for i in range(devices):
                t = TYPES[i % 3]
                for stage in STAGES[t]:
                    days = rng.uniform(-5, 200)
                    at = now + timedelta(days=days)
                    predictions.append(
                        {
                            "device_id": f"d-{i}",
                            "stage": stage,
                            "exhausted_at": at,
                            "probability": 0.9,
                            "source": "model",
                            "updated_at": now,
                            "low": at - timedelta(days=3),
                            "high": at + timedelta(days=3),
                            "consumed": min(1.0, max(0.0, 1 - days / 200)),
                            "rated_at": at + timedelta(days=10),
                            "model_version": "bench",
                        }
                    )
            for part in _chunks(predictions):
                conn.execute(filter_predictions.insert(), part)
            bar.advance(task)
            firing = [
                {
                    "rule_id": "pm25_high",
                    "device_id": f"d-{i}",
                    "device_type": TYPES[i % 3],
                    "severity": "warning",
                    "title": "Air quality stays poor",
                    "state": "firing",
                    "fired_at": now - timedelta(hours=2),
                    "evidence": {},
                    "updated_at": now,
                }
                for i in range(0, devices, 50)
            ]
            for part in _chunks(firing):
                conn.execute(alerts.insert(), part)
            order_rows, evidence = _orders(orders, devices, rng, now)
            for part in _chunks(order_rows):
                conn.execute(work_orders.insert(), part)
            ids = dict(
                conn.execute(
                    sa.select(work_orders.c.device_id, work_orders.c.id).where(
                        work_orders.c.state == State.PROPOSED.value
                    )
                ).all()
            )
            for part in _chunks([{**e, "order_id": ids[e.pop("device_id")]} for e in evidence]):
                conn.execute(work_order_evidence.insert(), part)
            bar.advance(task)
        accounts = Accounts(db)
        ops_key = accounts.create("ops-bench", name="Ops", role=Role.OPS).key
        password = uuid.uuid4().hex
        accounts.set_password("ops-bench", password)
        calls = []
        for i in rng.sample(range(devices), min(customers, devices)):
            key = accounts.create(
                f"u-{i}", name=f"Customer {i}", role=Role.CUSTOMER, customer_id=f"c-{i}"
            ).key
            calls.append((key, f"d-{i}"))
        with db.engine.connect() as conn:  # the statistics autovacuum would have by now
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        bar.advance(task)
    return Seeded(ops_key, password, calls, time.perf_counter() - t0)


def _orders(
    n: int, devices: int, rng: random.Random, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    states = rng.choices([s for s, _ in STATE_MIX], [w for _, w in STATE_MIX], k=n)
    rows, evidence = [], []
    for k, i in enumerate(rng.sample(range(devices), n)):
        t, state = TYPES[i % 3], states[k]
        created = now - timedelta(hours=rng.uniform(1, 24 * 180))
        auto = state is State.PROPOSED or rng.random() < 0.5
        rows.append(
            {
                "device_id": f"d-{i}",
                "device_type": t,
                "problem_kind": PROBLEM[t],
                "origin": "auto" if auto else "app",
                "state": state.value,
                "version": 1,
                "title": f"Replace the {t.replace('_', ' ')} filter",
                "description": "",
                "customer_id": f"c-{i}",
                "territory_id": None,
                "outlet_id": None,
                "technician_id": None
                if state in (State.PROPOSED, State.OPEN)
                else f"tech-{rng.randrange(200)}",
                "priority": rng.randrange(4),
                "evidence_count": 1 if auto else 0,
                "created_at": created,
                "updated_at": created,
                "due_at": created + timedelta(hours=72),
                "closed_at": created + timedelta(days=3) if state is State.CLOSED else None,
            }
        )
        if state is State.PROPOSED:
            evidence.append(
                {
                    "device_id": f"d-{i}",
                    "at": created,
                    "origin": "auto",
                    "source": "filter-life",
                    "data": {"stage": "main", "condition_pct": 8.5, "days_left": 6.2},
                }
            )
    return rows, evidence


@contextmanager
def _database(kind: str, admin_url: str) -> Iterator[tuple[str, str]]:
    """A fresh database: PostgreSQL (created and dropped) or SQLite in a temp dir."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="fc-bench-api-") as d:
            yield f"sqlite:///{d}/bench.db", "SQLite (a temp file)"
        return
    with fresh_postgres(admin_url, "fleetcare_bench_api") as (url, where):
        yield url, f"PostgreSQL ({where}), a fresh database"


@contextmanager
def _server(url: str, workers: int, data_dir: str) -> Any:
    """`fleetcare api` as its own process on a free port, until it answers /readyz."""
    port = free_port()
    env = {
        **os.environ,
        "FLEETCARE_DB__URL": url,
        "FLEETCARE_DATA_DIR": data_dir,
        "FLEETCARE_API__RATE_PER_MINUTE": str(10**9),  # the limiter still runs, never bites
        "FLEETCARE_LOG__LEVEL": "WARNING",
        "FLEETCARE_DB__POOL_SIZE": os.environ.get("FLEETCARE_DB__POOL_SIZE", "5"),
    }
    errors = Path(data_dir) / "api.stderr"
    with errors.open("wb") as sink:  # a file, not a pipe nobody reads: it can never block
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fleetcare",
                "api",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "fleetcare api did not start: " + errors.read_text(errors="replace")[-2000:]
                )
            time.sleep(0.2)
        yield port, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn's workers), in MB."""
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], check=False, capture_output=True, text=True
    ).stdout
    return rss_mb(pid, *(int(p) for p in children.split()))


@dataclass(frozen=True)
class PageTiming:
    what: str
    path: str
    times_ms: list[float]
    status: int
    size: int

    def pct(self, q: float) -> float:
        s = sorted(self.times_ms)
        return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def _time_pages(port: int, seeded: Seeded, repeats: int) -> list[PageTiming]:
    """Ops' pages one after another from a client (no other load): wall time per page."""
    base = f"http://127.0.0.1:{port}"
    signed = httpx.post(
        f"{base}/api/v1/auth/token",
        data={"username": "ops-bench", "password": seeded.ops_password},
        timeout=30,
    )
    signed.raise_for_status()
    console_client = httpx.Client(
        base_url=base, timeout=30, cookies={"fc_session": signed.json()["access_token"]}
    )
    api_client = httpx.Client(
        base_url=base, timeout=30, headers={"Authorization": f"Bearer {seeded.ops_key}"}
    )
    pages = [
        ("console: the review queue (100 proposed jobs)", "/console", console_client),
        ("console: live jobs", "/console?show=live", console_client),
        ("console: SLA board", "/console/sla", console_client),
        ("API: the queue, 100 newest", "/api/v1/orders?limit=100", api_client),
        ("API: proposed auto jobs", "/api/v1/orders?state=proposed&origin=auto", api_client),
        ("API: SLA breached", "/api/v1/orders?sla=breached&limit=100", api_client),
    ]
    out = []
    with console_client, api_client:
        for what, path, client in pages:
            times, status, size = [], 0, 0
            for k in range(repeats + 2):
                t = time.perf_counter()
                r = client.get(path)
                ms = (time.perf_counter() - t) * 1000
                status, size = r.status_code, len(r.content)
                if k >= 2:  # two to warm up
                    times.append(ms)
            out.append(PageTiming(what, path, times, status, size))
    return out


def run_api_bench(
    *,
    devices: int,
    orders: int,
    customers: int,
    database: str,
    admin_url: str,
    workers: int,
    connections: int,
    rate: float,
    seconds: float,
    repeats: int,
    output: Path | None,
) -> str:
    now = datetime.now(UTC)
    with _database(database, admin_url) as (url, where), tempfile.TemporaryDirectory() as data:
        db = Database(url)
        try:
            db.upgrade()
            seeded = seed(db, devices=devices, orders=orders, customers=customers, now=now)
        finally:
            db.dispose()
        console.print(f"seeded {devices:,} devices and {orders:,} orders in {seeded.seconds:.1f} s")
        requests = [
            encode("GET", f"/api/v1/devices/{d}/health", {"Authorization": f"Bearer {k}"})
            for k, d in seeded.customer_calls
        ]
        with _server(url, workers, data) as (port, proc):
            # the ceiling first: it also warms the caches, connections and prepared
            # statements that the latency test should not pay for
            console.print("closed loop: as fast as it answers")
            ceiling = run_load(
                "127.0.0.1", port, requests, connections=connections, seconds=seconds, warmup=3
            )
            console.print(f"open loop: {rate:,.0f} requests a second for {seconds:.0f} s")
            fixed = run_load(
                "127.0.0.1", port, requests, connections=connections, seconds=seconds, rate=rate
            )
            rss = _rss_mb(proc.pid)
            console.print("ops' pages")
            pages = _time_pages(port, seeded, repeats)
    text = _report(
        devices=devices,
        orders=orders,
        customers=len(seeded.customer_calls),
        where=where,
        workers=workers,
        connections=connections,
        rate=rate,
        fixed=fixed,
        ceiling=ceiling,
        pages=pages,
        rss=rss,
        seed_s=seeded.seconds,
    )
    emit(text, output)
    return text


def _load_row(name: str, r: LoadResult) -> str:
    ok = r.statuses.get(200, 0)
    bad = sum(v for k, v in r.statuses.items() if k != 200) + r.errors
    return (
        f"| {name} | {len(r.latencies_ms):,} | {r.rate:,.0f} | {r.pct(50):.1f} | "
        f"{r.pct(99):.1f} | {max(r.latencies_ms, default=0):.1f} | {ok:,} | {bad:,} | "
        f"{r.unsent:,} |"
    )


def _report(
    *,
    devices: int,
    orders: int,
    customers: int,
    where: str,
    workers: int,
    connections: int,
    rate: float,
    fixed: LoadResult,
    ceiling: LoadResult,
    pages: list[PageTiming],
    rss: float,
    seed_s: float,
) -> str:
    p99_ok = fixed.pct(99) <= 20 and fixed.rate >= 0.98 * rate and not fixed.unsent
    lines = [
        f"### API, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}. {where}: "
        f"{devices:,} devices with state, readings and predictions, {orders:,} work orders "
        f"(seeded in {seed_s:.0f} s, not timed). `fleetcare api --workers {workers}`; the "
        f"load from a separate process over {connections} keep-alive connections, "
        f"`GET /api/v1/devices/{{id}}/health` with {customers:,} customers' keys, each on "
        "its own device.",
        "",
        "| device health | requests | req/s | p50 ms | p99 ms | max ms | 200 | other | not sent |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        _load_row("closed loop (the ceiling)", ceiling),
        _load_row(f"open loop, due at {rate:,.0f}/s", fixed),
        "",
        f"API processes' RSS after the load: {rss:.0f} MB.",
        "",
        "| page (one client, no other load) | status | KB | p50 ms | p95 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {p.what} (`{p.path}`) | {p.status} | {p.size / 1024:.0f} | {p.pct(50):.1f} | "
            f"{p.pct(95):.1f} | {max(p.times_ms):.1f} |"
            for p in pages
        ),
        "",
        "Against the targets, from this run:",
        f"* device health p99 at {rate:,.0f} req/s: **{fixed.pct(99):.1f} ms** (target ≤ 20) "
        f"— {'met' if p99_ok else 'missed'};",
        f"* device health ceiling: **{ceiling.rate:,.0f} req/s** (target ≥ 1,500) — "
        f"{'met' if ceiling.rate >= 1500 else 'missed'};",
        f"* the queue page (`/console`), p95: **{pages[0].pct(95):.0f} ms** (target ≤ 200) — "
        f"{'met' if pages[0].pct(95) <= 200 else 'missed'}.",
        "",
    ]
    return "\n".join(lines)
