"""Errors of the relational side, and the root every room built on it raises.

DomainError                 a request the service domain refuses; the message says what to fix
├── DatabaseUnavailable   the database cannot be reached: retry later
├── NotMigrated           the schema is behind the code: run `fleetcare db upgrade`
└── NotFound              no such row

Each room on the database (`fleet`, `service`, the rules' alert store, API accounts)
derives its own errors from `DomainError`, so the API maps them all in one place.
"""

from __future__ import annotations


class DomainError(Exception):
    """Root of every error the rooms on the database raise."""


class DatabaseUnavailable(DomainError):
    pass


class NotMigrated(DomainError):
    def __init__(self, url: str, current: str | None, head: str) -> None:
        super().__init__(
            f"database {url} is at schema revision {current or 'none'}, the code needs {head}: "
            "run `fleetcare db upgrade`"
        )


class NotFound(DomainError):
    def __init__(self, what: str, key: object) -> None:
        super().__init__(f"{what} {key!r} not found")
        self.what = what
        self.key = key
