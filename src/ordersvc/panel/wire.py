"""The panel API v2 dialect's wire format: compact JSON, numbers as strings where the dialect
has strings, its status names, and integer order ids.

An order's panel id is its public id (8 uppercase hex characters) read as a hexadecimal number:
`A7E17A3E` is 2816571966, and back, `format(2816571966, "08X")`. One-to-one, so the same order
is looked up in every API; as unguessable as the public id (no count of orders shows through)."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import Response

from ordersvc.legacy.params import as_int
from ordersvc.legacy.render import COMPACT, JsonValue, encode
from ordersvc.orders.models import OrderStatus

_PUBLIC_IDS = 1 << 32

STATUS_NAMES: Mapping[str, str] = {
    OrderStatus.AWAITING_CONFIRMATION: "Pending",
    OrderStatus.PENDING: "Pending",
    OrderStatus.IN_PROGRESS: "In progress",
    OrderStatus.COMPLETED: "Completed",
    OrderStatus.PARTIAL: "Partial",
    OrderStatus.CANCELED: "Canceled",  # declined and expired requests end orders canceled, too
}


def answer(payload: Mapping[str, JsonValue] | list[JsonValue]) -> Response:
    return Response(content=encode(payload, COMPACT), media_type="application/json")


def panel_id(public_id: str) -> int:
    return int(public_id, 16)


def public_id_of(value: object) -> str | None:
    """The public id of a panel order id (an integer, or its decimal string); None if it is none."""
    number = as_int(value)
    if number is None or not 0 <= number < _PUBLIC_IDS:
        return None
    return f"{number:08X}"
