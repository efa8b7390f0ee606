"""Quality analytics for R&D (`service.quality`): failure rates per 1,000 units in
service by model, firmware, batch or region; time to first failure; one group's rate
against another's. Fleet-wide, so ops without territory limits or admin; JSON, or CSV
with `format=csv`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from api.deps import Db, Ops, require_unrestricted
from api.routes.ops import EARLIEST, LATEST, REFUSED
from api.schemas import IsoDate
from service.csvout import dataclass_csv
from service.quality import (
    ModeRow,
    QualityBy,
    RateRow,
    compare,
    failure_modes,
    failure_rates,
    failures,
    month_of,
    parts_fitted,
    survival,
    units,
)

router = APIRouter(prefix="/api/v1/quality", tags=["quality"])
MAX_MONTHS = 120  # a rate table longer than ten years is a mistake in the dates
CSV_OR_JSON: dict[int | str, dict[str, Any]] = {
    **REFUSED,
    200: {
        "description": "JSON rows, or CSV with format=csv",
        "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
    },
}


def _range(start: date | None, end: date | None) -> tuple[date, date]:
    """The period asked for, within the years the engine knows and at most its last
    `MAX_MONTHS` months; start after end is an empty period (no rows), as for the KPIs."""
    today = datetime.now(UTC).date()
    end = min(end or today, LATEST)
    start = max(start or date(end.year - 1, end.month, 1), EARLIEST)
    return max(start, month_of(end, back=MAX_MONTHS - 1)), end


def _rows(row_type: type[Any], rows: Sequence[Any], format: str) -> Any:
    if format == "csv":
        return PlainTextResponse(dataclass_csv(row_type, rows), media_type="text/csv")
    return [asdict(r) for r in rows]


@router.get("/failure-rates", responses=CSV_OR_JSON)
async def get_failure_rates(
    who: Ops,
    db: Db,
    by: QualityBy = QualityBy.MODEL,
    start: Annotated[IsoDate | None, Query(description="Default: 12 months back")] = None,
    end: Annotated[IsoDate | None, Query(description="Its month included; default today")] = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """Per group and month: units in service, confirmed failures (jobs technicians closed
    as fixed, filters and service visits aside) and failures per 1,000 units. At most the
    range's last 120 months; start after end is an empty table."""
    require_unrestricted(who)
    a, b = _range(start, end)
    if a > b:
        return _rows(RateRow, [], format)

    def run() -> list[RateRow]:
        return failure_rates(units(db), failures(db), by, a, b)

    return _rows(RateRow, await asyncio.to_thread(run), format)


@router.get("/failure-modes", responses=CSV_OR_JSON)
async def get_failure_modes(
    who: Ops,
    db: Db,
    by: QualityBy = QualityBy.MODEL,
    top: Annotated[int, Query(ge=1, le=50)] = 5,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """Per group: its most frequent failure modes (share of its failures) and the parts
    most fitted on them (share of those parts), over every failure recorded."""
    require_unrestricted(who)

    def run() -> list[ModeRow]:
        found = failures(db)
        fitted = parts_fitted(db, (f.order_id for f in found if f.order_id is not None))
        return failure_modes(units(db), found, by, fitted, top=top)

    return _rows(ModeRow, await asyncio.to_thread(run), format)


@router.get("/survival", responses=REFUSED)
async def get_survival(
    who: Ops,
    db: Db,
    by: QualityBy = QualityBy.MODEL,
    asof: Annotated[IsoDate | None, Query(description="Default: today")] = None,
) -> list[dict[str, Any]]:
    """Time to first failure per group (Kaplan–Meier): the share of units without a
    failure after each day in service, with a 95 % band; units still healthy count
    until `asof` (censored). The median is null while more than half never failed."""
    require_unrestricted(who)
    day = min(asof or datetime.now(UTC).date(), LATEST)
    curves = await asyncio.to_thread(lambda: survival(units(db), failures(db), by, day))
    return [asdict(c) for c in curves]


@router.get("/compare", responses=REFUSED)
async def get_comparison(
    who: Ops,
    db: Db,
    a: Annotated[str, Query(min_length=1, max_length=64, description="e.g. a firmware")],
    b: Annotated[str, Query(min_length=1, max_length=64, description="what a is set against")],
    by: QualityBy = QualityBy.FIRMWARE,
    start: Annotated[IsoDate | None, Query(description="Default: 12 months back")] = None,
    end: Annotated[IsoDate | None, Query(description="Exclusive; default today")] = None,
) -> dict[str, Any]:
    """Is `a`'s failure rate really higher than `b`'s? Failures per unit-month of each,
    the rate ratio with its 95 % interval and the exact test of equal rates."""
    require_unrestricted(who)
    lo, hi = _range(start, end)  # an empty period: no unit-months, no verdict
    found = await asyncio.to_thread(lambda: compare(units(db), failures(db), by, a, b, lo, hi))
    return asdict(found)
