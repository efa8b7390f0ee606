"""Errors of the workorders package.

WorkordersError
├── DatabaseUnavailable   the database cannot be reached: retry later
├── NotMigrated           the schema is behind the code: run `fleetcare db upgrade`
├── NotFound              no such row
└── RegistryError         a registry change that is not allowed
"""

from __future__ import annotations


class WorkordersError(Exception):
    """Root of every error raised by `workorders`."""


class DatabaseUnavailable(WorkordersError):
    pass


class NotMigrated(WorkordersError):
    def __init__(self, url: str, current: str | None, head: str) -> None:
        super().__init__(
            f"database {url} is at schema revision {current or 'none'}, the code needs {head}: "
            "run `fleetcare db upgrade`"
        )


class NotFound(WorkordersError):
    def __init__(self, what: str, key: object) -> None:
        super().__init__(f"{what} {key!r} not found")
        self.what = what
        self.key = key


class RegistryError(WorkordersError):
    pass
