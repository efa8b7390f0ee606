"""Product profiles: a product family described as data, not code (docs/profiles.md).

One YAML file per family; its `name` is the device type in topics. It says which models
the family covers, the metrics they report (unit, kind, physical range, cadence), their
events and fault codes with the customers' wording, the consumables (stages, part SKUs,
rated life, what wears them), known relations between metrics, firmware releases and
the metrics each adds, the app's health card, and rules. Payload validation, the JSON
Schema devices are built against, the stores' columns, the rules, the parts catalogue,
the health card and the simulator all derive from the profiles the engine knows: a
`ProfileSet`.

A file is checked twice: its shape against `profile_schema()` (the JSON Schema the engine
publishes), then its names against each other (a driver's counter must be a metric, a
consumable's SKU a part...). Every mistake is reported with its path in the file and
what to do, all at once (`ProfileError`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from telemetry.device_types import DeviceType, Metric, MetricKind
from telemetry.errors import TelemetryError, UnknownDeviceType

FORMAT: Literal["fleetcare.profile/v1"] = "fleetcare.profile/v1"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Sku = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")]
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,15}$")]
Version = Annotated[str, Field(pattern=r"^\d+(\.\d+){0,3}$")]
Duration = Annotated[str, Field(pattern=r"^\d+(\.\d+)?[smhd]$", examples=["15m", "2d"])]
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(duration: str) -> float:
    """`15m` → 900.0 (s, m, h, d)."""
    return float(duration[:-1]) * _UNITS_S[duration[-1]]


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


class ProfileError(TelemetryError):
    """A profile that cannot be used, with every problem found: (path, what to do)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"  {path or '(file)'}: {why}" for path, why in problems]
        n = len(problems)
        super().__init__(f"{source}: {n} problem{'s' * (n != 1)}\n" + "\n".join(lines))


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Wording(_Spec):
    """Text for customers (and the console), by language; English is required."""

    model_config = ConfigDict(extra="allow", frozen=True)
    en: str = Field(min_length=1)

    def text(self, language: str | None) -> str:
        extra = self.model_extra or {}
        lang = (language or "en").split("-")[0].lower()
        return str(extra.get(lang) or self.en)

    def as_dict(self) -> dict[str, str]:
        return {"en": self.en, **{k: str(v) for k, v in (self.model_extra or {}).items()}}


class ModelCode(_Spec):
    code: Annotated[str, Field(min_length=1, max_length=64)]
    name: str = ""
    installation_parts: list[Sku] = Field(
        default_factory=list,
        description="Parts a technician fits when installing a new unit (an installation "
        "kit): the stock plan counts them for the units the sales plan expects.",
    )


class MetricSim(_Spec):
    """How the simulator makes this metric up (for families without physics of their own)."""

    mean: float = 0.0  # typical value (while running, if `idle` is given)
    idle: float | None = None  # while the appliance is not running
    daily: float = 0.0  # amplitude of the daily rhythm (highest mid-afternoon)
    weekly: float = 0.0  # added at weekends
    noise: float = 0.0  # the sensor's noise, standard deviation
    per_running_hour: float = 0.0  # a counter: how much it grows per running hour
    per_hour: float = 0.0  # a counter: how much it grows per hour, running or not
    wear: float = 0.0  # moves by this share of `mean` as `consumable` wears (1 = spent)
    consumable: Name | None = None
    decimals: int = Field(1, ge=0, le=6)


class Sensor(_Spec):
    """How a unit measures the metric, and what a real sensor gets wrong: the figures of
    its datasheet. The simulator gives every unit its own errors from them
    (docs/simulator.md); a metric without one is exact (a setting, a figure the device
    computes, a clock)."""

    resolution: float | None = Field(None, gt=0, description="The step it is reported in.")
    accuracy: float = Field(
        0.0, ge=0, le=1, description="Each unit's gain error, standard deviation (0.05: ±5 %)."
    )
    offset: float = Field(
        0.0, ge=0, description="Each unit's zero offset, standard deviation, in the unit."
    )
    noise: float = Field(
        0.0, ge=0, le=1, description="Each reading's noise, standard deviation, share of it."
    )
    noise_abs: float = Field(
        0.0, ge=0, description="Each reading's noise, standard deviation, in the unit."
    )
    drift_per_year: float = Field(
        0.0, ge=0, le=1, description="The gain's slow drift: standard deviation over a year."
    )


