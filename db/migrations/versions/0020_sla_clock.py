"""The SLA clock's start: a proposal's clock starts when ops approve it, capped by the
requester's own deadline, which is kept.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.tables import UTCDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("not_after", UTCDateTime))
        batch.add_column(sa.Column("sla_started_at", UTCDateTime))
    # every order so far started its clock when it was created; a waiting proposal keeps
    # the due time it has as its cap, so approving it can only bring the date forward
    op.execute("UPDATE work_orders SET sla_started_at = created_at WHERE state <> 'proposed'")
    op.execute("UPDATE work_orders SET not_after = due_at WHERE state = 'proposed'")


def downgrade() -> None:
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("sla_started_at")
        batch.drop_column("not_after")
