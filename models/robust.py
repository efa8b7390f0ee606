"""A sample's centre and spread that a few wild values do not move: the median, and the
median absolute deviation scaled to a normal distribution's standard deviation."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from models.detectors import MAD_TO_SIGMA


def centre_and_spread(x: NDArray[np.float64]) -> tuple[float, float]:
    """(median, MAD × 1.4826) of the finite values the caller passes."""
    centre = float(np.median(x))
    return centre, MAD_TO_SIGMA * float(np.median(np.abs(x - centre)))
