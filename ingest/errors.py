"""Errors of the ingest package.

IngestError   root; ingest raises the stores' and the database's own errors
              (StoreUnavailable, DatabaseUnavailable) and retries them itself
"""

from __future__ import annotations


class IngestError(Exception):
    """Root of every error raised by `ingest`."""
