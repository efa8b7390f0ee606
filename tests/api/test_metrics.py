"""The API's /metrics: this process's own metrics and the service domain as it is now —
jobs by state, past their SLA, the review queue's oldest, device commands and customer
messages not out, dead letters waiting — read at each scrape, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import ServiceCollector
from db.database import Database
from db.tables import device_commands, notifications
from ingest.dead_letters import DeadLetterRepository, NewDeadLetter
from service.lifecycle import Origin, State
from service.orders import OrderRequest, WorkOrders


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics", headers=client.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def order(device: str, kind: str, origin: Origin) -> OrderRequest:
    return OrderRequest(device_id=device, problem_kind=kind, origin=origin, source="t", title=kind)


def test_metrics_count_the_service_domain_at_each_scrape(
    client: TestClient, world: Database, keys: dict[str, str]
) -> None:
    client.headers["Authorization"] = f"Bearer {keys['ops']}"  # as Prometheus would
    empty = scrape(client)
    assert empty[("fleetcare_service_db_up", ())] == 1
    assert empty[("fleetcare_work_orders", (("state", "proposed"),))] == 0
    assert empty[("fleetcare_work_orders_oldest_proposed_seconds", ())] == 0
    assert empty[("fleetcare_device_commands_oldest_unsent_seconds", ())] == 0
    assert ("process_cpu_seconds_total", ()) in empty  # the process's own, as before

    now = datetime.now(UTC)
    orders = WorkOrders(world)
    # proposed two hours ago and waiting for review; a repair opened by ops a week ago,
    # long past its SLA; a filter job opened now, not due yet
    proposed = orders.open_or_attach(
        order("ap-1", "filter_replacement", Origin.AUTO), now=now - timedelta(hours=2)
    ).order
    late = orders.open_or_attach(
        order("wp-1", "pump_failure", Origin.OPS), now=now - timedelta(days=7)
    ).order
    orders.open_or_attach(order("ap-2", "filter_replacement", Origin.OPS), now=now)
    assert late.due_at is not None and late.due_at < now
    told = scrape(client)  # opening a job tells its customer: those messages are pending
    with world.engine.begin() as conn:
        conn.execute(
            device_commands.insert(),
            [
                {"device_id": "ap-1", "device_type": "purifier", "cmd": "repair", "args": {},
                 "created_at": now - timedelta(minutes=15), "sent_at": None},
                {"device_id": "ap-2", "device_type": "purifier", "cmd": "repair", "args": {},
                 "created_at": now - timedelta(minutes=1), "sent_at": None},
                {"device_id": "ap-3", "device_type": "purifier", "cmd": "repair", "args": {},
                 "created_at": now - timedelta(hours=5), "sent_at": now},
            ],
        )  # fmt: skip
        conn.execute(
            notifications.insert(),
            [
                {"customer_id": "c-app", "kind": "job_opened", "dedupe_key": k, "data": {},
                 "created_at": now, "not_before": now, "status": status}
                for k, status in (("a", "failed"), ("b", "pending"), ("c", "pending"),
                                  ("d", "sent"))
            ],
        )  # fmt: skip
    topic = "fleetcare/v1/purifier/ap-1/telemetry"
    DeadLetterRepository(world).record(
        [
            NewDeadLetter(topic, b"nope", "not_json", "x", now),
            NewDeadLetter(topic, b"nope again", "not_json", "x", now),
            NewDeadLetter(topic, b"{}", "out_of_range", "x", now),
        ]
    )

    m = scrape(client)
    assert m[("fleetcare_work_orders", (("state", "proposed"),))] == 1
    assert m[("fleetcare_work_orders", (("state", "open"),))] == 2
    assert m[("fleetcare_work_orders", (("state", "closed"),))] == 0
    assert m[("fleetcare_work_orders_overdue", ())] == 1
    assert 7190 <= m[("fleetcare_work_orders_oldest_proposed_seconds", ())] <= 7300
    assert m[("fleetcare_device_commands_unsent", ())] == 2
    assert 890 <= m[("fleetcare_device_commands_oldest_unsent_seconds", ())] <= 1000
    for status, added in (("pending", 2), ("failed", 1)):
        key = ("fleetcare_notifications", (("status", status),))
        assert m[key] == told[key] + added
    assert m[("fleetcare_dead_letters_pending", (("reason", "not_json"),))] == 2
    assert m[("fleetcare_dead_letters_pending", (("reason", "out_of_range"),))] == 1

    # reviewed: the queue's oldest is gone, and so is its age
    orders.transition(proposed.id, State.OPEN, actor="ops")
    m = scrape(client)
    assert m[("fleetcare_work_orders", (("state", "proposed"),))] == 0
    assert m[("fleetcare_work_orders_oldest_proposed_seconds", ())] == 0


def test_a_scrape_while_the_database_is_down_says_so_and_answers() -> None:
    gone = Database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    families = {f.name: f for f in ServiceCollector(gone).collect()}
    assert list(families) == ["fleetcare_service_db_up"]
    assert families["fleetcare_service_db_up"].samples[0].value == 0
