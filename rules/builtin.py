"""Built-in rules: one row per problem the three device types are known to have.

Rows, not code: each is validated by `rules.spec.Rule` like a user's YAML rule, and a
user rule with the same id retunes it. The thresholds come from the physics the
simulator models (docs/simulator.md) and the appliances' own protections (the air
conditioner's P1/E6/E4 codes).
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

_ROWS: list[dict[str, Any]] = [
    # -- air purifier ----------------------------------------------------------------
    {
        "id": "purifier_filter_low",
        "device_type": "purifier",
        "title": "Filter nearly spent",
        "severity": "warning",
        "problem_kind": "filter_replacement",
        "when": {"threshold": {"metric": "filter_life_pct", "below": 10, "clear": 50}},
        "work_order": {"open": "review", "priority": 1},
        "wording": {
            "en": "Your air purifier's filter is nearly used up; we will bring a new one.",
            "zh": "您的空气净化器滤芯即将用尽，我们将为您更换新滤芯。",
        },
    },
    {
        "id": "purifier_filter_exhausted",
        "device_type": "purifier",
        "title": "Filter spent",
        "severity": "critical",
        "problem_kind": "filter_replacement",
        "when": {"threshold": {"metric": "filter_life_pct", "below": 1, "clear": 50}},
        "work_order": {"open": "auto", "priority": 3},
        "wording": {
            "en": "Your air purifier's filter is used up and no longer cleans the air well.",
            "zh": "您的空气净化器滤芯已用尽，净化效果明显下降。",
        },
    },
    {
        "id": "purifier_filter_predicted",
        "device_type": "purifier",
        "title": "Filter predicted spent within two weeks",
        "severity": "info",
        "problem_kind": "filter_replacement",
        "when": {
            "prediction": {
                "model": "filter_life",
                "output": "days_to_exhaustion_main",
                "below": 14,
                "clear": 30,
            }
        },
        "work_order": {"open": "review", "priority": 1},
        "wording": {
            "en": "Your air purifier's filter will be used up in about two weeks.",
            "zh": "您的空气净化器滤芯预计两周内用尽。",
        },
    },
    {
        "id": "purifier_motor_wear",
        "device_type": "purifier",
        "title": "Fan motor drawing too much current",
        "severity": "warning",
        "problem_kind": "motor_wear",
        "when": {
            "ratio": {
                "numerator": "motor_current_ma",
                "denominator": "fan_rpm",
                "over": "6h",
                # mA per rpm: 0.23-0.27 with a clean filter by fan level, up to 0.34 with
                # a full one at level 4; a worn bearing adds up to 60 %
                "above": 0.345,
                "clear": 0.31,
            }
        },
        "for": "6h",
        "work_order": {"open": "review", "priority": 2},
        "wording": {
            "en": "Your air purifier's fan motor is working harder than it should.",
            "zh": "您的空气净化器风机电流偏高，可能存在磨损。",
        },
    },
    {
        "id": "purifier_pm_sensor_stuck",
        "device_type": "purifier",
        "title": "PM2.5 sensor stuck",
        "severity": "warning",
        "problem_kind": "sensor_fault",
        "when": {
            "all": [
                # a whole day on one value: clean air still moves with cooking and traffic
                {"threshold": {"metric": "pm25", "over": "24h", "agg": "spread", "below": 0.01}},
                {"threshold": {"metric": "pm25", "over": "24h", "agg": "count", "above": 50}},
            ]
        },
        "cooldown": "1d",
        "work_order": {"open": "review", "priority": 1},
        "wording": {
            "en": "Your air purifier's air-quality sensor seems stuck; we will check it.",
            "zh": "您的空气净化器空气质量传感器读数异常，我们将为您检查。",
        },
    },
    {
        "id": "purifier_pm_sensor_drift",
        "device_type": "purifier",
        "title": "PM2.5 sensor drifting",
        "severity": "warning",
        "problem_kind": "sensor_fault",
        # the health model's score where it names this fault, scaled so that 1 is the
        # model's learned threshold (docs/models.md)
        "when": {
            "prediction": {
                "model": "anomaly",
                "output": "pm_sensor_drift",
                "above": 1,
                "clear": 0.8,
            }
        },
        "work_order": {"open": "review", "priority": 1},
        "wording": {
            "en": "Your air purifier's air-quality sensor reads higher than it should.",
            "zh": "您的空气净化器空气质量传感器读数偏高。",
        },
    },
    # -- water purifier --------------------------------------------------------------
    *[
        {
            "id": f"water_filter_{stage}_low",
            "device_type": "water_purifier",
            "title": f"{label} filter nearly spent",
            "severity": "warning",
            "problem_kind": f"filter_replacement_{stage}",
            "when": {"threshold": {"metric": f"filter_life_{stage}_pct", "below": 10, "clear": 50}},
            "work_order": {"open": "review", "priority": 1},
            "wording": {
                "en": f"Your water purifier's {label.lower()} filter is nearly used up.",
                "zh": f"您的净水器{zh}滤芯即将用尽。",
            },
        }
        for stage, label, zh in (
            ("sediment", "Sediment", "PP棉"),
            ("carbon", "Carbon", "活性炭"),
            ("ro", "RO", "RO膜"),
        )
    ],
    *[
        {
            "id": f"water_filter_{stage}_predicted",
            "device_type": "water_purifier",
            "title": f"{label} filter predicted spent within two weeks",
            "severity": "info",
            "problem_kind": f"filter_replacement_{stage}",
            "when": {
                "prediction": {
                    "model": "filter_life",
                    "output": f"days_to_exhaustion_{stage}",
                    "below": 14,
                    "clear": 30,
                }
            },
            "work_order": {"open": "review", "priority": 1},
            "wording": {
                "en": f"Your water purifier's {label.lower()} filter will be used up in about "
                "two weeks.",
                "zh": f"您的净水器{zh}滤芯预计两周内用尽。",
            },
        }
        for stage, label, zh in (
            ("sediment", "Sediment", "PP棉"),
            ("carbon", "Carbon", "活性炭"),
            ("ro", "RO", "RO膜"),
        )
    ],
    {
        "id": "water_ro_membrane_failure",
        "device_type": "water_purifier",
        "title": "RO membrane failing: salt passes",
        "severity": "critical",
        "problem_kind": "ro_membrane_failure",
        "when": {
            "ratio": {
                "numerator": "tds_out_ppm",
                "denominator": "tds_in_ppm",
                "over": "2h",
                "above": 0.25,
                "clear": 0.15,
            }
        },
        "for": "1h",
        "work_order": {"open": "auto", "priority": 3},
        "wording": {
            "en": "Your water purifier is no longer removing enough salts; do not drink "
            "the water until we have checked it.",
            "zh": "您的净水器脱盐率明显下降，请暂停饮用，我们将尽快上门检查。",
        },
    },
    {
        "id": "water_pump_failure",
        "device_type": "water_purifier",
        "title": "Booster pump failing",
        "severity": "critical",
        "problem_kind": "pump_failure",
        "when": {
            "threshold": {
                "metric": "pressure_kpa",
                "over": "2h",
                "agg": "max",
                "below": 420,
                "clear": 500,
            }
        },
        "for": "1h",
        "work_order": {"open": "auto", "priority": 3},
        "wording": {
            "en": "Your water purifier's pump is weakening; we will replace it.",
            "zh": "您的净水器增压泵性能下降，我们将为您更换。",
        },
    },
    {
        "id": "water_leak",
        "device_type": "water_purifier",
        "title": "Water leak under the unit",
        "severity": "critical",
        "problem_kind": "leak",
        "when": {"threshold": {"metric": "leak", "above": 0.5}},
        "work_order": {"open": "auto", "priority": 5},
        "wording": {
            "en": "Water is leaking under your water purifier: close the inlet valve; "
            "a technician is on the way.",
            "zh": "检测到净水器漏水，请关闭进水阀，工程师将尽快上门。",
        },
    },
    # -- air conditioner -------------------------------------------------------------
    {
        "id": "ac_filter_due",
        "device_type": "air_conditioner",
        "title": "Filter due for cleaning",
        "severity": "info",
        "problem_kind": "filter_replacement",
        "when": {"threshold": {"metric": "filter_used_hours", "above": 1000, "clear": 10}},
        "work_order": {"open": "review", "priority": 0},
        "wording": {
            "en": "Your air conditioner's filter is due for cleaning.",
            "zh": "您的空调滤网需要清洗了。",
        },
    },
    {
        "id": "ac_refrigerant_leak",
        "device_type": "air_conditioner",
        "title": "Refrigerant leak suspected (E6)",
        "severity": "critical",
        "problem_kind": "refrigerant_leak",
        "when": {"event": {"codes": ["E6"], "within": "2d"}},
        "cooldown": "1d",
        "work_order": {"open": "auto", "priority": 3},
        "wording": {
            "en": "Your air conditioner may be losing refrigerant; we will check it.",
            "zh": "您的空调可能存在冷媒泄漏，我们将上门检查。",
        },
    },
    {
        "id": "ac_refrigerant_leak_trend",
        "device_type": "air_conditioner",
        "title": "Refrigerant leak suspected: suction pressure falling",
        "severity": "warning",
        "problem_kind": "refrigerant_leak",
        # a slow leak lowers the suction pressure day after day, long before the unit's
        # own E6 protection trips; weather moves it far less (kPa per hour, over 4 days,
        # only while cooling: a cold indoor coil; heating reads the outdoor coil)
        "when": {
            "trend": {
                "metric": "suction_pressure_kpa",
                "window": "4d",
                "while": [
                    {"metric": "compressor_hz", "above": 0},
                    {"metric": "coil_temp_c", "below": 18},
                ],
                "below": -0.18,
                "clear": -0.08,
            }
        },
        "requires": {
            "threshold": {
                "metric": "suction_pressure_kpa",
                "over": "4d",
                "agg": "count",
                "while": [
                    {"metric": "compressor_hz", "above": 0},
                    {"metric": "coil_temp_c", "below": 18},
                ],
                "above": 30,
            }
        },
        "for": "2d",
        "cooldown": "1d",
        "work_order": {"open": "review", "priority": 2},
        "wording": {
            "en": "Your air conditioner seems to be slowly losing refrigerant; we will "
            "check it before it stops cooling.",
            "zh": "您的空调冷媒可能在缓慢泄漏，我们将在制冷失效前上门检查。",
        },
    },
    {
        "id": "ac_high_pressure",
        "device_type": "air_conditioner",
        "title": "High discharge pressure protection (P1)",
        "severity": "warning",
        "problem_kind": "condenser_fouling",
        "when": {"event": {"codes": ["P1"], "within": "2d"}},
        "cooldown": "1d",
        "work_order": {"open": "review", "priority": 2},
        "wording": {
            "en": "Your air conditioner's outdoor unit is overheating; it likely needs cleaning.",
            "zh": "您的空调外机散热不良，可能需要清洗。",
        },
    },
    {
        "id": "ac_fan_fault",
        "device_type": "air_conditioner",
        "title": "Indoor fan speed abnormal (E4)",
        "severity": "warning",
        "problem_kind": "fan_bearing_wear",
        "when": {"event": {"codes": ["E4"], "within": "2d"}},
        "cooldown": "1d",
        "work_order": {"open": "review", "priority": 2},
        "wording": {
            "en": "Your air conditioner's indoor fan is not turning as it should.",
            "zh": "您的空调室内风机转速异常。",
        },
    },
    {
        "id": "ac_fan_slow",
        "device_type": "air_conditioner",
        "title": "Indoor fan turning slower than set",
        "severity": "warning",
        "problem_kind": "fan_bearing_wear",
        # the fastest it ran in 12 h: a worn bearing drags it down
        "when": {
            "threshold": {
                "metric": "indoor_fan_rpm",
                "over": "12h",
                "agg": "max",
                "below": 1060,
                "clear": 1090,
            }
        },
        # judged only if it ran at all (a fan that was off says nothing)
        "requires": {
            "threshold": {"metric": "indoor_fan_rpm", "over": "12h", "agg": "max", "above": 500}
        },
        "cooldown": "1d",
        "work_order": {"open": "review", "priority": 2},
        "wording": {
            "en": "Your air conditioner's indoor fan is slowing down; its bearing may be worn.",
            "zh": "您的空调室内风机转速下降，轴承可能磨损。",
        },
    },
    # -- the health model's diagnoses ---------------------------------------------------
    *[
        {
            "id": f"{device_type}_{kind}_model",
            "device_type": device_type,
            "title": title,
            "severity": severity,
            "problem_kind": problem,
            # its score where it names this fault: 1 is the learned threshold
            "when": {"prediction": {"model": "anomaly", "output": kind, "above": 1, "clear": 0.8}},
            "work_order": {"open": "review", "priority": priority},
            "wording": {"en": en, "zh": zh},
        }
        for device_type, kind, problem, title, severity, priority, en, zh in _MODEL_DIAGNOSES
    ],
    # -- every device ----------------------------------------------------------------
    *[
        {
            "id": f"{device_type}_offline",
            "device_type": device_type,
            "title": "Offline for more than a day",
            "severity": "info",
            "problem_kind": "connectivity",
            "when": {"offline": {"for": "24h"}},
            "work_order": {"open": "none"},
            "wording": {
                "en": "Your appliance has been offline for a day: check its Wi-Fi.",
                "zh": "您的设备已离线超过一天，请检查网络连接。",
            },
        }
        for device_type in ("purifier", "water_purifier", "air_conditioner")
    ],
    *[
        {
            "id": f"{device_type}_silent",
            "device_type": device_type,
            "title": "No telemetry for more than a day",
            "severity": "info",
            "problem_kind": "connectivity",
            "when": {"absent": {"for": "24h"}},
            "work_order": {"open": "none"},
            "wording": {
                "en": "We have not heard from your appliance for a day.",
                "zh": "您的设备已超过一天未上报数据。",
            },
        }
        for device_type in ("purifier", "water_purifier", "air_conditioner")
    ],
]

BUILTIN: tuple[Rule, ...] = tuple(Rule.model_validate(row) for row in _ROWS)
