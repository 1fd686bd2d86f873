"""The panel API v2 dialect's refusals: its own, and the services' refusals in its words."""

from __future__ import annotations

from ordersvc.emails import InvalidEmail
from ordersvc.errors import InvalidApiKey, InvalidParams, ServiceError
from ordersvc.idempotency import InvalidIdempotencyKey
from ordersvc.ledger.service import InsufficientBalance
from ordersvc.ops.dberrors import UNAVAILABLE_MESSAGE
from ordersvc.orders.errors import OrderNotFound
from ordersvc.orders.models import MAX_QUANTITY, MIN_QUANTITY
from ordersvc.orders.service import InvalidQuantity, QuantityTooLarge, QuantityTooSmall


class IncorrectRequest(ServiceError):
    code = "incorrect_request"
    message = "Incorrect request"


class IncorrectServiceId(ServiceError):
    code = "incorrect_service_id"
    message = "Incorrect service ID"


class IncorrectOrderId(ServiceError):
    code = "incorrect_order_id"
    message = "Incorrect order ID"


class RefillDisabled(ServiceError):
    code = "refill_disabled"
    message = "Refill is disabled for this service"


class IncorrectRefillId(ServiceError):
    code = "incorrect_refill_id"
    message = "Incorrect refill ID"


# Most specific first: the quantity's two sides before the quantity.
_WORDS: tuple[tuple[type[ServiceError], str], ...] = (
    (InvalidApiKey, "Invalid API key"),
    (InvalidEmail, "Incorrect link"),
    (QuantityTooSmall, f"Quantity less than minimal {MIN_QUANTITY}"),
    (QuantityTooLarge, f"Quantity more than maximal {MAX_QUANTITY}"),
    (InvalidQuantity, "Incorrect quantity"),
    (InsufficientBalance, "Not enough funds on balance"),
    (OrderNotFound, IncorrectOrderId.message),
    (InvalidIdempotencyKey, InvalidIdempotencyKey.message),  # the service's words: the dialect has none
    (InvalidParams, IncorrectRequest.message),
)


def text(error: Exception) -> str:
    """The dialect's words for a refusal; a service's own words where the dialect has none (an
    opted-out recipient, an idempotency conflict, too many requests); the outage answer for
    anything else (a database gone, a lock waited for too long)."""
    if not isinstance(error, ServiceError):
        return UNAVAILABLE_MESSAGE
    for kind, words in _WORDS:
        if isinstance(error, kind):
            return words
    return error.message
