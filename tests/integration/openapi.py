"""Linode's published OpenAPI 3.0 description, read as JSON Schema to hold exchanges against.

The schema file lies beside the repository (`../shared/schemas/linode-openapi.json`, see its README);
the tests that use it skip when it is not there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "schemas" / "linode-openapi.json"

# Keys that document a schema and never constrain a value.
_DOC_KEYS = {"example", "examples", "description", "title", "externalDocs", "discriminator", "xml"}


def json_schema(node: Any, *, names: bool = False) -> Any:
    """OpenAPI 3.0's schema dialect as JSON Schema: `nullable` admits null, and `additionalProperties:
    false` is dropped (the live API has added fields since the description was published, and it breaks
    `allOf`). `names` marks a `properties` mapping, whose keys are field names, never keywords."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {key: json_schema(value) for key, value in node.items()}
    out = {key: json_schema(value, names=key in ("properties", "patternProperties"))
           for key, value in node.items()
           if key not in _DOC_KEYS and not key.startswith("x-") and key != "nullable"}
    if out.get("additionalProperties") is False:
        del out["additionalProperties"]
    if node.get("nullable"):
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif kind is None:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def declared_fields(schema: dict[str, Any]) -> set[str]:
    """Every field name a request body schema declares at its top level, through allOf/anyOf/oneOf."""
    names = set(schema.get("properties", {}))
    for key in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(key, []):
            names |= declared_fields(part)
    return names


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # e.g. "/linode/instances/{linodeId}"
    spec: dict[str, Any]

    def request_schema(self) -> dict[str, Any] | None:
        content = self.spec.get("requestBody", {}).get("content", {})
        return content.get("application/json", {}).get("schema")

    def response_schema(self, status: int) -> dict[str, Any] | None:
        responses = self.spec["responses"]
        answer = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        if answer is None:
            return None
        return answer.get("content", {}).get("application/json", {}).get("schema")


@cache
def load() -> dict[str, Any]:
    spec = json.loads(SPEC.read_text())
    _admit_known_nulls(spec)
    return spec


def _admit_known_nulls(node: Any) -> None:
    """The schemas' README: Linode's own recorded answers carry null in `backups.last_successful` and
    `backups.schedule.day` / `window`, which the description does not allow. Mark those nullable."""
    if isinstance(node, list):
        for item in node:
            _admit_known_nulls(item)
        return
    if not isinstance(node, dict):
        return
    backups = node.get("properties", {}).get("backups") if isinstance(node.get("properties"), dict) else None
    if isinstance(backups, dict):
        fields = backups.get("properties", {})
        if "last_successful" in fields:
            fields["last_successful"]["nullable"] = True
        for name in ("day", "window"):
            if name in fields.get("schedule", {}).get("properties", {}):
                fields["schedule"]["properties"][name]["nullable"] = True
    for value in node.values():
        _admit_known_nulls(value)


def operation(method: str, path: str) -> Operation | None:
    """The documented operation that answers `method path` (a path under /v4, ids filled in)."""
    for template, item in load()["paths"].items():
        under = template.removeprefix("/{apiVersion}")
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(under)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return Operation(method.upper(), under, item[method.lower()])
    return None


def problems(schema: dict[str, Any], value: Any) -> list[str]:
    """Where `value` breaks `schema` (OpenAPI dialect), one line each; empty when it holds."""
    validator = jsonschema.Draft4Validator(json_schema(schema))
    return [f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
            for error in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))]
