"""Table definitions (SQLAlchemy Core). Alembic migrations in `migrations/` create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive ones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("device_type", sa.String(48), nullable=False),
    sa.Column("model", sa.String(64)),
    sa.Column("serial", sa.String(64)),
    sa.Column("firmware", sa.String(64)),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("registered_at", UTCDateTime, nullable=False),
    sa.Column("batch", sa.String(64)),  # the production batch (lot) it came from
    sa.Column("manufactured_on", sa.Date),
)

# the quality early warnings raised (service/quality.py): one per batch or firmware
quality_warnings = sa.Table(
    "quality_warnings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("by", sa.String(16), nullable=False),  # batch | firmware
    sa.Column("group", sa.String(64), nullable=False),
    sa.Column("month", sa.String(7), nullable=False),  # YYYY-MM whose data raised it
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("peers_failures", sa.Integer, nullable=False),
    sa.Column("rate_ratio", sa.Float),
    sa.Column("p_value", sa.Float, nullable=False),
    sa.Column("raised_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("by", "group"),
)

device_state = sa.Table(
    "device_state",
    metadata,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("device_type", sa.String(48), nullable=False),
    sa.Column("online", sa.Boolean, nullable=False),
    sa.Column("online_source", sa.String(16), nullable=False),  # status | telemetry | silence
    sa.Column("online_changed_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_ts", sa.BigInteger),  # device time of the newest message, epoch ms
    sa.Column("last_received_at", UTCDateTime),  # our clock: silence is judged on this
    sa.Column("boot", sa.BigInteger),
    sa.Column("seq", sa.BigInteger),
    sa.Column("firmware", sa.String(64)),
    sa.Column("latest_ts", sa.BigInteger),
    sa.Column("latest_metrics", sa.JSON, nullable=False),
    sa.Column("messages_total", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index("ix_device_state_online_received", "online", "last_received_at"),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # sha256 of topic + payload: the same bad message seen again bumps `count`
    sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("payload_size", sa.Integer, nullable=False),
    sa.Column("truncated", sa.Boolean, nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("device_type", sa.String(48)),
    sa.Column("device_id", sa.String(128)),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | replayed | discarded
    sa.Column("resolved_at", UTCDateTime),
    sa.Index("ix_dead_letters_status_reason", "status", "reason"),
    sa.Index("ix_dead_letters_device", "device_id"),
)

# -- the service domain ----------------------------------------------------------------
LIVE_STATES = ("proposed", "open", "assigned", "accepted", "scheduled", "in_progress", "on_hold")
LIVE_WHERE = (
    "state IN ('proposed','open','assigned','accepted','scheduled','in_progress','on_hold')"
)

# the outlet network: the maker's regions, each with its outlets (网点)
regions = sa.Table(
    "regions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
)

outlets = sa.Table(
    "outlets",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("region_id", sa.String(64), sa.ForeignKey("regions.id")),
    # hours an outlet has to accept a job before it goes elsewhere; None: it takes every
    # job of its territories at once (the maker's own station)
    sa.Column("accept_hours", sa.Integer),
    # where its stock comes from (a distribution depot) and in how many days
    sa.Column("depot_id", sa.String(64)),
    sa.Column("supply_days", sa.Integer),
)

# the stock levels above the outlets: the maker's central warehouse(s) (supplied by the
# factory or suppliers) and the distribution depots they supply; outlets and vans hold
# `outlet_stock` and `van_stock`
depots = sa.Table(
    "depots",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),  # central | distribution
    sa.Column("parent_id", sa.String(64), sa.ForeignKey("depots.id")),
    sa.Column("region_id", sa.String(64), sa.ForeignKey("regions.id")),
    # days from its parent (a central depot: from the supplier) to its shelf
    sa.Column("lead_days", sa.Integer, nullable=False),
    sa.CheckConstraint("level IN ('central', 'distribution')", name="ck_depots_level"),
)

depot_stock = sa.Table(
    "depot_stock",
    metadata,
    sa.Column("depot_id", sa.String(64), sa.ForeignKey("depots.id"), primary_key=True),
    sa.Column("sku", sa.String(64), sa.ForeignKey("parts.sku"), primary_key=True),
    sa.Column("qty", sa.Integer, nullable=False),
    sa.CheckConstraint("qty >= 0", name="ck_depot_stock_qty"),
)

# every stock move made through service.stock: transfers, receipts, counts
stock_moves = sa.Table(
    "stock_moves",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(12), nullable=False),  # transfer | receipt | count
    sa.Column("sku", sa.String(64), nullable=False),
    sa.Column("qty", sa.Integer, nullable=False),  # a count: the difference it made
    sa.Column("from_location", sa.String(80)),  # level:id
    sa.Column("to_location", sa.String(80)),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("note", sa.Text),
    sa.Index("ix_stock_moves_sku_at", "sku", "at"),
)

# stock ordered from a supplier and not all received yet: the stock plan counts it in
# transit, arriving on `expected_on`
purchase_orders = sa.Table(
    "purchase_orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sku", sa.String(64), sa.ForeignKey("parts.sku"), nullable=False),
    sa.Column("qty", sa.Integer, nullable=False),
    sa.Column("received", sa.Integer, nullable=False, server_default="0"),
    sa.Column("destination", sa.String(80), nullable=False),  # level:id
    sa.Column("expected_on", sa.Date, nullable=False),
    sa.Column("reference", sa.String(64)),  # the supplier's or the ERP's number
    sa.Column("state", sa.String(10), nullable=False),  # open | received | cancelled
    sa.Column("ordered_at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.CheckConstraint("qty > 0", name="ck_purchase_orders_qty"),
    sa.CheckConstraint("received >= 0", name="ck_purchase_orders_received"),
)

# units the maker plans to sell, by region, product model and week (its Monday)
sales_plan = sa.Table(
    "sales_plan",
    metadata,
    sa.Column("region_id", sa.String(64), sa.ForeignKey("regions.id"), primary_key=True),
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("week", sa.Date, primary_key=True),
    sa.Column("units", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("units >= 0", name="ck_sales_plan_units"),
)

# what the maker pays an outlet per completed job: by job type (a problem kind, or its
# class: filter, fault, service), for one outlet or (outlet "*") for every outlet
outlet_fees = sa.Table(
    "outlet_fees",
    metadata,
    sa.Column("outlet_id", sa.String(64), primary_key=True),  # an outlet's id, or "*"
    sa.Column("job_type", sa.String(48), primary_key=True),
    sa.Column("cents", sa.Integer, nullable=False),
)

territories = sa.Table(
    "territories",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("outlet_id", sa.String(64), sa.ForeignKey("outlets.id"), nullable=False),
)

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),  # standard | vip
    sa.Column("channel", sa.String(8), nullable=False),  # app | phone | sms
    sa.Column("phone", sa.String(32)),
    sa.Column("email", sa.String(128)),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("quiet_start", sa.String(5)),  # local HH:MM; no messages from here...
    sa.Column("quiet_end", sa.String(5)),  # ...to here
    sa.Column("butler_technician_id", sa.String(64)),  # preferred technician
    # the monthly household air report is sent (it can always be opened in the app)
    sa.Column("air_reports", sa.Boolean, nullable=False, server_default=sa.true()),
)

parts = sa.Table(
    "parts",
    metadata,
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("device_type", sa.String(48)),
    sa.Column("price_cents", sa.Integer, nullable=False),
)

# warranty terms per product model (or, for models without terms, per device type)
warranty_terms = sa.Table(
    "warranty_terms",
    metadata,
    sa.Column("applies_to", sa.String(80), primary_key=True),  # model:X | type:Y
    sa.Column("parts_months", sa.Integer, nullable=False),
    sa.Column("labour_months", sa.Integer, nullable=False),
    sa.Column("free_visits", sa.Integer),  # labour-paid visits in the period; None: any
    sa.Column("starts", sa.String(16), nullable=False),  # purchase | installation
)

outlet_stock = sa.Table(
    "outlet_stock",
    metadata,
    sa.Column("outlet_id", sa.String(64), sa.ForeignKey("outlets.id"), primary_key=True),
    sa.Column("sku", sa.String(64), sa.ForeignKey("parts.sku"), primary_key=True),
    sa.Column("qty", sa.Integer, nullable=False),
    sa.CheckConstraint("qty >= 0", name="ck_outlet_stock_qty"),
)

technicians = sa.Table(
    "technicians",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("outlet_id", sa.String(64), sa.ForeignKey("outlets.id"), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    # {"mon": ["08:00", "18:00"], ...}: local working hours by weekday
    sa.Column("working_hours", sa.JSON, nullable=False),
    sa.Column("daily_capacity", sa.Integer, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
)

technician_skills = sa.Table(
    "technician_skills",
    metadata,
    sa.Column("technician_id", sa.String(64), sa.ForeignKey("technicians.id"), primary_key=True),
    sa.Column("device_type", sa.String(48), primary_key=True),
    sa.Column("problem_kind", sa.String(48), primary_key=True),  # "*": any problem
)

technician_territories = sa.Table(
    "technician_territories",
    metadata,
    sa.Column("technician_id", sa.String(64), sa.ForeignKey("technicians.id"), primary_key=True),
    sa.Column("territory_id", sa.String(64), sa.ForeignKey("territories.id"), primary_key=True),
)

van_stock = sa.Table(
    "van_stock",
    metadata,
    sa.Column("technician_id", sa.String(64), sa.ForeignKey("technicians.id"), primary_key=True),
    sa.Column("sku", sa.String(64), sa.ForeignKey("parts.sku"), primary_key=True),
    sa.Column("qty", sa.Integer, nullable=False),
    sa.CheckConstraint("qty >= 0", name="ck_van_stock_qty"),
)

# where a device is and whose it is (devices itself is the ingest registry)
device_sites = sa.Table(
    "device_sites",
    metadata,
    sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), primary_key=True),
    sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("territory_id", sa.String(64), sa.ForeignKey("territories.id"), nullable=False),
    sa.Column("address", sa.String(256), nullable=False),
    sa.Column("installed_on", sa.Date),
    sa.Column("purchased_on", sa.Date),  # warranty runs from here, or from installation
)

work_orders = sa.Table(
    "work_orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
    sa.Column("device_type", sa.String(48), nullable=False),
    sa.Column("problem_kind", sa.String(48), nullable=False),
    sa.Column("origin", sa.String(8), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),  # bumped by every change
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("customer_id", sa.String(64)),
    sa.Column("territory_id", sa.String(64)),
    sa.Column("outlet_id", sa.String(64)),
    sa.Column("technician_id", sa.String(64)),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("evidence_count", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("due_at", UTCDateTime),
    # the requester's own deadline (e.g. a filter's predicted end): the due time's cap
    sa.Column("not_after", UTCDateTime),
    # when the SLA clock started: at creation, or (a proposal) when ops approve it
    sa.Column("sla_started_at", UTCDateTime),
    sa.Column("scheduled_start", UTCDateTime),
    sa.Column("scheduled_end", UTCDateTime),
    sa.Column("closed_at", UTCDateTime),
    sa.Column("completed_at", UTCDateTime),  # the SLA is met or missed here
    sa.Column("outcome", sa.String(16)),  # fixed | no_fault_found | follow_up
    sa.Column("confirmed_serial", sa.String(64)),
    sa.Column("total_cents", sa.Integer),  # parts + fees, as billed
    sa.Column("customer_cents", sa.Integer),  # of it, the customer's share (what they pay)
    sa.Column("notes", sa.Text),
    sa.Column("commission_cents", sa.Integer),  # the technician's, fixed at completion
    sa.Column("resolution", sa.String(32)),  # e.g. resolved_online: closed without a visit
    # dispatch: who declined it (never offered to them again), why nobody can take it,
    # and whether the first technician it went to accepted it
    sa.Column("declined_by", sa.JSON, nullable=False, server_default="[]"),
    sa.Column("unassignable_reason", sa.Text),
    sa.Column("first_offer_accepted", sa.Boolean),
    # the filter package that pays this job, and how it is done: visit (default) or diy
    # (the filter is shipped and the customer fits it)
    sa.Column("package_id", sa.Integer),
    sa.Column("fulfilment", sa.String(8)),
    # the outlet's answer: None (it takes jobs at once), offered, accepted or declined
    sa.Column("outlet_state", sa.String(10)),
    sa.Column("outlet_fee_cents", sa.Integer),  # the outlet's, fixed at completion
    # one live order per device and problem: the database decides, not a read-then-write
    sa.Index(
        "uq_work_orders_live_problem",
        "device_id",
        "problem_kind",
        unique=True,
        sqlite_where=sa.text(LIVE_WHERE),
        postgresql_where=sa.text(LIVE_WHERE),
    ),
    sa.Index("ix_work_orders_state", "state"),
    sa.Index("ix_work_orders_state_due", "state", "due_at"),
    sa.Index("ix_work_orders_technician_state", "technician_id", "state"),
)

work_order_events = sa.Table(
    "work_order_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("from_state", sa.String(16)),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_work_order_events_order", "order_id"),
)

work_order_evidence = sa.Table(
    "work_order_evidence",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("origin", sa.String(8), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),  # rule or model name, app, caller
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_work_order_evidence_order", "order_id"),
)

# -- completion ------------------------------------------------------------------------
work_order_parts = sa.Table(
    "work_order_parts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False),
    sa.Column("sku", sa.String(64), sa.ForeignKey("parts.sku"), nullable=False),
    sa.Column("qty", sa.Integer, nullable=False),
    sa.Column("source", sa.String(8), nullable=False),  # van | outlet
    sa.Column("unit_price_cents", sa.Integer, nullable=False),
    # customer | maker (under warranty) | package (the customer's filter package)
    sa.Column("payer", sa.String(8), nullable=False, server_default="customer"),
    sa.Index("ix_work_order_parts_order", "order_id"),
)

work_order_fees = sa.Table(
    "work_order_fees",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False),
    sa.Column("item", sa.String(128), nullable=False),
    sa.Column("cents", sa.Integer, nullable=False),
    sa.Column("payer", sa.String(8), nullable=False, server_default="customer"),
    sa.Index("ix_work_order_fees_order", "order_id"),
)

work_order_photos = sa.Table(
    "work_order_photos",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("content_type", sa.String(32), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("stage", sa.String(12), nullable=False, server_default="completion"),  # or intake
    sa.Column("added_by", sa.String(64)),
    sa.Column("added_at", UTCDateTime),
    sa.Index("ix_work_order_photos_order", "order_id"),
)

# what technicians found: the labels models learn from
service_labels = sa.Table(
    "service_labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("device_type", sa.String(48), nullable=False),
    sa.Column("problem_kind", sa.String(48), nullable=False),  # what was suspected
    sa.Column("outcome", sa.String(16), nullable=False),  # fixed | no_fault_found | follow_up
    sa.Column("confirmed_fault", sa.String(48)),  # what it really was
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_service_labels_device", "device_id"),
)

# a filter (stage) fitted: where filter wear restarts from
filter_replacements = sa.Table(
    "filter_replacements",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id")),
    # the filter's state as found (technician's estimate, 0 = new, 1 = spent): a label
    sa.Column("consumed_found", sa.Float),
    sa.Index("ix_filter_replacements_device", "device_id", "at"),
)

# commands for devices, written with the change that causes them (a transactional
# outbox); a publisher sends them on the device's `cmd` topic
device_commands = sa.Table(
    "device_commands",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("device_type", sa.String(48), nullable=False),
    sa.Column("cmd", sa.String(48), nullable=False),
    sa.Column("args", sa.JSON, nullable=False),
    sa.Column("correlation", sa.String(64)),  # e.g. the work order
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Index("ix_device_commands_unsent", "sent_at", "id"),
)

# a shop's order for an installation, once: the same order sent again is the same job
shop_orders = sa.Table(
    "shop_orders",
    metadata,
    sa.Column("shop_id", sa.String(64), primary_key=True),
    sa.Column("shop_order_id", sa.String(64), primary_key=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False),
    sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
)

# -- callback and settlement -----------------------------------------------------------
callbacks = sa.Table(
    "callbacks",
    metadata,
    sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), primary_key=True),
    sa.Column("rating", sa.Integer),  # stars, when the customer gave them
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("channel", sa.String(8), nullable=False),  # app | phone | sms
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("complaint", sa.Boolean, nullable=False, server_default=sa.false()),
    # satisfied | not_satisfied | unreachable: what releases or holds the money
    sa.Column("outcome", sa.String(16), nullable=False, server_default="satisfied"),
    sa.Column("agent", sa.String(64)),  # who called (None: the customer's own app)
    sa.Column("nps", sa.Integer),  # 0-10: would they recommend us
    sa.CheckConstraint("rating BETWEEN 1 AND 5", name="ck_callbacks_rating"),
    sa.CheckConstraint("nps BETWEEN 0 AND 10", name="ck_callbacks_nps"),
)

# every call an agent made for a callback that reached nobody
callback_attempts = sa.Table(
    "callback_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("agent", sa.String(64), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Index("ix_callback_attempts_order", "order_id"),
)

# -- complaints ------------------------------------------------------------------------
complaints = sa.Table(
    "complaints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id")),
    sa.Column("device_id", sa.String(64)),
    sa.Column("customer_id", sa.String(64)),
    sa.Column("outlet_id", sa.String(64)),
    sa.Column("technician_id", sa.String(64)),
    sa.Column("source", sa.String(16), nullable=False),  # rating | callback | call | app
    sa.Column("level", sa.String(8), nullable=False),  # outlet | region | maker
    sa.Column("state", sa.String(8), nullable=False),  # open | resolved
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("opened_by", sa.String(64), nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),  # this level's SLA
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("resolved_by", sa.String(64)),
    sa.Column("resolution", sa.Text),
    sa.Column("upheld", sa.Boolean),  # the customer was right: the held money is forfeit
    sa.Index("ix_complaints_state_due", "state", "due_at"),
    sa.Index("ix_complaints_order", "order_id"),
)

# what happened to a complaint: opened, escalated, resolved
complaint_events = sa.Table(
    "complaint_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("complaint_id", sa.Integer, sa.ForeignKey("complaints.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("level", sa.String(8), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Index("ix_complaint_events_complaint", "complaint_id"),
)

# -- appointments, notifications, predicted demand -------------------------------------
# the slots offered to a customer for an order; the newest offer supersedes the older
appointment_offers = sa.Table(
    "appointment_offers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False),
    sa.Column("technician_id", sa.String(64), nullable=False),
    sa.Column("slot_start", UTCDateTime, nullable=False),
    sa.Column("slot_end", UTCDateTime, nullable=False),
    sa.Column("offered_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),  # offered | taken | superseded
    sa.Index("ix_appointment_offers_order", "order_id", "status"),
)

# every customer-facing message, written with the change that causes it (an outbox)
notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id")),
    sa.Column("kind", sa.String(32), nullable=False),
    # one message per key, ever: a retry or a race never sends it twice
    sa.Column("dedupe_key", sa.String(160), nullable=False, unique=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("not_before", UTCDateTime, nullable=False),  # held (quiet hours, retry)
    sa.Column("status", sa.String(12), nullable=False),  # pending | sent | suppressed | failed
    sa.Column("note", sa.Text),  # why held, suppressed or failed
    sa.Column("channel", sa.String(8)),  # chosen when sent: the customer's preference then
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("claimed_until", UTCDateTime),  # a sender's lease: at-least-once, not twice
    sa.Column("sent_at", UTCDateTime),
    sa.Index("ix_notifications_status_due", "status", "not_before"),
    sa.Index("ix_notifications_customer_sent", "customer_id", "sent_at"),
)

# predicted filter exhaustions, from the models or any other source: the
# parts forecast reads them; one row per device and stage, replaced by newer predictions
filter_predictions = sa.Table(
    "filter_predictions",
    metadata,
    sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), primary_key=True),
    sa.Column("stage", sa.String(32), primary_key=True),
    sa.Column("exhausted_at", UTCDateTime, nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # the models' band and version; other sources may leave them empty
    sa.Column("low", UTCDateTime),
    sa.Column("high", UTCDateTime),
    sa.Column("consumed", sa.Float),  # share of the stage used up now
    sa.Column("rated_at", UTCDateTime),  # when rated life says it is spent (the baseline)
    sa.Column("model_version", sa.String(64)),
    sa.CheckConstraint("probability >= 0 AND probability <= 1", name="ck_filter_predictions_p"),
)

# what the filter-life scoring remembers per device between daily passes (models.wear)
wear_states = sa.Table(
    "wear_states",
    metadata,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("device_type", sa.String(48), nullable=False),
    sa.Column("scored_until", UTCDateTime, nullable=False),  # the last day folded in
    sa.Column("state", sa.JSON, nullable=False),
)

# the general anomaly detector's state per device (models.anomaly: packed bytes, 615 for
# one metric, about 850 per metric for ten), the metrics it reads in order, and the last
# day folded in
detector_states = sa.Table(
    "detector_states",
    metadata,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("device_type", sa.String(48), nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("scored_until", UTCDateTime, nullable=False),
    sa.Column("state", sa.LargeBinary, nullable=False),
    # what its last alarm showed (models.anomaly.naming.evidence): a technician's verdict
    # on the job it opened becomes a training row for the family's fault namer
    sa.Column("evidence", sa.JSON),
)

# a technician's verdict on a general detector's alarm, with what the alarm showed
general_labels = sa.Table(
    "general_labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "service_label_id",
        sa.Integer,
        sa.ForeignKey("service_labels.id"),
        nullable=False,
        unique=True,
    ),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("device_type", sa.String(48), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("kind", sa.String(48), nullable=False),  # the fault, or "none"
    sa.Index("ix_general_labels_type", "device_type"),
)

# each recent message key stored, with the device time it was stored with: workers that share
# one subscription and write to a store that keys points by time (InfluxDB) settle there
# which copy of a repeated message is the stored one (ingest.key_ledger)
ingest_keys = sa.Table(
    "ingest_keys",
    metadata,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("boot", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("ts", sa.BigInteger, nullable=False),  # the device time it was stored with
    sa.Column("claimed_at", sa.Float, nullable=False),  # epoch s: pruned after the horizon
    sa.Index("ix_ingest_keys_claimed_at", "claimed_at"),
)

# the feedback loop: a filter's wear features on the day it was replaced, with the state
# the technician found it in (filter_replacements.consumed_found): a training label
filter_labels = sa.Table(
    "filter_labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "replacement_id",
        sa.Integer,
        sa.ForeignKey("filter_replacements.id"),
        nullable=False,
        unique=True,
    ),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("device_type", sa.String(48), nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("features", sa.JSON, nullable=False),  # models.wear.snapshot
    sa.Column("consumed", sa.Float, nullable=False),
)

# the fault feedback loop: a device's health deviations on the day a technician reported
# what it really had (service_labels: a confirmed fault, or none found): a training label
health_labels = sa.Table(
    "health_labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "service_label_id",
        sa.Integer,
        sa.ForeignKey("service_labels.id"),
        nullable=False,
        unique=True,
    ),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("device_type", sa.String(48), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("deviations", sa.JSON, nullable=False),  # models.health: z by feature name
    sa.Column("kind", sa.String(48), nullable=False),  # the fault, or "none"
)

# model outputs per device (anomaly scores with their learned thresholds)
model_scores = sa.Table(
    "model_scores",
    metadata,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("model", sa.String(48), primary_key=True),
    sa.Column("output", sa.String(64), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float),
    sa.Column("model_version", sa.String(64)),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# -- rules and alerts ------------------------------------------------------------------
# what the evaluator remembers per rule and device between passes (and restarts)
rule_states = sa.Table(
    "rule_states",
    metadata,
    sa.Column("rule_id", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("phase", sa.String(8), nullable=False),  # inactive | pending | firing
    sa.Column("since", UTCDateTime),
    sa.Column("changes", sa.JSON, nullable=False),  # ISO times of recent verdict changes
    sa.Column("flapping", sa.Boolean, nullable=False),
    sa.Column("clear_since", UTCDateTime),
    sa.Column("cooldown_until", UTCDateTime),
    sa.Column("value", sa.Float),
    sa.Column("evaluated_at", UTCDateTime),
    sa.Index("ix_rule_states_device", "device_id"),
)

FIRING_WHERE = "state = 'firing'"

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rule_id", sa.String(64), nullable=False),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("device_type", sa.String(48), nullable=False),
    sa.Column("customer_id", sa.String(64)),
    sa.Column("severity", sa.String(8), nullable=False),
    sa.Column("problem_kind", sa.String(48)),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("state", sa.String(8), nullable=False),  # firing | resolved
    sa.Column("pending_since", UTCDateTime),
    sa.Column("fired_at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("value", sa.Float),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("silenced_by", sa.Integer),  # the silence that matched when it fired
    sa.Column("inhibited_by", sa.Text),  # why it is inhibited (device offline, open job)
    sa.Column("work_order_id", sa.Integer, sa.ForeignKey("work_orders.id")),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # one firing alert per rule and device: two evaluators racing open one
    sa.Index(
        "uq_alerts_firing",
        "rule_id",
        "device_id",
        unique=True,
        sqlite_where=sa.text(FIRING_WHERE),
        postgresql_where=sa.text(FIRING_WHERE),
    ),
    sa.Index("ix_alerts_state_fired", "state", "fired_at"),
    sa.Index("ix_alerts_device", "device_id", "fired_at"),
)

alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # fired | resolved | work_order | ...
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_alert_events_alert", "alert_id"),
)

silences = sa.Table(
    "silences",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # every matcher given must match; at least one is given
    sa.Column("rule_id", sa.String(64)),
    sa.Column("device_id", sa.String(64)),
    sa.Column("customer_id", sa.String(64)),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(
        "rule_id IS NOT NULL OR device_id IS NOT NULL OR customer_id IS NOT NULL",
        name="ck_silences_matcher",
    ),
    sa.CheckConstraint("ends_at > starts_at", name="ck_silences_span"),
    sa.Index("ix_silences_ends", "ends_at"),
)


# -- API accounts ----------------------------------------------------------------------
# who may call the API, in which role and scope; keys are stored hashed, shown once
api_users = sa.Table(
    "api_users",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # customer | technician | ops | admin
    sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.id")),
    sa.Column("technician_id", sa.String(64), sa.ForeignKey("technicians.id")),
    sa.Column("territories", sa.JSON, nullable=False),  # ops limited to these; [] = all
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("disabled_at", UTCDateTime),
    sa.Column("password_hash", sa.String(256)),  # scrypt, for the console's login
    # tokens signed before this are refused (sign-out, a new password, disabling)
    sa.Column("sessions_after", UTCDateTime),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("api_users.id"), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),  # shown in lists: which key is it
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
)

# -- device credentials ----------------------------------------------------------------
# each device's own MQTT password, kept only as the hash Mosquitto's password file holds
device_credentials = sa.Table(
    "device_credentials",
    metadata,
    sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), primary_key=True),
    sa.Column("password_hash", sa.String(256), nullable=False),  # $7$ PBKDF2-SHA512
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("rotated_at", UTCDateTime),
    sa.Column("revoked_at", UTCDateTime),
)

# -- product profiles ------------------------------------------------------------------
# every version of every family's profile that was imported; the highest is in force
profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("name", sa.String(48), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("doc", sa.JSON, nullable=False),  # the validated profile, as JSON
    sa.Column("checksum", sa.String(16), nullable=False),
    sa.Column("imported_at", UTCDateTime, nullable=False),
    sa.Column("imported_by", sa.String(64), nullable=False),
    sa.Column("source", sa.String(200), nullable=False),  # the file it came from
)

# -- filter packages -------------------------------------------------------------------
# a plan is what a maker sells (what it covers, how many replacements over how long, its
# price); a package is one sale of a plan for one device: the entitlement
package_plans = sa.Table(
    "package_plans",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("applies_to", sa.String(80), nullable=False),  # model:<code> | type:<family>
    sa.Column("covers", sa.JSON, nullable=False),  # problem kinds; [] = every filter
    sa.Column("replacements", sa.Integer),  # None: as many as fall due
    sa.Column("months", sa.Integer, nullable=False),
    sa.Column("price_cents", sa.Integer, nullable=False),
    sa.Column("diy", sa.Boolean, nullable=False),  # may be taken as shipped filters
    sa.Column("active", sa.Boolean, nullable=False),  # on sale (a retired plan still pays)
)

packages = sa.Table(
    "packages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sale_id", sa.String(64), nullable=False, unique=True),  # the seller's id
    sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("plan_id", sa.String(64), sa.ForeignKey("package_plans.id"), nullable=False),
    sa.Column("starts_on", sa.Date, nullable=False),
    sa.Column("ends_on", sa.Date, nullable=False),  # the first day it no longer covers
    # copied from the plan at the sale: changing a plan does not change what was sold
    sa.Column("covers", sa.JSON, nullable=False),
    sa.Column("replacements", sa.Integer),
    sa.Column("price_cents", sa.Integer, nullable=False),
    sa.Column("fulfilment", sa.String(8), nullable=False),  # visit | diy
    sa.Column("preferred_days", sa.String(32)),  # e.g. "sat,sun"; None: any day
    sa.Column("preferred_from", sa.String(5)),  # local HH:MM the visit may start from...
    sa.Column("preferred_to", sa.String(5)),  # ...and by
    sa.Column("channel", sa.String(16), nullable=False),  # app | agent | shop | import
    sa.Column("sold_by", sa.String(64), nullable=False),
    sa.Column("sold_at", UTCDateTime, nullable=False),
    sa.Column("renews_id", sa.Integer, sa.ForeignKey("packages.id")),
    sa.Column("reminded_at", UTCDateTime),  # the renewal reminder was queued
    sa.Index("ix_packages_device", "device_id", "ends_on"),
)

# a diy replacement's filter on its way to the customer
shipments = sa.Table(
    "shipments",
    metadata,
    sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), primary_key=True),
    sa.Column("sku", sa.String(64), sa.ForeignKey("parts.sku"), nullable=False),
    sa.Column("carrier", sa.String(64), nullable=False),
    sa.Column("tracking", sa.String(64), nullable=False),
    sa.Column("shipped_at", UTCDateTime, nullable=False),
    sa.Column("shipped_by", sa.String(64), nullable=False),
)

# a job offered to an outlet, and its answer: one row per outlet it went to
outlet_offers = sa.Table(
    "outlet_offers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False),
    sa.Column("outlet_id", sa.String(64), sa.ForeignKey("outlets.id"), nullable=False),
    sa.Column("offered_at", UTCDateTime, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # offered|accepted|declined|expired
    sa.Column("decided_at", UTCDateTime),
    sa.Column("decided_by", sa.String(64)),
    sa.Column("reason", sa.Text),
    sa.Index("ix_outlet_offers_order", "order_id"),
    sa.Index("ix_outlet_offers_state", "state", "due_at"),
)
