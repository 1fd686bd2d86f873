"""Reading the legacy request: body (JSON, or a form), key, and typed parameters.

Every function here returns None for input it cannot accept; the endpoint turns that into
the contract's error string."""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

_INTEGER_STRING = re.compile(r"-?[0-9]+")
# Longer digit strings are out of every range we accept; clamp instead of converting.
_MAX_INTEGER_DIGITS = 18
_CLAMPED: int = 10**_MAX_INTEGER_DIGITS


async def read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it is larger than `limit` bytes (checked while reading)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def parse_body(raw: bytes, headers: Headers) -> dict[str, Any] | None:
    """The body as a JSON object whatever the Content-Type; a urlencoded or multipart form
    is accepted too. None for anything else."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    value: object
    try:
        value = json.loads(raw.decode("utf-8-sig"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        if content_type == "application/x-www-form-urlencoded":
            value = _parse_urlencoded(raw)
        elif content_type == "multipart/form-data":
            value = await _parse_multipart(raw, headers)
        else:
            return None
    return value if isinstance(value, dict) else None


def _parse_urlencoded(raw: bytes) -> dict[str, str] | None:
    try:
        text = raw.decode("utf-8")
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=100))
    except ValueError:
        return None


async def _parse_multipart(raw: bytes, headers: Headers) -> dict[str, str] | None:
    async def body() -> AsyncGenerator[bytes, None]:
        yield raw

    try:
        form = await MultiPartParser(headers, body(), max_files=0, max_fields=100).parse()
    except MultiPartException:
        return None
    fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    return fields if len(fields) == len(form.multi_items()) else None


def find_key(request: Request, body: dict[str, Any]) -> object:
    """The API key from the first transport that carries a non-empty one, in this order:
    `?key=`, the body's `"key"`, `Authorization: Bearer`, `X-API-Key`. None when none does."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    candidates = (
        request.query_params.get("key"),
        body.get("key"),
        credentials.strip() if scheme.lower() == "bearer" else None,
        request.headers.get("x-api-key"),
    )
    return next((c for c in candidates if c not in (None, "")), None)


def as_int(value: object) -> int | None:
    """An integer, a float with no fractional part, or a decimal-integer string. Booleans,
    fractions and anything else are None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and _INTEGER_STRING.fullmatch(value):
        digits = value.lstrip("-").lstrip("0") or "0"
        if len(digits) > _MAX_INTEGER_DIGITS:
            return -_CLAMPED if value.startswith("-") else _CLAMPED
        return int(value)
    return None


def optional_int(body: dict[str, Any], name: str, default: int | None) -> tuple[bool, int | None]:
    """(ok, value) for an optional integer parameter; absent or null means `default`."""
    value = body.get(name)
    if value is None:
        return True, default
    parsed = as_int(value)
    return parsed is not None, parsed
