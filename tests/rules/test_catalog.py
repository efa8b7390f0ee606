"""Rules as data: the schema refuses what cannot work, a bad rule file names file, line
and reason, and the other rules still load."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rules.catalog import load_catalog
from rules.spec import Rule, parse_duration


def rule(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "r1",
        "device_type": "purifier",
        "title": "PM high",
        "problem_kind": "air_quality",
        "when": {"threshold": {"metric": "pm25", "above": 75, "clear": 50}},
    }
    return {**base, **over}


def test_durations_read_like_prometheus() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    with pytest.raises(ValueError, match="like 45s"):
        parse_duration("ten minutes")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"device_type": "toaster"}, "unknown device_type 'toaster'"),
        ({"when": {"threshold": {"metric": "tds", "above": 1}}}, "purifier v1 has no metric tds"),
        (
            {
                "when": {
                    "prediction": {
                        "model": "filter_life",
                        "output": "days_to_exhaustion_ro",
                        "below": 9,
                    }
                }
            },
            "purifier v1 has no consumable 'ro'",
        ),
        (
            {"device_type": "air_conditioner", "when": {"event": {"codes": ["E9"]}}},
            "air_conditioner v1 has no fault code E9; it has E4, E6, P1",
        ),
        ({"when": {"threshold": {"metric": "pm25", "above": 1, "below": 0}}}, "exactly one"),
        ({"when": {"threshold": {"metric": "pm25", "above": 50, "clear": 60}}}, "at or below"),
        ({"when": {"threshold": {"metric": "pm25", "above": 5, "agg": "mean"}}}, "needs a window"),
        ({"when": {}}, "exactly one of threshold"),
        ({"when": {"all": []}}, "at least one"),
        ({"problem_kind": None}, "needs a `problem_kind`"),
        ({"for": "soon"}, "not a duration"),
        ({"severity": "meh"}, "severity"),
        ({"surprise": 1}, "Extra inputs"),
    ],
)
def test_a_rule_that_cannot_work_is_refused_with_the_reason(
    change: dict[str, Any], why: str
) -> None:
    with pytest.raises(ValidationError, match=why):
        Rule.model_validate(rule(**change))


def test_the_shipped_rules_cover_every_shipped_family_in_english_and_chinese() -> None:
    shipped = load_catalog()
    rules = list(shipped.rules.values())
    assert shipped.errors == []
    assert {r.device_type for r in rules} == {
        "purifier",
        "water_purifier",
        "air_conditioner",
        "dehumidifier",
    }
    assert all(r.wording.get("en") and r.wording.get("zh") for r in rules)
    per_message = {r.id for r in rules if r.per_message}
    assert "water_leak" in per_message and "purifier_motor_wear" not in per_message


BAD_FILE = """\
rules:
  - id: good_one
    device_type: purifier
    title: PM high
    problem_kind: air_quality
    when:
      threshold: {metric: pm25, above: 75, clear: 50}
  - id: bad_metric
    device_type: purifier
    title: Typo
    problem_kind: air_quality
    when:
      threshold:
        metric: pm_25
        above: 75
  - id: bad_duration
    device_type: water_purifier
    title: Slow
    problem_kind: pump_failure
    for: a while
    when:
      threshold: {metric: pressure_kpa, below: 400}
"""


def test_a_bad_rule_names_file_and_line_and_the_rest_still_load(tmp_path: Path) -> None:
    f = tmp_path / "team.yaml"
    f.write_text(BAD_FILE)
    catalog = load_catalog([f])
    assert "good_one" in catalog.rules and catalog.sources["good_one"] == f"{f}:2"
    messages = [str(e) for e in catalog.errors]
    assert any(m.startswith(f"{f}:8: rule bad_metric") and "no metric pm_25" in m for m in messages)
    assert any(m.startswith(f"{f}:20: rule bad_duration") and "duration" in m for m in messages)
    assert len(catalog.rules) == len(load_catalog().rules) + 1


def test_files_that_are_not_rule_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - id: x\n    when: [unclosed\n")
    listless = tmp_path / "listless.yaml"
    listless.write_text("rule: {}\n")
    missing = tmp_path / "missing.yaml"
    catalog = load_catalog([broken, listless, missing], builtin=False)
    text = "\n".join(str(e) for e in catalog.errors)
    assert f"{broken}:" in text and "not valid YAML" in text
    assert f"{listless}:1:" in text and "`rules:` list" in text
    assert f"{missing}:0:" in text and "cannot read" in text
    assert catalog.rules == {}


def test_a_user_rule_retunes_a_built_in_and_ids_are_unique(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    retuned = rule(id="purifier_filter_low", problem_kind="filter_replacement")
    retuned["when"] = {"threshold": {"metric": "filter_life_pct", "below": 20, "clear": 50}}
    import yaml

    a.write_text(yaml.safe_dump({"rules": [retuned, rule(id="mine"), rule(id="mine")]}))
    b.write_text(yaml.safe_dump({"rules": [rule(id="mine")]}))
    catalog = load_catalog([a, b])
    assert catalog.get("purifier_filter_low").when.body.below == 20
    reasons = [e.reason for e in catalog.errors]
    assert len(reasons) == 2
    assert "this id is used twice in the file" in reasons
    assert any(r.startswith(f"this id is already defined in {a}:") for r in reasons)
