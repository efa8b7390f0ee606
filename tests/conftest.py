from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from db.database import Database
from fleetcare.brokers import MosquittoProcess, mosquitto_available, start_mosquitto
from tests.services import Influxd, missing, postgres_admin_url, start_influxd


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    server = start_influxd(tmp_path_factory.mktemp("influxd"))
    yield server
    server.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """A Mosquitto of this test's own on a free port (restartable)."""
    if not mosquitto_available():
        missing("no mosquitto binary (scripts/test.sh installs it)")
    broker = start_mosquitto(tmp_path / "mosquitto")
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    return postgres_admin_url()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy as sa

    name = f"fleetcare_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        missing(f"PostgreSQL not reachable: {exc}")
    base = postgres_server_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


# -- the relational side, on SQLite and on the real PostgreSQL --------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = (
        f"sqlite:///{tmp_path / 'fc.sqlite3'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    database = Database(url)
    yield database
    database.dispose()


@pytest.fixture
def world(db: Database) -> Database:
    """`db`, migrated, with the WORLD registry loaded."""
    from service.registry import ServiceRegistry, parse_doc
    from tests.world import WORLD

    db.upgrade()
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    return db


# -- parallel runs (scripts/test.sh: pytest -n) ------------------------------------------
# Tests go to whichever worker is free, one at a time, except those that share a fixture
# too dear to build twice: the model tests (models trained on simulated fleets, session
# fixtures) and the schema fuzz (its app, a module fixture) each keep to one worker.
# (Not xdist's `--dist loadgroup`: it renames items through `_nodeid`, which pytest 9 no
# longer reads, so its groups are silently ignored.)
# (The model gate trains its own: it goes to any free worker, not the models' one.)
SHARED_WORKER = {
    "tests/models/test_gate.py": "gate",
    "tests/models/": "models",
    "tests/api/test_schema_fuzz.py": "schema-fuzz",
}
# one thread per worker for OpenMP and BLAS (scikit-learn, numpy): pools sized to the
# machine spin on cores the other workers hold (the suite's CPU time grew by 80 %)
ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def shared_worker(nodeid: str) -> str | None:
    path = nodeid.split("::", 1)[0]
    return next((g for prefix, g in SHARED_WORKER.items() if path.startswith(prefix)), None)


def pytest_configure(config: pytest.Config) -> None:
    # Rich sizes its tables and messages to the terminal; an xdist worker has none and
    # would wrap them at 80 columns: the CLI tests read whole lines
    os.environ.setdefault("COLUMNS", "200")
    if getattr(config.option, "numprocesses", None):  # the controller, before any worker
        for name in ONE_THREAD:
            os.environ.setdefault(name, "1")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtures(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return shared_worker(nodeid) or nodeid

    return SharedFixtures(config, log)
