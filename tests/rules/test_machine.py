"""The alert state machine and the conditions: `for`, hysteresis, missing data, flap
damping, cooldown, and each condition kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rules.conditions import DeviceView, EventSeen, WindowKey, evaluate
from rules.machine import Action, Phase, RuleState, step
from rules.spec import Condition, Rule
from telemetry.records import Agg

T0 = datetime(2026, 11, 24, tzinfo=UTC)
M = timedelta(minutes=1)


def make_rule(when: dict[str, Any], **over: Any) -> Rule:
    return Rule.model_validate(
        {
            "id": "r",
            "device_type": "purifier",
            "title": "t",
            "problem_kind": "p",
            "when": when,
            **over,
        }
    )


PM = {"threshold": {"metric": "pm25", "above": 75, "clear": 50}}


def run(rule: Rule, verdicts: list[bool | None], every: timedelta = M) -> list[Action]:
    state, actions = RuleState("r", "d"), []
    for i, v in enumerate(verdicts):
        state, action = step(state, v, rule, T0 + i * every)
        actions.append(action)
    return actions


def test_without_for_a_true_condition_fires_at_once_and_resolves_when_false() -> None:
    assert run(make_rule(PM), [True, True, False]) == [Action.FIRE, Action.NONE, Action.RESOLVE]


def test_for_needs_the_condition_true_at_every_evaluation_for_that_long() -> None:
    rule = make_rule(PM, **{"for": "3m"})
    assert run(rule, [True, True, True, True]) == [
        Action.PENDING, Action.NONE, Action.NONE, Action.FIRE,
    ]  # fmt: skip
    assert run(rule, [True, True, False, True, True, True, True]) == [
        Action.PENDING, Action.NONE, Action.WITHDRAWN,
        Action.PENDING, Action.NONE, Action.NONE, Action.FIRE,
    ]  # fmt: skip


def test_missing_data_changes_nothing() -> None:
    rule = make_rule(PM, **{"for": "2m"})
    assert run(rule, [True, None, None, True]) == [
        Action.PENDING, Action.NONE, Action.NONE, Action.FIRE,
    ]  # fmt: skip
    assert run(make_rule(PM), [True, None, None, None]) == [Action.FIRE] + [Action.NONE] * 3


def test_a_flapping_alert_stays_firing_until_clear_for_a_whole_window() -> None:
    rule = make_rule(PM, flap={"changes": 4, "window": "10m"})
    dance = [True, False, True, False, True, False, True, False] + [False] * 12
    actions = run(rule, dance)
    assert actions.count(Action.FIRE) == 2  # then it is flapping: held, not re-fired
    assert actions.count(Action.RESOLVE) == 2
    last_fire = max(i for i, a in enumerate(actions) if a is Action.FIRE)
    resolved = max(i for i, a in enumerate(actions) if a is Action.RESOLVE)
    assert resolved - last_fire >= 10  # clear for the whole window first


def test_cooldown_keeps_a_resolved_alert_from_firing_again_too_soon() -> None:
    rule = make_rule(PM, cooldown="5m")
    actions = run(rule, [True, False, True, True, True, True, True, True])
    assert actions[:3] == [Action.FIRE, Action.RESOLVE, Action.PENDING]
    assert actions.index(Action.FIRE, 1) == 6  # five minutes after the resolve


def test_state_survives_as_data() -> None:
    rule = make_rule(PM, **{"for": "10m"})
    state, _ = step(RuleState("r", "d"), True, rule, T0)
    assert state.phase is Phase.PENDING and state.since == T0
    # a restart reloads the same state: the pending duration keeps counting from T0
    reloaded = RuleState(**{f: getattr(state, f) for f in state.__slots__})
    _, action = step(reloaded, True, rule, T0 + 10 * M)
    assert action is Action.FIRE


def view(**kw: Any) -> DeviceView:
    return DeviceView(device_id="d", device_type="purifier", now=T0, **kw)


def cond(doc: dict[str, Any]) -> Condition:
    return Condition.model_validate(doc)


@pytest.mark.parametrize(
    ("value", "was", "expect"),
    [
        (80, False, True),
        (60, False, False),
        (60, True, True),
        (50, True, False),
        (None, True, None),
    ],
)
def test_threshold_hysteresis(value: float | None, was: bool, expect: bool | None) -> None:
    latest = {} if value is None else {"pm25": value}
    assert evaluate(cond(PM), view(latest=latest), was).active is expect


def test_window_aggregates_trend_and_ratio() -> None:
    w = {
        WindowKey("pm25", timedelta(hours=1)): Agg(60, 40.0, 38.0, 38.0),
        WindowKey("fan_rpm", timedelta(hours=2), timedelta(hours=1)): Agg(60, 1000, 900, 1100),
        WindowKey("fan_rpm", timedelta(hours=1)): Agg(60, 700, 600, 800),
        WindowKey("motor_current_ma", timedelta(hours=6)): Agg(10, 300.0, 1, 1),
        WindowKey("fan_rpm", timedelta(hours=6)): Agg(10, 600.0, 1, 1),
    }
    stuck = {"threshold": {"metric": "pm25", "over": "1h", "agg": "spread", "below": 0.01}}
    assert evaluate(cond(stuck), view(windows=w), False).active is True
    falling = {"trend": {"metric": "fan_rpm", "window": "2h", "below": -200}}
    verdict = evaluate(cond(falling), view(windows=w), False)
    assert verdict.active is True and verdict.value == -300.0  # per hour
    ratio = {"ratio": {"numerator": "motor_current_ma", "denominator": "fan_rpm",
                       "over": "6h", "above": 0.42}}  # fmt: skip
    verdict = evaluate(cond(ratio), view(windows=w), False)
    assert verdict.active is True and verdict.value == 0.5
    empty = {"threshold": {"metric": "humidity_pct", "over": "1h", "agg": "mean", "above": 1}}
    assert evaluate(cond(empty), view(windows=w), False).active is None  # no data: no say


def test_absent_offline_events_predictions_and_combinations() -> None:
    quiet = view(last_received_at=T0 - timedelta(hours=25), online=False,
                 online_changed_at=T0 - timedelta(hours=2))  # fmt: skip
    assert evaluate(cond({"absent": {"for": "24h"}}), quiet, False).active is True
    assert evaluate(cond({"offline": {"for": "24h"}}), quiet, False).active is False
    assert evaluate(cond({"offline": {"for": "1h"}}), quiet, False).active is True
    assert evaluate(cond({"absent": {"for": "1h"}}), view(), False).active is None

    events = [EventSeen(T0 - 5 * M, "error_code", "E6"), EventSeen(T0 - 90 * M, "error_code", "P1")]
    e6 = cond({"event": {"codes": ["E6"], "within": "30m"}})
    p1 = cond({"event": {"codes": ["P1"], "within": "30m"}})
    assert evaluate(e6, view(events=events), False).active is True
    assert evaluate(p1, view(events=events), False).active is False  # too long ago

    soon = {"prediction": {"model": "filter_life", "output": "days_main", "below": 7, "clear": 14}}
    outputs = {("filter_life", "days_main"): 3.0}
    assert evaluate(cond(soon), view(outputs=outputs), False).active is True
    assert evaluate(cond(soon), view(), False).active is None

    both = {"all": [PM, {"threshold": {"metric": "fan_level", "above": 3}}]}
    either = {"any": [PM, {"threshold": {"metric": "fan_level", "above": 3}}]}
    latest = {"pm25": 90, "fan_level": 2}
    assert evaluate(cond(both), view(latest=latest), False).active is False
    assert evaluate(cond(either), view(latest=latest), False).active is True
    assert evaluate(cond(both), view(latest={"pm25": 90}), False).active is None
