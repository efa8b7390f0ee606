"""Rules and alerts: the evaluator's per-rule state, alerts with their history, silences.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import FIRING_WHERE, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_states",
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("phase", sa.String(8), nullable=False),
        sa.Column("since", UTCDateTime),
        sa.Column("changes", sa.JSON, nullable=False),
        sa.Column("flapping", sa.Boolean, nullable=False),
        sa.Column("clear_since", UTCDateTime),
        sa.Column("cooldown_until", UTCDateTime),
        sa.Column("value", sa.Float),
        sa.Column("evaluated_at", UTCDateTime),
        sa.PrimaryKeyConstraint("rule_id", "device_id", name="pk_rule_states"),
    )
    op.create_index("ix_rule_states_device", "rule_states", ["device_id"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("device_type", sa.String(48), nullable=False),
        sa.Column("customer_id", sa.String(64)),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("problem_kind", sa.String(48)),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("pending_since", UTCDateTime),
        sa.Column("fired_at", UTCDateTime, nullable=False),
        sa.Column("resolved_at", UTCDateTime),
        sa.Column("value", sa.Float),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("silenced_by", sa.Integer),
        sa.Column("inhibited_by", sa.Text),
        sa.Column("work_order_id", sa.Integer, sa.ForeignKey("work_orders.id")),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index(
        "uq_alerts_firing",
        "alerts",
        ["rule_id", "device_id"],
        unique=True,
        sqlite_where=sa.text(FIRING_WHERE),
        postgresql_where=sa.text(FIRING_WHERE),
    )
    op.create_index("ix_alerts_state_fired", "alerts", ["state", "fired_at"])
    op.create_index("ix_alerts_device", "alerts", ["device_id", "fired_at"])
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_events"),
    )
    op.create_index("ix_alert_events_alert", "alert_events", ["alert_id"])
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
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
        sa.PrimaryKeyConstraint("id", name="pk_silences"),
    )
    op.create_index("ix_silences_ends", "silences", ["ends_at"])


def downgrade() -> None:
    op.drop_index("ix_silences_ends", table_name="silences")
    op.drop_table("silences")
    op.drop_index("ix_alert_events_alert", table_name="alert_events")
    op.drop_table("alert_events")
    for ix in ("ix_alerts_device", "ix_alerts_state_fired", "uq_alerts_firing"):
        op.drop_index(ix, table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_rule_states_device", table_name="rule_states")
    op.drop_table("rule_states")