class MetricSpec(_Spec):
    name: Name
    unit: str = ""
    kind: Literal["float", "int", "bool", "enum"]
    range: tuple[float, float] | None = Field(
        None, description="Physically valid values [min, max]; numbers need one."
    )
    choices: list[Annotated[str, Field(min_length=1, max_length=32)]] | None = None
    cadence: Duration | None = Field(None, description="How often the device reports it.")
    counter: bool = Field(False, description="Only grows until the device resets it.")
    description: str = ""
    sensor: Sensor | None = Field(
        None, description="The sensor's datasheet errors (left out: the value is exact)."
    )
    sim: MetricSim | None = None


class EventSpec(_Spec):
    name: Name
    description: str = ""


class Part(_Spec):
    sku: Sku
    name: str = Field(min_length=1)
    price_cents: int | None = Field(None, ge=0, description="A list price, in cents.")


class Problem(_Spec):
    """A problem a job can be about, and the parts a technician brings for it."""

    kind: Name
    title: str = Field(min_length=1)
    parts: list[Sku] = Field(default_factory=list)


class FaultCode(_Spec):
    """A code the device shows (in an `error_code` event) and the job it calls for."""

    code: Code
    title: str = Field(min_length=1)
    severity: Literal["info", "warning", "critical"] = "warning"
    problem_kind: Name
    wording: Wording
    open: Literal["auto", "review", "none"] = "review"
    within: Duration = "2d"
    cooldown: Duration = "1d"
    rule_id: Name | None = Field(None, description="The rule's id (default {name}_code_{code}).")
    per_device_year: float = Field(0.0, ge=0, description="How often the simulator shows it.")


class Bound(_Spec):
    metric: Name
    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of `above` or `below`")
        return self


class Driver(_Spec):
    """What wears a consumable, in one of its rated units. Exactly one of: `counter` (the
    growth of a counter metric), `running` (hours while a bound holds), `integral` (the
    time integral of the product of metrics, per hour, times `scale`)."""

    unit: Literal["hours", "litres", "cycles", "dose"]
    counter: Name | None = None
    running: Bound | None = None
    integral: list[Name] | None = Field(None, min_length=1, max_length=3)
    scale: float = Field(1.0, gt=0)
    resets: bool = Field(
        False, description="The device restarts this counter when the consumable is replaced."
    )

    @model_validator(mode="after")
    def _one(self) -> Self:
        given = [k for k in ("counter", "running", "integral") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a driver is exactly one of `counter`, `running`, `integral`; got "
                + (", ".join(given) or "none")
            )
        if self.running is not None and self.unit != "hours":
            raise ValueError("a `running` driver counts hours: set unit: hours")
        return self


class Rated(_Spec):
    """Rated life: whichever of these comes first."""

    hours: float | None = Field(None, gt=0)
    litres: float | None = Field(None, gt=0)
    cycles: float | None = Field(None, gt=0)
    dose: float | None = Field(None, gt=0)
    months: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _some(self) -> Self:
        if not self.given():
            raise ValueError("give at least one of hours, litres, cycles, dose, months")
        return self

    def given(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Signal(_Spec):
    """A metric that moves as the consumable wears (e.g. motor current rises)."""

    metric: Name
    rises: bool = True


class Consumable(_Spec):
    stage: Name
    name: str = Field(min_length=1)
    sku: Sku
    rated: Rated
    drivers: list[Driver] = Field(default_factory=list)
    reported_life: Name | None = Field(
        None, description="A metric in which the device reports the life left, 0–100 %."
    )
    signal: Signal | None = None
    problem_kind: Name | None = None
    wording: Wording | None = None

    @property
    def problem(self) -> str:
        """The problem kind that replaces it (`main` is a single-stage family's filter)."""
        if self.problem_kind:
            return self.problem_kind
        return "filter_replacement" if self.stage == "main" else f"filter_replacement_{self.stage}"


class RelationSim(_Spec):
    intercept: float = 0.0
    slopes: list[float]
    noise: float = 0.0


class Relation(_Spec):
    """A known relation `y ≈ f(x…)` between metrics that models may use (and that the
    simulator keeps, unless a fault breaks it)."""

    name: Name
    y: Name
    x: list[Name] = Field(min_length=1, max_length=3)
    description: str = ""
    sim: RelationSim | None = None


class Firmware(_Spec):
    version: Version
    adds: list[Name] = Field(default_factory=list)
    removes: list[Name] = Field(default_factory=list)


class CardItem(_Spec):
    """One line of the app's health card: a metric's latest value, or a consumable."""

    metric: Name | None = None
    consumable: Name | None = None
    label: Wording

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.metric is None) == (self.consumable is None):
            raise ValueError("a card line shows exactly one `metric` or `consumable`")
        return self


