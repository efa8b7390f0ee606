"""Errors of the workorders package.

WorkordersError
├── DatabaseUnavailable   the database cannot be reached: retry later
├── NotMigrated           the schema is behind the code: run `fleetcare db upgrade`
├── NotFound              no such row
├── RegistryError         a registry change that is not allowed
├── InvalidTransition     the lifecycle does not allow that move from this state
├── ConcurrentChange      someone changed the order first: read it again
├── NotTheAssignee        a technician acting on an order that is not theirs
├── SlotUnavailable       a visit time that cannot be booked, and why
└── CompletionRefused     a completion report that cannot be accepted as it is
    ├── PartNotInStock    a part neither in the van nor at the outlet
    ├── SerialMismatch    the unit on site is not the registered device
    └── BadPhoto          not an image we accept, or too big
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


class NotTheAssignee(WorkordersError):
    def __init__(self, order_id: int, technician_id: str, assignee: str | None) -> None:
        super().__init__(
            f"work order {order_id} is assigned to {assignee or 'nobody'}, not {technician_id}"
        )


class InvalidAssignment(WorkordersError):
    pass


class SlotUnavailable(WorkordersError):
    def __init__(self, order_id: int, why: str) -> None:
        self.order_id, self.why = order_id, why
        super().__init__(f"work order {order_id}: cannot book that visit: {why}")


class CompletionRefused(WorkordersError):
    pass


class PartNotInStock(CompletionRefused):
    def __init__(self, sku: str, qty: int, technician_id: str, outlet_id: str) -> None:
        self.sku = sku
        super().__init__(
            f"{qty} × {sku} is neither in {technician_id}'s van nor at outlet {outlet_id}: "
            "record the part the stock holds, or restock first"
        )


class SerialMismatch(CompletionRefused):
    def __init__(self, device_id: str, registered: str, read: str) -> None:
        super().__init__(
            f"serial {read!r} read on site, but device {device_id} is registered with "
            f"{registered!r}: check the unit, or correct the registry"
        )


class BadPhoto(CompletionRefused):
    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"photo {name!r}: {why}")
