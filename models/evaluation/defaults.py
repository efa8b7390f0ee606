"""The evaluation's defaults, importable without the models (the CLI's options show them)."""

EVAL_YEAR = 2027  # training fleets start in 2026: every case is a year the models never saw
FAULTS_PER_100_DEVICE_YEARS = 5.0
