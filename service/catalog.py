"""What each problem needs, as the product profiles say: the part SKUs a technician
brings (a consumable's own SKU when it is replaced, the parts a problem lists), and the
problem kind that replaces a consumable stage. A problem a profile does not list needs no
part (an inspection, a sensor check). Profiles change while the engine runs, so each
function takes the set in force (`in_force`)."""

from __future__ import annotations

from db.database import Database
from fleet.profiles import ProfileRepository
from telemetry.profile import ProfileSet


def in_force(db: Database) -> ProfileSet:
    """The product profiles in force now."""
    return ProfileRepository(db).current()


def parts_for(profiles: ProfileSet, device_type: str, problem_kind: str) -> tuple[str, ...]:
    profile = profiles.get(device_type)
    return profile.parts_for(problem_kind) if profile is not None else ()


def filter_problem(profiles: ProfileSet, device_type: str, stage: str) -> str:
    """The problem kind that replaces a consumable stage (`main` is a single-stage
    family's filter: filter_replacement; others filter_replacement_<stage>)."""
    profile = profiles.get(device_type)
    consumable = profile.consumable(stage) if profile is not None else None
    if consumable is not None:
        return consumable.problem
    return "filter_replacement" if stage == "main" else f"filter_replacement_{stage}"