class AirMetric(_Spec):
    """An indoor-air reading the household's monthly air report covers, with the bounds
    of healthy air (hourly means outside them count as hours out of bounds)."""

    metric: Name
    label: Wording
    above: float | None = Field(None, description="Unhealthy above this (e.g. PM2.5 15 µg/m³).")
    below: float | None = Field(None, description="Unhealthy below this (e.g. humidity 30 %).")
    guideline: str = Field("", description="Where the bounds come from, shown with them.")
    advice: Wording | None = Field(
        None, description="What to do in the hours out of bounds; `{hours}` names them."
    )
    filtered_by: Name | None = Field(
        None, description="The consumable stage whose replacement should improve it."
    )

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.above is None and self.below is None:
            raise ValueError("give `above`, `below` or both: the bounds of healthy air")
        if self.above is not None and self.below is not None and self.below >= self.above:
            raise ValueError("`below` must be lower than `above`")
        return self


class Usage(_Spec):
    """When the simulated appliance runs: `base` share of the time, `peak` in the peak
    hours, both times `weekend` on Saturdays and Sundays."""

    base: float = Field(0.3, ge=0, le=1)
    peak: float = Field(0.7, ge=0, le=1)
    peak_hours: tuple[int, int] = (18, 23)
    weekend: float = Field(1.2, gt=0)
    state: Name | None = Field(None, description="A bool metric that says it runs.")


class Simulation(_Spec):
    usage: Usage = Field(default_factory=Usage)
    interval: Duration = "15m"


class ProfileDoc(_Spec):
    """A product profile file (YAML): see docs/profiles.md."""

    format: Literal["fleetcare.profile/v1"] = Field(
        FORMAT, description="The file format; a future one will say another."
    )
    name: Name = Field(description="The family's device type, as in its topics.")
    version: int = Field(ge=1, description="Raise it with every change to the file.")
    title: str = Field(min_length=1)
    description: str = ""
    category: str = ""
    models: list[ModelCode] = Field(min_length=1)
    metrics: list[MetricSpec] = Field(min_length=1)
    events: list[EventSpec] = Field(default_factory=list)
    fault_codes: list[FaultCode] = Field(default_factory=list)
    parts: list[Part] = Field(default_factory=list)
    problems: list[Problem] = Field(default_factory=list)
    consumables: list[Consumable] = Field(default_factory=list)
    relations: list[Relation] = Field(default_factory=list)
    firmware: list[Firmware] = Field(default_factory=list)
    health_card: list[CardItem] = Field(default_factory=list)
    charts: list[Name] | None = Field(
        None, description="Metrics the console charts (default: the card's numeric ones)."
    )
    air_quality: list[AirMetric] = Field(
        default_factory=list,
        description="Indoor-air readings the household's monthly air report covers.",
    )
    rules: list[dict[str, Any]] = Field(
        default_factory=list, description="Rules in the rule-file format (docs/rules.md)."
    )
    simulation: Simulation = Field(default_factory=Simulation)


# -- the cross-check ------------------------------------------------------------------------
def _unique(items: Iterable[tuple[int, str]], path: str, what: str) -> list[tuple[str, str]]:
    seen: dict[str, int] = {}
    out = []
    for i, name in items:
        if name in seen:
            out.append(
                (f"{path}[{i}]", f"{what} {name!r} is declared twice (first at [{seen[name]}])")
            )
        seen.setdefault(name, i)
    return out


