"""Evaluating a condition on one device at one moment.

The evaluator gathers what the device's rules need into a `DeviceView` (its last
values, aggregates over windows, recent events, model outputs, online state) with a
few bulk reads per pass; these functions only compute. A verdict is `True` (raise),
`False` (clear) or `None` (not enough data to say: the alert keeps its state).

Hysteresis: a bound raises past `above`/`below` and clears back past `clear`; between
the two the previous verdict stands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rules.spec import (
    Absent,
    Condition,
    EventMatch,
    Offline,
    Prediction,
    Ratio,
    Rule,
    Threshold,
    Trend,
    _Bound,
    filters_key,
    format_duration,
)
from telemetry.records import Agg


@dataclass(frozen=True, slots=True)
class WindowKey:
    """An aggregate of a metric over `[now - start_ago, now - end_ago)`."""

    metric: str
    start_ago: timedelta
    end_ago: timedelta = timedelta(0)
    where: tuple[tuple[str, str, float], ...] = ()  # only readings where these hold


@dataclass(frozen=True, slots=True)
class EventSeen:
    at: datetime
    name: str
    code: str | None


@dataclass(slots=True)
class DeviceView:
    device_id: str
    device_type: str
    now: datetime
    latest: Mapping[str, Any] = field(default_factory=dict)
    last_received_at: datetime | None = None
    online: bool | None = None
    online_changed_at: datetime | None = None
    windows: dict[WindowKey, Agg] = field(default_factory=dict)
    events: Sequence[EventSeen] = ()
    outputs: Mapping[tuple[str, str], float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    active: bool | None
    value: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def windows_of(cond: Condition) -> set[WindowKey]:
    """The window aggregates a condition reads."""
    keys: set[WindowKey] = set()
    for c in cond.walk():
        b = c.body
        if isinstance(b, Threshold) and b.over is not None:
            keys.add(_key(b.metric, b.over, b))
        elif isinstance(b, Ratio) and b.over is not None:
            keys |= {_key(b.numerator, b.over, b), _key(b.denominator, b.over, b)}
        elif isinstance(b, Trend):
            half = b.window / 2
            keys |= {_key(b.metric, b.window, b, half), _key(b.metric, half, b)}
    return keys


def judge(rule: Rule, view: DeviceView, was_active: bool) -> Verdict:
    """The rule's verdict: its condition, unless its `requires` does not hold."""
    if rule.requires is not None:
        gate = evaluate(rule.requires, view, False)
        if gate.active is not True:
            return Verdict(None, evidence={"requires": "not met", **gate.evidence})
    return evaluate(rule.when, view, was_active)


def rule_windows(rule: Rule) -> set[WindowKey]:
    return windows_of(rule.when) | (windows_of(rule.requires) if rule.requires else set())


def _key(
    metric: str, ago: timedelta, b: Threshold | Ratio | Trend, end: timedelta = timedelta(0)
) -> WindowKey:
    return WindowKey(metric, ago, end, filters_key(b.while_))


def event_window(cond: Condition) -> timedelta | None:
    spans = [c.body.within for c in cond.walk() if isinstance(c.body, EventMatch)]
    return max(spans) if spans else None


def evaluate(cond: Condition, view: DeviceView, was_active: bool) -> Verdict:
    # plain field reads: this runs for every rule on every device, every pass
    b = (
        cond.threshold
        or cond.ratio
        or cond.trend
        or cond.prediction
        or cond.event
        or cond.absent
        or cond.offline
    )
    if cond.all is not None or cond.any is not None:
        parts = [evaluate(c, view, was_active) for c in (cond.all or cond.any or [])]
        verdicts = [p.active for p in parts]
        evidence = {f"{i}": p.evidence for i, p in enumerate(parts)}
        value = parts[0].value
        if cond.all is not None:
            if any(v is False for v in verdicts):
                return Verdict(False, value, evidence)
            return Verdict(None if None in verdicts else True, value, evidence)
        if any(v is True for v in verdicts):
            return Verdict(True, value, evidence)
        return Verdict(None if None in verdicts else False, value, evidence)
    if isinstance(b, Threshold):
        what: dict[str, Any] = {"metric": b.metric}
        if b.over is not None:
            what |= {"over": format_duration(b.over), "agg": b.agg}
        return _bound(b, _threshold_value(b, view), was_active, what)
    if isinstance(b, Ratio):
        return _bound(
            b, _ratio_value(b, view), was_active, {"ratio": f"{b.numerator}/{b.denominator}"}
        )
    if isinstance(b, Trend):
        trend = {"trend_per_h": b.metric, "window": format_duration(b.window)}
        return _bound(b, _trend_value(b, view), was_active, trend)
    if isinstance(b, Prediction):
        value = view.outputs.get((b.model, b.output))
        what = {"model": b.model, "output": b.output}
        # a model that says which metric scored (the general detector's `metric.<name>`):
        # the evidence names it, so the console can show that series
        named = sorted(o for m, o in view.outputs if m == b.model and o.startswith("metric."))
        if named:
            what["metric"] = named[0].removeprefix("metric.")
        # ... and the fault its alarm most likely is (the general detector's namer)
        faults = [(v, o) for (m, o), v in view.outputs.items() if m == b.model]
        likely = max((vo for vo in faults if vo[1].startswith("fault.")), default=None)
        if likely is not None:
            what["fault"] = likely[1].removeprefix("fault.")
            what["confidence"] = round(likely[0], 2)
        return _bound(b, value, was_active, what)
    if isinstance(b, Absent):
        return _quiet_for(view.now, view.last_received_at, b.for_, "no telemetry since")
    if isinstance(b, Offline):
        if view.online is None:
            return Verdict(None)
        if view.online:
            return Verdict(False)
        return _quiet_for(view.now, view.online_changed_at, b.for_, "offline since")
    if isinstance(b, EventMatch):
        return _events(b, view)
    raise AssertionError(f"unhandled condition {cond.kind}")  # pragma: no cover


