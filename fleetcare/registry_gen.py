"""A service registry consistent with a simulated fleet: the same device ids, owners in
the devices' regions, outlets and territories covering them, technicians with skills and
calendars, parts and stock. Deterministic by seed, like the fleet."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from device_sim.fleet import Fleet, FleetSpec
from telemetry.profile import Consumable, Profile, ProfileSet

# (region in the simulator, time zone, outlets) — outlets get two territories each
_REGIONS = {
    "north": ("Asia/Shanghai", ["Beijing Chaoyang", "Tianjin Hexi"]),
    "east": ("Asia/Shanghai", ["Shanghai Xuhui", "Hangzhou Xihu"]),
    "south": ("Asia/Shanghai", ["Guangzhou Tianhe", "Shenzhen Nanshan"]),
    "west": ("Asia/Shanghai", ["Chengdu Wuhou", "Chongqing Yuzhong"]),
}
SHIPPED_THREE = ("purifier", "water_purifier", "air_conditioner")
_SURNAMES = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou"]
_STREETS = ["Renmin", "Jiefang", "Zhongshan", "Heping"]
_WEEK = {d: ["08:30", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}


def _families(fleet: Fleet, profiles: ProfileSet) -> list[Profile]:
    """The families whose parts the outlets stock: the three shipped ones always, and any
    other the fleet has."""
    present = set(fleet.groups)
    return [p for name, p in profiles.items() if name in SHIPPED_THREE or name in present]


def _in_the_van(c: Consumable) -> bool:
    """Filters changed within a year ride in the technicians' vans."""
    months = c.rated.months
    return months is None or months <= 12


