"""The service registry: outlets, territories, customers, technicians, parts and stock,
and where each device is and whose it is.

`load` applies a `RegistryData` in one transaction: every row is validated first (types,
time zones, references to rows in the file or already in the database), and a bad row is
reported with its kind, line and field; nothing of the batch is applied then.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from sqlalchemy.engine import Connection

from db.database import Database
from db.tables import (
    customers,
    depot_stock,
    depots,
    device_sites,
    devices,
    outlet_fees,
    outlet_stock,
    outlets,
    package_plans,
    packages,
    parts,
    regions,
    technician_skills,
    technician_territories,
    technicians,
    territories,
    van_stock,
    warranty_terms,
)
from db.upsert import insert_for
from service.errors import ServiceError
from service.warranty import add_months
from telemetry.profile import ProfileSet, shipped

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
HHMM = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (an IANA name, e.g. Asia/Shanghai)"
        ) from None
    return value


class RegionIn(_Row):
    id: Id
    name: str


class OutletIn(_Row):
    id: Id
    name: str
    timezone: str
    region_id: Id | None = None
    # hours it has to accept a job before the job goes to another outlet of its region;
    # empty: it takes every job of its territories at once (the maker's own station)
    accept_hours: int | None = Field(default=None, ge=1, le=168)
    depot_id: Id | None = None  # the distribution depot that supplies its stock
    supply_days: int | None = Field(default=None, ge=0, le=120)  # from that depot

    _tz = field_validator("timezone")(_zone)


class DepotIn(_Row):
    """A stock level above the outlets: a central warehouse (supplied by the factory or
    suppliers) or a distribution depot (supplied by a central one)."""

    id: Id
    name: str
    level: Literal["central", "distribution"]
    parent_id: Id | None = None  # a distribution depot's central one
    region_id: Id | None = None  # the region a distribution depot serves
    lead_days: int = Field(default=7, ge=0, le=365)  # from its parent, or the supplier

    def model_post_init(self, _context: Any) -> None:
        if self.level == "distribution" and self.parent_id is None:
            raise ValueError("a distribution depot needs parent_id: the central one")
        if self.level == "central" and self.parent_id is not None:
            raise ValueError("a central depot has no parent (its lead_days are the supplier's)")


class OutletFeeIn(_Row):
    """What the maker pays an outlet per completed job of a type: a problem kind, or a
    class (filter, fault, service); for one outlet, or every outlet without its own."""

    outlet_id: Id | None = None
    job_type: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
    cents: int = Field(ge=0)


class TerritoryIn(_Row):
    id: Id
    name: str
    outlet_id: Id


class CustomerIn(_Row):
    id: Id
    name: str
    tier: Literal["standard", "vip"] = "standard"
    channel: Literal["app", "phone", "sms"] = "app"
    phone: str | None = None
    email: str | None = None
    timezone: str
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")] = "en"
    quiet_start: HHMM | None = "21:00"
    quiet_end: HHMM | None = "08:00"
    butler_technician_id: Id | None = None
    air_reports: bool = True  # the monthly household air report is sent to them

    _tz = field_validator("timezone")(_zone)


class Skill(_Row):
    device_type: str
    problem_kind: str = "*"  # any problem on that device type

    @field_validator("device_type")
    @classmethod
    def _known_type(cls, v: str, info: ValidationInfo) -> str:
        """A family with a profile: the validation context's `profiles`, or the shipped."""
        given = (info.context or {}).get("profiles")
        known: ProfileSet = given if isinstance(given, ProfileSet) else shipped()
        if v not in known:
            raise ValueError(
                f"unknown device type {v!r}; one of {', '.join(known)} (or import its profile)"
            )
        return v


