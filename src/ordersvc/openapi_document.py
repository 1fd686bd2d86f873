"""The OpenAPI document as clients read it: FastAPI's, with every error response written out
(`problems.document_problems`), OpenAPI 3.1's way of saying null, and an example on every
answer.

Pydantic writes `X | None` as `anyOf: [X, {type: null}]` everywhere, and generated SDKs read
that as `None | X | Unset`. Here a value that may be null (a required output field such as
`revoked`) becomes `type: [X, "null"]`, and an input that may be left out (a query parameter, a
header, a body field with a default) is simply optional: it is never sent as null."""

from __future__ import annotations

import json
from typing import Any

from ordersvc.problems import document_problems


def finish(schema: dict[str, Any]) -> dict[str, Any]:
    document_problems(schema)
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                if not parameter.get("required"):
                    parameter["schema"] = _without_null(parameter["schema"])
            body = operation.get("requestBody")
            if body is not None and not body.get("required"):
                for media in body.get("content", {}).values():
                    media["schema"] = _without_null(media["schema"])
    for component in schema.get("components", {}).get("schemas", {}).values():
        required = set(component.get("required", []))
        for name, prop in component.get("properties", {}).items():
            component["properties"][name] = _nullable(prop) if name in required else _without_null(prop)
    _drop_unreferenced(schema)
    _complete_examples(schema)
    return schema


def _complete_examples(schema: dict[str, Any]) -> None:
    """Examples that say what the wire says. FastAPI's document drops every null, examples'
    too: a required nullable field absent from an example is put back as null. A list without
    an example of its own gets one from its items' (`{"data": [item], "has_more": false}`).
    And every 2xx JSON response shows its schema's example."""
    schemas: dict[str, Any] = schema.get("components", {}).get("schemas", {})
    for component in schemas.values():
        for example in component.get("examples", []):
            _restore_nulls(example, component, schemas)
    for component in schemas.values():
        props = component.get("properties", {})
        item_ref = props.get("data", {}).get("items", {}).get("$ref", "")
        item = schemas.get(item_ref.rpartition("/")[2], {})
        if "examples" not in component and item.get("examples") and set(props) <= {"data", "has_more"}:
            component["examples"] = [
                {"data": [item["examples"][0]]} | ({"has_more": False} if "has_more" in props else {})
            ]
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                media = response.get("content", {}).get("application/json")
                if status.startswith("2") and media is not None:
                    ref = media.get("schema", {}).get("$ref", "").rpartition("/")[2]
                    if schemas.get(ref, {}).get("examples"):
                        media["example"] = schemas[ref]["examples"][0]


def _restore_nulls(example: object, component: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Put back the nulls of required nullable fields, in the example and the objects nested in
    it (fields whose schema is another component, or a list of them)."""
    if not isinstance(example, dict):
        return
    required, props = component.get("required", []), component.get("properties", {})
    for name in required:
        if name not in example and _may_be_null(props.get(name, {})):
            example[name] = None
    for name, value in example.items():
        node = props.get(name, {})
        ref = node.get("$ref") or node.get("items", {}).get("$ref", "")
        nested = schemas.get(ref.rpartition("/")[2]) if ref else None
        if nested is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            _restore_nulls(item, nested, schemas)


def _may_be_null(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return (isinstance(kind, list) and "null" in kind) or {"type": "null"} in node.get("anyOf", [])


def _drop_unreferenced(schema: dict[str, Any]) -> None:
    """FastAPI's own `HTTPValidationError` (and what only it uses): every 422 here is a `Problem`."""
    schemas: dict[str, Any] = schema.get("components", {}).get("schemas", {})
    while True:
        text = json.dumps({"paths": schema.get("paths", {}), "components": schema.get("components", {})})
        unused = [name for name in schemas if text.count(f'"#/components/schemas/{name}"') == 0]
        if not unused:
            return
        for name in unused:
            del schemas[name]


def _split(node: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(the non-null branch, the node's other keywords) of `anyOf: [X, null]`, or None."""
    branches = node.get("anyOf")
    if not isinstance(branches, list) or len(branches) != 2 or {"type": "null"} not in branches:
        return None
    (value,) = [b for b in branches if b != {"type": "null"}]
    return value, {k: v for k, v in node.items() if k != "anyOf"}


def _without_null(node: dict[str, Any]) -> dict[str, Any]:
    split = _split(node)
    if split is None:
        return node
    value, rest = split
    return {**value, **rest}


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    split = _split(node)
    if split is None:
        return node
    value, rest = split
    if "type" not in value or not isinstance(value["type"], str):
        return node  # a reference: `anyOf` is the only way to add null to it
    return {**value, **rest, "type": [value["type"], "null"]}
