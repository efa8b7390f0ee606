"""`fleetcare bench dispatch`: auto-dispatch of N open orders over M technicians.

Target: 10,000 open orders over 1,000 technicians in ≤ 10 s on 2 cores, on
PostgreSQL. The registry and the orders are seeded in bulk (not timed); the timed part is
one `Dispatcher.run()`: read the open orders, technicians, skills, territories and stock,
decide, write the assignments and their audit events, commit.
"""

from __future__ import annotations

import random
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console

from bench.report import emit
from bench.services import fresh_postgres
from db.database import Database
from db.tables import work_orders
from service.dispatch import Dispatcher
from service.registry import ServiceRegistry, parse_doc

console = Console()
MONDAY = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
KINDS = [
    ("air_conditioner", "filter_replacement", "AC-FILTER-01"),
    ("air_conditioner", "refrigerant_leak", "AC-R32-1KG"),
    ("purifier", "filter_replacement", "AP-HEPA-01"),
    ("water_purifier", "filter_replacement_ro", "WP-RO-01"),
    ("water_purifier", "inspection", None),
]


def _registry(orders: int, techs: int, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    outlets = max(1, techs // 20)
    zones = [f"t-{o}-{z}" for o in range(outlets) for z in range(4)]
    week = {d: ["08:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}
    rows: dict[str, list[dict[str, Any]]] = {
        "outlets": [
            {"id": f"o-{o}", "name": f"Outlet {o}", "timezone": "Asia/Shanghai"}
            for o in range(outlets)
        ],
        "territories": [
            {"id": z, "name": z, "outlet_id": z.rsplit("-", 1)[0].replace("t-", "o-")}
            for z in zones
        ],
        "parts": [{"sku": k[2], "name": k[2], "price_cents": 1000} for k in KINDS if k[2]],
        "customers": [
            {"id": f"c-{i}", "name": f"C {i}", "timezone": "Asia/Shanghai"} for i in range(orders)
        ],
    }
    rows["technicians"] = []
    rows["stock"] = [
        {"outlet_id": o["id"], "sku": p["sku"], "qty": rng.randint(20, 200)}
        for o in rows["outlets"]
        for p in rows["parts"]
    ]
    for t in range(techs):
        o = t % outlets
        types = rng.sample(["air_conditioner", "purifier", "water_purifier"], 2)
        rows["technicians"].append(
            {
                "id": f"tech-{t}",
                "name": f"T {t}",
                "outlet_id": f"o-{o}",
                "timezone": "Asia/Shanghai",
                "working_hours": week,
                "daily_capacity": rng.choice([6, 8, 10]),
                "skills": [{"device_type": d} for d in types],
                "territories": rng.sample([z for z in zones if z.startswith(f"t-{o}-")], 2),
            }
        )
        rows["stock"] += [
            {"technician_id": f"tech-{t}", "sku": p["sku"], "qty": rng.randint(0, 2)}
            for p in rows["parts"]
        ]
    rows["devices"] = [
        {
            "id": f"d-{i}",
            "device_type": KINDS[i % len(KINDS)][0],
            "customer_id": f"c-{i}",
            "territory_id": rng.choice(zones),
            "address": f"{i} Renmin Rd",
        }
        for i in range(orders)
    ]
    return rows


def _seed_orders(db: Database, n: int) -> None:
    """Open orders in bulk (the intake path is measured elsewhere; this sets the stage)."""
    with db.engine.begin() as conn:
        sites = {
            r.device_id: r
            for r in conn.execute(
                sa.text(
                    "SELECT s.device_id, s.customer_id, s.territory_id, t.outlet_id "
                    "FROM device_sites s JOIN territories t ON t.id = s.territory_id"
                )
            )
        }
        conn.execute(
            work_orders.insert(),
            [
                {
                    "device_id": f"d-{i}",
                    "device_type": KINDS[i % len(KINDS)][0],
                    "problem_kind": KINDS[i % len(KINDS)][1],
                    "origin": "ops",
                    "state": "open",
                    "version": 1,
                    "title": KINDS[i % len(KINDS)][1],
                    "description": "",
                    "customer_id": sites[f"d-{i}"].customer_id,
                    "territory_id": sites[f"d-{i}"].territory_id,
                    "outlet_id": sites[f"d-{i}"].outlet_id,
                    "priority": i % 3,
                    "evidence_count": 1,
                    "created_at": MONDAY,
                    "updated_at": MONDAY,
                }
                for i in range(n)
            ],
        )


def run_dispatch_bench(
    *, orders: int, technicians: int, admin_url: str, output: Path | None
) -> str:
    with fresh_postgres(admin_url, "fleetcare_bench_dispatch") as (url, where):
        db = Database(url)
        try:
            db.upgrade()
            rng = random.Random(1)
            t0 = time.perf_counter()
            rows = _registry(orders, technicians, rng)
            ServiceRegistry(db).load(parse_doc(rows))
            _seed_orders(db, orders)
            seed_s = time.perf_counter() - t0
            report = Dispatcher(db).run(now=MONDAY)
        finally:
            db.dispose()
    reasons: dict[str, int] = {}
    for why in report.unassignable.values():
        key = why.split(" in ")[0].split(" t-")[0]
        reasons[key] = reasons.get(key, 0) + 1
    cmd = "fleetcare " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    text = "\n".join(
        [
            f"### Dispatch, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "",
            f"Command: `{cmd}`  ",
            f"PostgreSQL ({where}), a fresh database; "
            f"{orders:,} open orders, {technicians:,} technicians over "
            f"{len(rows['territories'])} territories; seeding took {seed_s:.1f} s (not timed).",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| one `Dispatcher.run()` over all open orders | **{report.seconds:.2f} s** |",
            f"| assigned | {report.assigned:,} |",
            f"| flagged unassignable | {len(report.unassignable):,} |",
            *(f"| … {k} | {v:,} |" for k, v in sorted(reasons.items())),
            "",
        ]
    )
    emit(text, output)
    return text
