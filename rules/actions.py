"""What a firing alert does: the alert row, then (unless silenced or inhibited) the work
order. Shared by the evaluator and the per-message checks at ingest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from db.database import Database
from db.errors import NotFound
from rules.alerts import Alert, AlertStore, NewAlert
from rules.conditions import Verdict
from rules.spec import Rule
from service.lifecycle import Origin, State
from service.orders import OrderRequest, WorkOrders


@dataclass
class Tally:
    fired: int = 0
    silenced: int = 0
    inhibited: int = 0
    orders_opened: int = 0
    orders_joined: int = 0
    fired_rules: dict[str, int] = field(default_factory=dict)


def wall_clock() -> datetime:
    return datetime.now(UTC)


class AlertActions:
    """Alerts are timed by the clock the rules judge on (a replay's or an accelerated
    fleet's device time); the jobs they open by `job_clock`, the wall clock by default:
    a job is real work from the moment the engine opens it, so a replay of last month
    opens jobs due from today, not jobs born past their SLA."""

    def __init__(
        self, db: Database, *, actor: str = "rules", job_clock: Callable[[], datetime] = wall_clock
    ) -> None:
        self.alerts = AlertStore(db)
        self.orders = WorkOrders(db)
        self.actor = actor
        self.job_clock = job_clock

    def fire(
        self,
        rule: Rule,
        device_id: str,
        device_type: str,
        verdict: Verdict,
        now: datetime,
        tally: Tally,
        *,
        pending_since: datetime | None = None,
    ) -> bool:
        """Fire the rule's alert for the device; False when it was already firing."""
        evidence = {**verdict.evidence, "rule": rule.id, "severity": rule.severity}
        alert, created = self.alerts.fire(
            NewAlert(
                rule_id=rule.id,
                device_id=device_id,
                device_type=device_type,
                severity=rule.severity,
                problem_kind=rule.problem_kind,
                title=rule.title,
                pending_since=pending_since,
                fired_at=now,
                value=verdict.value,
                evidence=evidence,
            )
        )
        if not created:
            return False  # another evaluator, ingest, or this one before a crash fired it
        tally.fired += 1
        tally.fired_rules[rule.id] = tally.fired_rules.get(rule.id, 0) + 1
        if alert.silenced_by is not None:
            tally.silenced += 1
            return True
        self.open_job(alert, rule, now, tally)
        return True

    def follow_up(self, alert: Alert, rule: Rule, now: datetime, tally: Tally) -> None:
        """A firing alert with no job yet: open it once nothing holds it back any more
        (its silence ended, the device is now in the service registry)."""
        if self.alerts.get(alert.id).state != "firing":
            return  # resolved meanwhile
        if self.alerts.silenced(rule.id, alert.device_id, now) is None:
            self.open_job(alert, rule, now, tally)

    def open_job(self, alert: Alert, rule: Rule, now: datetime, tally: Tally) -> None:
        if rule.work_order.open == "none" or rule.problem_kind is None:
            return
        evidence = alert.evidence
        device_id = alert.device_id
        request = OrderRequest(
            device_id=device_id,
            problem_kind=rule.problem_kind,
            origin=Origin.AUTO,
            source=f"rule:{rule.id}",
            title=rule.title,
            description=rule.wording.get("en", ""),
            evidence=evidence,
            priority=rule.work_order.priority,
        )
        opened_at = self.job_clock()
        try:
            opened = self.orders.open_or_attach(request, actor=self.actor, now=opened_at)
        except NotFound as e:
            why = f"no work order: {e}"
            if alert.inhibited_by != why:
                self.alerts.annotate(alert.id, now, inhibited_by=why)
                tally.inhibited += 1
            return
        order = opened.order
        if not opened.created:
            # an open job for the problem inhibits the new alert: its evidence joins it
            tally.orders_joined += 1
            tally.inhibited += 1
            why = f"work order #{order.id} is already {order.state.value} for {rule.problem_kind}"
            self.alerts.annotate(alert.id, now, work_order_id=order.id, inhibited_by=why)
            return
        tally.orders_opened += 1
        if rule.work_order.open == "auto":
            self.orders.transition(
                order.id,
                State.OPEN,
                actor=self.actor,
                reason=f"rule {rule.id} opens jobs straight to dispatch",
                expect=State.PROPOSED,
                now=opened_at,
            )
        self.alerts.annotate(alert.id, now, work_order_id=order.id)
