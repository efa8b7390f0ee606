"""Schemathesis against the OpenAPI document: generated requests to every operation, with
an ops key, find no server error (5xx) and no response outside the documented schema's
status codes. The app runs in a real server on SQLite with the test world."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from api import ApiContext, create_app
from api.accounts import Accounts, Role
from db.database import Database
from service.lifecycle import Origin
from telemetry.backends import StoreSettings, create_store
from tests.provisioned import served as serving
from tests.service.helpers import accepted, opened


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    from datetime import UTC, datetime

    from service.registry import ServiceRegistry, parse_doc
    from tests.world import WORLD

    tmp: Path = tmp_path_factory.mktemp("fuzz")
    db = Database(f"sqlite:///{tmp / 'fc.sqlite3'}")
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    now = datetime.now(UTC)
    opened(db, "ap-1", "filter_replacement", now, origin=Origin.AUTO)
    accepted(db, "ap-2", "filter_replacement", now)
    key = Accounts(db).create("ops", name="Ops", role=Role.OPS).key
    store = create_store(StoreSettings(backend="embedded"), str(tmp / "ts"))
    ctx = ApiContext(db=db, store=store, rate_per_minute=100_000, photo_dir=tmp / "photos")
    with serving(create_app(ctx)) as url:
        yield url, key
    db.dispose()


def test_no_request_the_schema_allows_gets_a_server_error(served: tuple[str, str]) -> None:
    url, key = served
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30  # every route is documented

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def probe(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {key}"})
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.text[:200]}")

        probe()
    assert failures == []
