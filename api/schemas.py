"""What the API says, per resource: the wire types (pydantic), with examples for the
OpenAPI page."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, StringConstraints

from service.lifecycle import State

Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
HHMM = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _iso_only(value: object) -> object:
    """Dates and times as ISO 8601 text, as the schema says (`format: date-time`):
    pydantic would also read a number as seconds since 1970."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("give an ISO 8601 date or date-time, e.g. 2026-11-25T10:00:00+08:00")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]
IsoDate = Annotated[date, BeforeValidator(_iso_only)]
# an id a silence matches on: present means something
MatchId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Body(BaseModel):
    """A request body: a field the route does not know is an error (422 naming it), not
    silently dropped, as the published schema says (no additional properties)."""

    model_config = ConfigDict(extra="forbid")


class FieldError(BaseModel):
    """One invalid field: where (`["query", "limit"]`), what is wrong, its kind."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An error, with what to do about it: a message, or for invalid fields one entry per
    field (422)."""

    detail: str | list[FieldError] = Field(examples=["device 'ap-9' not found"])


class DevicePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["ap-1"])
    device_type: str = Field(examples=["purifier"])
    serial: str | None = Field(default=None, examples=["SN-AP-1"])
    address: str | None = Field(default=None, examples=["1 Tianlin Rd"])
    model: str | None = Field(default=None, examples=["AP-100"])
    firmware: str | None = Field(default=None, examples=["2.1.0"])
    batch: str | None = Field(default=None, description="production lot", examples=["L2027-03"])
    manufactured_on: date | None = None


class ReadingPublic(BaseModel):
    name: str = Field(examples=["pm25"])
    value: Any = Field(examples=[12.5])
    unit: str = Field(examples=["µg/m³"])


Basis = Literal["measured", "typical_use"]
BASIS = (
    "measured: the date comes from this unit's own usage; typical_use: the unit has never "
    "reported its usage, so the date is a reminder from the fleet's typical use since the "
    "consumable was fitted (show it to the customer as an estimate)"
)


class FilterPublic(BaseModel):
    stage: str = Field(examples=["main"])
    name: str | None = Field(default=None, examples=["HEPA/carbon filter"])
    condition_pct: float | None = Field(
        default=None, description="Life left, per cent (100 new, 0 spent).", examples=[37.5]
    )
    status: str = Field(description="ok, warning or critical", examples=["warning"])
    predicted_exhaustion: datetime
    low: datetime | None = Field(default=None, description="80 % band, early end")
    high: datetime | None = Field(default=None, description="80 % band, late end")
    rated_exhaustion: datetime | None = Field(
        default=None, description="What rated life alone says: the baseline"
    )
    model_version: str | None = None
    basis: Basis = Field(default="measured", description=BASIS)


class ActiveProblem(BaseModel):
    title: str = Field(examples=["Filter predicted spent within two weeks"])
    severity: str = Field(examples=["info"])
    since: datetime


class JobPublic(BaseModel):
    id: int
    problem: str = Field(examples=["filter_replacement"])
    state: str = Field(examples=["scheduled"])
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    technician_id: str | None = None


class CardLine(BaseModel):
    """One line of the device family's health card (its profile says which, in what
    order and words): a metric's latest value, or a consumable's condition."""

    label: str = Field(examples=["Indoor PM2.5"])
    metric: str | None = Field(default=None, examples=["pm25"])
    value: Any = Field(default=None, examples=[12.5])
    unit: str | None = Field(default=None, examples=["µg/m³"])
    consumable: str | None = Field(default=None, examples=["main"])
    condition_pct: float | None = None
    status: str | None = Field(default=None, description="ok, warning or critical")
    predicted_exhaustion: datetime | None = None
    basis: Basis | None = Field(default=None, description=BASIS)


class DeviceHealth(BaseModel):
    device_id: str
    device_type: str
    online: bool
    last_seen: datetime | None
    readings: list[ReadingPublic]
    filters: list[FilterPublic]
    card: list[CardLine] = Field(
        default_factory=list, description="What the app shows, as the product profile says"
    )
    problems: list[ActiveProblem]
    open_job: JobPublic | None


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    checks: dict[str, str] = Field(default_factory=dict, examples=[{"database": "ok"}])


class OrderPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: str
    device_type: str
    problem_kind: str = Field(examples=["filter_replacement"])
    origin: str = Field(examples=["auto"])
    state: str = Field(examples=["proposed"])
    title: str
    priority: int
    territory_id: str | None = None
    technician_id: str | None = None
    created_at: datetime
    due_at: datetime | None = Field(
        default=None,
        description="The SLA's due time; a proposal's clock starts when ops approve it "
        "(until then only the requester's own deadline, if any)",
    )
    sla_started_at: datetime | None = None
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    package_id: int | None = Field(default=None, description="The filter package paying it")
    fulfilment: str | None = Field(
        default=None, description="`diy`: the filter is shipped and the customer fits it"
    )
    version: int


class Report(Body):
    """A job asked for by a person: the customer in the app, or an agent or ops for them."""

    device_id: str = Field(min_length=1, max_length=64, examples=["pur-0001"])
    problem_kind: str = Field(
        min_length=1,
        max_length=48,
        examples=["motor_wear"],
        description="One of the device's problems (GET /api/v1/devices/{id}/problems), "
        "or `inspection` (a visit to look) or `advice`",
    )
    description: str = Field(default="", max_length=2000, examples=["It rattles at speed 3"])
    photos: list[HttpUrl] = Field(
        default_factory=list, max_length=5, description="Addresses of attached photos"
    )
    channel: Literal["app", "phone", "ops"] | None = Field(
        default=None,
        description="How the job came in. A customer's is always `app`; an agent's or "
        "ops' defaults to `phone`.",
    )
    contact: str | None = Field(
        default=None, max_length=128, description="The caller's name or number (phone)"
    )
    preferred_time: str | None = Field(default=None, max_length=200, examples=["weekday mornings"])


class Reported(BaseModel):
    created: bool = Field(description="False: added to the live job for the same problem")
    order: OrderPublic


class ShopReceived(BaseModel):
    created: bool = Field(description="False: this shop order was received before")
    order: OrderPublic
    device_id: str
    customer_id: str


class ProblemChoice(BaseModel):
    kind: str = Field(examples=["motor_wear"])
    title: str = Field(examples=["Fan motor wear"])


class Reason(Body):
    reason: str = Field(min_length=1, max_length=500, examples=["duplicate of #12"])


class BulkIds(Body):
    ids: list[Id] = Field(min_length=1, max_length=500, examples=[[12, 13]])


class BulkResult(BaseModel):
    done: list[OrderPublic]
    refused: dict[int, str] = Field(
        default_factory=dict, description="order id -> why it was not moved"
    )


class Token(BaseModel):
    access_token: str
    token_type: str = Field(examples=["bearer"])
    expires_in: int = Field(description="Seconds the token is valid", examples=[28800])


class Sample(BaseModel):
    ts: datetime
    value: float | None


class Series(BaseModel):
    metric: str = Field(examples=["pm25"])
    unit: str = Field(examples=["µg/m³"])
    aggregation: str = Field(examples=["mean"])
    every_s: int = Field(description="Each point summarises this many seconds", examples=[3600])
    points: list[Sample]


class TelemetryHistory(BaseModel):
    device_id: str
    start: datetime
    end: datetime
    series: list[Series]


class SelfReplacedPublic(BaseModel):
    device_id: str
    stage: str = Field(examples=["main"])
    at: datetime
    cancelled_order: int | None = Field(
        default=None, description="The replacement job this made unnecessary, cancelled"
    )


class PreferencesPublic(BaseModel):
    channel: str = Field(examples=["app"])
    quiet_start: str | None = Field(default=None, examples=["21:30"])
    quiet_end: str | None = Field(default=None, examples=["08:00"])
    filter_package: bool = Field(
        description="A filter package is in force on one of your devices (buy or renew one "
        "at /api/v1/devices/{device_id}/packages)"
    )
    language: str = Field(examples=["zh-CN"])
    timezone: str = Field(examples=["Asia/Shanghai"])
    air_reports: bool = Field(
        description="The monthly household air report is sent to you (it can always be "
        "read at /api/v1/devices/{device_id}/air-report)"
    )


