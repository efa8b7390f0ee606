"""What the API says, per resource: the wire types (pydantic), with examples for the
OpenAPI page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Problem(BaseModel):
    """An error, with what to do about it."""

    detail: str = Field(examples=["device 'ap-9' not found"])


class DevicePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["ap-1"])
    device_type: str = Field(examples=["purifier"])
    serial: str | None = Field(default=None, examples=["SN-AP-1"])
    address: str | None = Field(default=None, examples=["1 Tianlin Rd"])


class ReadingPublic(BaseModel):
    name: str = Field(examples=["pm25"])
    value: Any = Field(examples=[12.5])
    unit: str = Field(examples=["µg/m³"])


class FilterPublic(BaseModel):
    stage: str = Field(examples=["main"])
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


class DeviceHealth(BaseModel):
    device_id: str
    device_type: str
    online: bool
    last_seen: datetime | None
    readings: list[ReadingPublic]
    filters: list[FilterPublic]
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
    due_at: datetime | None = None
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    version: int


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=500, examples=["duplicate of #12"])


class BulkIds(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=500, examples=[[12, 13]])


class BulkResult(BaseModel):
    done: list[OrderPublic]
    refused: dict[int, str] = Field(
        default_factory=dict, description="order id -> why it was not moved"
    )
