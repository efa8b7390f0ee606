"""Where a device stands among its peers, from the service records: its territory."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray

from db.database import Database
from db.tables import device_sites


def peer_groups(db: Database, device_ids: Sequence[str]) -> NDArray[np.object_]:
    """Each device's peer group: its territory ("" for every device without a site)."""
    found: dict[str, str] = {}
    with db.engine.connect() as conn:
        for i in range(0, len(device_ids), 5000):
            found.update(
                conn.execute(
                    sa.select(device_sites.c.device_id, device_sites.c.territory_id).where(
                        device_sites.c.device_id.in_(list(device_ids[i : i + 5000]))
                    )
                ).all()
            )
    return np.array([found.get(d, "") for d in device_ids], dtype=object)