def _known(name: str, known: Iterable[str], what: str) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{name!r} is not {what} of this profile; {hint}known: {', '.join(names) or 'none'}"


def cross_check(doc: ProfileDoc) -> list[tuple[str, str]]:
    """Every name the profile uses, checked against what it declares."""
    problems: list[tuple[str, str]] = []
    metrics = {m.name: m for m in doc.metrics}
    numeric = {n for n, m in metrics.items() if m.kind in ("float", "int")}
    problems += _unique(enumerate(m.name for m in doc.metrics), "metrics", "metric")
    for i, m in enumerate(doc.metrics):
        p = f"metrics[{i}]"
        if m.kind in ("float", "int"):
            if m.range is None:
                problems.append(
                    (f"{p}.range", f"{m.kind} metric {m.name!r} needs range: [min, max]")
                )
            elif m.range[0] > m.range[1]:
                problems.append((f"{p}.range", "the minimum is above the maximum"))
        elif m.range is not None:
            problems.append((f"{p}.range", f"a {m.kind} metric has no range: remove it"))
        if m.kind == "enum" and not m.choices:
            problems.append((f"{p}.choices", f"enum metric {m.name!r} needs choices"))
        if m.kind != "enum" and m.choices:
            problems.append((f"{p}.choices", "only an enum metric has choices"))
        if m.counter and m.kind not in ("float", "int"):
            problems.append((f"{p}.counter", "a counter is a number"))
        if m.sensor is not None and m.kind not in ("float", "int"):
            problems.append((f"{p}.sensor", f"a {m.kind} metric has no sensor errors: remove it"))
        if m.sensor is not None and m.counter and (m.sensor.noise or m.sensor.noise_abs):
            problems.append(
                (f"{p}.sensor", "a counter only counts: give it accuracy and drift, not noise")
            )
        if (
            m.sim
            and m.sim.consumable
            and m.sim.consumable not in {c.stage for c in doc.consumables}
        ):
            declared = [c.stage for c in doc.consumables]
            problems.append(
                (f"{p}.sim.consumable", _known(m.sim.consumable, declared, "a consumable"))
            )
    problems += _unique(enumerate(e.name for e in doc.events), "events", "event")
    problems += _unique(enumerate(c.code for c in doc.fault_codes), "fault_codes", "code")
    skus = {part.sku for part in doc.parts}
    for i, model in enumerate(doc.models):
        for j, sku in enumerate(model.installation_parts):
            if sku not in skus:
                problems.append(
                    (f"models[{i}].installation_parts[{j}]", _known(sku, skus, "a part"))
                )
    problems += _unique(enumerate(part.sku for part in doc.parts), "parts", "part")
    problems += _unique(enumerate(pr.kind for pr in doc.problems), "problems", "problem")
    for i, pr in enumerate(doc.problems):
        for j, sku in enumerate(pr.parts):
            if sku not in skus:
                problems.append((f"problems[{i}].parts[{j}]", _known(sku, skus, "a part")))
    problems += _unique(enumerate(c.stage for c in doc.consumables), "consumables", "stage")
    for i, c in enumerate(doc.consumables):
        p = f"consumables[{i}]"
        if c.sku not in skus:
            problems.append(
                (f"{p}.sku", _known(c.sku, skus, "a part") + " (declare it under parts)")
            )
        rated = c.rated.given()
        for j, d in enumerate(c.drivers):
            q = f"{p}.drivers[{j}]"
            if d.unit not in rated:
                problems.append(
                    (
                        f"{q}.unit",
                        f"{c.stage!r} has no rated {d.unit}: add rated.{d.unit}, "
                        "or drop this driver",
                    )
                )
            if d.counter is not None:
                if d.counter not in metrics:
                    problems.append((f"{q}.counter", _known(d.counter, metrics, "a metric")))
                elif not metrics[d.counter].counter:
                    problems.append(
                        (
                            f"{q}.counter",
                            f"metric {d.counter!r} is not a counter: mark it counter: true",
                        )
                    )
            if d.running is not None and d.running.metric not in numeric:
                problems.append(
                    (f"{q}.running.metric", _known(d.running.metric, numeric, "a numeric metric"))
                )
            for k, name in enumerate(d.integral or ()):
                if name not in numeric:
                    problems.append(
                        (f"{q}.integral[{k}]", _known(name, numeric, "a numeric metric"))
                    )
        for unit in set(rated) - {"months"} - {d.unit for d in c.drivers}:
            problems.append(
                (
                    f"{p}.rated.{unit}",
                    f"nothing measures {unit}: add a driver with unit: {unit}, or drop it",
                )
            )
        if c.reported_life is not None and c.reported_life not in numeric:
            problems.append(
                (f"{p}.reported_life", _known(c.reported_life, numeric, "a numeric metric"))
            )
        if c.signal is not None and c.signal.metric not in numeric:
            problems.append(
                (f"{p}.signal.metric", _known(c.signal.metric, numeric, "a numeric metric"))
            )
    problems += _unique(enumerate(r.name for r in doc.relations), "relations", "relation")
    for i, r in enumerate(doc.relations):
        for path, name in [("y", r.y), *((f"x[{k}]", x) for k, x in enumerate(r.x))]:
            if name not in numeric:
                problems.append(
                    (f"relations[{i}].{path}", _known(name, numeric, "a numeric metric"))
                )
        if r.sim is not None and len(r.sim.slopes) != len(r.x):
            problems.append((f"relations[{i}].sim.slopes", f"give one slope per x ({len(r.x)})"))
    versions = [f.version for f in doc.firmware]
    problems += _unique(enumerate(versions), "firmware", "version")
    if versions != sorted(versions, key=version_key):
        problems.append(("firmware", "list the releases oldest first"))
    for i, f in enumerate(doc.firmware):
        for j, name in enumerate(f.adds):
            if name not in metrics:
                problems.append((f"firmware[{i}].adds[{j}]", _known(name, metrics, "a metric")))
        for j, name in enumerate(f.removes):
            if name not in metrics:
                problems.append((f"firmware[{i}].removes[{j}]", _known(name, metrics, "a metric")))
    stages = {c.stage for c in doc.consumables}
    for i, item in enumerate(doc.health_card):
        if item.metric is not None and item.metric not in metrics:
            problems.append((f"health_card[{i}].metric", _known(item.metric, metrics, "a metric")))
        if item.consumable is not None and item.consumable not in stages:
            problems.append(
                (f"health_card[{i}].consumable", _known(item.consumable, stages, "a consumable"))
            )
    for i, name in enumerate(doc.charts or ()):
        if name not in numeric:
            problems.append((f"charts[{i}]", _known(name, numeric, "a numeric metric")))
    problems += _unique(enumerate(a.metric for a in doc.air_quality), "air_quality", "metric")
    for i, air in enumerate(doc.air_quality):
        if air.metric not in numeric:
            problems.append(
                (f"air_quality[{i}].metric", _known(air.metric, numeric, "a numeric metric"))
            )
        if air.filtered_by is not None and air.filtered_by not in stages:
            problems.append(
                (f"air_quality[{i}].filtered_by", _known(air.filtered_by, stages, "a consumable"))
            )
    state = doc.simulation.usage.state
    if state is not None and (state not in metrics or metrics[state].kind != "bool"):
        problems.append(
            ("simulation.usage.state", f"{state!r} must be a bool metric of this profile")
        )
    for i, rule in enumerate(doc.rules):
        if not isinstance(rule.get("id"), str):
            problems.append((f"rules[{i}].id", "a rule needs an id"))
        if rule.get("device_type", doc.name) != doc.name:
            problems.append(
                (
                    f"rules[{i}].device_type",
                    f"a profile's rules are for {doc.name!r}: leave device_type out",
                )
            )
    return problems