class PreferencesChange(Body):
    """Only what is given changes."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["app", "sms", "phone"] | None = None
    quiet_hours: tuple[HHMM, HHMM] | None = Field(
        default=None,
        description="Local [start, end], may span midnight",
        examples=[["21:30", "08:00"]],
    )
    clear_quiet_hours: bool = False
    air_reports: bool | None = Field(
        default=None, description="Send the monthly household air report (true) or not"
    )


class SlotPublic(BaseModel):
    start: datetime
    end: datetime
    before_due: bool = Field(description="Within the job's service-level deadline")
    label: str = Field(examples=["Tue 2026-11-24 10:00 Asia/Shanghai"])


class Booking(Body):
    start: IsoDateTime = Field(
        description="The visit's start, with its offset: an offered slot or another free time",
        examples=["2026-11-25T10:00:00+08:00"],
    )


class Rating(Body):
    stars: int = Field(ge=1, le=5, examples=[5])
    comment: str = Field(default="", max_length=2000)
    complaint: bool | None = Field(
        default=None, description="Defaults to a complaint for 1 or 2 stars"
    )
    recommend: int | None = Field(
        default=None, ge=0, le=10, description="How likely to recommend us, 0-10 (NPS)"
    )


class CallRecord(Body):
    """What an agent's callback found."""

    outcome: Literal["satisfied", "not_satisfied", "no_answer"]
    stars: int | None = Field(default=None, ge=1, le=5, description="If the customer gave any")
    recommend: int | None = Field(default=None, ge=0, le=10, description="0-10 (NPS)")
    comment: str = Field(default="", max_length=2000)


class ComplaintPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    order_id: int | None
    device_id: str | None
    customer_id: str | None
    outlet_id: str | None
    technician_id: str | None
    source: str = Field(examples=["callback"])
    level: str = Field(examples=["outlet"], description="outlet, region or maker")
    state: str = Field(examples=["open"])
    description: str
    opened_by: str
    opened_at: datetime
    due_at: datetime = Field(description="When this level's time to resolve runs out")
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    upheld: bool | None


class CallbackOutcome(BaseModel):
    order: OrderPublic
    outcome: str | None = Field(description="None: nobody answered, tries are left")
    attempts: int = Field(description="Calls that reached nobody so far")
    complaint: ComplaintPublic | None = Field(description="Opened by a not-satisfied outcome")


class CallbackDuePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    order_id: int
    device_id: str
    problem_kind: str
    customer_id: str | None
    customer_name: str | None
    phone: str | None
    outlet_id: str | None
    technician_id: str | None
    completed_at: datetime
    attempts: int
    last_attempt_at: datetime | None


class ComplaintEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    action: str = Field(examples=["escalated"])
    level: str
    note: str


class ComplaintDetail(ComplaintPublic):
    history: list[ComplaintEventPublic]


class JobComplaint(Body):
    """A complaint about a job."""

    order_id: int = Field(ge=1, le=2**31 - 1)
    description: str = Field(min_length=1, max_length=4000)


class DeviceComplaint(Body):
    """A complaint about a device, with no job in question."""

    device_id: str = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1, max_length=4000)


NewComplaint = JobComplaint | DeviceComplaint


class Resolution(Body):
    resolution: str = Field(min_length=1, max_length=4000, examples=["filter refitted"])
    upheld: bool = Field(description="The customer was right: the job's held commission is forfeit")