def generate(
    fleet: Fleet, *, seed: int | None = None, profiles: ProfileSet | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Registry rows (the JSON form `fleetcare registry import` reads) for `fleet`: parts
    and model codes from the families' profiles (default: the fleet's)."""
    profiles = profiles if profiles is not None else fleet.spec.profiles()
    families = _families(fleet, profiles)
    parts = [(part, p.name) for p in families for part in p.doc.parts]
    van = [c.sku for p in families for c in p.doc.consumables if _in_the_van(c)]
    others = [p.name for p in families if p.name not in SHIPPED_THREE]
    rng = random.Random(seed if seed is not None else fleet.spec.seed)
    out: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("regions", "depots", "outlets", "territories")
    }
    # the stock levels above the outlets: a central warehouse four weeks from the
    # suppliers, a distribution depot per region a week from it (docs/parts.md)
    out["depots"].append(
        {"id": "cn", "name": "Central warehouse", "level": "central", "lead_days": 28}
    )
    territories_of: dict[str, list[str]] = {}
    for region, (tz, names) in _REGIONS.items():
        out["regions"].append({"id": f"r-{region}", "name": f"{region.title()} region"})
        out["depots"].append(
            {"id": f"dc-{region}", "name": f"{region.title()} depot", "level": "distribution",
             "parent_id": "cn", "region_id": f"r-{region}", "lead_days": 7}
        )  # fmt: skip
        for k, name in enumerate(names):
            outlet = f"o-{region}-{k}"
            out["outlets"].append(
                {"id": outlet, "name": name, "timezone": tz, "region_id": f"r-{region}",
                 "depot_id": f"dc-{region}", "supply_days": 3}
            )  # fmt: skip
            for z in range(2):
                tid = f"t-{region}-{k}-{z}"
                out["territories"].append(
                    {"id": tid, "name": f"{name} {'AB'[z]}", "outlet_id": outlet}
                )
                territories_of.setdefault(region, []).append(tid)
    # what the maker pays an outlet per job, the same for every outlet
    out["outlet_fees"] = [
        {"job_type": t, "cents": c}
        for t, c in (("filter", 2000), ("fault", 6000), ("service", 3000), ("installation", 8000))
    ]
    out["parts"] = [
        {
            "sku": part.sku,
            "name": part.name,
            "device_type": family,
            "price_cents": part.price_cents or 0,
        }
        for part, family in parts
    ]
    technicians = []
    for o in out["outlets"]:
        zones = [t["id"] for t in out["territories"] if t["outlet_id"] == o["id"]]
        for j in range(3):
            skills = (
                [{"device_type": "air_conditioner"}]  # refrigerant work: AC specialists
                if j == 0
                else [{"device_type": "purifier"}, {"device_type": "water_purifier"}]
            )
            if j == 2:
                skills.append(
                    {"device_type": "air_conditioner", "problem_kind": "filter_replacement"}
                )
            if j > 0:  # the appliance generalists take the families onboarded later
                skills += [{"device_type": family} for family in others]
            technicians.append(
                {
                    "id": f"{o['id']}-tech-{j}",
                    "name": f"{rng.choice(_SURNAMES)} {'ABCDEFGH'[j]}.",
                    "outlet_id": o["id"],
                    "timezone": o["timezone"],
                    "working_hours": _WEEK,
                    "daily_capacity": rng.choice([5, 6, 8]),
                    "skills": skills,
                    "territories": zones,
                }
            )
    out["technicians"] = technicians
    # installation kits from a stream of their own: the draws for the other parts, and the
    # customers and devices drawn after them, stay what they were for a seed
    kits = {sku for p in families for m in p.doc.models for sku in m.installation_parts}
    kit_rng = random.Random((seed if seed is not None else fleet.spec.seed) + 2)
    out["stock"] = (
        [
            {
                "outlet_id": o["id"],
                "sku": part.sku,
                "qty": (kit_rng if part.sku in kits else rng).randint(5, 30),
            }
            for o in out["outlets"]
            for part, _ in parts
        ]
        + [
            {"technician_id": t["id"], "sku": sku, "qty": rng.randint(0, 3)}
            for t in technicians
            for sku in van
        ]
        + [
            # depots hold a few weeks of their outlets' shelves (no draw: the rows above stay)
            {"depot_id": d["id"], "sku": part.sku, "qty": 60 if d["level"] == "central" else 20}
            for d in out["depots"]
            for part, _ in parts
        ]
    )
    customers: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    # purchase dates from a stream of their own: the rows above stay what they were
    bought = random.Random((seed if seed is not None else fleet.spec.seed) + 1)
    today = datetime.fromtimestamp(fleet.t, UTC)
    packaged: list[str] = []
    for device_id, truth in fleet.truth.devices.items():
        cid = f"c-{device_id.rsplit('-', 1)[-1]}-{device_id.split('-')[1]}"
        tz, _ = _REGIONS.get(truth.region, ("Asia/Shanghai", []))
        vip = rng.random() < 0.1
        customers.append(
            {
                "id": cid,
                "name": f"{rng.choice(_SURNAMES)} {rng.choice('XYZWQ')}.",
                "tier": "vip" if vip else "standard",
                "channel": rng.choices(["app", "phone", "sms"], [0.7, 0.2, 0.1])[0],
                "timezone": tz,
                "language": "zh-CN",
            }
        )
        if rng.random() < 0.25:  # a quarter of customers bought a filter package
            packaged.append(device_id)
        zones = territories_of.get(truth.region) or territories_of["east"]
        devices.append(
            {
                "id": device_id,
                "device_type": truth.device_type,
                "model": _model_code(profiles, truth.device_type, len(devices)),
                "serial": f"SN{rng.randrange(10**9):09d}",
                "customer_id": cid,
                "territory_id": rng.choice(zones),
                "address": f"{rng.randint(1, 999)} {rng.choice(_STREETS)} Rd",
                # up to three years ago: a third still in labour cover, two in parts cover
                "purchased_on": (today - timedelta(days=bought.uniform(20, 1095)))
                .date()
                .isoformat(),
            }
        )
    out["customers"], out["devices"] = customers, devices
    # the makers' usual terms: two years of parts, one of labour, from the purchase
    out["warranties"] = [
        {"device_type": t, "parts_months": 24, "labour_months": 12}
        for t in sorted({d["device_type"] for d in devices})
    ]
    out["package_plans"], out["packages"] = _packages(profiles, devices, packaged, bought, today)
    return out


def _packages(
    profiles: ProfileSet,
    devices: list[dict[str, Any]],
    packaged: list[str],
    rng: random.Random,
    today: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A yearly plan per family with filters (two replacements; diy allowed where the
    filter is the customer's to fit), and a package bought within the last ten months
    for each packaged customer's device."""
    plans: dict[str, dict[str, Any]] = {}
    for family in sorted({d["device_type"] for d in devices}):
        profile = profiles.get(family)
        if profile is None or not profile.doc.consumables:
            continue
        plans[family] = {
            "id": f"care-{family}",
            "name": f"{profile.label} filter care, 1 year",
            "device_type": family,
            "replacements": 2,
            "months": 12,
            "price_cents": 39900 if family == "water_purifier" else 29900,
            "diy": family != "air_conditioner",
        }
    kinds = {d["id"]: d["device_type"] for d in devices}
    sold = [
        {
            "sale_id": f"gen-{device_id}",
            "device_id": device_id,
            "plan_id": plans[kinds[device_id]]["id"],
            "starts_on": (today - timedelta(days=rng.uniform(0, 300))).date().isoformat(),
        }
        for device_id in packaged
        if kinds[device_id] in plans
    ]
    return list(plans.values()), sold


def _model_code(profiles: ProfileSet, family: str, index: int) -> str | None:
    profile = profiles.get(family)
    if profile is None:
        return None
    models = profile.doc.models
    return models[index % len(models)].code


def for_sim_fleet(
    devices: int,
    seed: int,
    *,
    mix: Mapping[str, float] | None = None,
    extra_profiles: tuple[str, ...] = (),
) -> dict[str, list[dict[str, Any]]]:
    """The registry of `fleetcare sim --devices N --seed S [--mix …] [--profile …]`
    (the same ids)."""
    spec = FleetSpec(devices=devices, seed=seed, start=time.time(), extra_profiles=extra_profiles)
    if mix:
        spec = dataclasses.replace(spec, mix=mix)
    return generate(Fleet.create(spec))