def _describe(exc: ValidationError) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors(include_url=False):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            leaf = str(err["loc"][-1])
            fields = _fields_at(err["loc"][:-1])
            close = difflib.get_close_matches(leaf, fields, n=1)
            msg = f"unknown field {leaf!r}" + (f": did you mean {close[0]!r}?" if close else "")
        elif err["type"] == "missing":
            msg = "required: add it"
        elif err["type"] == "invalid_key" and isinstance(err.get("input"), bool):
            path = path.rsplit("[", 1)[0]  # the mapping, not the key's position in it
            msg = "a key reads as true/false (YAML takes yes, no, on, off so): quote it, 'off'"
        elif "input" in err and err["type"] not in ("model_type", "dict_type"):
            msg = f"{msg} (got {err['input']!r:.60})"
        out.append((path, msg))
    return out


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The field names the model at `loc` (within a profile) accepts."""
    model: Any = ProfileDoc
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
        if info is None:
            return []
        model = _inner_model(info.annotation)
        if model is None:
            return []
    return list(model.model_fields) if hasattr(model, "model_fields") else []


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def parse_profile(data: str | bytes | Mapping[str, Any], source: str = "profile") -> ProfileDoc:
    """A profile from YAML text (or a loaded mapping), checked; `ProfileError` lists every
    problem with its path."""
    if isinstance(data, str | bytes):
        try:
            data = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ProfileError(
                source, [(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]
            ) from None
    if not isinstance(data, Mapping):
        raise ProfileError(source, [("", "a profile is a mapping of fields (name: …, version: …)")])
    try:
        doc = ProfileDoc.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(source, _describe(exc)) from None
    problems = cross_check(doc)
    if problems:
        raise ProfileError(source, problems)
    return doc


def profile_schema() -> dict[str, Any]:
    """The JSON Schema of a profile file (`fleetcare profiles schema`)."""
    schema = ProfileDoc.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://fleetcare.dev/schema/profile-v1.json"
    schema["title"] = "FleetCare product profile v1"
    return schema


# -- what the engine uses -----------------------------------------------------------------
_KIND = {
    "float": MetricKind.FLOAT,
    "int": MetricKind.INT,
    "bool": MetricKind.BOOL,
    "enum": MetricKind.ENUM,
}


def _plain(x: float | None) -> float | None:
    """2000.0 → 2000: the JSON Schema says what the file says."""
    return int(x) if x is not None and float(x).is_integer() else x


def _metric(m: MetricSpec) -> Metric:
    lo, hi = (_plain(m.range[0]), _plain(m.range[1])) if m.range is not None else (None, None)
    return Metric(
        name=m.name,
        unit=m.unit,
        kind=_KIND[m.kind],
        description=m.description,
        minimum=lo,
        maximum=hi,
        choices=tuple(m.choices or ()),
        cadence_s=seconds(m.cadence) if m.cadence else None,
        counter=m.counter,
    )


@dataclass(frozen=True)
class Profile:
    """One version of a family's profile, as the engine uses it."""

    doc: ProfileDoc
    source: str = "shipped"  # where it came from: shipped, database, a file

    @property
    def name(self) -> str:
        return self.doc.name

    @property
    def version(self) -> int:
        return self.doc.version

    @property
    def label(self) -> str:
        return f"{self.doc.name} v{self.doc.version}"

    @cached_property
    def device_type(self) -> DeviceType:
        return DeviceType(
            name=self.doc.name,
            title=self.doc.title,
            description=self.doc.description or self.doc.title,
            metrics=tuple(_metric(m) for m in self.doc.metrics),
        )

    @cached_property
    def checksum(self) -> str:
        canonical = json.dumps(self.doc.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @cached_property
    def _added(self) -> dict[str, str]:
        return {name: f.version for f in self.doc.firmware for name in f.adds}

    def metrics_for(self, firmware: str | None) -> frozenset[str]:
        """The metrics a device running `firmware` may report: those every release has,
        and those a release up to its own added (and did not remove since). An unknown
        or unparsable firmware may report any declared metric."""
        every = frozenset(m.name for m in self.doc.metrics)
        if firmware is None or not self.doc.firmware:
            return every
        try:
            mine = version_key(firmware)
        except ValueError:
            return every
        allowed = {n for n in every if n not in self._added}
        for f in self.doc.firmware:
            if version_key(f.version) <= mine:
                allowed |= set(f.adds)
                allowed -= set(f.removes)
        return frozenset(allowed)

    def release_of(self, metric: str) -> str | None:
        """The firmware release that added `metric` (None: every release has it)."""
        return self._added.get(metric)

    def consumable(self, stage: str) -> Consumable | None:
        return next((c for c in self.doc.consumables if c.stage == stage), None)

    def parts_for(self, problem_kind: str) -> tuple[str, ...]:
        """The SKUs a technician brings for a problem of this family."""
        for c in self.doc.consumables:
            if c.problem == problem_kind:
                return (c.sku,)
        for p in self.doc.problems:
            if p.kind == problem_kind:
                return tuple(p.parts)
        return ()

    def chart_metrics(self) -> tuple[str, ...]:
        if self.doc.charts is not None:
            return tuple(self.doc.charts)
        numeric = {m.name for m in self.doc.metrics if m.kind in ("float", "int")}
        return tuple(i.metric for i in self.doc.health_card if i.metric in numeric)


class ProfileSet(Mapping[str, Profile]):
    """The profiles the engine knows, by device type: one version of each family."""

    def __init__(self, profiles: Iterable[Profile] = ()) -> None:
        self._by_name: dict[str, Profile] = {}
        for p in profiles:
            self._by_name[p.name] = p

    def __getitem__(self, name: str) -> Profile:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        return f"ProfileSet({', '.join(p.label for p in self._by_name.values())})"

    @cached_property
    def types(self) -> Mapping[str, DeviceType]:
        return {name: p.device_type for name, p in self._by_name.items()}

    @cached_property
    def fingerprint(self) -> tuple[tuple[str, int, str], ...]:
        """What identifies this set: equal sets have equal fingerprints."""
        return tuple(sorted((p.name, p.version, p.checksum) for p in self._by_name.values()))

    def device_type(self, name: str) -> DeviceType:
        """The metric table of `name`, or `UnknownDeviceType` listing the known ones."""
        try:
            return self._by_name[name].device_type
        except KeyError:
            raise UnknownDeviceType(name, sorted(self._by_name)) from None

    def profile(self, name: str) -> Profile:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownDeviceType(name, sorted(self._by_name)) from None

    def for_model(self, code: str) -> Profile | None:
        """The family whose profile lists this model code."""
        for p in self._by_name.values():
            if any(m.code == code for m in p.doc.models):
                return p
        return None

    def overlay(self, newer: Iterable[Profile]) -> ProfileSet:
        """This set with `newer` profiles in place of lower versions of the same family."""
        out = dict(self._by_name)
        for p in newer:
            have = out.get(p.name)
            if have is None or p.version >= have.version:
                out[p.name] = p
        return ProfileSet(out.values())


def shipped_documents() -> dict[str, str]:
    """The profiles that come with FleetCare, as the text of their files."""
    root = resources.files("telemetry") / "profiles"
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in sorted(root.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".yaml")
    }


