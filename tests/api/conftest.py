"""What every API test uses: the accounts of the test world with their keys, and a
client of the app on the test database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import ApiContext, create_app
from api.accounts import Accounts, Role
from db.database import Database
from telemetry.backends import StoreSettings, create_store


@pytest.fixture
def keys(world: Database) -> dict[str, str]:
    return world_keys(world)


def world_keys(world: Database) -> dict[str, str]:
    """An account for each of the world's people, by name: their keys."""
    accounts = Accounts(world)
    return {
        "li": accounts.create("li", name="Li", role=Role.CUSTOMER, customer_id="c-app").key,
        "wang": accounts.create("wang", name="Wang", role=Role.CUSTOMER, customer_id="c-sms").key,
        "zhang": accounts.create(
            "zhang", name="Zhang", role=Role.TECHNICIAN, technician_id="tech-1"
        ).key,
        "ops": accounts.create("ops", name="Ops", role=Role.OPS).key,
        "ops-t2": accounts.create("ops-t2", name="Ops", role=Role.OPS, territories_=["t-2"]).key,
    }


def client_for(db: Database, tmp_path: Path, rate: int = 600, root_path: str = "") -> TestClient:
    store = create_store(StoreSettings(backend="embedded"), str(tmp_path / "ts"))
    ctx = ApiContext(db=db, store=store, rate_per_minute=rate, photo_dir=tmp_path / "photos")
    return TestClient(create_app(ctx), root_path=root_path)


@pytest.fixture
def client(world: Database, tmp_path: Path) -> Iterator[TestClient]:
    with client_for(world, tmp_path) as c:
        yield c
