"""The published schema says what the API refuses before any route: text with a NUL
character (PostgreSQL stores none; `api/guard.py` answers 422). Every string a request
carries (path, query, header, form and JSON body) gets a pattern that excludes it, so a
client generated from the schema, or a fuzzer, knows the rule instead of finding it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

NO_NUL = "^[^\\x00]*$"
_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


def with_text_rules(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """A replacement for `app.openapi` that builds FastAPI's document once and marks
    every request string with `NO_NUL`."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = build()
            mark_requests(doc)
            app.openapi_schema = doc
        return app.openapi_schema

    return openapi


def mark_requests(doc: dict[str, Any]) -> None:
    components = doc.get("components", {}).get("schemas", {})
    seen: set[str] = set()
    for item in doc.get("paths", {}).values():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            for param in op.get("parameters", []):
                _mark(param.get("schema", {}), components, seen)
            for kind, media in op.get("requestBody", {}).get("content", {}).items():
                schema = media.get("schema", {})
                if kind == "application/x-www-form-urlencoded":
                    _open_form(_resolve(schema, components))
                _mark(schema, components, seen)


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        found: dict[str, Any] = components.get(ref.rsplit("/", 1)[1], schema)
        return found
    return schema


def _open_form(schema: dict[str, Any]) -> None:
    """A form may carry fields the route ignores; their names and values are text too."""
    if "additionalProperties" not in schema:
        schema["additionalProperties"] = {"type": "string"}


def _mark(schema: dict[str, Any], components: dict[str, Any], seen: set[str]) -> None:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        if name not in seen and name in components:
            seen.add(name)
            _mark(components[name], components, seen)
        return
    if schema.get("type") == "string" and not ({"pattern", "enum", "format"} & schema.keys()):
        schema["pattern"] = NO_NUL
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []):
            _mark(sub, components, seen)
    if "properties" in schema and schema.get("additionalProperties") is not False:
        schema["propertyNames"] = {"pattern": NO_NUL}
    for sub in schema.get("properties", {}).values():
        _mark(sub, components, seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _mark(schema[key], components, seen)
