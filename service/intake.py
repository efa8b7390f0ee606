"""Jobs a person asks for: a customer in the app, a call-centre agent on the phone, ops.

Every channel ends in the same queue as the rules' jobs, through `WorkOrders.open_or_attach`:
one live job per device and problem, whatever the channel and however many ask at once
(a second report, from any channel, is added to the live job as evidence). What a person
may ask for on a device is what its product profile says can go wrong, plus a visit to
look at it (`inspection`) and advice on using it (`advice`). A job a person asked for is
open at once (not waiting for review, as a rule's proposal does), and the customer hears
of it at once on their channel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa

from db.errors import DomainError, NotFound
from db.tables import devices
from service.lifecycle import Origin
from service.orders import Opened, OrderRequest, WorkOrders
from telemetry.profile import ProfileSet

# problems any device can have, beside those its profile names
GENERAL_PROBLEMS: Mapping[str, str] = {
    "inspection": "Visit to look at the device",
    "advice": "Advice on using the device",
}


def _noun(name: str) -> str:
    """ "Sediment cartridge" inside a sentence: "sediment cartridge" (but "RO membrane")."""
    return name[0].lower() + name[1:] if name[1:2].islower() else name


class Channel(StrEnum):
    APP = "app"  # the customer, in the maker's app
    PHONE = "phone"  # a call-centre agent, for the customer on the line
    OPS = "ops"  # service ops, on their own initiative


_ORIGIN = {Channel.APP: Origin.APP, Channel.PHONE: Origin.PHONE, Channel.OPS: Origin.OPS}


class UnknownProblem(DomainError):
    """A problem the device's profile does not name, with those it does."""

    def __init__(self, problem_kind: str, device_type: str, known: Sequence[str]) -> None:
        self.problem_kind, self.device_type, self.known = problem_kind, device_type, known
        super().__init__(
            f"problem {problem_kind!r} is not one a {device_type} can have; "
            f"choose one of: {', '.join(known)}"
        )


@dataclass(frozen=True, kw_only=True)
class Report:
    """Someone asking for a job on a device."""

    device_id: str
    problem_kind: str
    channel: Channel
    reporter: str  # who asked: "customer:{id}" or the agent's user id
    description: str = ""
    photos: Sequence[str] = ()  # addresses of the photos the customer attached
    contact: str | None = None  # the caller's name or number, for a phone report
    preferred_time: str | None = None  # in the customer's words ("weekday mornings")


class Intake:
    def __init__(self, orders: WorkOrders, profiles: ProfileSet) -> None:
        self.orders = orders
        self.profiles = profiles

    def problems_for(self, device_type: str) -> dict[str, str]:
        """What may be asked for on a device of this type: problem kind -> title."""
        profile = self.profiles.get(device_type)
        named: dict[str, str] = {}
        if profile is not None:
            named.update(
                (c.problem, f"Replace the {_noun(c.name)}") for c in profile.doc.consumables
            )
            named.update((p.kind, p.title) for p in profile.doc.problems)
        return {**named, **GENERAL_PROBLEMS}

    def device_type(self, device_id: str) -> str:
        with self.orders.db.engine.connect() as conn:
            found = conn.execute(
                sa.select(devices.c.device_type).where(devices.c.id == device_id)
            ).scalar_one_or_none()
        if found is None:
            raise NotFound("device", device_id)
        return str(found)

    def report(self, r: Report, *, now: datetime | None = None) -> Opened:
        """Open the job, or add this report to the live job for the same problem."""
        device_type = self.device_type(r.device_id)
        problems = self.problems_for(device_type)
        title = problems.get(r.problem_kind)
        if title is None:
            raise UnknownProblem(r.problem_kind, device_type, sorted(problems))
        evidence: dict[str, object] = {"channel": r.channel.value, "reported_by": r.reporter}
        if r.description:
            evidence["description"] = r.description
        if r.photos:
            evidence["photos"] = list(r.photos)
        if r.contact:
            evidence["contact"] = r.contact
        if r.preferred_time:
            evidence["preferred_time"] = r.preferred_time
        return self.orders.open_or_attach(
            OrderRequest(
                device_id=r.device_id,
                problem_kind=r.problem_kind,
                origin=_ORIGIN[r.channel],
                source=r.reporter,
                title=title,
                description=r.description,
                evidence=evidence,
            ),
            actor=r.reporter,
            now=now,
        )
