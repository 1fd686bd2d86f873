"""The legacy API's exact wire format.

Compatibility quirks, kept on purpose because old clients and their tests compare bytes:
- money is a JSON number with at least two decimals and no float artefacts (`125.50`,
  `1.234`, `-10.00`), which `json.dumps` cannot produce from a float, hence this encoder;
- separators follow the contract's own examples: list and balance responses use `": "` and
  `", "` (`{"balance": 125.50}`), while `order` and error responses are compact
  (`{"order":"A7E17A3E"}`, `{"error":"Invalid key."}`);
- every error is HTTP 200: PHP's `file_get_contents` drops the body of a 4xx response;
- `created` is UTC `YYYY-MM-DD HH:MM:SS`;
- non-ASCII text is `\\u` escaped, as PHP's `json_encode` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii

from fastapi.responses import Response

from ordersvc.money import format_usd


@dataclass(frozen=True, slots=True)
class Money:
    mills: int


JsonValue = str | int | bool | None | Money | Mapping[str, "JsonValue"] | Sequence["JsonValue"]

_string = encode_basestring_ascii  # json.dumps' own (C) string encoder, as it writes str values

SPACED = (", ", ": ")
COMPACT = (",", ":")


def encode(value: JsonValue, separators: tuple[str, str] = SPACED) -> str:
    """What `json.dumps(value, separators=...)` writes (ASCII, `\\u` escapes), and money as numbers.
    Scalars are written here, not by `json.dumps` per value: a list page has 500 of them."""
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Money):
        return format_usd(value.mills)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    item_sep, key_sep = separators
    if isinstance(value, Mapping):
        members = (_string(k) + key_sep + encode(v, separators) for k, v in value.items())
        return "{" + item_sep.join(members) + "}"
    return "[" + item_sep.join(encode(v, separators) for v in value) + "]"


def wire_time(moment: datetime | None) -> str:
    assert moment is not None
    if moment.tzinfo is not UTC:  # asyncpg's timestamps are UTC already: no conversion
        moment = moment.astimezone(UTC)
    return moment.isoformat(" ", "seconds")[:19]  # "YYYY-MM-DD HH:MM:SS", a third of strftime's cost


def respond(payload: Mapping[str, JsonValue], separators: tuple[str, str] = SPACED) -> Response:
    return Response(content=encode(payload, separators), media_type="application/json")


def error(message: str) -> Response:
    return respond({"error": message}, COMPACT)
