"""The models: what each device's telemetry says about its filters and its health.

Estimators (filter life, health and anomaly, the robust detector) follow scikit-learn's
conventions and do no I/O; `daily` and `wear` turn the store's readings into their
features; `registry` keeps trained versions on disk; `scoring` is the daily pass that
writes predictions and anomaly scores to the database; `evaluation` measures them
against a simulated fleet's ground truth (docs/models.md).
"""
