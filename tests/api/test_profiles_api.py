"""Product profiles over HTTP: ops read them, only an admin imports one, and a bad file
comes back with every problem at its path. The import keeps the same history rules as
the command line: versions only go up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.accounts import Accounts, Role
from db.database import Database
from telemetry.profile import ProfileDoc, dump_profile, profile_schema, shipped
from tests.api.conftest import client_for


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def admin(world: Database) -> str:
    return Accounts(world).create("root", name="Root", role=Role.ADMIN).key


@pytest.fixture
def api(world: Database, tmp_path: Path) -> Iterator[TestClient]:
    with client_for(world, tmp_path) as c:
        yield c


def dehumidifier_yaml(version: int, **change: object) -> str:
    doc = shipped()["dehumidifier"].doc
    return dump_profile(doc.model_copy(update={"version": version, **change}))


YAML = {"Content-Type": "application/yaml"}
JSON = {"Content-Type": "application/json"}
STAGES = [c.stage for c in shipped()["dehumidifier"].doc.consumables]


def test_ops_read_every_family_its_profile_and_its_history(
    api: TestClient, keys: dict[str, str]
) -> None:
    listed = api.get("/api/v1/profiles", headers=bearer(keys["ops-t2"]))
    assert listed.status_code == 200
    by_name = {p["name"]: p for p in listed.json()}
    assert set(by_name) == {"purifier", "water_purifier", "air_conditioner", "dehumidifier"}
    assert by_name["dehumidifier"]["source"] == "shipped"
    assert by_name["dehumidifier"]["consumables"] == STAGES
    one = api.get("/api/v1/profiles/dehumidifier", headers=bearer(keys["ops"]))
    assert one.status_code == 200
    assert one.json()["name"] == "dehumidifier"
    assert ProfileDoc.model_validate(one.json()) == shipped()["dehumidifier"].doc
    history = api.get("/api/v1/profiles/dehumidifier/history", headers=bearer(keys["ops"]))
    assert [(v["version"], v["source"], v["in_force"]) for v in history.json()] == [
        (1, "shipped", True)
    ]
    schema = api.get("/api/v1/profile-schema", headers=bearer(keys["ops"]))
    assert schema.json() == profile_schema()
    missing = api.get("/api/v1/profiles/toaster", headers=bearer(keys["ops"]))
    assert missing.status_code == 404
    assert "toaster" in missing.json()["detail"]
    assert (
        api.get("/api/v1/profiles/dehumidifier?version=9", headers=bearer(keys["ops"])).status_code
        == 404
    )


def test_customers_and_technicians_cannot_read_profiles_and_only_an_admin_imports(
    api: TestClient, keys: dict[str, str]
) -> None:
    for who in ("li", "zhang"):
        assert api.get("/api/v1/profiles", headers=bearer(keys[who])).status_code == 403
    assert api.get("/api/v1/profiles").status_code == 401
    refused = api.post(
        "/api/v1/profiles", content=dehumidifier_yaml(2), headers={**YAML, **bearer(keys["ops"])}
    )
    assert refused.status_code == 403
    assert "admin" in refused.json()["detail"]
    listed = api.get("/api/v1/profiles", headers=bearer(keys["ops"])).json()
    assert {p["name"]: p["version"] for p in listed}["dehumidifier"] == 1  # nothing changed


def test_an_admin_imports_a_new_version_and_it_is_in_force(
    api: TestClient, admin: str, keys: dict[str, str]
) -> None:
    def post(text: str, query: str = "") -> httpx.Response:
        return api.post(f"/api/v1/profiles{query}", content=text, headers={**YAML, **bearer(admin)})

    second = dehumidifier_yaml(2, title="Dehumidifier II")
    checked = post(second, "?dry_run=true")
    assert checked.status_code == 200, checked.text
    assert checked.json()["dry_run"] is True
    assert api.get("/api/v1/profiles/dehumidifier", headers=bearer(admin)).json()["version"] == 1

    done = post(second)
    assert done.status_code == 200, done.text
    assert done.json()["created"] is True
    assert done.json()["profile"]["version"] == 2
    again = post(second)
    assert again.json()["created"] is False  # the same file twice changes nothing
    now = api.get("/api/v1/profiles/dehumidifier", headers=bearer(keys["ops"])).json()
    assert (now["version"], now["title"]) == (2, "Dehumidifier II")
    history = api.get("/api/v1/profiles/dehumidifier/history", headers=bearer(keys["ops"])).json()
    assert [(v["version"], v["imported_by"], v["in_force"]) for v in history] == [
        (1, "-", False),
        (2, "Root", True),
    ]
    rewrite = post(dehumidifier_yaml(2, title="Something else"))
    assert rewrite.status_code == 409
    assert "raise its version" in rewrite.json()["detail"]


def test_a_bad_file_comes_back_with_every_problem_at_its_path(api: TestClient, admin: str) -> None:
    text = dehumidifier_yaml(2).replace("name: dehumidifier", "name: Dehumidifier!", 1)
    text = text.replace("version: 2", "version: 0", 1)
    bad = api.post("/api/v1/profiles", content=text, headers={**YAML, **bearer(admin)})
    assert bad.status_code == 422
    paths = {p["path"] for p in bad.json()["problems"]}
    assert {"name", "version"} <= paths
    assert "2 problems" in bad.json()["detail"]

    doc = shipped()["dehumidifier"].doc.model_dump(mode="json", exclude_defaults=True)
    doc["version"] = 2
    doc["rules"] = [
        *doc.get("rules", []),
        {
            "id": "dehumidifier_loud",
            "title": "Too loud",
            "problem_kind": "compressor_fault",
            "when": {"threshold": {"metric": "noise_db", "above": 60}},
        },
    ]
    rule = json.dumps(doc)  # the JSON form of a file is taken too
    refused = api.post("/api/v1/profiles", content=rule, headers={**JSON, **bearer(admin)})
    assert refused.status_code == 422, refused.text
    assert any(
        "rule dehumidifier_loud" in p["problem"] and "has no metric noise_db" in p["problem"]
        for p in refused.json()["problems"]
    )

    for content, headers, status in [
        ("{not: [yaml", YAML, 422),
        ("- a list", YAML, 422),
        (b"\xff\xfe", YAML, 422),
        ("name: x", {"Content-Type": "image/png"}, 415),
        ("x" * 1_000_001, YAML, 413),
    ]:
        r = api.post("/api/v1/profiles", content=content, headers={**headers, **bearer(admin)})
        assert r.status_code == status, (content[:20], r.text)
        assert r.json()["detail"]
    listed = api.get("/api/v1/profiles", headers=bearer(admin)).json()
    assert {p["name"]: p["version"] for p in listed}["dehumidifier"] == 1  # nothing imported