class TechnicianIn(_Row):
    id: Id
    name: str
    outlet_id: Id
    timezone: str
    # local working hours by weekday, e.g. {"mon": ["08:00", "18:00"]}; missing = day off
    working_hours: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], tuple[HHMM, HHMM]]
    daily_capacity: int = Field(6, ge=1, le=50)
    skills: list[Skill] = Field(min_length=1)
    territories: list[Id] = Field(min_length=1)
    active: bool = True

    _tz = field_validator("timezone")(_zone)

    @field_validator("working_hours")
    @classmethod
    def _ordered(cls, v: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
        for day, (start, end) in v.items():
            if start >= end:
                raise ValueError(f"{day}: the day ends ({end}) before it starts ({start})")
        return v


class PartIn(_Row):
    sku: Id
    name: str
    device_type: str | None = None
    price_cents: int = Field(ge=0)


class StockIn(_Row):
    """A stock level: at a depot, at an outlet, or in a technician's van."""

    sku: Id
    qty: int = Field(ge=0)
    depot_id: Id | None = None
    outlet_id: Id | None = None
    technician_id: Id | None = None

    def model_post_init(self, _context: Any) -> None:
        if sum(x is not None for x in (self.depot_id, self.outlet_id, self.technician_id)) != 1:
            raise ValueError("give exactly one of depot_id, outlet_id and technician_id")


class DeviceIn(_Row):
    id: Id
    device_type: str
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    batch: str | None = Field(None, max_length=64, description="production batch (lot)")
    manufactured_on: date | None = None
    customer_id: Id
    territory_id: Id
    address: str
    installed_on: date | None = None
    purchased_on: date | None = None

    _known_type = Skill._known_type

    @field_validator("model")
    @classmethod
    def _its_familys_model(cls, v: str | None, info: ValidationInfo) -> str | None:
        """A model code another family's profile lists is not this device's."""
        given = (info.context or {}).get("profiles")
        known: ProfileSet = given if isinstance(given, ProfileSet) else shipped()
        owner = known.for_model(v) if v else None
        family = info.data.get("device_type")
        if owner is not None and family is not None and owner.name != family:
            raise ValueError(f"model {v} is a {owner.name} ({owner.label}), not a {family}")
        return v

    def model_post_init(self, _context: Any) -> None:
        made, installed = self.manufactured_on, self.installed_on
        if made is not None and installed is not None and made > installed:
            raise ValueError(
                f"manufactured_on {made} is after installed_on {installed}: a unit is "
                "made before it is installed"
            )


class WarrantyIn(_Row):
    """Warranty terms for a product model, or for every model of a device type that has
    none of its own."""

    model: str | None = None
    device_type: str | None = None
    parts_months: int = Field(ge=0, le=600)
    labour_months: int = Field(ge=0, le=600)
    free_visits: int | None = Field(default=None, ge=0)
    starts: Literal["purchase", "installation"] = "purchase"

    def model_post_init(self, _context: Any) -> None:
        if (self.model is None) == (self.device_type is None):
            raise ValueError("give exactly one of model and device_type")

    @property
    def applies_to(self) -> str:
        return f"model:{self.model}" if self.model else f"type:{self.device_type}"


class PackagePlanIn(_Row):
    """A filter package the maker sells, for a product model or every model of a type."""

    id: Id
    name: str = Field(min_length=1, max_length=128)
    model: str | None = None
    device_type: str | None = None
    covers: list[str] = Field(
        default_factory=list,
        description="filter replacement problem kinds it pays; none: every filter",
    )
    replacements: int | None = Field(default=None, ge=1, le=1000)  # None: as many as due
    months: int = Field(ge=1, le=120)
    price_cents: int = Field(ge=0)
    diy: bool = False  # may be taken as shipped filters the customer fits
    active: bool = True

    def model_post_init(self, _context: Any) -> None:
        if (self.model is None) == (self.device_type is None):
            raise ValueError("give exactly one of model and device_type")
        bad = [c for c in self.covers if not c.startswith("filter_replacement")]
        if bad:
            raise ValueError(f"a filter package pays filter replacements, not {', '.join(bad)}")

    @property
    def applies_to(self) -> str:
        return f"model:{self.model}" if self.model else f"type:{self.device_type}"


class PackageIn(_Row):
    """A package already sold (from the maker's shop or CRM), by the sale's own id."""

    sale_id: Id
    device_id: Id
    plan_id: Id
    starts_on: date
    fulfilment: Literal["visit", "diy"] = "visit"
    preferred_days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=list
    )
    preferred_from: HHMM | None = None
    preferred_to: HHMM | None = None


