"""Console login: an account may have a password (scrypt-hashed) to sign in with.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_users", schema=None) as batch_op:
        batch_op.drop_column("password_hash")
