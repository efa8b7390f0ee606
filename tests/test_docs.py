"""What the docs show works: the profile a maker is walked through is valid, rules and all."""

from __future__ import annotations

import re
from pathlib import Path

from rules.profile_rules import check_profile_rules
from telemetry.profile import Profile, parse_profile, shipped

DOCS = Path(__file__).parents[1] / "docs"


def yaml_files(page: str) -> dict[str, str]:
    """The YAML blocks of a page that start with `# file: NAME`."""
    text = (DOCS / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    return {
        b.split("\n", 1)[0].removeprefix("# file: "): b for b in blocks if b.startswith("# file:")
    }


def test_the_profile_the_onboarding_page_walks_through_is_valid() -> None:
    [(name, text)] = yaml_files("profiles.md").items()
    profile = Profile(parse_profile(text, name))
    assert check_profile_rules(profile, shipped().overlay([profile])) == []
    assert profile.name == "water_heater" and profile.parts_for("anode_replacement")
