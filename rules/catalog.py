"""The rule catalog: the product profiles' rules (`rules.profile_rules`), the health
model's diagnoses (`rules.builtin`), and user rules from YAML files.

Every rule is checked against its device type's profile in the set the catalog is built
for: a rule naming a metric, consumable or fault code its profile lacks is refused. A bad
rule is reported with its file (or profile), line and reason, and skipped; the others
still load. A user rule with a built-in's or a profile's id replaces it (to retune it);
`enabled: false` switches one off.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rules.builtin import MODEL_ROWS
from rules.profile_rules import connectivity_rules, general_rule, profile_rules
from rules.spec import Rule
from telemetry.profile import ProfileSet, shipped


@dataclass(frozen=True, slots=True)
class RuleError:
    file: str
    line: int
    rule_id: str | None
    reason: str

    def __str__(self) -> str:
        what = f" rule {self.rule_id}" if self.rule_id else ""
        return f"{self.file}:{self.line}:{what} {self.reason}"


@dataclass
class Catalog:
    rules: dict[str, Rule] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # rule id -> "builtin" or file
    errors: list[RuleError] = field(default_factory=list)

    def enabled(self, device_type: str | None = None) -> list[Rule]:
        return [
            r
            for r in self.rules.values()
            if r.enabled and (device_type is None or r.device_type == device_type)
        ]

    def get(self, rule_id: str) -> Rule:
        return self.rules[rule_id]


def load_catalog(
    files: Iterable[Path] = (), *, builtin: bool = True, profiles: ProfileSet | None = None
) -> Catalog:
    """The catalog for `profiles` (default: the shipped ones)."""
    profiles = profiles if profiles is not None else shipped()
    context = {"profiles": profiles}
    catalog = Catalog()

    def add(source: str, where: str, row: dict[str, Any]) -> None:
        try:
            rule = Rule.model_validate(row, context=context)
        except ValidationError as e:
            for err in e.errors():
                path = ".".join(str(p) for p in err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                catalog.errors.append(
                    RuleError(
                        source,
                        0,
                        row.get("id"),
                        f"{where}: {path}: {msg}" if path else f"{where}: {msg}",
                    )
                )
            return
        catalog.rules[rule.id] = rule
        catalog.sources[rule.id] = source

    if builtin:
        for profile in profiles.values():
            for where, row in profile_rules(profile):
                add(f"profile {profile.label}", where, row)
        for row in MODEL_ROWS:
            if row["device_type"] in profiles:
                add("builtin", "health model", row)
        physics = {row["device_type"] for row in MODEL_ROWS}  # judged by the health model
        for profile in profiles.values():
            if profile.name not in physics:
                add(f"profile {profile.label}", "general detector", general_rule(profile))
        for kind in (0, 1):  # every family's offline rule, then every one's silent rule
            for profile in profiles.values():
                add(f"profile {profile.label}", "connectivity", connectivity_rules(profile)[kind])
    for path in files:
        rules, errors = read_rules(path, profiles)
        catalog.errors += errors
        seen_here: set[str] = set()
        for line, rule in rules:
            if rule.id in seen_here:
                catalog.errors.append(
                    RuleError(str(path), line, rule.id, "this id is used twice in the file")
                )
                continue
            earlier = catalog.sources.get(rule.id)
            if earlier is not None and earlier != "builtin" and not earlier.startswith("profile "):
                catalog.errors.append(
                    RuleError(str(path), line, rule.id, f"this id is already defined in {earlier}")
                )
                continue
            seen_here.add(rule.id)
            catalog.rules[rule.id] = rule
            catalog.sources[rule.id] = f"{path}:{line}"
    return catalog


def read_rules(
    path: Path, profiles: ProfileSet | None = None
) -> tuple[list[tuple[int, Rule]], list[RuleError]]:
    """The valid rules of one file with their lines, and an error for each bad one."""
    context = {"profiles": profiles if profiles is not None else shipped()}
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        return [], [RuleError(name, 0, None, f"cannot read it: {e.strerror}")]
    except UnicodeDecodeError:
        return [], [RuleError(name, 0, None, "not UTF-8 text")]
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        return [], [RuleError(name, line, None, f"not valid YAML: {getattr(e, 'problem', e)}")]
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        return [], [RuleError(name, 1, None, "a rule file is a mapping with a `rules:` list")]
    items = _child(root, "rules")
    good: list[tuple[int, Rule]] = []
    errors: list[RuleError] = []
    for i, raw in enumerate(doc["rules"]):
        node = items.value[i] if items is not None else None
        line = node.start_mark.line + 1 if node is not None else 0
        rule_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            good.append((line, Rule.model_validate(raw, context=context)))
        except ValidationError as e:
            for err in e.errors():
                where = _line_at(node, err["loc"]) or line
                field_path = ".".join(str(p) for p in err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                errors.append(
                    RuleError(name, where, rule_id, f"{field_path}: {msg}" if field_path else msg)
                )
    return good, errors


def _child(node: Any, key: Any) -> Any:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == str(key):
                return v
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        return node.value[key]
    return None


def _line_at(node: Any, loc: Sequence[Any]) -> int | None:
    """The line of the deepest node along a pydantic error location."""
    best = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        node = _child(node, part if not isinstance(part, str) or part != "for_" else "for")
        if node is None:
            break
        best = node.start_mark.line + 1
    return best
