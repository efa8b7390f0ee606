"""The device registry (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from db.database import Database
from fleet.errors import RegistryError
from fleet.registry import Device, DeviceRegistry


def test_the_registry_refuses_to_change_a_device_type(db: Database) -> None:
    db.upgrade()
    reg = DeviceRegistry(db)
    reg.register([Device("p-1", "purifier", model="AP-300")])
    reg.register([Device("p-1", "purifier", model="AP-400")])
    assert reg.get("p-1").model == "AP-400"
    with pytest.raises(RegistryError, match="registered as purifier"):
        reg.register([Device("p-1", "air_conditioner")])
