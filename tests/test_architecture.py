"""Who may import whom: the rooms form layers with no cycle, and device_sim is a device.

telemetry                                     the device contract and the stores
device_sim ─▶ telemetry                        a device: it talks MQTT, nothing else
db ─▶ telemetry                                the database, its tables and migrations
fleet ─▶ db                                    devices, their state, credentials, commands
service ─▶ fleet                               the service loop around the work order
ingest ─▶ fleet                                MQTT in, store, dead letters, device state
models ─▶ fleet                                estimators, their scoring pass, evaluation
rules ─▶ models, service                       conditions, alerts, alerts → work orders
api ─▶ rules, ingest                           HTTP, accounts, the console
fleetcare ─▶ everything                        the composition root: settings, CLI, demo
bench ─▶ everything                            benchmarks (mounted on the CLI by entry point)
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
_BELOW_API = {"telemetry", "db", "fleet", "service", "ingest", "models", "rules"}
ALLOWED: dict[str, set[str]] = {
    "telemetry": set(),
    "device_sim": {"telemetry"},
    "db": {"telemetry"},
    "fleet": {"telemetry", "db"},
    "service": {"telemetry", "db", "fleet"},
    "ingest": {"telemetry", "db", "fleet"},
    "models": {"telemetry", "db", "fleet"},
    "rules": {"telemetry", "db", "fleet", "service", "models"},
    "api": set(_BELOW_API),
    "fleetcare": _BELOW_API | {"device_sim", "api"},  # the composition root
    "bench": _BELOW_API | {"device_sim", "api", "fleetcare"},
}
OURS = set(ALLOWED)
# The one sub-room with a rule of its own: measuring the models against a simulated
# fleet's ground truth drives the simulator; the estimators and scoring never do.
SUBROOMS = {"models/evaluation": ALLOWED["models"] | {"device_sim"}}


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


def allowed_for(module: str) -> set[str]:
    for sub, allowed in SUBROOMS.items():
        if module.startswith(sub + "/"):
            return allowed
    return ALLOWED[module.split("/", maxsplit=1)[0]]


def test_each_room_imports_only_what_the_architecture_allows() -> None:
    wrong = {
        module: sorted(used - allowed_for(module))
        for package in ALLOWED
        for module, used in imports_of(package).items()
        if used - allowed_for(module)
    }
    assert wrong == {}


def test_the_rooms_form_layers_without_a_cycle() -> None:
    def reaches(start: str, seen: set[str]) -> set[str]:
        for nxt in ALLOWED[start] - seen:
            seen.add(nxt)
            reaches(nxt, seen)
        return seen

    assert [room for room in ALLOWED if room in reaches(room, set())] == []


def test_every_room_is_a_package_the_project_installs_and_checks() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    rooms = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert rooms == OURS
    assert set(project["tool"]["mypy"]["packages"]) == OURS
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {pattern.rstrip("*") for pattern in include} == OURS
    # the image builds from the rooms it copies (no Docker engine here to build it)
    copied = {
        line.split()[1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
    }
    assert copied >= OURS | {"pyproject.toml"}
    assert "LICENSE" in (ROOT / "Dockerfile").read_text()  # the project's license-files


def test_the_simulator_needs_nothing_of_the_engine() -> None:
    used = set().union(*imports_of("device_sim").values())
    assert used <= {"telemetry"}


def test_nothing_outside_the_benchmarks_imports_them() -> None:
    users = {
        module
        for package in ALLOWED.keys() - {"bench"}
        for module, used in imports_of(package).items()
        if "bench" in used
    }
    assert users == set()


def module_graph(packages: set[str]) -> dict[str, set[str]]:
    """Which of our modules each module imports (lazily or not); `from pkg import mod`
    counts as an import of `mod`."""
    paths = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for package in packages
        for p in (ROOT / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = {f"{node.module}.{a.name}" for a in node.names} & paths.keys()
                deps |= subs
                if node.module in paths and len(subs) < len(node.names):
                    deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names} & paths.keys()
        graph[name] = deps - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_back_through_others() -> None:
    # device_sim's runner loads its multi-process publisher only when asked for more
    # than one process, and that publisher runs the runner's shards
    tolerated = [["device_sim.parallel", "device_sim.runner"]]
    assert [c for c in cycles(module_graph(OURS)) if c not in tolerated] == []


def test_the_architecture_page_maps_the_rooms_the_tree_has() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    table = page.split("## Rooms", 1)[1].split("\n\n", 2)[1]
    mapped = {row.split("`")[1].rstrip("/") for row in table.splitlines() if row.startswith("| `")}
    assert mapped == OURS
