"""The engine as production runs it, on this machine: a Mosquitto, an InfluxDB and a
PostgreSQL of its own (so a drill may stop and restart each), and `fleetcare serve`
supervising ingest workers and rules evaluators as separate processes. A simulated fleet,
registered in the service registry, publishes into it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import sqlalchemy as sa

from bench.services import Influxd, PostgresServer, postgres_bin_dir, start_postgres
from db.database import Database
from device_sim.fleet import Fleet
from fleetcare.brokers import MosquittoProcess, mosquitto_available, start_mosquitto
from fleetcare.registry_gen import generate
from fleetcare.settings import Settings
from ingest.dead_letters import DeadLetterRepository
from rules.alerts import AlertStore
from service.orders import WorkOrders
from service.registry import ServiceRegistry, parse_doc
from telemetry.backends import StoreSettings, create_store
from tests.services import free_port, missing, ready, start_influxd, wait


@dataclass
class Stack:
    broker: MosquittoProcess
    influxd: Influxd
    postgres: PostgresServer
    data: Path
    health_port: int
    name: str = "fleetcare"  # its database, InfluxDB database and ingest group
    serve: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def sibling(self, name: str) -> Stack:
        """A second engine on the same servers, with its own databases and ingest group:
        both receive every message the fleet sends."""
        return Stack(
            self.broker, self.influxd, self.postgres, self.data.parent / name, free_port(), name
        )

    @property
    def db_url(self) -> str:
        return self.postgres.url.rsplit("/", 1)[0] + f"/{self.name}"

    @property
    def store_settings(self) -> StoreSettings:
        return StoreSettings(
            backend="influxdb", influx_url=self.influxd.url, influx_database=self.name
        )

    def settings(self) -> Settings:
        return Settings(
            data_dir=str(self.data),
            mqtt={"url": self.broker.url},
            store=self.store_settings,
            db={"url": self.db_url},
        )

    def env(self, **over: str) -> dict[str, str]:
        return {
            **os.environ,
            "FLEETCARE_MQTT__URL": self.broker.url,
            "FLEETCARE_STORE__BACKEND": "influxdb",
            "FLEETCARE_STORE__INFLUX_URL": self.influxd.url,
            "FLEETCARE_STORE__INFLUX_DATABASE": self.name,
            "FLEETCARE_DB__URL": self.db_url,
            "FLEETCARE_INGEST__SHARED_GROUP": f"{self.name}-ingest",
            "FLEETCARE_INGEST__CLIENT_ID": f"{self.name}-ingest",
            "FLEETCARE_INGEST__METRICS_PORT": "0",
            "FLEETCARE_INGEST__STATE_FLUSH_S": "1",
            "FLEETCARE_RULES__METRICS_PORT": "0",
            # the fleet runs hours a second: the evaluator runs on the devices' clock
            "FLEETCARE_RULES__DEVICE_TIME": "true",
            "FLEETCARE_RULES__INTERVAL_S": "0.5",
            "FLEETCARE_LOG__FORMAT": "json",
            **over,
        }

    def register(self, fleet: Fleet) -> None:
        """Who owns each device and who serves it: before the first message, so the first
        alerts open jobs."""
        admin = sa.create_engine(self.postgres.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        admin.dispose()
        db = Database(self.db_url)
        try:
            db.upgrade()
            ServiceRegistry(db).load(parse_doc(generate(fleet)))
        finally:
            db.dispose()

    def start_serve(self, *, ingest_workers: int, evaluators: int) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.log = self.data / "serve.log"
        out = self.log.open("ab")
        self.serve = subprocess.Popen(
            [
                *(sys.executable, "-m", "fleetcare", "--data-dir", str(self.data), "serve"),
                *("--only", "ingest,rules", "--ingest-workers", str(ingest_workers)),
                *("--evaluators", str(evaluators), "--health-port", str(self.health_port)),
                *("--grace", "20"),
            ],
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        wait("every part ready", lambda: ready(self.health_port), 90, self.tail)
        # a part is "running" before its worker has subscribed, and a broker drops what
        # nobody has subscribed to yet: wait for each worker's first connection
        wait(
            "every ingest worker subscribed",
            lambda: self.tail(10**7).count('"event":"connected to broker"') >= ingest_workers,
            60,
            self.tail,
        )
        time.sleep(0.5)  # the subscriptions follow the connection's acknowledgement

    def stop_serve(self) -> None:
        if self.serve is None:
            return
        self.serve.send_signal(signal.SIGTERM)
        try:
            code = self.serve.wait(60)
        except subprocess.TimeoutExpired:
            self.serve.kill()
            self.serve.wait()
            raise AssertionError(f"serve did not stop on SIGTERM: {self.tail()}") from None
        self.serve = None
        assert code == 0, self.tail()

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log else ""

    def trouble(self, lines: int = 40) -> str:
        """What the engine's parts logged as warnings and errors (a drill's failure
        message: which part died or stalled, and when)."""
        text = self.log.read_text(errors="replace") if self.log else ""
        said = [
            x[:300] for x in text.splitlines() if '"level":"warning"' in x or '"level":"error"' in x
        ]
        return "\n".join(said[-lines:])

    def deaths(self) -> list[str]:
        """The parts `fleetcare serve` saw die and restarted, in order."""
        text = self.log.read_text(errors="replace") if self.log else ""
        return [orjson.loads(x)["part"] for x in text.splitlines() if '"event":"part died' in x]

    def part_pid(self, name: str) -> int:
        status = ready(self.health_port)
        assert status, self.tail()
        pid: int = status["parts"][name]["pid"]
        return pid

    def kill_9(self, name: str) -> None:
        """SIGKILL one part, then wait until the supervisor has it running again."""
        before = ready(self.health_port) or {}
        victim = self.part_pid(name)
        restarts = before["parts"][name]["restarts"]
        os.kill(victim, signal.SIGKILL)

        def replaced() -> bool:
            s = ready(self.health_port)
            p = s["parts"][name] if s else None
            return bool(p and p["pid"] != victim and p["restarts"] == restarts + 1)

        wait(f"{name} restarted", replaced, 60, self.tail)

    # what the engine holds, read the way the API and reports read it

    def stored(self) -> int:
        async def count() -> int:
            async with create_store(self.store_settings, str(self.data)) as store:
                return await store.count()

        return asyncio.run(count())

    def gaps(self, fleet: Fleet) -> dict[str, list[tuple[int, int]]]:
        """Per device, the (boot, seq) missing between the first and last stored: where
        a loss would show. Each device numbers its messages 1, 2, 3… per boot."""

        async def scan() -> dict[str, list[tuple[int, int]]]:
            out: dict[str, list[tuple[int, int]]] = {}
            end = int(time.time() * 1000) + 86_400_000
            async with create_store(self.store_settings, str(self.data)) as store:
                for device_id, truth in fleet.truth.devices.items():
                    h = await store.history(truth.device_type, device_id, 0, end)
                    seen = set(zip(h.columns["boot"], h.columns["seq"], strict=True))
                    missing = []
                    for boot in {b for b, _ in seen}:
                        seqs = [q for b, q in seen if b == boot]
                        missing += [(boot, q) for q in range(1, max(seqs) + 1)
                                    if (boot, q) not in seen]  # fmt: skip
                    if missing:
                        out[device_id] = sorted(missing)
            return out

        return asyncio.run(scan())

    def outcome(self) -> Outcome:
        db = Database(self.db_url)
        try:
            letters = DeadLetterRepository(db).list(limit=1_000_000)
            alerts = AlertStore(db).find(limit=1_000_000)
            orders = WorkOrders(db).find(limit=1_000_000)
        finally:
            db.dispose()
        return Outcome(
            letters_by_reason=Counter(d.reason for d in letters),
            letter_counts=sum((Counter({d.reason: d.count}) for d in letters), Counter()),
            alerts=Counter((a.device_id, a.problem_kind) for a in alerts),
            alert_rules=Counter((a.rule_id, a.device_id) for a in alerts),
            orders=Counter((o.device_id, o.problem_kind) for o in orders),
        )


@dataclass
class Outcome:
    letters_by_reason: Counter[str]  # distinct messages dead-lettered, per reason
    letter_counts: Counter[str]  # times received, per reason (a redelivery counts again)
    alerts: Counter[tuple[str, str]]  # (device, problem)
    alert_rules: Counter[tuple[str, str]]  # (rule, device)
    orders: Counter[tuple[str, str]]  # (device, problem)


@contextmanager
def engine_stack(tmp_path: Path) -> Iterator[Stack]:
    if not mosquitto_available():
        missing("mosquitto not installed (scripts/test.sh installs it)")
    if postgres_bin_dir() is None:
        missing("PostgreSQL server binaries not installed (scripts/test.sh installs them)")
    influxd = start_influxd(tmp_path / "influxdb")
    broker = start_mosquitto(tmp_path / "broker")
    postgres = start_postgres()
    stack = Stack(broker, influxd, postgres, tmp_path / "data", free_port())
    try:
        yield stack
    finally:
        try:
            stack.stop_serve()
        finally:
            broker.stop()
            influxd.stop()
            postgres.remove()
