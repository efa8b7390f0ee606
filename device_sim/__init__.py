"""The device simulator: appliances with physics, ground truth, and MQTT publishing.

It is a device: it imports nothing of the engine but `telemetry` (the contract) and talks
to the engine over MQTT only. Built so far: air and water purifiers (issue #3 is in
progress; air conditioners, faults, chaos and the cmd loop follow).
"""
