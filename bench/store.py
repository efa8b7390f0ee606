"""`fleetcare bench store`: the embedded store's contract operations on SQLite (the
shipped backend) and on DuckDB (the alternative we weighed), on the same data.

DuckDB gets its fastest insert path (a batch of numpy columns); SQLite goes through
`EmbeddedStore` itself. Both use a wide table with the (device_id, boot, seq) key.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.report import emit
from telemetry.backends.embedded import EmbeddedStore
from telemetry.records import RangeQuery, Reading

console = Console()
METRICS = ("pm25", "fan_rpm", "motor_current_ma", "temperature_c", "humidity_pct")


def _readings(n: int, devices: int, t0: int) -> list[Reading]:
    return [
        Reading(
            "purifier",
            f"dev-{i % devices:06d}",
            1,
            i // devices,
            t0 + (i // devices) * 60_000,
            {
                "pm25": 10.0 + i % 50,
                "fan_rpm": 1000 + i % 300,
                "motor_current_ma": 350.0,
                "temperature_c": 22.0,
                "humidity_pct": 45.0,
            },
        )
        for i in range(n)
    ]


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _sqlite(
    path: Path, batches: list[list[Reading]], ids: list[str], t0: int, t1: int
) -> dict[str, float]:
    async def run() -> dict[str, float]:
        out: dict[str, float] = {}
        async with EmbeddedStore(str(path)) as store:
            started = time.perf_counter()
            for b in batches:
                await store.write(b)
            out["write"] = time.perf_counter() - started
            started = time.perf_counter()
            await store.write(batches[0])  # a redelivered batch
            out["rewrite"] = time.perf_counter() - started
            started = time.perf_counter()
            await store.latest(ids)
            out["latest"] = time.perf_counter() - started
            q = RangeQuery(
                device_type="purifier",
                device_id=ids[0],
                metrics=METRICS,
                start=t0,
                end=t1,
                every_ms=3_600_000,
            )
            started = time.perf_counter()
            await store.query(q)
            out["query"] = time.perf_counter() - started
            started = time.perf_counter()
            await store.history("purifier", ids[0], t0, t1, list(METRICS))
            out["history"] = time.perf_counter() - started
            started = time.perf_counter()
            await store.count()
            out["count"] = time.perf_counter() - started
        return out

    return asyncio.run(run())


def _duckdb(
    path: Path, batches: list[list[Reading]], ids: list[str], t0: int, t1: int
) -> dict[str, float]:
    import duckdb
    import numpy as np

    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE r (device_id VARCHAR, boot BIGINT, seq BIGINT, ts BIGINT, "
        + ", ".join(f"{m} DOUBLE" for m in METRICS)
        + ", PRIMARY KEY (device_id, boot, seq))"
    )

    def write(b: list[Reading]) -> None:
        cols = {
            "device_id": np.array([r.device_id for r in b]),
            "boot": np.array([r.boot for r in b], dtype=np.int64),
            "seq": np.array([r.seq for r in b], dtype=np.int64),
            "ts": np.array([r.ts for r in b], dtype=np.int64),
        }
        for m in METRICS:
            cols[m] = np.array([float(r.metrics[m]) for r in b])
        con.register("batch", cols)
        con.execute("INSERT OR IGNORE INTO r SELECT * FROM batch")
        con.unregister("batch")

    def write_all() -> None:
        for b in batches:
            write(b)

    out = {
        "write": _timed(write_all),
        "rewrite": _timed(lambda: write(batches[0])),
    }
    placeholders = ", ".join("?" * len(ids))
    out["latest"] = _timed(
        lambda: con.execute(
            f"SELECT * FROM r WHERE device_id IN ({placeholders}) "
            "QUALIFY row_number() OVER (PARTITION BY device_id ORDER BY ts DESC) = 1",
            ids,
        ).fetchall()
    )
    out["query"] = _timed(
        lambda: con.execute(
            "SELECT ts // 3600000 * 3600000 AS b, "
            + ", ".join(f"avg({m})" for m in METRICS)
            + " FROM r WHERE device_id = ? AND ts >= ? AND ts < ? GROUP BY b ORDER BY b",
            [ids[0], t0, t1],
        ).fetchall()
    )
    out["history"] = _timed(
        lambda: con.execute(
            "SELECT * FROM r WHERE device_id = ? AND ts >= ? AND ts < ? ORDER BY ts",
            [ids[0], t0, t1],
        ).fetchall()
    )
    out["count"] = _timed(lambda: con.execute("SELECT count(*) FROM r").fetchone())
    con.close()
    return out


def _second_writer(path: str, kind: str, q: Any) -> None:
    try:
        if kind == "duckdb":
            import duckdb

            duckdb.connect(path).execute("SELECT 1")
        else:
            import sqlite3

            sqlite3.connect(path, timeout=5).execute("BEGIN IMMEDIATE").execute("ROLLBACK")
        q.put("yes")
    except Exception as exc:
        q.put(f"no ({type(exc).__name__})")


def _can_share(path: Path, kind: str, hold: Callable[[], Any]) -> str:
    """Can a second process open the store for writing while the first holds it?"""
    holder = hold()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_second_writer, args=(str(path), kind, q))
    p.start()
    p.join(30)
    holder.close()
    return str(q.get(timeout=5))


def run_store_bench(*, rows: int, devices: int, output: Path | None) -> str:
    work = Path(tempfile.mkdtemp(prefix="fleetcare-store-bench-"))
    t0 = 1_700_000_000_000
    data = _readings(rows, devices, t0)
    t1 = t0 + (rows // devices + 1) * 60_000
    batches = [data[i : i + 2000] for i in range(0, rows, 2000)]
    ids = [f"dev-{i:06d}" for i in range(0, devices, max(1, devices // 1000))][:1000]
    results = {}
    console.print(f"{rows} readings, {devices} devices, batches of 2000 ...")
    results["SQLite (EmbeddedStore)"] = _sqlite(work / "s.sqlite3", batches, ids, t0, t1)
    import sqlite3

    import duckdb

    results["DuckDB (numpy batch insert)"] = _duckdb(work / "d.duckdb", batches, ids, t0, t1)
    sizes = {
        "SQLite (EmbeddedStore)": (work / "s.sqlite3").stat().st_size,
        "DuckDB (numpy batch insert)": (work / "d.duckdb").stat().st_size,
    }
    share = {
        "SQLite (EmbeddedStore)": _can_share(
            work / "s.sqlite3", "sqlite", lambda: sqlite3.connect(work / "s.sqlite3")
        ),
        "DuckDB (numpy batch insert)": _can_share(
            work / "d.duckdb", "duckdb", lambda: duckdb.connect(str(work / "d.duckdb"))
        ),
    }
    cmd = "fleetcare " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = [
        f"### Embedded store choice, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Command: `{cmd}`  ",
        f"{rows} purifier readings over {devices} devices, written in batches of 2,000; "
        f"latest values of {len(ids)} devices; one device's history downsampled hourly; "
        f"{os.cpu_count()} cores.",
        "",
        "| backend | write rows/s | rewrite 2,000 (ms) | latest of 1,000 devices (ms) | "
        "downsampled range (ms) | raw history (ms) | count (ms) | file MB | "
        "second writer process |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {rows / r['write']:,.0f} | {r['rewrite'] * 1000:.1f} | "
            f"{r['latest'] * 1000:.1f} | {r['query'] * 1000:.1f} | {r['history'] * 1000:.1f} | "
            f"{r['count'] * 1000:.1f} | {sizes[name] / 1e6:.0f} | {share[name]} |"
        )
    report = "\n".join(lines) + "\n"
    emit(report, output)
    return report
