"""The service domain and the engine's relational schema (SQLAlchemy 2 + Alembic).

Issue 2 brings the foundation: the device registry, device state and dead letters.
Work orders, outlets, technicians and the rest of the loop build on these tables.
"""

from workorders.db import Database, DatabaseSettings
from workorders.errors import DatabaseUnavailable, NotMigrated, WorkordersError

__all__ = ["Database", "DatabaseSettings", "DatabaseUnavailable", "NotMigrated", "WorkordersError"]