class HistoryEvent(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str
    reason: str


class OrderDetail(OrderPublic):
    sla: str | None = Field(
        description="on_track, at_risk, breached or met (null for customers)",
        examples=["on_track"],
    )
    unassignable_reason: str | None = None
    evidence: list[dict[str, Any]] = Field(
        default_factory=list, description="What raised it: the rule or model and its readings"
    )
    history: list[HistoryEvent] = Field(default_factory=list)
    offered_slots: list[SlotPublic] = Field(default_factory=list)
    allowed: list[str] = Field(default_factory=list, description="The moves it may make now")


class Assign(Body):
    technician_id: str = Field(min_length=1, examples=["tech-1"])
    reason: str = Field(default="", max_length=500)


class Transition(Body):
    to: State = Field(description="The next state", examples=["on_hold"])
    reason: str = Field(default="", max_length=500)


class BulkReason(BulkIds):
    reason: str = Field(min_length=1, max_length=500)


class OnTheWay(Body):
    eta: IsoDateTime = Field(description="When you expect to arrive, with its offset")


class AlertPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    rule_id: str
    device_id: str
    state: str
    severity: str
    title: str
    fired_at: datetime
    resolved_at: datetime | None = None
    value: float | None = None
    silenced_by: int | None = None
    work_order_id: int | None = None


class SilenceIn(Body):
    """What to mute (a rule, a device or a customer: at least one), until when, and why.
    `ends_at` must be after `starts_at` (default: now)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": [k], "properties": {k: {"type": "string"}}}
                for k in ("rule_id", "device_id", "customer_id")
            ]
        },
    )

    ends_at: IsoDateTime
    comment: str = Field(min_length=1, max_length=500)
    rule_id: MatchId | None = None
    device_id: MatchId | None = None
    customer_id: MatchId | None = None
    starts_at: IsoDateTime | None = None


class SilencePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    rule_id: str | None
    device_id: str | None
    customer_id: str | None
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str


class DeadLetterPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    topic: str
    reason: str
    detail: str
    device_id: str | None
    status: str
    first_seen_at: datetime
    last_seen_at: datetime
    count: int = Field(description="How many times this exact message came")
    payload_preview: str = Field(description="The first 500 bytes, as text")


class ReplayResult(BaseModel):
    stored: list[int]
    still_rejected: dict[int, str]


class ReplayIds(Body):
    ids: list[Id] = Field(min_length=1, max_length=1000)


# -- filter packages ---------------------------------------------------------------------
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
SaleId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


class PlanPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    applies_to: str = Field(examples=["model:KJ500G"], description="model:<code> or type:<family>")
    covers: list[str] = Field(description="The filter replacements it pays; empty: every one")
    replacements: int | None = Field(description="How many in its term; null: as many as due")
    months: int
    price_cents: int
    diy: bool = Field(description="May be taken as shipped filters the customer fits")
    active: bool


class PreferredTimes(Body):
    """When package visits suit the customer (local time); empty: any time."""

    days: list[Weekday] = Field(default_factory=list, max_length=7, examples=[["sat", "sun"]])
    start: HHMM | None = Field(default=None, examples=["09:00"], description="From...")
    end: HHMM | None = Field(default=None, examples=["12:00"], description="...by")


class PackagePublic(BaseModel):
    id: int
    sale_id: str
    device_id: str
    customer_id: str
    plan_id: str
    status: Literal["upcoming", "active", "used_up", "expired"]
    starts_on: date
    ends_on: date = Field(description="The first day it no longer covers")
    covers: list[str]
    replacements: int | None
    used: int
    remaining: int | None
    price_cents: int
    fulfilment: Literal["visit", "diy"]
    preferred: PreferredTimes
    channel: str
    sold_by: str
    sold_at: datetime
    renews_id: int | None
    renewed_by_id: int | None


class PackageSale(Body):
    """Sell a plan for the device: the customer in the app, or an agent for them."""

    plan_id: str = Field(min_length=1, max_length=64)
    sale_id: SaleId = Field(
        description="The seller's own id for this sale: sending it again is the same sale"
    )
    fulfilment: Literal["visit", "diy"] = "visit"
    preferred: PreferredTimes | None = None


class PackageRenewal(Body):
    sale_id: SaleId
    plan_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="Another plan; default the same"
    )


class PackageChange(Body):
    """Only what is given changes."""

    fulfilment: Literal["visit", "diy"] | None = None
    preferred: PreferredTimes | None = None


class ShipmentIn(Body):
    carrier: str = Field(min_length=1, max_length=64, pattern=r"\S", examples=["SF Express"])
    tracking: str = Field(min_length=1, max_length=64, pattern=r"\S", examples=["SF1234567890"])


class ShipmentDue(BaseModel):
    """A diy replacement: waiting to ship (`open`), or shipped and not yet fitted."""

    order_id: int
    device_id: str
    customer_id: str | None
    outlet_id: str | None
    problem_kind: str
    state: str
    created_at: datetime
    due_at: datetime | None
    carrier: str | None
    tracking: str | None
    shipped_at: datetime | None


# -- the outlet network ------------------------------------------------------------------
class OutletNodePublic(BaseModel):
    id: str
    name: str
    timezone: str
    accept_hours: int | None = Field(description="Hours to accept a job; null: takes them at once")
    technicians: list[str]


class RegionPublic(BaseModel):
    id: str | None = Field(description="null: outlets in no region")
    name: str
    outlets: list[OutletNodePublic]


class OfferPublic(BaseModel):
    id: int
    order_id: int
    outlet_id: str
    offered_at: datetime
    due_at: datetime
    state: Literal["offered", "accepted", "declined", "expired"]
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None


class OutletAnswer(Body):
    """The outlet's answer to a job offered to it."""

    accept: bool
    reason: str = Field(default="", max_length=500, description="Why not (required to decline)")


class OutletChoice(Body):
    outlet_id: str = Field(min_length=1, max_length=64)
    reason: str = Field(default="", max_length=500)


class PhotoPublic(BaseModel):
    id: int
    order_id: int
    stage: Literal["intake", "completion"] = Field(
        description="intake: attached to the report; completion: the technician's"
    )
    content_type: str
    size: int
    sha256: str
    added_by: str | None
    added_at: datetime | None
    url: str = Field(description="Where to fetch it (with the same credentials)")


# -- the household's monthly air report ----------------------------------------------------
class _Report(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class AirDay(_Report):
    day: date
    mean: float
    max: float
    hours_out: int = Field(description="Hours whose mean was out of bounds")
    out: bool = Field(description="The day's mean was out of bounds")


class FilterEffectPublic(_Report):
    replaced_at: datetime
    before_mean: float = Field(description="Mean over the week before the replacement")
    after_mean: float = Field(description="Mean over the week after it")
    before_share_out: float
    after_share_out: float
    change: float = Field(description="Relative change of the mean (-0.4: 40 % lower)")


class NeighbourhoodPublic(_Report):
    homes: int = Field(description="Households it is formed from (never fewer than 10)")
    yours: tuple[float, float] = Field(
        description="Your share of time out of bounds and your monthly mean"
    )
    share_out: tuple[float, float, float] = Field(
        description="Quartiles (25th, 50th, 75th percentile) of the share of time out of bounds"
    )
    mean: tuple[float, float, float] = Field(description="Quartiles of the monthly mean")
    better_than: float = Field(
        description="Share of the other homes whose air was out of bounds longer than yours"
    )
    by_hour: list[float | None] = Field(description="Median by local hour of day, 0-23")


class AirMetricReport(_Report):
    metric: str = Field(examples=["pm25"])
    label: str
    unit: str
    above: float | None = Field(description="Out of bounds above this")
    below: float | None = Field(description="Out of bounds below this")
    guideline: str
    hours: int = Field(description="Hours with readings")
    mean: float | None
    hours_out: int
    days_out: int
    share_out: float | None = Field(description="Share of the hours with readings out of bounds")
    by_hour: list[float | None] = Field(description="Mean by local hour of day, 0-23")
    days: list[AirDay]
    neighbourhood: NeighbourhoodPublic | None
    neighbourhood_note: str = Field(description="Why there is no neighbourhood, if there is none")
    filter_effect: FilterEffectPublic | None


class AdvicePublic(_Report):
    code: Literal["out_of_bounds", "filter_due", "ventilate", "all_good"]
    text: str


class AirReportPublic(_Report):
    device_id: str
    device_type: str
    month: str = Field(examples=["2026-11"])
    timezone: str = Field(description="The customer's: the month, days and hours are local")
    start: datetime
    end: datetime
    metrics: list[AirMetricReport]
    advice: list[AdvicePublic]
