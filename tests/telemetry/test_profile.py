"""Product profiles: a family described as data. A mistake is refused with its path in the
file and what to do; the shipped profiles round-trip; firmware selects the metric set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from telemetry.profile import (
    Profile,
    ProfileError,
    ProfileSet,
    dump_profile,
    parse_profile,
    profile_schema,
    shipped,
    shipped_documents,
)

KETTLE = """
name: kettle
version: 1
title: Smart kettle
models: [{code: K-1, name: Kettle one}]
metrics:
- {name: water_temp_c, unit: °C, kind: float, range: [0, 110]}
- {name: boil_cycles, kind: int, range: [0, 1000000], counter: true}
- {name: scale_index, kind: float, range: [0, 1]}
- {name: state, kind: enum, choices: [idle, heating, keep_warm]}
parts:
- {sku: K-FILTER, name: Scale filter}
consumables:
- stage: scale_filter
  name: Scale filter
  sku: K-FILTER
  rated: {cycles: 300, months: 3}
  drivers: [{unit: cycles, counter: boil_cycles}]
  signal: {metric: scale_index}
firmware:
- {version: '1.0'}
- {version: '1.4', adds: [scale_index]}
health_card:
- {metric: water_temp_c, label: {en: Water, zh: 水温}}
- {consumable: scale_filter, label: {en: Scale filter}}
"""


def doc(**change: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(KETTLE)
    for path, value in change.items():
        *parents, leaf = path.split("__")
        node: Any = data
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is DELETE:
            del node[int(leaf) if leaf.isdigit() else leaf]
        elif leaf.isdigit():
            node[int(leaf)] = value
        else:
            node[leaf] = value
    return data


DELETE = object()


def test_a_family_described_in_a_file_becomes_a_metric_table() -> None:
    kettle = Profile(parse_profile(KETTLE, "kettle.yaml"))
    table = kettle.device_type
    assert [m.name for m in table.metrics] == [
        "water_temp_c",
        "boil_cycles",
        "scale_index",
        "state",
    ]
    assert table.by_name["boil_cycles"].counter
    assert (table.by_name["water_temp_c"].minimum, table.by_name["water_temp_c"].maximum) == (
        0,
        110,
    )
    assert kettle.parts_for("filter_replacement_scale_filter") == ("K-FILTER",)
    assert kettle.chart_metrics() == ("water_temp_c",)


@pytest.mark.parametrize(
    ("change", "path", "why"),
    [
        ({"metrics__0__ranges": [0, 1]}, "metrics[0].ranges", "did you mean 'range'"),
        ({"version": DELETE}, "version", "required"),
        ({"version": 0}, "version", "greater than or equal to 1"),
        ({"name": "Kettle-2"}, "name", "should match pattern"),
        ({"metrics__0__range": DELETE}, "metrics[0].range", "needs range: [min, max]"),
        ({"metrics__0__range": [110, 0]}, "metrics[0].range", "minimum is above the maximum"),
        ({"metrics__3__choices": DELETE}, "metrics[3].choices", "needs choices"),
        ({"metrics__1__name": "water_temp_c"}, "metrics[1]", "declared twice"),
        ({"consumables__0__sku": "K-FILTR"}, "consumables[0].sku", "did you mean 'K-FILTER'"),
        (
            {"consumables__0__drivers__0__counter": "water_temp_c"},
            "consumables[0].drivers[0].counter",
            "not a counter: mark it counter: true",
        ),
        (
            {"consumables__0__drivers__0__counter": "cycles"},
            "consumables[0].drivers[0].counter",
            "not a metric of this profile",
        ),
        (
            {"consumables__0__rated": {"hours": 5}},
            "consumables[0].drivers[0].unit",
            "has no rated cycles",
        ),
        (
            {"consumables__0__drivers": []},
            "consumables[0].rated.cycles",
            "nothing measures cycles",
        ),
        ({"consumables__0__rated": {}}, "consumables[0].rated", "at least one of hours"),
        (
            {"consumables__0__drivers__0": {"unit": "cycles"}},
            "consumables[0].drivers[0]",
            "exactly one of `counter`, `running`, `integral`",
        ),
        ({"firmware": [{"version": "1.4"}, {"version": "1.0"}]}, "firmware", "oldest first"),
        ({"firmware__1__adds": ["scale"]}, "firmware[1].adds[0]", "not a metric"),
        ({"health_card__1__consumable": "filter"}, "health_card[1].consumable", "not a consumable"),
        ({"health_card__0__label": {"zh": "水温"}}, "health_card[0].label.en", "required"),
        ({"charts": ["state"]}, "charts[0]", "not a numeric metric"),
        ({"rules": [{"id": "r", "device_type": "purifier"}]}, "rules[0].device_type", "leave"),
        ({"models": []}, "models", "at least 1 item"),
    ],
)
def test_each_mistake_is_refused_with_its_path_and_what_to_do(
    change: dict[str, Any], path: str, why: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(doc(**change), "kettle.yaml")
    found = caught.value.problems
    assert any(p == path and why in msg for p, msg in found), found
    assert str(caught.value).startswith("kettle.yaml: ")


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    bad = doc(consumables__0__sku="NOPE", charts=["state"], health_card__0__metric="temp")
    with pytest.raises(ProfileError) as caught:
        parse_profile(bad, "kettle.yaml")
    assert len(caught.value.problems) == 3


def test_yaml_mistakes_say_where() -> None:
    with pytest.raises(ProfileError, match="line 2, column"):
        parse_profile("name: kettle\n  version: [1\n", "kettle.yaml")
    with pytest.raises(ProfileError, match="quote it"):
        parse_profile(KETTLE.replace("{name: scale_index,", "{off: 1, name: scale_index,"))
    with pytest.raises(ProfileError, match="a mapping of fields"):
        parse_profile("- just a list\n")


def test_firmware_selects_the_metrics_a_device_may_report() -> None:
    kettle = Profile(parse_profile(KETTLE))
    every = {"water_temp_c", "boil_cycles", "scale_index", "state"}
    assert kettle.metrics_for("1.0") == every - {"scale_index"}
    assert kettle.metrics_for("1.3.9") == every - {"scale_index"}
    assert kettle.metrics_for("1.4") == kettle.metrics_for("2.0") == every
    assert kettle.metrics_for(None) == kettle.metrics_for("beta-7") == every  # unknown: all
    assert kettle.release_of("scale_index") == "1.4" and kettle.release_of("state") is None
    later = Profile(
        parse_profile(doc(firmware=[*doc()["firmware"], {"version": "2.0", "removes": ["state"]}]))
    )
    assert "state" in later.metrics_for("1.9") and "state" not in later.metrics_for("2.0")


def test_every_shipped_profile_round_trips_through_its_yaml() -> None:
    for name, p in shipped().items():
        again = Profile(parse_profile(dump_profile(p.doc), name))
        assert again.checksum == p.checksum and again.doc == p.doc


def test_the_shipped_families_and_their_files() -> None:
    assert list(shipped()) == ["purifier", "water_purifier", "air_conditioner", "dehumidifier"]
    assert len(shipped_documents()) == 4
    dh = shipped()["dehumidifier"]
    assert dh.metrics_for("1.0") ^ dh.metrics_for("1.1") == {"tank_level_pct"}


def test_a_newer_version_overlays_an_older_one_and_never_the_reverse() -> None:
    v1 = Profile(parse_profile(KETTLE))
    v2 = Profile(parse_profile(doc(version=2, title="Kettle, second edition")))
    base = ProfileSet([v1])
    assert base.overlay([v2])["kettle"].version == 2
    assert ProfileSet([v2]).overlay([v1])["kettle"].version == 2
    assert base.overlay([v2]).fingerprint != base.fingerprint
    assert ProfileSet([v1]).fingerprint == base.fingerprint


def test_the_published_json_schema_is_the_committed_one() -> None:
    committed = Path(__file__).parents[2] / "docs" / "profile.schema.json"
    assert json.loads(committed.read_text()) == profile_schema(), (
        "run: fleetcare profiles schema -o docs/profile.schema.json"
    )
