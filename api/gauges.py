"""What service ops and whoever is on call watch, counted from the database as it is now:
jobs by state, jobs past their SLA, the review queue's oldest job, device commands and
customer messages not yet out, dead letters waiting for a decision, and the quality
early warnings raised lately (R&D's, through Alertmanager). Read at each
Prometheus scrape (api/metrics.py), so every API process answers the same."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from db.database import Database
from db.tables import LIVE_STATES, device_commands, notifications
from db.tables import work_orders as wo
from ingest.dead_letters import DeadLetterRepository
from service.lifecycle import State
from service.quality import QualityWarnings


@dataclass(frozen=True)
class ServiceGauges:
    orders_by_state: dict[str, int]
    overdue: int  # live jobs past their SLA's due time
    oldest_proposed_s: float  # how long the oldest job has waited for ops' review; 0: none
    commands_unsent: int
    oldest_unsent_command_s: float  # 0: none waiting
    notifications: dict[str, int]  # pending and failed, by status
    dead_letters_pending: dict[str, int]  # messages (repeats counted), by reason
    # (by, group) of each quality warning raised within QUALITY_WARNING_DAYS
    quality_warnings: list[tuple[str, str]] = field(default_factory=list)


QUALITY_WARNING_DAYS = 30  # how long a raised warning stays an alert


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


def read_gauges(db: Database, now: datetime) -> ServiceGauges:
    """Each count reads an index of its table."""
    with db.engine.connect() as conn:
        states: dict[str, int] = dict(
            conn.execute(sa.select(wo.c.state, sa.func.count()).group_by(wo.c.state)).all()
        )
        overdue = conn.execute(
            sa.select(sa.func.count()).where(wo.c.state.in_(LIVE_STATES), wo.c.due_at < now)
        ).scalar_one()
        proposed = conn.execute(
            sa.select(sa.func.min(wo.c.created_at)).where(wo.c.state == "proposed")
        ).scalar_one()
        unsent, oldest = conn.execute(
            sa.select(sa.func.count(), sa.func.min(device_commands.c.created_at)).where(
                device_commands.c.sent_at.is_(None)
            )
        ).one()
        told: dict[str, int] = dict(
            conn.execute(
                sa.select(notifications.c.status, sa.func.count())
                .where(notifications.c.status.in_(("pending", "failed")))
                .group_by(notifications.c.status)
            ).all()
        )
    return ServiceGauges(
        orders_by_state={s.value: states.get(s.value, 0) for s in State},
        overdue=overdue,
        oldest_proposed_s=_age(now, proposed),
        commands_unsent=unsent,
        oldest_unsent_command_s=_age(now, oldest),
        notifications={s: told.get(s, 0) for s in ("pending", "failed")},
        dead_letters_pending=DeadLetterRepository(db).counts(),
        quality_warnings=[
            (w.by, w.group)
            for w in QualityWarnings(db).list(since=now - timedelta(days=QUALITY_WARNING_DAYS))
        ],
    )
