"""Built-in rules that belong to no profile: the health model's diagnoses.

The health model (`models.health`) knows the shipped families' physics and names their
faults; a diagnosis proposes a job through one of these rows. Every other rule comes
from the product profiles (`rules.profile_rules`). Rows, not code: each is validated by
`rules.spec.Rule` like a user's YAML rule, and a user rule with the same id retunes it.
"""

from __future__ import annotations

from typing import Any

from rules.spec import Rule

# (device type, the health model's fault kind, problem kind, title, severity, priority,
# wording en, zh): what a model diagnosis opens. Each proposes a job for ops to review;
# where a rule on the readings also covers the problem, the two share one job.
_MODEL_DIAGNOSES = [
    (
        "purifier",
        "motor_wear",
        "motor_wear",
        "Fan motor wearing (health model)",
        "warning",
        2,
        "Your air purifier's fan motor is working harder than it should.",
        "您的空气净化器风机电流偏高，可能存在磨损。",
    ),
    (
        "purifier",
        "clogged_prefilter",
        "clogged_prefilter",
        "Pre-filter clogged (health model)",
        "warning",
        1,
        "Your air purifier's pre-filter is clogged with dust and hair; we will clean it.",
        "您的空气净化器初效滤网堵塞，我们将为您清洁。",
    ),
    *[
        (
            device_type,
            kind,
            "sensor_fault",
            title,
            "warning",
            1,
            f"Your {name}'s {sensor} sensor is giving unreliable readings; we will check it.",
            f"您的{zh_name}{zh_sensor}传感器读数异常，我们将为您检查。",
        )
        for device_type, name, zh_name, sensor, zh_sensor in (
            ("purifier", "air purifier", "空气净化器", "air-quality", "空气质量"),
            ("water_purifier", "water purifier", "净水器", "water-quality", "水质"),
            ("air_conditioner", "air conditioner", "空调", "room temperature", "室温"),
        )
        for kind, title in (
            ("sensor_dropout", "Sensor dropping readings (health model)"),
            ("sensor_spikes", "Sensor spiking (health model)"),
        )
    ],
    (
        "purifier",
        "pm_sensor_stuck",
        "sensor_fault",
        "PM2.5 sensor stuck (health model)",
        "warning",
        1,
        "Your air purifier's air-quality sensor seems stuck; we will check it.",
        "您的空气净化器空气质量传感器读数异常，我们将为您检查。",
    ),
    (
        "water_purifier",
        "ro_membrane_failure",
        "ro_membrane_failure",
        "RO membrane failing (health model)",
        "critical",
        3,
        "Your water purifier is no longer removing enough salts; we will check it.",
        "您的净水器脱盐率下降，我们将尽快上门检查。",
    ),
    (
        "water_purifier",
        "pump_failure",
        "pump_failure",
        "Booster pump failing (health model)",
        "critical",
        3,
        "Your water purifier's pump is weakening; we will replace it.",
        "您的净水器增压泵性能下降，我们将为您更换。",
    ),
    (
        "air_conditioner",
        "refrigerant_leak",
        "refrigerant_leak",
        "Refrigerant leak suspected (health model)",
        "warning",
        2,
        "Your air conditioner seems to be losing refrigerant; we will check it.",
        "您的空调冷媒可能在泄漏，我们将上门检查。",
    ),
    (
        "air_conditioner",
        "condenser_fouling",
        "condenser_fouling",
        "Condenser fouling (health model)",
        "warning",
        2,
        "Your air conditioner's outdoor unit is running hot; it likely needs cleaning.",
        "您的空调外机散热不良，可能需要清洗。",
    ),
    (
        "air_conditioner",
        "compressor_degradation",
        "compressor_degradation",
        "Compressor wearing (health model)",
        "warning",
        2,
        "Your air conditioner's compressor is losing efficiency; we will check it.",
        "您的空调压缩机效率下降，我们将上门检查。",
    ),
    (
        "air_conditioner",
        "fan_bearing_wear",
        "fan_bearing_wear",
        "Indoor fan bearing wearing (health model)",
        "warning",
        2,
        "Your air conditioner's indoor fan is wearing; we will replace its motor.",
        "您的空调室内风机轴承磨损，我们将为您更换。",
    ),
    *[
        (
            device_type,
            "unknown",
            "inspection",
            "Behaving unlike itself (health model)",
            "info",
            0,
            f"Your {name} is behaving unusually; a technician will take a look.",
            f"您的{zh_name}运行状态异常，我们将安排工程师检查。",
        )
        for device_type, name, zh_name in (
            ("purifier", "air purifier", "空气净化器"),
            ("water_purifier", "water purifier", "净水器"),
            ("air_conditioner", "air conditioner", "空调"),
        )
    ],
]

# the health model's diagnoses: its score where it names the fault, 1 = its learned threshold
MODEL_ROWS: list[dict[str, Any]] = [
    {
        "id": f"{device_type}_{kind}_model",
        "device_type": device_type,
        "title": title,
        "severity": severity,
        "problem_kind": problem,
        "when": {"prediction": {"model": "anomaly", "output": kind, "above": 1, "clear": 0.8}},
        "work_order": {"open": "review", "priority": priority},
        "wording": {"en": en, "zh": zh},
    }
    for device_type, kind, problem, title, severity, priority, en, zh in _MODEL_DIAGNOSES
]

BUILTIN: tuple[Rule, ...] = tuple(Rule.model_validate(row) for row in MODEL_ROWS)