KINDS: dict[str, type[_Row]] = {
    "regions": RegionIn,
    "depots": DepotIn,
    "outlets": OutletIn,
    "territories": TerritoryIn,
    "customers": CustomerIn,
    "technicians": TechnicianIn,
    "parts": PartIn,
    "stock": StockIn,
    "devices": DeviceIn,
    "warranties": WarrantyIn,
    "package_plans": PackagePlanIn,
    "packages": PackageIn,
    "outlet_fees": OutletFeeIn,
}


@dataclass(frozen=True, slots=True)
class RowError:
    kind: str
    line: int  # 1-based: the CSV line (header = 1) or the item's position in the JSON list
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind} line {self.line}, {self.field or 'row'}: {self.message}"


class RegistryImportError(ServiceError):
    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = "\n  ".join(str(e) for e in errors[:20])
        more = f"\n  … and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} bad row(s); nothing was imported:\n  {shown}{more}")


@dataclass
class RegistryData:
    """Validated rows by kind, ready to load."""

    rows: dict[str, list[Any]]

    def count(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.rows.items() if v}


def parse_doc(
    doc: Mapping[str, Sequence[Mapping[str, Any]]], profiles: ProfileSet | None = None
) -> RegistryData:
    """The JSON form, `{"outlets": [...], ...}`: lines are positions in each list."""
    rows = {k: [(i, dict(row)) for i, row in enumerate(v, 1)] for k, v in doc.items()}
    return parse(rows, profiles)


def parse(
    kind_rows: Mapping[str, Iterable[tuple[int, dict[str, Any]]]],
    profiles: ProfileSet | None = None,
) -> RegistryData:
    """Validate raw rows (line, mapping) of each kind; raise every error at once. Device
    types are those of `profiles` (default: the shipped ones)."""
    context = {"profiles": profiles if profiles is not None else shipped()}
    from pydantic import ValidationError

    errors: list[RowError] = []
    out: dict[str, list[Any]] = {k: [] for k in KINDS}
    for kind, rows in kind_rows.items():
        model = KINDS.get(kind)
        if model is None:
            errors.append(RowError(kind, 0, "", f"unknown kind; one of {', '.join(KINDS)}"))
            continue
        for line, raw in rows:
            try:
                out[kind].append(model.model_validate(raw, context=context))
            except ValidationError as exc:
                for e in exc.errors():
                    where = ".".join(str(p) for p in e["loc"])
                    errors.append(RowError(kind, line, where, e["msg"]))
    if errors:
        raise RegistryImportError(errors)
    return RegistryData(out)


class ServiceRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self, data: RegistryData) -> dict[str, int]:
        """Insert or update every row, all or nothing; returns rows per kind."""
        now = datetime.now(UTC)
        with self.db.engine.begin() as conn:
            _check_references(conn, data)
            r = data.rows
            self._upsert(conn, regions, [m.model_dump() for m in r["regions"]], ["id"])
            central_first = sorted(r["depots"], key=lambda d: d.level != "central")
            self._upsert(conn, depots, [m.model_dump() for m in central_first], ["id"])
            self._upsert(conn, outlets, [m.model_dump() for m in r["outlets"]], ["id"])
            self._upsert(
                conn,
                outlet_fees,
                [{**m.model_dump(), "outlet_id": m.outlet_id or "*"} for m in r["outlet_fees"]],
                ["outlet_id", "job_type"],
            )
            self._upsert(conn, territories, [m.model_dump() for m in r["territories"]], ["id"])
            self._upsert(conn, customers, [m.model_dump() for m in r["customers"]], ["id"])
            self._upsert(conn, parts, [m.model_dump() for m in r["parts"]], ["sku"])
            techs = r["technicians"]
            self._upsert(
                conn,
                technicians,
                [m.model_dump(exclude={"skills", "territories"}) for m in techs],
                ["id"],
            )
            for t in techs:  # a technician's skills and territories are replaced whole
                conn.execute(
                    technician_skills.delete().where(technician_skills.c.technician_id == t.id)
                )
                conn.execute(
                    technician_territories.delete().where(
                        technician_territories.c.technician_id == t.id
                    )
                )
                conn.execute(
                    technician_skills.insert(),
                    [{"technician_id": t.id, **s.model_dump()} for s in t.skills],
                )
                conn.execute(
                    technician_territories.insert(),
                    [{"technician_id": t.id, "territory_id": z} for z in t.territories],
                )
            stock = r["stock"]
            self._upsert(
                conn,
                depot_stock,
                [{"depot_id": s.depot_id, "sku": s.sku, "qty": s.qty} for s in stock if s.depot_id],
                ["depot_id", "sku"],
            )
            self._upsert(
                conn,
                outlet_stock,
                [
                    {"outlet_id": s.outlet_id, "sku": s.sku, "qty": s.qty}
                    for s in stock
                    if s.outlet_id
                ],
                ["outlet_id", "sku"],
            )
            self._upsert(
                conn,
                van_stock,
                [
                    {"technician_id": s.technician_id, "sku": s.sku, "qty": s.qty}
                    for s in stock
                    if s.technician_id
                ],
                ["technician_id", "sku"],
            )
            devs = r["devices"]
            self._upsert(
                conn,
                devices,
                [
                    {
                        "id": d.id,
                        "device_type": d.device_type,
                        "model": d.model,
                        "serial": d.serial,
                        "firmware": d.firmware,
                        "batch": d.batch,
                        "manufactured_on": d.manufactured_on,
                        "enabled": True,
                        "registered_at": now,
                    }
                    for d in devs
                ],
                ["id"],
                keep=["registered_at", "enabled", "device_type"],
            )
            self._upsert(
                conn,
                device_sites,
                [
                    {
                        "device_id": d.id,
                        "customer_id": d.customer_id,
                        "territory_id": d.territory_id,
                        "address": d.address,
                        "installed_on": d.installed_on,
                        "purchased_on": d.purchased_on,
                    }
                    for d in devs
                ],
                ["device_id"],
            )
            self._upsert(
                conn,
                warranty_terms,
                [
                    {
                        "applies_to": w.applies_to,
                        **w.model_dump(include={"parts_months", "labour_months"}),
                        "free_visits": w.free_visits,
                        "starts": w.starts,
                    }
                    for w in r["warranties"]
                ],
                ["applies_to"],
            )
            self._upsert(
                conn,
                package_plans,
                [
                    {
                        "applies_to": p.applies_to,
                        **p.model_dump(exclude={"model", "device_type"}),
                    }
                    for p in r["package_plans"]
                ],
                ["id"],
            )
            self._packages(conn, r["packages"], now)
        return data.count()

    @staticmethod
    def _packages(conn: Connection, sold: Sequence[PackageIn], now: datetime) -> None:
        """Packages sold elsewhere: what the plan promised, from their own start date. A
        sale already on record stays as it is (its entitlement is used by jobs)."""
        if not sold:
            return
        plans = {
            row.id: row
            for row in conn.execute(
                sa.select(package_plans).where(package_plans.c.id.in_({p.plan_id for p in sold}))
            )
        }
        owners = dict(
            conn.execute(
                sa.select(device_sites.c.device_id, device_sites.c.customer_id).where(
                    device_sites.c.device_id.in_({p.device_id for p in sold})
                )
            ).all()
        )
        rows = []
        for p in sold:
            plan = plans[p.plan_id]
            rows.append(
                {
                    "sale_id": p.sale_id, "device_id": p.device_id,
                    "customer_id": owners[p.device_id], "plan_id": p.plan_id,
                    "starts_on": p.starts_on,
                    "ends_on": add_months(p.starts_on, plan.months), "covers": plan.covers,
                    "replacements": plan.replacements, "price_cents": plan.price_cents,
                    "fulfilment": p.fulfilment,
                    "preferred_days": ",".join(p.preferred_days) or None,
                    "preferred_from": p.preferred_from, "preferred_to": p.preferred_to,
                    "channel": "import", "sold_by": "registry", "sold_at": now,
                }
            )  # fmt: skip
        conn.execute(
            insert_for(conn, packages).on_conflict_do_nothing(index_elements=["sale_id"]), rows
        )

    @staticmethod
    def _upsert(
        conn: Connection,
        table: sa.Table,
        rows: list[dict[str, Any]],
        keys: list[str],
        *,
        keep: list[str] | None = None,
    ) -> None:
        if not rows:
            return
        stmt = insert_for(conn, table)
        update = {c: stmt.excluded[c] for c in rows[0] if c not in keys and c not in (keep or [])}
        if update:
            stmt = stmt.on_conflict_do_update(index_elements=keys, set_=update)
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=keys)
        conn.execute(stmt, rows)


