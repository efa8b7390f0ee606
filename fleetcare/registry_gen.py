"""A service registry consistent with a simulated fleet: the same device ids, owners in
the devices' regions, outlets and territories covering them, technicians with skills and
calendars, parts and stock. Deterministic by seed, like the fleet."""

from __future__ import annotations

import random
import time
from typing import Any

from device_sim.fleet import Fleet, FleetSpec

# (region in the simulator, time zone, outlets) — outlets get two territories each
_REGIONS = {
    "north": ("Asia/Shanghai", ["Beijing Chaoyang", "Tianjin Hexi"]),
    "east": ("Asia/Shanghai", ["Shanghai Xuhui", "Hangzhou Xihu"]),
    "south": ("Asia/Shanghai", ["Guangzhou Tianhe", "Shenzhen Nanshan"]),
    "west": ("Asia/Shanghai", ["Chengdu Wuhou", "Chongqing Yuzhong"]),
}
PARTS = [
    ("AP-HEPA-01", "Purifier HEPA/carbon filter", "purifier", 29900),
    ("AP-PRE-01", "Purifier pre-filter", "purifier", 4900),
    ("AP-MOTOR-01", "Purifier fan motor", "purifier", 39900),
    ("WP-SED-01", "Sediment cartridge", "water_purifier", 5900),
    ("WP-CARB-01", "Carbon block", "water_purifier", 8900),
    ("WP-RO-01", "RO membrane", "water_purifier", 49900),
    ("WP-PUMP-01", "Booster pump", "water_purifier", 35900),
    ("AC-FILTER-01", "AC return-air filter", "air_conditioner", 3900),
    ("AC-R32-1KG", "R32 refrigerant, 1 kg", "air_conditioner", 19900),
    ("AC-FANMOTOR-01", "AC indoor fan motor", "air_conditioner", 45900),
    ("AC-COMP-01", "Inverter compressor", "air_conditioner", 189900),
]
_SURNAMES = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou"]
_STREETS = ["Renmin", "Jiefang", "Zhongshan", "Heping"]
_WEEK = {d: ["08:30", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}


def generate(fleet: Fleet, *, seed: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Registry rows (the JSON form `fleetcare registry import` reads) for `fleet`."""
    rng = random.Random(seed if seed is not None else fleet.spec.seed)
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in ("outlets", "territories")}
    territories_of: dict[str, list[str]] = {}
    for region, (tz, names) in _REGIONS.items():
        for k, name in enumerate(names):
            outlet = f"o-{region}-{k}"
            out["outlets"].append({"id": outlet, "name": name, "timezone": tz})
            for z in range(2):
                tid = f"t-{region}-{k}-{z}"
                out["territories"].append(
                    {"id": tid, "name": f"{name} {'AB'[z]}", "outlet_id": outlet}
                )
                territories_of.setdefault(region, []).append(tid)
    out["parts"] = [
        {"sku": s, "name": n, "device_type": t, "price_cents": p} for s, n, t, p in PARTS
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
    out["stock"] = [
        {"outlet_id": o["id"], "sku": s, "qty": rng.randint(5, 30)}
        for o in out["outlets"]
        for s, *_ in PARTS
    ] + [
        {"technician_id": t["id"], "sku": s, "qty": rng.randint(0, 3)}
        for t in technicians
        for s, *_ in PARTS[:1] + PARTS[3:5] + PARTS[7:8]  # filters ride in the van
    ]
    customers, devices = [], []
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
                "filter_package": rng.random() < 0.25,
            }
        )
        zones = territories_of.get(truth.region) or territories_of["east"]
        devices.append(
            {
                "id": device_id,
                "device_type": truth.device_type,
                "model": {
                    "purifier": "AP-500",
                    "water_purifier": "RO-75G",
                    "air_conditioner": "KFR-35GW",
                }[truth.device_type],
                "serial": f"SN{rng.randrange(10**9):09d}",
                "customer_id": cid,
                "territory_id": rng.choice(zones),
                "address": f"{rng.randint(1, 999)} {rng.choice(_STREETS)} Rd",
            }
        )
    out["customers"], out["devices"] = customers, devices
    return out


def for_sim_fleet(devices: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    """The registry of `fleetcare sim --devices N --seed S` (same ids)."""
    return generate(Fleet.create(FleetSpec(devices=devices, seed=seed, start=time.time())))
