"""Errors of the workorders package.

WorkordersError
├── DatabaseUnavailable   the database cannot be reached: retry later
├── NotMigrated           the schema is behind the code: run `fleetcare db upgrade`
├── NotFound              no such row
├── RegistryError         a registry change that is not allowed
├── InvalidTransition     the lifecycle does not allow that move from this state
└── ConcurrentChange      someone changed the order first: read it again
"""

from __future__ import annotations


class WorkordersError(Exception):
    """Root of every error raised by `workorders`."""


class DatabaseUnavailable(WorkordersError):
    pass


class NotMigrated(WorkordersError):
    def __init__(self, url: str, current: str | None, head: str) -> None:
        super().__init__(
            f"database {url} is at schema revision {current or 'none'}, the code needs {head}: "
            "run `fleetcare db upgrade`"
        )


class NotFound(WorkordersError):
    def __init__(self, what: str, key: object) -> None:
        super().__init__(f"{what} {key!r} not found")
        self.what = what
        self.key = key


class RegistryError(WorkordersError):
    pass


class InvalidTransition(WorkordersError):
    def __init__(self, order_id: int, state: object, to: object) -> None:
        from workorders.lifecycle import State, allowed

        frm = State(str(state))
        moves = allowed(frm)
        self.order_id, self.state, self.to = order_id, frm, to
        self.allowed = moves
        super().__init__(
            f"work order {order_id} is {frm.value}: it cannot go to {State(str(to)).value}; "
            + (f"allowed: {', '.join(moves)}" if moves else f"{frm.value} is final")
        )


class ConcurrentChange(WorkordersError):
    def __init__(self, order_id: int, *, expected: object, found: object) -> None:
        self.order_id, self.expected, self.found = order_id, expected, found
        now = f"it is now {found}" if found is not None else "it changed meanwhile"
        super().__init__(f"work order {order_id} was {expected} when read, {now}: read it again")
