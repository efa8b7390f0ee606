"""What each problem needs: the parts a technician must bring, by device type.

A problem kind not listed needs no part (an inspection, a sensor check). Adding a
problem is adding a row."""

from __future__ import annotations

REQUIRED_PARTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("purifier", "filter_replacement"): ("AP-HEPA-01",),
    ("purifier", "clogged_prefilter"): ("AP-PRE-01",),
    ("purifier", "motor_wear"): ("AP-MOTOR-01",),
    ("water_purifier", "filter_replacement_sediment"): ("WP-SED-01",),
    ("water_purifier", "filter_replacement_carbon"): ("WP-CARB-01",),
    ("water_purifier", "filter_replacement_ro"): ("WP-RO-01",),
    ("water_purifier", "ro_membrane_failure"): ("WP-RO-01",),
    ("water_purifier", "pump_failure"): ("WP-PUMP-01",),
    ("air_conditioner", "filter_replacement"): ("AC-FILTER-01",),
    ("air_conditioner", "refrigerant_leak"): ("AC-R32-1KG",),
    ("air_conditioner", "fan_bearing_wear"): ("AC-FANMOTOR-01",),
    ("air_conditioner", "compressor_degradation"): ("AC-COMP-01",),
}


def parts_for(device_type: str, problem_kind: str) -> tuple[str, ...]:
    return REQUIRED_PARTS.get((device_type, problem_kind), ())


def filter_problem(stage: str) -> str:
    """The problem kind that replaces a filter stage ("main" is a purifier's only one)."""
    return "filter_replacement" if stage == "main" else f"filter_replacement_{stage}"
