"""What the manufacturer's datasheets say about each product: fan curves, rated filter
life, nominal capacities. The models start from these and learn the rest from the fleet.
(The simulator's physics uses the same datasheet values; the per-unit variation, the home
and the pollution are what the models must find out.)"""

from __future__ import annotations

import numpy as np

# air purifier, by fan level 0..5: clean-filter airflow (m³/h) and motor current (mA)
PURIFIER_AIRFLOW_M3H = np.array([0.0, 60.0, 120.0, 200.0, 280.0, 380.0])
PURIFIER_CLEAN_CURRENT_MA = np.array([0.0, 120.0, 180.0, 260.0, 350.0, 480.0])
PURIFIER_RATED_HOURS = 3500.0
PURIFIER_NOMINAL_DOSE_G = 25.0  # captured PM2.5 a rated filter holds

# water purifier: rated litres and months per stage, nominal product flow
WATER_RATED_L = {"sediment": 2000.0, "carbon": 4000.0, "ro": 8000.0}
WATER_RATED_DAYS = {"sediment": 180.0, "carbon": 365.0, "ro": 730.0}
WATER_NOMINAL_FLOW_LPM = 1.5
RO_REJECTION_NEW = 0.97

# air conditioner: clean the return-air filter every so many fan hours
AC_FILTER_RATED_HOURS = 1500.0
