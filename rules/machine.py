"""The alert state machine for one rule on one device: inactive → pending → firing → back.

Pure: given the persisted state, the condition's verdict and the time, it returns the
new state and what to do. The evaluator persists the state after every pass, so a
restart neither loses a pending duration nor fires twice.

* **Missing data changes nothing** (`verdict is None`): no alert storm when a device
  goes quiet, and no false "resolved" either. Silence is what the `absent` and
  `offline` conditions are for.
* **`for`**: the condition must hold at every evaluation for that long before the
  alert fires; a single false evaluation sends it back to inactive.
* **Flap damping**: `flap.changes` verdict changes within `flap.window` mark the
  alert flapping. A flapping alert does not resolve until the condition has been clear
  for a whole window, so a value dancing on the threshold makes one alert, not many.
* **Cooldown**: after an alert resolves, the rule may not fire again for the same
  device until `cooldown` has passed (it waits as pending).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from rules.spec import Rule


class Phase(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


class Action(StrEnum):
    NONE = "none"
    PENDING = "pending"  # the condition became true; waiting out `for` (or a cooldown)
    WITHDRAWN = "withdrawn"  # it went false while pending: nothing fired
    FIRE = "fire"
    RESOLVE = "resolve"


@dataclass(frozen=True, slots=True)
class RuleState:
    rule_id: str
    device_id: str
    active: bool = False  # the condition's last verdict (hysteresis lives in it)
    phase: Phase = Phase.INACTIVE
    since: datetime | None = None  # pending since, or firing since
    changes: tuple[datetime, ...] = field(default=())  # verdict changes in the flap window
    flapping: bool = False
    clear_since: datetime | None = None  # clear while firing and flapping, since
    cooldown_until: datetime | None = None
    value: float | None = None  # the value that decided, for the evidence
    evaluated_at: datetime | None = None


def step(
    state: RuleState, verdict: bool | None, rule: Rule, now: datetime, value: float | None = None
) -> tuple[RuleState, Action]:
    if verdict is None:
        return replace(state, evaluated_at=now), Action.NONE
    changes = tuple(t for t in state.changes if t > now - rule.flap.window)
    if verdict != state.active:
        changes = (*changes, now)
    flapping = state.flapping or len(changes) >= rule.flap.changes
    s = replace(
        state,
        active=verdict,
        changes=changes,
        flapping=flapping,
        value=value,
        evaluated_at=now,
    )
    cooling = s.cooldown_until is not None and now < s.cooldown_until

    if verdict:
        if s.phase is Phase.FIRING:
            return replace(s, clear_since=None), Action.NONE
        if s.phase is Phase.INACTIVE:
            s = replace(s, phase=Phase.PENDING, since=now)
            if rule.for_.total_seconds() > 0 or cooling:
                return s, Action.PENDING
        assert s.since is not None
        if now - s.since >= rule.for_ and not cooling:
            return replace(s, phase=Phase.FIRING, since=now, clear_since=None), Action.FIRE
        return s, Action.NONE

    if s.phase is Phase.PENDING:
        return replace(s, phase=Phase.INACTIVE, since=None), Action.WITHDRAWN
    if s.phase is Phase.FIRING:
        if s.flapping:
            clear_since = s.clear_since or now
            if now - clear_since < rule.flap.window:
                return replace(s, clear_since=clear_since), Action.NONE
        return (
            replace(
                s,
                phase=Phase.INACTIVE,
                since=None,
                flapping=False,
                clear_since=None,
                cooldown_until=now + rule.cooldown if rule.cooldown.total_seconds() else None,
            ),
            Action.RESOLVE,
        )
    return s, Action.NONE