def raises(b: Threshold, latest: Mapping[str, Any]) -> bool:
    """Whether a last-value threshold raises on these values: what `evaluate` answers
    `True` to whatever came before, without a view or a verdict (ingest asks this of
    every reading, and builds those only for one that raises)."""
    value = _num(latest.get(b.metric))
    if value is None:
        return False
    return value > b.raise_at if b.rising else value < b.raise_at


def _bound(b: _Bound, value: float | None, was_active: bool, what: dict[str, Any]) -> Verdict:
    if value is None:
        return Verdict(None, None, what)
    evidence = {**what, "value": round(value, 4), "raise_at": b.raise_at, "clear_at": b.clear_at}
    if b.rising:
        if value > b.raise_at:
            return Verdict(True, value, evidence)
        if value <= b.clear_at:
            return Verdict(False, value, evidence)
    else:
        if value < b.raise_at:
            return Verdict(True, value, evidence)
        if value >= b.clear_at:
            return Verdict(False, value, evidence)
    return Verdict(was_active, value, evidence)  # between: hysteresis holds


def _num(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int | float):
        return float(v)
    return None


def _pick(agg: Agg | None, how: str) -> float | None:
    if agg is None or agg.count == 0:
        return 0.0 if how == "count" else None
    return {
        "mean": agg.mean,
        "min": agg.min,
        "max": agg.max,
        "spread": (agg.max - agg.min) if agg.max is not None and agg.min is not None else None,
        "count": float(agg.count),
        "last": agg.mean,
    }[how]


def _threshold_value(b: Threshold, view: DeviceView) -> float | None:
    if b.over is None:
        return _num(view.latest.get(b.metric))
    return _pick(view.windows.get(_key(b.metric, b.over, b)), b.agg)


def _ratio_value(b: Ratio, view: DeviceView) -> float | None:
    if b.over is None:
        num, den = _num(view.latest.get(b.numerator)), _num(view.latest.get(b.denominator))
    else:
        num = _pick(view.windows.get(_key(b.numerator, b.over, b)), "mean")
        den = _pick(view.windows.get(_key(b.denominator, b.over, b)), "mean")
    if num is None or den is None or den == 0:
        return None
    return num / den


def _trend_value(b: Trend, view: DeviceView) -> float | None:
    half = b.window / 2
    early = _pick(view.windows.get(_key(b.metric, b.window, b, half)), "mean")
    late = _pick(view.windows.get(_key(b.metric, half, b)), "mean")
    if early is None or late is None:
        return None
    return (late - early) / (half.total_seconds() / 3600)


def _quiet_for(now: datetime, since: datetime | None, span: timedelta, label: str) -> Verdict:
    if since is None:
        return Verdict(None)
    quiet = now - since
    evidence = {label: since.isoformat(), "hours": round(quiet.total_seconds() / 3600, 2)}
    return Verdict(quiet >= span, quiet.total_seconds() / 3600, evidence)


def _events(b: EventMatch, view: DeviceView) -> Verdict:
    cutoff = view.now - b.within
    hits = [
        e
        for e in view.events
        if e.at >= cutoff and (e.name in b.names or (e.code is not None and e.code in b.codes))
    ]
    if not hits:
        return Verdict(False)
    last = max(hits, key=lambda e: e.at)
    return Verdict(
        True,
        float(len(hits)),
        {"event": last.name, "code": last.code, "at": last.at.isoformat(), "count": len(hits)},
    )
