"""Schemathesis against the OpenAPI document: generated requests to every operation, with
an admin key, pass every check schemathesis has. The app runs in a real server on
SQLite with the test world."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api import ApiContext, create_app
from api.accounts import Accounts, Role
from db.database import Database
from service.lifecycle import Origin
from telemetry.backends import StoreSettings, create_store
from tests.provisioned import served as serving
from tests.service.helpers import accepted, opened


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:

    from service.registry import ServiceRegistry, parse_doc
    from tests.world import WORLD

    tmp: Path = tmp_path_factory.mktemp("fuzz")
    db = Database(f"sqlite:///{tmp / 'fc.sqlite3'}")
    db.upgrade()
    ServiceRegistry(db).load(parse_doc(WORLD))  # type: ignore[arg-type]
    now = datetime.now(UTC)
    opened(db, "ap-1", "filter_replacement", now, origin=Origin.AUTO)
    accepted(db, "ap-2", "filter_replacement", now)
    key = Accounts(db).create("root", name="Root", role=Role.ADMIN).key
    store = create_store(StoreSettings(backend="embedded"), str(tmp / "ts"))
    ctx = ApiContext(db=db, store=store, rate_per_minute=100_000, photo_dir=tmp / "photos")
    with serving(create_app(ctx)) as url:
        yield url, key
    db.dispose()


# the rules the schema cannot state, each said in its operation's description
def _silence_window_is_valid(case: schemathesis.Case[Any]) -> bool:
    body = case.body if isinstance(case.body, dict) else {}
    ends, starts = body.get("ends_at"), body.get("starts_at")
    if not isinstance(ends, str):
        return True
    try:
        end = datetime.fromisoformat(ends)
        start = datetime.fromisoformat(starts) if isinstance(starts, str) else datetime.now(UTC)
    except ValueError:
        return True
    return end.tzinfo is None or start.tzinfo is None or end > start


# a profile's validity is more than its shape (names unique, references resolved): the
# 422 lists each problem at its path, so a schema-shaped document may well be refused
NOT_EVERY_SHAPE_IS_VALID = {
    ("POST", "/api/v1/profiles"),
    ("POST", "/api/v1/orders/shop"),  # the device type must be a family in force
    ("POST", "/api/v1/orders/{order_id}/photos"),  # an image is judged by its bytes
    # a depot's level is its own (central:x names a central depot), a purchase order is
    # received where it was ordered to, as its part
    ("POST", "/api/v1/stock/transfers"),
    ("POST", "/api/v1/stock/receipts"),
    ("POST", "/api/v1/stock/counts"),
    ("POST", "/api/v1/stock/purchase-orders"),
    ("PUT", "/api/v1/sales-plan"),  # its regions and models must exist
}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_check_passes_on_every_operation(
    served: tuple[str, str], mode: GenerationMode
) -> None:
    """Schemathesis with all its checks: no server error, every status and header and
    body as documented, schema-valid requests accepted (positive) and schema-invalid ones
    refused (negative), the Allow header right."""
    url, key = served
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) > 30  # every route is documented

    for operation in operations:
        shape_only = (operation.method.upper(), operation.path) in NOT_EVERY_SHAPE_IS_VALID
        failures += _fuzz(operation, mode, key, [positive_data_acceptance] if shape_only else [])
    assert failures == [], "\n".join(failures)


def _fuzz(operation: Any, mode: GenerationMode, key: str, excluded: list[Any]) -> list[str]:
    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def probe(case: schemathesis.Case[Any]) -> None:
        if mode is GenerationMode.POSITIVE and case.path == "/api/v1/silences":
            assume(_silence_window_is_valid(case))
        try:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {key}"}, excluded_checks=excluded
            )
        except Exception as exc:  # schemathesis' failures, all checks at once
            failures.append(f"{case.method} {case.formatted_path}: {str(exc)[:600]}")

    try:
        probe()
    except Unsatisfiable:  # nothing to vary (no parameters, no body): the one request
        if mode is GenerationMode.POSITIVE:
            probe.hypothesis.inner_test(operation.Case())  # type: ignore[attr-defined]
    return failures
