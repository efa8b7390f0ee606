"""The rule catalog: built-in rules (`rules.builtin`) plus user rules from YAML files.

A bad rule is reported with its file, line and reason, and skipped; the other rules of
the file, and of the other files, still load. A user rule with a built-in's id replaces
that built-in (to retune it); `enabled: false` switches one off.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rules.builtin import BUILTIN
from rules.spec import Rule


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


def load_catalog(files: Iterable[Path] = (), *, builtin: bool = True) -> Catalog:
    catalog = Catalog()
    if builtin:
        for rule in BUILTIN:
            catalog.rules[rule.id] = rule
            catalog.sources[rule.id] = "builtin"
    for path in files:
        rules, errors = read_rules(path)
        catalog.errors += errors
        seen_here: set[str] = set()
        for line, rule in rules:
            if rule.id in seen_here:
                catalog.errors.append(
                    RuleError(str(path), line, rule.id, "this id is used twice in the file")
                )
                continue
            earlier = catalog.sources.get(rule.id)
            if earlier not in (None, "builtin"):
                catalog.errors.append(
                    RuleError(str(path), line, rule.id, f"this id is already defined in {earlier}")
                )
                continue
            seen_here.add(rule.id)
            catalog.rules[rule.id] = rule
            catalog.sources[rule.id] = f"{path}:{line}"
    return catalog


def read_rules(path: Path) -> tuple[list[tuple[int, Rule]], list[RuleError]]:
    """The valid rules of one file with their lines, and an error for each bad one."""
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
            good.append((line, Rule.model_validate(raw)))
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
