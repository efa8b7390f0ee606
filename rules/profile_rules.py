"""The rules a product profile brings: those it declares, and those its data implies.

For every family: offline and silent for a day (no job: the customer is told to check the
Wi-Fi). For each fault code no declared rule already watches: an alert on the code, with
its customer wording, opening the job the code names. For a family without a health
model of its own, the general detector's alarm opens a job to review (`general_rule`).
For each consumable whose problem
no declared rule already covers: due by its counter (a counter the device restarts with
each new one, past its rated hours, litres or cycles), low by the life the device
reports, and predicted spent within two weeks (the filter-life model's output). A
profile's own rules come first and win on an id.
"""

from __future__ import annotations

from typing import Any

from telemetry.profile import Consumable, FaultCode, Profile, ProfileSet

PREDICTED_DAYS = 14  # a job this long before a consumable is predicted spent


def _covered(rows: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """Fault codes and problem kinds the declared rules already watch."""
    codes: set[str] = set()
    problems: set[str] = set()

    def walk(cond: Any) -> None:
        if not isinstance(cond, dict):
            return
        event = cond.get("event")
        if isinstance(event, dict):
            codes.update(str(c) for c in event.get("codes") or ())
        for key in ("all", "any"):
            for child in cond.get(key) or ():
                walk(child)

    for row in rows:
        walk(row.get("when"))
        if row.get("problem_kind"):
            problems.add(str(row["problem_kind"]))
    return codes, problems


def _code_rule(profile: Profile, f: FaultCode) -> dict[str, Any]:
    return {
        "id": f.rule_id
        or f"{profile.name}_code_{f.code.lower().replace('-', '_').replace('.', '_')}",
        "device_type": profile.name,
        "title": f.title,
        "severity": f.severity,
        "problem_kind": f.problem_kind,
        "when": {"event": {"codes": [f.code], "within": f.within}},
        "cooldown": f.cooldown,
        "work_order": {"open": f.open, "priority": 3 if f.severity == "critical" else 2},
        "wording": f.wording.as_dict(),
    }


def _consumable_rules(profile: Profile, c: Consumable) -> list[dict[str, Any]]:
    title = profile.doc.title.lower()
    wording = (
        c.wording.as_dict()
        if c.wording
        else {"en": f"Your {title}'s {c.name.lower()} is due for replacement."}
    )
    base = {"device_type": profile.name, "problem_kind": c.problem}
    out: list[dict[str, Any]] = []
    rated = c.rated.given()
    for d in c.drivers:
        if d.counter is not None and d.resets and d.unit in rated:
            out.append(
                {
                    **base,
                    "id": f"{profile.name}_{c.stage}_due",
                    "title": f"{c.name} due ({rated[d.unit]:g} {d.unit} used)",
                    "severity": "warning",
                    # the counter restarts with a new one: clear well below the line
                    "when": {
                        "threshold": {
                            "metric": d.counter,
                            "above": rated[d.unit],
                            "clear": rated[d.unit] * 0.05,
                        }
                    },
                    "work_order": {"open": "review", "priority": 1},
                    "wording": wording,
                }
            )
            break
    if c.reported_life is not None:
        out.append(
            {
                **base,
                "id": f"{profile.name}_{c.stage}_low",
                "title": f"{c.name} nearly spent",
                "severity": "warning",
                "when": {"threshold": {"metric": c.reported_life, "below": 10, "clear": 50}},
                "work_order": {"open": "review", "priority": 1},
                "wording": wording,
            }
        )
    out.append(
        {
            **base,
            "id": f"{profile.name}_{c.stage}_predicted",
            "title": f"{c.name} predicted spent within two weeks",
            "severity": "info",
            "when": {
                "prediction": {
                    "model": "filter_life",
                    "output": f"days_to_exhaustion_{c.stage}",
                    "below": PREDICTED_DAYS,
                    "clear": 2 * PREDICTED_DAYS,
                }
            },
            "work_order": {"open": "review", "priority": 1},
            "wording": wording,
        }
    )
    return out


def connectivity_rules(profile: Profile) -> list[dict[str, Any]]:
    """Offline and silent for a day: the customer checks the Wi-Fi, nobody drives out."""
    return [
        {
            "id": f"{profile.name}_offline",
            "device_type": profile.name,
            "title": "Offline for more than a day",
            "severity": "info",
            "problem_kind": "connectivity",
            "when": {"offline": {"for": "24h"}},
            "work_order": {"open": "none"},
            "wording": {
                "en": "Your appliance has been offline for a day: check its Wi-Fi.",
                "zh": "您的设备已离线超过一天，请检查网络连接。",
            },
        },
        {
            "id": f"{profile.name}_silent",
            "device_type": profile.name,
            "title": "No telemetry for more than a day",
            "severity": "info",
            "problem_kind": "connectivity",
            "when": {"absent": {"for": "24h"}},
            "work_order": {"open": "none"},
            "wording": {
                "en": "We have not heard from your appliance for a day.",
                "zh": "您的设备已超过一天未上报数据。",
            },
        },
    ]


def general_rule(profile: Profile) -> dict[str, Any]:
    """For a family without a health model of its own: the general detector's alarm (its
    own data alone, `models.general_scoring`) opens a job for ops to review, with the
    metric that raised it (and the fault its namer thinks likely) in the evidence. The
    id is the one `models.general_scoring.RULE_ID` looks for: a verdict on this rule's
    job teaches the family's fault namer."""
    return {
        "id": f"{profile.name}_unusual",
        "device_type": profile.name,
        "title": "Unusual behaviour in its own data",
        "severity": "warning",
        "problem_kind": "inspection",
        "when": {
            "prediction": {"model": "general", "output": "score", "above": 0.5, "clear": 0.25}
        },
        "work_order": {"open": "review", "priority": 1},
        "wording": {
            "en": "Your appliance is behaving unusually; we are checking whether it needs a visit.",
            "zh": "您的设备运行数据异常，我们正在确认是否需要上门检查。",
        },
    }


def profile_rules(profile: Profile) -> list[tuple[str, dict[str, Any]]]:
    """(where it comes from, rule row) for the profile's declared and implied rules,
    without the connectivity rules (`connectivity_rules`)."""
    declared = [{**r, "device_type": profile.name} for r in profile.doc.rules]
    codes, problems = _covered(declared)
    out = [(f"rules[{i}]", row) for i, row in enumerate(declared)]
    for i, f in enumerate(profile.doc.fault_codes):
        if f.code not in codes:
            out.append((f"fault_codes[{i}]", _code_rule(profile, f)))
    for i, c in enumerate(profile.doc.consumables):
        if c.problem not in problems:
            out += [(f"consumables[{i}]", row) for row in _consumable_rules(profile, c)]
    return out


def check_profile_rules(profile: Profile, profiles: ProfileSet) -> list[tuple[str, str]]:
    """What is wrong with the rules `profile` brings, as (path in the file, why), checked
    in `profiles` (which should hold `profile`)."""
    from pydantic import ValidationError

    from rules.spec import Rule

    problems: list[tuple[str, str]] = []
    context = {"profiles": profiles}
    for where, row in [
        *profile_rules(profile),
        *(("connectivity", r) for r in connectivity_rules(profile)),
        ("general detector", general_rule(profile)),
    ]:
        try:
            Rule.model_validate(row, context=context)
        except ValidationError as e:
            for err in e.errors():
                path = ".".join(str(p) for p in err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                rule = row.get("id", "?")
                problems.append((f"{where}{'.' + path if path else ''}", f"rule {rule}: {msg}"))
    return problems
