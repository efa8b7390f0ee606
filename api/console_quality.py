"""The console's quality page for R&D: failure rates per 1,000 units in service by
month, time to first failure, the top failure modes and parts, grouped by model,
firmware, batch or region (`service.quality`); CSV links to the same API rows."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console import OpsUser, page
from api.deps import Db, require_unrestricted
from service.quality import (
    ModeRow,
    QualityBy,
    QualityWarnings,
    RaisedWarning,
    SurvivalCurve,
    failure_modes,
    failure_rates,
    failures,
    month_of,
    parts_fitted,
    survival,
    units,
)

router = APIRouter(prefix="/console", include_in_schema=False)
MONTHS_SHOWN = 12


@dataclass(frozen=True, slots=True)
class GroupSummary:
    group: str
    units: int  # in service in the last month shown
    failures: int  # in the months shown
    per_1000_month: float | None  # failures per 1,000 unit-months over the months shown
    median_days: int | None  # to the first failure
    healthy_after_year: float | None  # share without a failure after 365 days in service


def _year_point(curve: SurvivalCurve) -> float | None:
    """The share still without a failure after a year in service; None while no unit
    has been watched that long (unless none is left by then)."""
    before = [p.survival for p in curve.points if p.day <= 365]
    s = before[-1] if before else 1.0
    return s if curve.followed_days >= 365 or s == 0.0 else None


@router.get("/quality", response_class=HTMLResponse)
async def quality_page(
    request: Request, who: OpsUser, db: Db, by: QualityBy = QualityBy.MODEL
) -> HTMLResponse:
    require_unrestricted(who)
    today = datetime.now(UTC).date()
    start = month_of(today, back=MONTHS_SHOWN)

    def run() -> tuple[list[GroupSummary], list[ModeRow], list[RaisedWarning]]:
        fleet, found = units(db), failures(db)
        rates = failure_rates(fleet, found, by, start, today)
        curves = {c.group: c for c in survival(fleet, found, by, today)}
        fitted = parts_fitted(db, (f.order_id for f in found if f.order_id is not None))
        summary = []
        for g in sorted({r.group for r in rates}):
            mine = [r for r in rates if r.group == g]
            exposure = sum(r.units for r in mine)
            k = sum(r.failures for r in mine)
            curve = curves.get(g)
            summary.append(
                GroupSummary(
                    g,
                    mine[-1].units,
                    k,
                    round(1000 * k / exposure, 2) if exposure else None,
                    curve.median_days if curve else None,
                    _year_point(curve) if curve else None,
                )
            )
        return summary, failure_modes(fleet, found, by, fitted), QualityWarnings(db).list()

    summary, modes, warnings = await asyncio.to_thread(run)
    query = {"by": by.value, "start": start.isoformat(), "end": today.isoformat()}
    return page(
        request,
        "quality.html",
        who,
        title=f"Quality by {by.value.replace('_', ' ')}, last {MONTHS_SHOWN} months",
        by=by.value,
        choices=[b.value for b in QualityBy],
        summary=summary,
        modes=modes,
        warnings=warnings,
        rates_url=f"/api/v1/quality/failure-rates?{urlencode(query)}",
        survival_url=f"/api/v1/quality/survival?{urlencode({'by': by.value})}",
        modes_url=f"/api/v1/quality/failure-modes?{urlencode({'by': by.value})}",
    )
