"""Registry import: validated first, all or nothing, every bad row named by line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from db.database import Database
from db.tables import customers, technician_skills, technicians, territories
from service.registry import RegistryImportError, ServiceRegistry, parse_doc, read_file

GOOD = {
    "outlets": [{"id": "o-1", "name": "Xuhui", "timezone": "Asia/Shanghai"}],
    "territories": [{"id": "t-1", "name": "Xuhui A", "outlet_id": "o-1"}],
    "customers": [{"id": "c-1", "name": "Li", "timezone": "Asia/Shanghai", "tier": "vip"}],
    "parts": [{"sku": "AC-R32-1KG", "name": "R32", "price_cents": 19900}],
    "technicians": [
        {
            "id": "tech-1",
            "name": "Zhang",
            "outlet_id": "o-1",
            "timezone": "Asia/Shanghai",
            "working_hours": {"mon": ["08:00", "18:00"]},
            "skills": [{"device_type": "air_conditioner"}],
            "territories": ["t-1"],
        }
    ],
    "stock": [
        {"outlet_id": "o-1", "sku": "AC-R32-1KG", "qty": 4},
        {"technician_id": "tech-1", "sku": "AC-R32-1KG", "qty": 1},
    ],
    "devices": [
        {
            "id": "ac-1",
            "device_type": "air_conditioner",
            "customer_id": "c-1",
            "territory_id": "t-1",
            "address": "1 Renmin Rd",
        }
    ],
}


def count(db: Database, table: sa.Table) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def write(tmp_path: Path, doc: object, name: str = "registry.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_a_good_file_loads_and_loading_it_again_updates_in_place(
    db: Database, tmp_path: Path
) -> None:
    db.upgrade()
    reg = ServiceRegistry(db)
    assert reg.load(read_file(write(tmp_path, GOOD)))["devices"] == 1
    changed = json.loads(json.dumps(GOOD))
    changed["customers"][0]["tier"] = "standard"
    changed["technicians"][0]["skills"] = [
        {"device_type": "purifier"},
        {"device_type": "water_purifier", "problem_kind": "filter_replacement"},
    ]
    reg.load(read_file(write(tmp_path, changed)))
    assert count(db, customers) == 1 and count(db, technicians) == 1
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(customers.c.tier)).scalar_one() == "standard"
        skills = set(conn.execute(sa.select(technician_skills.c.device_type)).scalars())
    assert skills == {"purifier", "water_purifier"}  # replaced, not added to


def test_bad_rows_are_named_by_line_and_field_and_nothing_is_applied(
    db: Database, tmp_path: Path
) -> None:
    db.upgrade()
    bad = json.loads(json.dumps(GOOD))
    bad["customers"].append({"id": "c-2", "name": "Wang", "timezone": "Asia/Shangai"})
    bad["customers"].append({"id": "c-3", "name": "Zhao", "timezone": "UTC", "tier": "gold"})
    bad["stock"].append({"sku": "AC-R32-1KG", "qty": -1, "outlet_id": "o-1"})
    with pytest.raises(RegistryImportError) as caught:
        read_file(write(tmp_path, bad))
    text = str(caught.value)
    assert "customers line 2, timezone" in text and "Asia/Shangai" in text
    assert "customers line 3, tier" in text
    assert "stock line 3, qty" in text
    assert "nothing was imported" in text
    assert count(db, territories) == 0


def test_references_must_exist_in_the_file_or_the_registry(db: Database, tmp_path: Path) -> None:
    db.upgrade()
    reg = ServiceRegistry(db)
    dangling = json.loads(json.dumps(GOOD))
    dangling["devices"][0]["territory_id"] = "t-nowhere"
    dangling["technicians"][0]["territories"] = ["t-1", "t-gone"]
    with pytest.raises(RegistryImportError) as caught:
        reg.load(read_file(write(tmp_path, dangling)))
    text = str(caught.value)
    assert "devices line 1, territory_id: no territory 't-nowhere'" in text
    assert "technicians line 1, territories: no territory 't-gone'" in text
    assert count(db, territories) == 0  # the good rows of that file did not land either
    reg.load(read_file(write(tmp_path, GOOD)))
    # later files may point at what earlier ones loaded
    more = {"devices": [{**GOOD["devices"][0], "id": "ac-2"}]}  # type: ignore[dict-item]
    assert reg.load(parse_doc(more))["devices"] == 1


def test_a_device_never_changes_type(db: Database, tmp_path: Path) -> None:
    db.upgrade()
    reg = ServiceRegistry(db)
    reg.load(read_file(write(tmp_path, GOOD)))
    moved = json.loads(json.dumps(GOOD))
    moved["devices"][0]["device_type"] = "purifier"
    with pytest.raises(RegistryImportError, match="registered as air_conditioner"):
        reg.load(read_file(write(tmp_path, moved)))


def test_csv_files_are_one_kind_each_with_compact_lists(db: Database, tmp_path: Path) -> None:
    db.upgrade()
    reg = ServiceRegistry(db)
    no_staff = {k: v for k, v in GOOD.items() if k != "technicians"}
    no_staff["stock"] = [s for s in GOOD["stock"] if "outlet_id" in s]
    reg.load(read_file(write(tmp_path, no_staff)))
    path = tmp_path / "technicians.csv"
    path.write_text(
        "id,name,outlet_id,timezone,working_hours,skills,territories,daily_capacity\n"
        "tech-9,Wu,o-1,Asia/Shanghai,mon=08:00-18:00; sat=09:00-12:00,"
        "air_conditioner:*;purifier:filter_replacement,t-1,4\n"
        "tech-10,Qian,o-1,Asia/Shanghai,mon=18:00-08:00,toaster:*,t-1,\n"
    )
    with pytest.raises(RegistryImportError) as caught:
        read_file(path)
    text = str(caught.value)
    assert "technicians line 3, working_hours" in text and "ends (08:00)" in text
    assert "technicians line 3, skills.0.device_type" in text and "toaster" in text
    path.write_text("\n".join(path.read_text().splitlines()[:2]) + "\n")
    reg.load(read_file(path))
    with db.engine.connect() as conn:
        hours = conn.execute(
            sa.select(technicians.c.working_hours).where(technicians.c.id == "tech-9")
        ).scalar_one()
    assert hours == {"mon": ["08:00", "18:00"], "sat": ["09:00", "12:00"]}
    with pytest.raises(RegistryImportError, match="unknown kind"):
        read_file(path.rename(tmp_path / "people.csv"))


def test_package_plans_and_packages_sold_elsewhere_load_by_their_sale_id(
    db: Database, tmp_path: Path
) -> None:
    from db.tables import packages

    db.upgrade()
    reg = ServiceRegistry(db)
    reg.load(read_file(write(tmp_path, GOOD)))
    plans = tmp_path / "package_plans.csv"
    plans.write_text(
        "id,name,device_type,covers,replacements,months,price_cents,diy\n"
        "ac-care,AC care,air_conditioner,filter_replacement;filter_replacement_x,2,12,19900,true\n"
        "bad,Bad,air_conditioner,compressor_failure,,12,100,\n"
    )
    with pytest.raises(RegistryImportError, match=r"line 3, .*not compressor_failure"):
        read_file(plans)
    plans.write_text("\n".join(plans.read_text().splitlines()[:2]) + "\n")
    reg.load(read_file(plans))
    sold = {
        "packages": [
            {"sale_id": "crm-1", "device_id": "ac-1", "plan_id": "ac-care",
             "starts_on": "2026-03-01", "preferred_days": ["sat"]},
        ]
    }  # fmt: skip
    assert reg.load(parse_doc(sold))["packages"] == 1
    reg.load(parse_doc(sold))  # again: the same sale, nothing new
    with db.engine.connect() as conn:
        [row] = conn.execute(sa.select(packages)).all()
    assert (row.ends_on.isoformat(), row.replacements, row.preferred_days) == (
        "2027-03-01", 2, "sat"
    )  # fmt: skip
    wrong = {"packages": [{**sold["packages"][0], "sale_id": "crm-2", "plan_id": "nope"}]}
    with pytest.raises(RegistryImportError, match="no package plan 'nope'"):
        reg.load(parse_doc(wrong))
    ghost = {"packages": [{**sold["packages"][0], "sale_id": "crm-3", "device_id": "ghost"}]}
    with pytest.raises(RegistryImportError, match="no device 'ghost' at a site"):
        reg.load(parse_doc(ghost))