def _check_references(conn: Connection, data: RegistryData) -> None:
    """Every id a row points at exists in the file or the database."""
    r = data.rows

    def known(table: sa.Table, key: str, new: Iterable[str]) -> set[str]:
        return set(new) | set(conn.execute(sa.select(table.c[key])).scalars())

    outlet_ids = known(outlets, "id", (o.id for o in r["outlets"]))
    territory_ids = known(territories, "id", (t.id for t in r["territories"]))
    customer_ids = known(customers, "id", (c.id for c in r["customers"]))
    technician_ids = known(technicians, "id", (t.id for t in r["technicians"]))
    skus = known(parts, "sku", (p.sku for p in r["parts"]))
    errors: list[RowError] = []

    def need(kind: str, i: int, field: str, value: str | None, pool: set[str], what: str) -> None:
        if value is not None and value not in pool:
            errors.append(
                RowError(kind, i, field, f"no {what} {value!r} in the file or the registry")
            )

    region_ids = known(regions, "id", (x.id for x in r["regions"]))
    depot_ids = known(depots, "id", (d.id for d in r["depots"]))
    for i, d in enumerate(r["depots"], 1):
        need("depots", i, "parent_id", d.parent_id, depot_ids, "depot")
        need("depots", i, "region_id", d.region_id, region_ids, "region")
    for i, o in enumerate(r["outlets"], 1):
        need("outlets", i, "region_id", o.region_id, region_ids, "region")
        need("outlets", i, "depot_id", o.depot_id, depot_ids, "depot")
    for i, f in enumerate(r["outlet_fees"], 1):
        need("outlet_fees", i, "outlet_id", f.outlet_id, outlet_ids, "outlet")
    for i, t in enumerate(r["territories"], 1):
        need("territories", i, "outlet_id", t.outlet_id, outlet_ids, "outlet")
    for i, c in enumerate(r["customers"], 1):
        need(
            "customers",
            i,
            "butler_technician_id",
            c.butler_technician_id,
            technician_ids,
            "technician",
        )
    for i, t in enumerate(r["technicians"], 1):
        need("technicians", i, "outlet_id", t.outlet_id, outlet_ids, "outlet")
        for z in t.territories:
            need("technicians", i, "territories", z, territory_ids, "territory")
    for i, s in enumerate(r["stock"], 1):
        need("stock", i, "sku", s.sku, skus, "part")
        need("stock", i, "outlet_id", s.outlet_id, outlet_ids, "outlet")
        need("stock", i, "depot_id", s.depot_id, depot_ids, "depot")
        need("stock", i, "technician_id", s.technician_id, technician_ids, "technician")
    registered: dict[str, str] = {}
    ids = [d.id for d in r["devices"]]
    for k in range(0, len(ids), 5000):  # PostgreSQL takes at most 65,535 parameters
        q = sa.select(devices.c.id, devices.c.device_type).where(
            devices.c.id.in_(ids[k : k + 5000])
        )
        registered.update((row.id, row.device_type) for row in conn.execute(q))
    for i, d in enumerate(r["devices"], 1):
        if registered.get(d.id, d.device_type) != d.device_type:
            errors.append(
                RowError(
                    "devices",
                    i,
                    "device_type",
                    f"{d.id} is registered as {registered[d.id]}; a device never changes type",
                )
            )
        need("devices", i, "customer_id", d.customer_id, customer_ids, "customer")
        need("devices", i, "territory_id", d.territory_id, territory_ids, "territory")
    plan_rows = {p.id: p.applies_to for p in r["package_plans"]}
    if r["packages"]:
        plan_rows = (
            dict(conn.execute(sa.select(package_plans.c.id, package_plans.c.applies_to)).all())
            | plan_rows
        )
    sites = {d.id: (d.model, d.device_type) for d in r["devices"]}
    wanted = [p.device_id for p in r["packages"] if p.device_id not in sites]
    for k in range(0, len(wanted), 5000):
        q = (
            sa.select(devices.c.id, devices.c.model, devices.c.device_type)
            .join(device_sites, device_sites.c.device_id == devices.c.id)
            .where(devices.c.id.in_(wanted[k : k + 5000]))
        )
        sites.update((row.id, (row.model, row.device_type)) for row in conn.execute(q))
    for i, p in enumerate(r["packages"], 1):
        site = sites.get(p.device_id)
        if site is None:
            errors.append(
                RowError("packages", i, "device_id", f"no device {p.device_id!r} at a site "
                         "in the file or the registry")
            )  # fmt: skip
        elif p.plan_id not in plan_rows:
            need("packages", i, "plan_id", p.plan_id, set(plan_rows), "package plan")
        elif plan_rows[p.plan_id] not in (f"model:{site[0]}", f"type:{site[1]}"):
            errors.append(
                RowError("packages", i, "plan_id", f"plan {p.plan_id} is for "
                         f"{plan_rows[p.plan_id].split(':', 1)[1]}, not {p.device_id}")
            )  # fmt: skip
    if errors:
        raise RegistryImportError(errors)


