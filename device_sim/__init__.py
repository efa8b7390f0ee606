"""The device simulator: appliances with physics, ground truth, and MQTT publishing.

It is a device: it imports nothing of the engine but `telemetry` (the contract) and talks
to the engine over MQTT only: air purifiers, water purifiers and air conditioners, the
faults they develop with their ground truth, chaos and outages, and the command loop
(docs/simulator.md).
"""
