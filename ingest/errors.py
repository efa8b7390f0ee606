"""Errors of the ingest package.

IngestError
└── BrokerUnavailable   the broker refused or dropped the first connection
"""

from __future__ import annotations


class IngestError(Exception):
    """Root of every error raised by `ingest`."""


class BrokerUnavailable(IngestError):
    pass
