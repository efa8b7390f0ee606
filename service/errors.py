"""Errors of the service room (a `db.errors.DomainError` each).

ServiceError
├── InvalidTransition     the lifecycle does not allow that move from this state
├── ConcurrentChange      someone changed the order first: read it again
├── NotTheAssignee        a technician acting on an order that is not theirs
├── InvalidAssignment     a technician who cannot take that order (territory, skill, state)
├── SlotUnavailable       a visit time that cannot be booked, and why
└── CompletionRefused     a completion report that cannot be accepted as it is
    ├── PartNotInStock    a part neither in the van nor at the outlet
    ├── SerialMismatch    the unit on site is not the registered device
    └── BadPhoto          not an image we accept, or too big
"""

from __future__ import annotations

from db.errors import DomainError


class ServiceError(DomainError):
    """Root of every error raised by `service`."""


class InvalidTransition(ServiceError):
    def __init__(self, order_id: int, state: object, to: object) -> None:
        from service.lifecycle import State, allowed

        frm = State(str(state))
        moves = allowed(frm)
        self.order_id, self.state, self.to = order_id, frm, to
        self.allowed = moves
        super().__init__(
            f"work order {order_id} is {frm.value}: it cannot go to {State(str(to)).value}; "
            + (f"allowed: {', '.join(moves)}" if moves else f"{frm.value} is final")
        )


class ConcurrentChange(ServiceError):
    def __init__(self, order_id: int, *, expected: object, found: object) -> None:
        self.order_id, self.expected, self.found = order_id, expected, found
        now = f"it is now {found}" if found is not None else "it changed meanwhile"
        super().__init__(f"work order {order_id} was {expected} when read, {now}: read it again")


class NotTheAssignee(ServiceError):
    def __init__(self, order_id: int, technician_id: str, assignee: str | None) -> None:
        super().__init__(
            f"work order {order_id} is assigned to {assignee or 'nobody'}, not {technician_id}"
        )


class InvalidAssignment(ServiceError):
    pass


class SlotUnavailable(ServiceError):
    def __init__(self, order_id: int, why: str) -> None:
        self.order_id, self.why = order_id, why
        super().__init__(f"work order {order_id}: cannot book that visit: {why}")


class CompletionRefused(ServiceError):
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
