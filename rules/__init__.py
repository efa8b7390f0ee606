"""The rules: conditions on telemetry, events and model outputs that raise alerts, and
alerts that open work orders.

A catalog of built-in rows and YAML files (`catalog`, `builtin`, `spec`), per-message
checks at ingest (`stream`) and a periodic evaluator over windows (`evaluator`), the alert
state machine (`machine`) kept in the database with silences (`alerts`), and what an
alert does (`actions`). docs/rules.md has the rule format.
"""
