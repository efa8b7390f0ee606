"""The relational database: engine and settings, the tables, and their migrations.

SQLAlchemy 2 Core with one Alembic history (`migrations/`) for every room that keeps
rows: `fleet`, `service`, `ingest`'s dead letters, `rules`' alerts, `models`' state and
labels, the API's accounts. SQLite embedded, PostgreSQL in production.
"""

from db.database import Database, DatabaseSettings
from db.errors import DatabaseUnavailable, DomainError, NotFound, NotMigrated

__all__ = [
    "Database",
    "DatabaseSettings",
    "DatabaseUnavailable",
    "DomainError",
    "NotFound",
    "NotMigrated",
]