_SPLIT = re.compile(r"\s*;\s*")


def csv_row(kind: str, raw: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the JSON form: empty cells are absent; lists are `;`-separated;
    skills are `device_type:problem_kind`; working hours `mon=08:00-18:00;tue=...`."""
    row: dict[str, Any] = {k.strip(): v.strip() for k, v in raw.items() if k and v and v.strip()}
    lists = {"package_plans": "covers", "packages": "preferred_days"}
    if kind in lists and lists[kind] in row:
        row[lists[kind]] = [x for x in _SPLIT.split(row[lists[kind]]) if x]
    if kind == "technicians":
        if "skills" in row:
            row["skills"] = [
                dict(zip(("device_type", "problem_kind"), s.split(":", 1), strict=False))
                for s in _SPLIT.split(row["skills"])
                if s
            ]
        if "territories" in row:
            row["territories"] = [z for z in _SPLIT.split(row["territories"]) if z]
        if "working_hours" in row:
            hours: dict[str, Any] = {}
            for part in _SPLIT.split(row["working_hours"]):
                day, _, span = part.partition("=")
                hours[day.strip()] = span.split("-", 1) if span else span
            row["working_hours"] = hours
    return row


def read_file(
    path: Path, kind: str | None = None, profiles: ProfileSet | None = None
) -> RegistryData:
    """A JSON file `{"outlets": [...], "customers": [...], ...}`, or a CSV file of one
    kind (named by `kind` or by the file name: customers.csv). Validated, not applied."""
    import csv
    import json

    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise RegistryImportError(
                [RowError(path.name, exc.lineno, "", f"not JSON: {exc.msg}")]
            ) from None
        if not isinstance(doc, dict) or not all(isinstance(v, list) for v in doc.values()):
            raise RegistryImportError(
                [RowError(path.name, 1, "", "expected an object of lists, one per kind")]
            )
        return parse_doc(doc, profiles)
    if path.suffix.lower() == ".csv":
        kind = kind or path.stem
        if kind not in KINDS:
            raise RegistryImportError(
                [
                    RowError(
                        kind,
                        0,
                        "",
                        f"unknown kind; name the file or pass one of {', '.join(KINDS)}",
                    )
                ]
            )
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = [(n, csv_row(kind, raw)) for n, raw in enumerate(csv.DictReader(f), 2)]
        return parse({kind: rows}, profiles)
    raise RegistryImportError([RowError(path.name, 0, "", "a .json or .csv file, please")])
