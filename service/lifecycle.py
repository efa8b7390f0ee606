"""The work order's life: an explicit state machine (`TRANSITIONS`).

The main line: proposed → open → assigned → accepted → scheduled → in_progress →
completed → closed. Around it: ops reject a proposal; a technician declines (back to
open, for the next candidate); a slot is rescheduled; an order goes on hold and resumes;
any live order can be cancelled.

`proposed` is what rules and models open: it waits for service ops to approve it. Live
states count for "one open order per device and problem kind", which the database
enforces with a partial unique index.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    PROPOSED = "proposed"
    OPEN = "open"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    CLOSED = "closed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class Origin(StrEnum):
    AUTO = "auto"  # rules and models, with their evidence
    APP = "app"
    PHONE = "phone"
    OPS = "ops"
    SHOP = "shop"  # a shop's order for an installation


# state -> {allowed next state: the verb the audit trail records}
TRANSITIONS: dict[State, dict[State, str]] = {
    State.PROPOSED: {State.OPEN: "approve", State.REJECTED: "reject", State.CANCELLED: "cancel"},
    State.OPEN: {
        State.ASSIGNED: "assign",
        State.IN_PROGRESS: "ship",  # a diy replacement: its filter is on the way
        State.ON_HOLD: "hold",
        State.CANCELLED: "cancel",
    },
    State.ASSIGNED: {
        State.ACCEPTED: "accept",
        State.OPEN: "decline",  # back to dispatch, to the next candidate
        State.ON_HOLD: "hold",
        State.CANCELLED: "cancel",
    },
    State.ACCEPTED: {
        State.SCHEDULED: "schedule",
        State.OPEN: "unassign",
        State.ON_HOLD: "hold",
        State.CANCELLED: "cancel",
    },
    State.SCHEDULED: {
        State.SCHEDULED: "reschedule",
        State.IN_PROGRESS: "start",
        State.OPEN: "unassign",
        State.ON_HOLD: "hold",
        State.CANCELLED: "cancel",
    },
    State.IN_PROGRESS: {State.COMPLETED: "complete", State.ON_HOLD: "hold"},
    State.ON_HOLD: {State.OPEN: "resume", State.CANCELLED: "cancel"},
    State.COMPLETED: {State.CLOSED: "close"},
    State.CLOSED: {},
    State.REJECTED: {},
    State.CANCELLED: {},
}
LIVE = frozenset(
    s for s in State if s not in (State.COMPLETED, State.CLOSED, State.REJECTED, State.CANCELLED)
)
TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def initial_state(origin: Origin) -> State:
    """Auto-generated orders wait for ops review; a customer's or ops' own request is open."""
    return State.PROPOSED if origin is Origin.AUTO else State.OPEN


def verb(frm: State, to: State) -> str | None:
    return TRANSITIONS[frm].get(to)


def allowed(frm: State) -> list[str]:
    return [f"{v} → {s.value}" for s, v in TRANSITIONS[frm].items()]
