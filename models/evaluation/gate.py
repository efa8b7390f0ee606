"""The gate: a small evaluation under the protocol that the suite runs on every change,
so a model change that only works on clean data, or only in the training fleet's season,
is caught before it lands.

Models are trained as `fleetcare train` trains them, on small imperfect fleets from
January 2026; they are judged on an imperfect fleet of another seed starting in July 2027
(off-season for the training's first months). Everything is seeded, so the figures are
the same on every run of the same code: a change in them is the code's doing. The
committed report is docs/model-gate.json; `compare` says which figure got worse than it
by more than the tolerance. A better model updates the report
(`fleetcare evaluate --gate --write`), in the same commit as the change.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from models.evaluation.protocol import Case, Sizes, run_case
from models.evaluation.training import train_filter_life, train_health
from models.filter_life import FilterLife
from models.health import HealthModel

BASELINE = Path(__file__).resolve().parents[2] / "docs" / "model-gate.json"
# the simulation's cost is in its days more than its devices: many devices, few days
TRAIN_DEVICES, TRAIN_DAYS, TRAIN_SEED = 800, 45, 11
HEALTH_DEVICES, HEALTH_DAYS = 800, 35
CASE = Case(datetime(2027, 7, 1, tzinfo=UTC), noisy=True, seed=22)
# small fleets (the suite's time): 40 % of the faulty fleet's devices get a fault, or
# too few would to measure anything
SIZES = Sizes(devices=800, days=45, fault_devices=900, fault_days=35, faulty_share=0.4)
STAGES = (
    ("purifier", "main"),
    ("water_purifier", "sediment"),
    ("water_purifier", "ro"),
    ("air_conditioner", "main"),
)

# how much worse than the committed report a figure may get before the gate fails
MAE_SHARE, MAE_DAYS = 0.15, 0.5  # an error in days: 15 % or half a day, whichever is more
SHARE_POINTS = 0.05  # a share (covered, premature, recall, named within 7 days): 5 points
FALSE_SHARE, FALSE_ABS = 0.5, 0.5  # false alerts per 1,000 device-days: 50 % or 0.5


def train() -> tuple[FilterLife, HealthModel]:
    """The gate's models, trained as `fleetcare train` trains (small fleets)."""
    model, _, _ = train_filter_life(TRAIN_DEVICES, TRAIN_DAYS, TRAIN_SEED)
    health, _, _ = train_health(HEALTH_DEVICES, HEALTH_DAYS, TRAIN_SEED + 1)
    return model, health


def measure(filter_model: FilterLife, health_model: HealthModel) -> dict[str, float]:
    """The gate's figures, by name."""
    r = run_case(CASE, SIZES, filter_model, health_model)
    out: dict[str, float] = {}
    for q in r.stages:
        if q.key not in STAGES:
            continue
        name = ".".join(q.key)
        out[f"{name}.mae14_days"] = q.mae[14]
        out[f"{name}.covered"] = q.covered
        out[f"{name}.premature"] = q.premature
    t = r.faults.total()
    out["faults.recall"] = t.recall
    out["faults.named_within_7d"] = t.within(7 * 24)
    out["faults.precision"] = t.precision
    out["faults.false_per_1000_device_days"] = r.faults.false_per_1000
    return out


def compare(measured: Mapping[str, float], committed: Mapping[str, float]) -> list[str]:
    """Each figure worse than the committed one by more than its tolerance, said plainly
    (empty: the gate passes). A figure the report has and the run lacks is worse too."""
    problems = []
    for name, old in sorted(committed.items()):
        new = measured.get(name, math.nan)
        if math.isnan(old):
            continue
        if math.isnan(new):
            problems.append(f"{name}: {old:.3f} in the committed report, none measured now")
            continue
        metric = name.rsplit(".", 1)[1]
        if metric == "mae14_days":
            allowed = old + max(MAE_SHARE * old, MAE_DAYS)
            worse = new > allowed
        elif metric == "premature":
            allowed = old + SHARE_POINTS
            worse = new > allowed
        elif metric == "false_per_1000_device_days":
            allowed = old + max(FALSE_SHARE * old, FALSE_ABS)
            worse = new > allowed
        else:  # a share where more is better
            allowed = old - SHARE_POINTS
            worse = new < allowed
        if worse:
            problems.append(f"{name}: {new:.3f}, committed {old:.3f}, allowed {allowed:.3f}")
    return problems


def dumps(measured: Mapping[str, float]) -> str:
    figures = {k: (None if math.isnan(v) else round(v, 4)) for k, v in sorted(measured.items())}
    doc = {
        "what": "the model gate's figures (models/evaluation/gate.py); rewrite with "
        "`fleetcare evaluate --gate --write` when a model gets better",
        "case": f"{CASE.name}, seed {CASE.seed}",
        "figures": figures,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def load(path: Path = BASELINE) -> dict[str, float]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {k: (math.nan if v is None else float(v)) for k, v in doc["figures"].items()}
