"""Sending the notifications outbox: adapters from settings, a loop until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from db.database import Database
from fleetcare.outage import OUTAGE_ERRORS, Outage
from fleetcare.settings import NotifySettings
from service.delivery import LogAdapter, WebhookAdapter
from service.notifications import Adapter, DeliveryReport, NotifyPolicy, Outbox

log = logging.getLogger("fleetcare.notifier")


def make_outbox(db: Database, settings: NotifySettings) -> tuple[Outbox, WebhookAdapter | None]:
    """The outbox with the configured adapter for every channel: the webhook when one is
    set, else the log. Returns the webhook too, for the caller to close."""
    webhook = None
    adapter: Adapter = LogAdapter()
    if settings.webhook_url:
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        webhook = WebhookAdapter(settings.webhook_url, secret=secret)
        adapter = webhook
    policy = NotifyPolicy(weekly_cap=settings.weekly_cap, max_attempts=settings.max_attempts)
    return Outbox(db, {"*": adapter}, policy), webhook


async def run_notifier(
    outbox: Outbox, stop: asyncio.Event, *, interval_s: float = 5.0
) -> DeliveryReport:
    """Until `stop`: deliver what is due every `interval_s`; returns the totals."""
    total = DeliveryReport()
    outage = Outage(log, "notification delivery")
    while not stop.is_set():
        try:
            r = await outbox.deliver()
        except OUTAGE_ERRORS as exc:  # the outbox waits in the database: nothing lost
            outage.failed(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
            continue
        outage.ok()
        for name in ("sent", "held", "suppressed", "retrying", "failed"):
            setattr(total, name, getattr(total, name) + getattr(r, name))
        if r.sent or r.held or r.suppressed or r.failed:
            log.info(
                "notifications",
                extra={
                    "kv": {
                        "sent": r.sent,
                        "held": r.held,
                        "suppressed": r.suppressed,
                        "retrying": r.retrying,
                        "failed": r.failed,
                    }
                },
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
    return total
