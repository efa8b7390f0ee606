"""What a rule is: the schema of built-in rows and of user YAML files.

```yaml
rules:
  - id: ac_suction_low                 # unique; letters, digits, _ . -
    device_type: air_conditioner
    title: Refrigerant leak suspected
    severity: critical                 # info | warning | critical
    problem_kind: refrigerant_leak     # the work order's problem (one live order per device)
    when:                              # one condition; all/any combine them
      threshold: {metric: suction_pressure_kpa, below: 760, clear: 820, over: 30m, agg: mean}
    for: 2h                            # true at every evaluation for this long, then it fires
    cooldown: 12h                      # after it resolves, it may not fire again for this long
    work_order: {open: review, priority: 2}   # none | review (ops approve) | auto (to dispatch)
    wording:                           # what the customer reads, per language
      en: Your air conditioner may be losing refrigerant; we will check it.
```

Condition kinds: `threshold` (with hysteresis: `clear` is the value to fall back past),
`trend` (change per hour over a window), `ratio` (one metric over another), `absent`
(no telemetry for a while), `offline` (the device says it is offline), `event` (device
event names or fault codes), `prediction` (a model's output), and `all` / `any`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d|w)$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """'45s', '30m', '2h', '1d', '1w' (or seconds as a number, or a timedelta)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str) and (m := _DURATION.match(value.strip())):
        return timedelta(seconds=float(m.group(1)) * _UNIT[m.group(2)])
    raise ValueError(f"{value!r} is not a duration: write it like 45s, 30m, 2h, 1d or 1w")


