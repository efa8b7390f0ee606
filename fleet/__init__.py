"""The fleet: the devices the engine knows and what it knows of them.

The device registry (`registry`), each device's live state (`state`), its own MQTT
credentials and the broker's auth files (`credentials`), the outbox of commands to
devices (`commands`) and predicted filter exhaustions (`predictions`).
"""
