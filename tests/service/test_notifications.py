"""The notifications outbox: channel by preference, one message per key, held for quiet
hours, capped per week, retried, and handed to real adapters (a log, a webhook)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import sqlalchemy as sa

from db.database import Database
from db.tables import notifications
from service.appointments import Appointments
from service.delivery import LogAdapter, WebhookAdapter, signature
from service.lifecycle import Origin, State
from service.messages import Kind, render
from service.notifications import DeliveryFailed, NotifyPolicy, OutboundMessage, Outbox, enqueue
from service.orders import WorkOrders
from tests.service.helpers import accepted, opened

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
NIGHT = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai


class Inbox:
    """An adapter that keeps what it is handed (and can be told to fail)."""

    def __init__(self, fail: int = 0) -> None:
        self.got: list[OutboundMessage] = []
        self.fail = fail

    async def send(self, message: OutboundMessage) -> None:
        if self.fail:
            self.fail -= 1
            raise DeliveryFailed("gateway said no")
        self.got.append(message)


def deliver(db: Database, inbox: Inbox, now: datetime, **policy: Any) -> Any:
    return asyncio.run(Outbox(db, {"*": inbox}, NotifyPolicy(**policy)).deliver(now))


def queue(db: Database, customer: str, kind: Kind, now: datetime, key: str) -> int | None:
    with db.engine.begin() as conn:
        return enqueue(conn, customer_id=customer, kind=kind, data={}, now=now, key=key)


def rows(db: Database) -> list[Any]:
    with db.engine.connect() as conn:
        return conn.execute(sa.select(notifications).order_by(notifications.c.id)).all()


def test_a_job_is_announced_when_ops_approve_it_not_while_proposed(world: Database) -> None:
    order = opened(world, "ap-1", "filter_replacement", NOW, origin=Origin.AUTO)
    assert rows(world) == []  # ops may still reject it: the customer hears nothing
    WorkOrders(world).transition(order, State.OPEN, actor="ops", now=NOW)
    assert [(r.kind, r.order_id) for r in rows(world)] == [("job_opened", order)]


def test_the_customer_who_reported_it_hears_at_once(world: Database) -> None:
    order = opened(world, "ap-2", "filter_replacement", NOW, origin=Origin.APP)
    inbox = Inbox()
    report = deliver(world, inbox, NOW)
    assert report.sent == 1 and report.by_channel == {"sms": 1}  # c-sms prefers SMS
    (msg,) = inbox.got
    assert (msg.kind, msg.order_id, msg.channel, msg.phone) == (
        Kind.JOB_OPENED,
        order,
        "sms",
        "+8613800000000",
    )
    assert f"#{order}" in msg.text and "air purifier" in msg.text
    assert deliver(world, inbox, NOW).sent == 0  # sent once


def test_the_same_message_is_queued_once(world: Database) -> None:
    assert queue(world, "c-app", Kind.SLOT_PROPOSED, NOW, "x") is not None
    assert queue(world, "c-app", Kind.SLOT_PROPOSED, NOW, "x") is None
    assert queue(world, "c-app", Kind.SLOT_PROPOSED, NOW, "y") is not None
    assert len(rows(world)) == 2


def test_quiet_hours_hold_a_message_until_they_end(world: Database) -> None:
    queue(world, "c-app", Kind.RATING_REQUEST, NIGHT, "1")  # 23:00 in Shanghai
    inbox = Inbox()
    assert deliver(world, inbox, NIGHT).held == 1
    (held,) = rows(world)
    assert held.status == "pending" and "quiet hours" in held.note
    morning = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    assert held.not_before == morning
    assert deliver(world, inbox, morning - timedelta(minutes=1)).sent == 0
    assert deliver(world, inbox, morning).sent == 1


def test_quiet_hours_are_the_customers_in_their_time_zone(world: Database) -> None:
    queue(world, "c-phone", Kind.JOB_OPENED, NIGHT, "1")  # 16:00 in Berlin: awake
    queue(world, "c-app", Kind.JOB_OPENED, NIGHT, "2")  # 23:00 in Shanghai: asleep
    report = deliver(world, Inbox(), NIGHT)
    assert (report.sent, report.held, report.by_channel) == (1, 1, {"phone": 1})


def test_the_technician_on_the_way_is_announced_even_in_quiet_hours(world: Database) -> None:
    orders = WorkOrders(world)
    order = accepted(world, "ap-2", "filter_replacement", NOW)  # c-sms: quiet 12:00–14:00
    Appointments(orders).confirm(order, NOW + timedelta(hours=4), actor="c", now=NOW)  # 14:00
    deliver(world, Inbox(), NOW)
    lunch = datetime(2026, 11, 24, 5, 30, tzinfo=UTC)  # 13:30 in Shanghai: still quiet
    Appointments(orders).on_the_way(order, "tech-1", lunch + timedelta(minutes=30), now=lunch)
    queue(world, "c-sms", Kind.RATING_REQUEST, lunch, "later")
    inbox = Inbox()
    report = deliver(world, inbox, lunch)
    assert [m.kind for m in inbox.got] == [Kind.TECHNICIAN_ON_THE_WAY] and report.held == 1
    assert orders.history(order)[-1].action == "on_the_way"


def test_proactive_messages_are_capped_per_customer_per_week(world: Database) -> None:
    inbox = Inbox()
    for day in range(4):
        queue(world, "c-app", Kind.JOB_OPENED, NOW + timedelta(days=day), str(day))
        deliver(world, inbox, NOW + timedelta(days=day))
    assert len(inbox.got) == 3
    suppressed = [r for r in rows(world) if r.status == "suppressed"]
    assert len(suppressed) == 1 and "weekly cap" in suppressed[0].note
    # the bill for a visit the customer booked is never capped
    queue(world, "c-app", Kind.COMPLETED, NOW + timedelta(days=4), "bill")
    assert deliver(world, inbox, NOW + timedelta(days=4)).sent == 1
    # a week after the first, there is room again
    queue(world, "c-app", Kind.RATING_REQUEST, NOW + timedelta(days=7, hours=1), "r")
    assert deliver(world, inbox, NOW + timedelta(days=7, hours=1)).sent == 1


def test_a_failed_send_is_retried_with_back_off_then_given_up(world: Database) -> None:
    queue(world, "c-app", Kind.JOB_OPENED, NOW, "1")
    inbox = Inbox(fail=10)
    report = deliver(world, inbox, NOW, max_attempts=3)
    assert report.retrying == 1
    (row,) = rows(world)
    assert row.not_before == NOW + timedelta(minutes=1) and "gateway said no" in row.note
    assert deliver(world, inbox, NOW + timedelta(seconds=59), max_attempts=3).retrying == 0
    later = NOW + timedelta(minutes=1)
    assert deliver(world, inbox, later, max_attempts=3).retrying == 1
    assert rows(world)[0].not_before == later + timedelta(minutes=2)  # doubled
    assert deliver(world, inbox, later + timedelta(minutes=2), max_attempts=3).failed == 1
    (row,) = rows(world)
    assert (row.status, row.attempts) == ("failed", 3) and "gave up" in row.note


def test_two_senders_never_send_one_message_twice(world: Database) -> None:
    for i in range(20):
        queue(world, "c-app", Kind.COMPLETED, NOW, str(i))
    inbox = Inbox()
    policy = NotifyPolicy()

    async def both() -> None:
        await asyncio.gather(
            Outbox(world, {"*": inbox}, policy).deliver(NOW),
            Outbox(world, {"*": inbox}, policy).deliver(NOW),
        )

    asyncio.run(both())
    ids = [m.id for m in inbox.got]
    assert len(ids) == 20 and len(set(ids)) == 20


def test_a_message_without_an_adapter_for_its_channel_is_retried(world: Database) -> None:
    queue(world, "c-sms", Kind.JOB_OPENED, NOW, "1")
    report = asyncio.run(Outbox(world, {"app": Inbox()}).deliver(NOW))
    assert report.retrying == 1 and "no delivery adapter for channel 'sms'" in rows(world)[0].note


def test_messages_are_written_in_the_customers_language() -> None:
    data = {
        "order_id": 7,
        "device_type": "water_purifier",
        "lines": [["RO", 49900]],
        "total_cents": 49900,
    }
    assert "净水器" not in render(Kind.COMPLETED, data, language="en", timezone="UTC")
    zh = render(Kind.COMPLETED, data, language="zh-CN", timezone="Asia/Shanghai")
    assert "工单 #7" in zh and "¥499.00" in zh
    start = render(
        Kind.APPOINTMENT_CONFIRMED,
        {"order_id": 7, "start": "2026-11-25T02:00:00+00:00"},
        language="en",
        timezone="Asia/Shanghai",
    )
    assert "10:00" in start  # in the customer's time zone


def test_the_log_adapter_writes_a_structured_line(
    world: Database, caplog: pytest.LogCaptureFixture
) -> None:
    queue(world, "c-app", Kind.JOB_OPENED, NOW, "1")
    with caplog.at_level(logging.INFO, logger="fleetcare.notifications"):
        asyncio.run(Outbox(world, {"*": LogAdapter()}).deliver(NOW))
    (record,) = [r for r in caplog.records if r.name == "fleetcare.notifications"]
    assert record.kv["kind"] == "job_opened" and record.kv["customer"] == "c-app"  # type: ignore[attr-defined]


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []
    answers: list[int] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        status = type(self).answers.pop(0) if type(self).answers else 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    _Hook.received, _Hook.answers = [], []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/notify"
    server.shutdown()
    server.server_close()


def test_the_webhook_adapter_posts_signed_json_and_retries_on_an_error(
    world: Database, hook: str
) -> None:
    queue(world, "c-app", Kind.JOB_OPENED, NOW, "1")
    _Hook.answers = [503]

    async def go(now: datetime) -> Any:
        adapter = WebhookAdapter(hook, secret="s3cret")
        try:
            return await Outbox(world, {"*": adapter}).deliver(now)
        finally:
            await adapter.aclose()

    assert asyncio.run(go(NOW)).retrying == 1
    assert "answered 503" in rows(world)[0].note
    assert asyncio.run(go(NOW + timedelta(minutes=1))).sent == 1
    assert len(_Hook.received) == 2
    headers, body = _Hook.received[-1]
    doc = json.loads(body)
    assert (doc["kind"], doc["customer_id"], doc["channel"]) == ("job_opened", "c-app", "app")
    assert headers["X-FleetCare-Signature"] == signature("s3cret", body)
    assert headers["Idempotency-Key"] == str(doc["id"])  # the same on the retry
    assert _Hook.received[0][0]["Idempotency-Key"] == headers["Idempotency-Key"]


def test_an_unreachable_webhook_is_retried(world: Database) -> None:
    queue(world, "c-app", Kind.JOB_OPENED, NOW, "1")

    async def go() -> Any:
        adapter = WebhookAdapter("http://127.0.0.1:9/nowhere", timeout=2)
        try:
            return await Outbox(world, {"*": adapter}).deliver(NOW)
        finally:
            await adapter.aclose()

    assert asyncio.run(go()).retrying == 1
    assert "unreachable" in rows(world)[0].note


def test_a_webhook_needs_an_http_url() -> None:
    with pytest.raises(ValueError, match="http"):
        WebhookAdapter("ftp://example")
