"""Who may import whom (../shared/ARCHITECTURE.md): no cycles, device_sim is a device."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
OURS = {
    "telemetry",
    "device_sim",
    "ingest",
    "models",
    "rules",
    "workorders",
    "api",
    "fleetcare",
    "bench",
}
ALLOWED = {
    "telemetry": set(),
    "device_sim": {"telemetry"},
    "ingest": {"telemetry", "workorders"},
    "models": {"telemetry"},
    "rules": {"telemetry", "models", "workorders"},
    "workorders": {"telemetry"},
    "api": OURS - {"api", "fleetcare", "bench"},
    "fleetcare": OURS - {"fleetcare", "bench"},
    "bench": OURS - {"bench"},
}


def imports_of(package: str) -> dict[str, set[str]]:
    """Our top-level packages each module of `package` imports, by module path."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = (names & OURS) - {package}
    return found


# The deliberate exceptions: the CLI offers `fleetcare bench ...` and the simulated-fleet
# `fleetcare train|evaluate --sim`, importing bench lazily inside those commands (bench
# itself uses fleetcare's broker launcher).
EXCEPTIONS = {"fleetcare/cli.py": {"bench"}, "fleetcare/cli_models.py": {"bench"}}


def test_each_room_imports_only_what_the_architecture_allows() -> None:
    wrong = {
        module: sorted(used - ALLOWED[package] - EXCEPTIONS.get(module, set()))
        for package in ALLOWED
        if (ROOT / package).is_dir()
        for module, used in imports_of(package).items()
        if used - ALLOWED[package] - EXCEPTIONS.get(module, set())
    }
    assert wrong == {}


def test_the_simulator_needs_nothing_of_the_engine() -> None:
    used = set().union(*imports_of("device_sim").values())
    assert used <= {"telemetry"}
