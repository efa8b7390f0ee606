"""JSON Schema export of the device contract (`fleetcare schema`)."""

from __future__ import annotations

from typing import Any

from telemetry.metrics import DEVICE_TYPES
from telemetry.payload import CommandPayload, EventPayload, StatusPayload, telemetry_model

SCHEMA_ID = "https://fleetcare.dev/schema/device-contract-v1.json"


def contract_schema() -> dict[str, Any]:
    """One JSON Schema document with a definition per device type's telemetry, events, status."""
    defs: dict[str, Any] = {}
    telemetry_refs = {}
    for name in DEVICE_TYPES:
        schema = telemetry_model(name).model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        title = schema["title"]
        defs[title] = schema
        telemetry_refs[name] = {"$ref": f"#/$defs/{title}"}
    for model in (EventPayload, StatusPayload, CommandPayload):
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[schema["title"]] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "FleetCare device contract v1",
        "description": (
            "Payloads devices publish on {prefix}/v1/{device_type}/{device_id}/{kind}: "
            "telemetry per device type (QoS 1), event (QoS 1), status (retained; Last Will); "
            "and cmd, which the engine sends to devices."
        ),
        "type": "object",
        "properties": {
            "telemetry": {"type": "object", "properties": telemetry_refs},
            "event": {"$ref": "#/$defs/EventPayload"},
            "status": {"$ref": "#/$defs/StatusPayload"},
            "cmd": {"$ref": "#/$defs/CommandPayload"},
        },
        "$defs": defs,
    }


def device_type_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of one device type's telemetry payload."""
    return telemetry_model(name).model_json_schema()
