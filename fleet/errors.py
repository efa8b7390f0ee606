"""Errors of the fleet room.

FleetError
└── RegistryError   a registry change that is not allowed (e.g. a device's type changed)
"""

from __future__ import annotations

from db.errors import DomainError


class FleetError(DomainError):
    """Root of every error raised by `fleet`."""


class RegistryError(FleetError):
    pass