def _load_shipped() -> ProfileSet:
    return ProfileSet(
        Profile(parse_profile(text, f"shipped {name}"), "shipped")
        for name, text in shipped_documents().items()
    )


@cache
def shipped() -> ProfileSet:
    """The shipped profiles (read once: they are files inside the package)."""
    return _load_shipped()


class _Dumper(yaml.SafeDumper):
    """Short lists of plain values on one line (`range: [0, 100]`), the rest as blocks."""


def _list(dumper: Any, items: Any) -> yaml.Node:
    flat = all(isinstance(i, str | int | float | bool) for i in items) and len(items) <= 8
    node: yaml.Node = dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=flat)
    return node


def _float(dumper: Any, value: float) -> yaml.Node:
    whole = value.is_integer() and abs(value) < 1e15
    node: yaml.Node = dumper.represent_int(int(value)) if whole else dumper.represent_float(value)
    return node


_Dumper.add_representer(float, _float)
_Dumper.add_representer(list, _list)
_Dumper.add_representer(tuple, _list)


def to_yaml(data: Mapping[str, Any]) -> str:
    return yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def dump_profile(doc: ProfileDoc) -> str:
    """A profile as YAML, fields in the file's order, defaults left out."""
    data = doc.model_dump(mode="json", exclude_defaults=True, by_alias=True)
    return to_yaml({"format": FORMAT, **data})
