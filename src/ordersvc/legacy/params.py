"""Reading the legacy request: body (JSON, or a form), key, and typed parameters.

Every function here returns None for input it cannot accept; the endpoint turns that into
the contract's error string.

Text that PostgreSQL cannot store (NUL, unpaired surrogates, invalid UTF-8 in a form) is
replaced here, as a whole value, by U+FFFD: this API's only edge, since the contract answers
every refusal itself (its route class is not `GuardedRoute`). A lone U+FFFD is no key, action,
address, order id, number or idempotency key, so each parameter refuses it with the contract's
own error, in the contract's order (`Invalid key.`, `Unknown action.`, `Invalid email.`, ...),
as it refused the original. The whole value, not the characters: `a\u0000@example.com`
with its NUL replaced would be a valid address."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from ordersvc.text import REPLACEMENT, is_storable

# Python refuses to convert integers of more than 4300 digits (a DoS guard), and so does
# `json.loads`; numbers that long are refused as `Invalid params.` whichever way they come.
_MAX_INTEGER_DIGITS = 4000
_INTEGER_STRING = re.compile(rf"-?[0-9]{{1,{_MAX_INTEGER_DIGITS}}}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# One decoder for every body (json.loads with these options builds a new one per call).
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


async def parse_body(raw: bytes, headers: Headers) -> dict[str, Any] | None:
    """The body as a JSON object whatever the Content-Type; a form (urlencoded, or multipart
    when so declared) is accepted too. None for anything else, including an empty body.

    JSON numbers with a fraction or exponent become `Decimal`, so `1000.0000000000000001`
    stays a fraction instead of being rounded to an integer by float parsing."""
    if not raw.strip():
        return None
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    value: object
    try:
        value = _DECODER.decode(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        if content_type == "multipart/form-data":
            value = await _parse_multipart(raw, headers)
        else:
            value = _parse_urlencoded(raw)
    return _replace_unstorable(value) if isinstance(value, dict) else None


def usable_text(value: object) -> object:
    """The value, or U+FFFD in place of a string PostgreSQL cannot store."""
    return REPLACEMENT if isinstance(value, str) and not is_storable(value) else value


def _replace_unstorable(document: dict[str, Any]) -> dict[str, Any]:
    """The parsed body, every unstorable string (value or key, at any depth) replaced by U+FFFD.
    In place and iterative: the parser's own objects, nested as deep as it allowed."""
    stack: list[dict[str, Any] | list[Any]] = [document]
    while stack:
        container = stack.pop()
        if isinstance(container, dict):
            for key in list(container):
                item = container[key]
                if isinstance(key, str) and not is_storable(key):
                    del container[key]
                    container[REPLACEMENT] = item
                    key = REPLACEMENT
                container[key] = usable_text(item)
                if isinstance(item, dict | list):
                    stack.append(item)
        else:
            for index, item in enumerate(container):
                container[index] = usable_text(item)
                if isinstance(item, dict | list):
                    stack.append(item)
    return document


def _parse_urlencoded(raw: bytes) -> dict[str, str] | None:
    try:
        text = raw.decode("utf-8")
        # Strict: every field needs its "=", so plain garbage is not mistaken for a form. Invalid
        # UTF-8 after %-decoding becomes lone surrogates (then U+FFFD for the whole value), not
        # U+FFFD per byte inside a value that might still look valid.
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, max_num_fields=100, errors="surrogateescape"
        )
        return dict(pairs)
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
    return next((usable_text(c) for c in candidates if c not in (None, "")), None)


def as_int(value: object) -> int | None:
    """An integer, a JSON number with no fractional part (`10000.0`, `1e4`), or a
    decimal-integer string (`"10000"`). Booleans, fractions and anything else are None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value() or value.adjusted() >= _MAX_INTEGER_DIGITS:
            return None
        return int(value)
    if isinstance(value, str) and _INTEGER_STRING.fullmatch(value):
        return int(value)
    return None


def optional_int(body: dict[str, Any], name: str, default: int | None) -> tuple[bool, int | None]:
    """(ok, value) for an optional integer parameter; absent or null means `default`."""
    value = body.get(name)
    if value is None:
        return True, default
    parsed = as_int(value)
    return parsed is not None, parsed
