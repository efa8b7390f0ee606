"""Completion: parts used, fees, photos, labels, filter replacements, device commands.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "device_commands",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("device_type", sa.String(length=48), nullable=False),
        sa.Column("cmd", sa.String(length=48), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("correlation", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_commands")),
    )
    with op.batch_alter_table("device_commands", schema=None) as batch_op:
        batch_op.create_index("ix_device_commands_unsent", ["sent_at", "id"], unique=False)

    op.create_table(
        "filter_replacements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["work_orders.id"],
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filter_replacements")),
    )
    with op.batch_alter_table("filter_replacements", schema=None) as batch_op:
        batch_op.create_index("ix_filter_replacements_device", ["device_id", "at"], unique=False)

    op.create_table(
        "service_labels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("device_type", sa.String(length=48), nullable=False),
        sa.Column("problem_kind", sa.String(length=48), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("confirmed_fault", sa.String(length=48), nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["work_orders.id"],
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_labels")),
    )
    with op.batch_alter_table("service_labels", schema=None) as batch_op:
        batch_op.create_index("ix_service_labels_device", ["device_id"], unique=False)

    op.create_table(
        "work_order_fees",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(length=128), nullable=False),
        sa.Column("cents", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["work_orders.id"],
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_fees")),
    )
    with op.batch_alter_table("work_order_fees", schema=None) as batch_op:
        batch_op.create_index("ix_work_order_fees_order", ["order_id"], unique=False)

    op.create_table(
        "work_order_parts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["work_orders.id"],
        ),
        sa.ForeignKeyConstraint(
            ["sku"],
            ["parts.sku"],
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_parts")),
    )
    with op.batch_alter_table("work_order_parts", schema=None) as batch_op:
        batch_op.create_index("ix_work_order_parts_order", ["order_id"], unique=False)

    op.create_table(
        "work_order_photos",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["work_orders.id"],
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_photos")),
    )
    with op.batch_alter_table("work_order_photos", schema=None) as batch_op:
        batch_op.create_index("ix_work_order_photos_order", ["order_id"], unique=False)

    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("confirmed_serial", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("total_cents", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.drop_column("notes")
        batch_op.drop_column("total_cents")
        batch_op.drop_column("confirmed_serial")
        batch_op.drop_column("outcome")

    with op.batch_alter_table("work_order_photos", schema=None) as batch_op:
        batch_op.drop_index("ix_work_order_photos_order")

    op.drop_table("work_order_photos")
    with op.batch_alter_table("work_order_parts", schema=None) as batch_op:
        batch_op.drop_index("ix_work_order_parts_order")

    op.drop_table("work_order_parts")
    with op.batch_alter_table("work_order_fees", schema=None) as batch_op:
        batch_op.drop_index("ix_work_order_fees_order")

    op.drop_table("work_order_fees")
    with op.batch_alter_table("service_labels", schema=None) as batch_op:
        batch_op.drop_index("ix_service_labels_device")

    op.drop_table("service_labels")
    with op.batch_alter_table("filter_replacements", schema=None) as batch_op:
        batch_op.drop_index("ix_filter_replacements_device")

    op.drop_table("filter_replacements")
    with op.batch_alter_table("device_commands", schema=None) as batch_op:
        batch_op.drop_index("ix_device_commands_unsent")

    op.drop_table("device_commands")