def format_duration(d: timedelta) -> str:
    s = int(d.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if s and s % _UNIT[unit] == 0:
            return f"{s // _UNIT[unit]}{unit}"
    return f"{s}s"


Duration = Annotated[
    timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)
]
RuleId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Agg = Literal["last", "mean", "min", "max", "spread", "count"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Bound(_Spec):
    """Raise past `above` (or `below`); clear once back past `clear` (hysteresis). Without
    `clear`, the raise value clears too."""

    above: float | None = None
    below: float | None = None
    clear: float | None = None

    @model_validator(mode="after")
    def _one_side(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of `above` and `below`")
        if self.clear is not None:
            if self.above is not None and self.clear > self.above:
                raise ValueError(f"`clear` ({self.clear}) must be at or below `above`")
            if self.below is not None and self.clear < self.below:
                raise ValueError(f"`clear` ({self.clear}) must be at or above `below`")
        return self

    @property
    def raise_at(self) -> float:
        return self.above if self.above is not None else self.below  # type: ignore[return-value]

    @property
    def clear_at(self) -> float:
        return self.clear if self.clear is not None else self.raise_at

    @property
    def rising(self) -> bool:
        return self.above is not None


class While(_Spec):
    """Only the readings where another metric is past a value count in a window, e.g.
    suction pressure while the compressor runs: `while: {metric: compressor_hz, above: 0}`."""

    metric: str
    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _one_side(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("`while` takes exactly one of `above` and `below`")
        return self

    @property
    def key(self) -> tuple[str, str, float]:
        if self.above is not None:
            return (self.metric, ">", self.above)
        assert self.below is not None
        return (self.metric, "<", self.below)


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


# one filter, or a list of them that must all hold
Filters = Annotated[list[While], BeforeValidator(_listed)]


def filters_key(filters: list[While] | None) -> tuple[tuple[str, str, float], ...]:
    return tuple(sorted(f.key for f in filters or ()))


class Threshold(_Bound):
    metric: str
    over: Duration | None = None  # aggregate over this window; without it, the last value
    agg: Agg = "last"
    while_: Filters | None = Field(None, alias="while")

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.agg != "last" and self.over is None:
            raise ValueError(f"agg {self.agg!r} needs a window: add `over`, e.g. over: 30m")
        if self.while_ is not None and self.over is None:
            raise ValueError("`while` filters a window: add `over`, e.g. over: 30m")
        return self


class Trend(_Bound):
    """Change per hour of a metric's mean, later half of the window against the earlier."""

    metric: str
    window: Duration
    while_: Filters | None = Field(None, alias="while")


class Ratio(_Bound):
    numerator: str
    denominator: str
    over: Duration | None = None  # means over this window; without it, the last values
    while_: Filters | None = Field(None, alias="while")


class Absent(_Spec):
    """No telemetry for `for_` (the deadman): the device has gone quiet."""

    for_: Duration = Field(alias="for")


class Offline(_Spec):
    """The device has said it is offline (status or Last Will) for `for_`."""

    for_: Duration = Field(alias="for")


class EventMatch(_Spec):
    """A device event with one of these names, or an `error_code` event with one of these
    codes, within the last `within`."""

    names: list[str] = Field(default_factory=list)
    codes: list[str] = Field(default_factory=list)
    within: Duration = timedelta(minutes=30)

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.names and not self.codes:
            raise ValueError("give event `names` or fault `codes`")
        return self


class Prediction(_Bound):
    """A model's output for the device (`models` supplies them): e.g. model filter_life,
    output days_to_exhaustion_main, below 7."""

    model: str
    output: str


class Condition(_Spec):
    """Exactly one of the kinds."""

    threshold: Threshold | None = None
    trend: Trend | None = None
    ratio: Ratio | None = None
    absent: Absent | None = None
    offline: Offline | None = None
    event: EventMatch | None = None
    prediction: Prediction | None = None
    all: list[Condition] | None = None
    any: list[Condition] | None = None
    _kind: str = PrivateAttr("")  # which one: looked up once, read on every evaluation

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(given) != 1:
            kinds = ", ".join(type(self).model_fields)
            raise ValueError(
                f"a condition is exactly one of {kinds}; got {', '.join(given) or 'none'}"
            )
        if given[0] in ("all", "any") and not getattr(self, given[0]):
            raise ValueError(f"`{given[0]}` needs at least one condition")
        self._kind = given[0]
        return self

    @property
    def kind(self) -> str:
        # straight from pydantic's private dict: `self._kind` goes through BaseModel's
        # __getattr__ fallback, which cost ingest 13 % of its CPU (py-spy, in the soak)
        kind: str = self.__pydantic_private__["_kind"]  # type: ignore[index]
        return kind

    @property
    def body(self) -> Any:
        return getattr(self, self.kind)

    def walk(self) -> list[Condition]:
        """This condition and every one inside it."""
        out: list[Condition] = [self]
        for child in self.all or self.any or []:
            out += child.walk()
        return out

    def metrics(self) -> set[str]:
        names: set[str] = set()
        for c in self.walk():
            b = c.body
            if isinstance(b, Threshold | Trend):
                names.add(b.metric)
            elif isinstance(b, Ratio):
                names |= {b.numerator, b.denominator}
            if isinstance(b, Threshold | Trend | Ratio):
                names |= {f.metric for f in b.while_ or ()}
        return names


class WorkOrderPolicy(_Spec):
    open: Literal["none", "review", "auto"] = "review"
    priority: int = Field(0, ge=0, le=9)


class Flap(_Spec):
    """`changes` raise/clear changes within `window` make an alert flapping: it then stays
    firing until the condition has been clear for a whole `window`."""

    changes: int = Field(4, ge=2)
    window: Duration = timedelta(hours=1)


class Rule(_Spec):
    id: RuleId
    device_type: str
    title: str
    severity: Literal["info", "warning", "critical"] = "warning"
    problem_kind: str | None = None
    when: Condition
    # judged only while this holds (e.g. the fan ran): otherwise the rule says nothing,
    # neither firing nor resolving
    requires: Condition | None = None
    for_: Duration = Field(timedelta(0), alias="for")
    cooldown: Duration = timedelta(0)
    flap: Flap = Field(default_factory=Flap)
    work_order: WorkOrderPolicy = Field(default_factory=WorkOrderPolicy)
    wording: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Self:
        """Checked against the device type's profile: the one in the validation context's
        `profiles` (a `ProfileSet`), else the shipped one."""
        from telemetry.profile import ProfileSet, shipped

        profiles = (info.context or {}).get("profiles") if info.context else None
        known: ProfileSet = profiles if isinstance(profiles, ProfileSet) else shipped()
        profile = known.get(self.device_type)
        if profile is None:
            raise ValueError(f"unknown device_type {self.device_type!r}; one of {', '.join(known)}")
        row = profile.device_type
        used = self.when.metrics() | (self.requires.metrics() if self.requires else set())
        unknown = sorted(used - set(row.by_name))
        if unknown:
            raise ValueError(
                f"{profile.label} has no metric {', '.join(unknown)}; it has "
                f"{', '.join(row.by_name)}"
            )
        stages = {c.stage for c in profile.doc.consumables}
        for c in self.when.walk():
            b = c.body
            if isinstance(b, Prediction) and b.model == "filter_life":
                stage = b.output.removeprefix("days_to_exhaustion_")
                if stage not in stages:
                    raise ValueError(
                        f"{profile.label} has no consumable {stage!r} (output {b.output}); "
                        f"it has {', '.join(sorted(stages)) or 'none'}"
                    )
            if isinstance(b, EventMatch) and b.codes and profile.doc.fault_codes:
                codes = {f.code for f in profile.doc.fault_codes}
                if set(b.codes) - codes:
                    missing = ", ".join(sorted(set(b.codes) - codes))
                    raise ValueError(
                        f"{profile.label} has no fault code {missing}; "
                        f"it has {', '.join(sorted(codes))}"
                    )
        if self.work_order.open != "none" and not self.problem_kind:
            raise ValueError("a rule that opens work orders needs a `problem_kind`")
        return self

    @property
    def sensor(self) -> bool:
        """Reads telemetry values: inhibited while the device is offline."""
        return bool(self.when.metrics())

    @property
    def per_message(self) -> bool:
        """Can fire from one message at ingest: an event, or a last-value threshold, with
        no `for`. Clearing, and everything else, is the evaluator's."""
        b = self.when.body
        simple = self.when.kind == "event" or (isinstance(b, Threshold) and b.over is None)
        return simple and self.for_ == timedelta(0) and self.requires is None


class RuleFile(_Spec):
    rules: list[Rule]
