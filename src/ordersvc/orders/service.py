"""Placing and listing orders."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ordersvc.accounts.service import API_KEYS
from ordersvc.bearer_tokens import hash_token, prefix_of
from ordersvc.consent import service as consent
from ordersvc.emails import InvalidEmail, normalize_email
from ordersvc.errors import Conflict, InvalidApiKey, InvalidParams, NotFound, ServiceError
from ordersvc.ledger import service as ledger
from ordersvc.ops import metrics
from ordersvc.orders import repository
from ordersvc.orders.errors import OrderNotFound
from ordersvc.orders.models import MAX_QUANTITY, MIN_QUANTITY, Order, OrderStatus
from ordersvc.orders.repository import OrderFilters
from ordersvc.pagination import (
    DEFAULT_LIMIT,
    CursorPage,
    CursorRequest,
    InvalidCursor,
    NumberedPage,
    PageRequest,
    PageWindow,
)

_PUBLIC_ID_ATTEMPTS = 10
MAX_IDEMPOTENCY_KEY_LENGTH = 255

__all__ = ["OrderFilters", "OrderNotFound"]


class InvalidQuantity(ServiceError):
    status = 422
    code = "invalid_quantity"
    message = f"Invalid quantity. Range is {MIN_QUANTITY}-{MAX_QUANTITY}."
    field = "quantity"


def price_mills(quantity: int) -> int:
    """price = quantity / 1000 USD, i.e. exactly `quantity` mills."""
    return quantity


def new_public_id() -> str:
    """8 uppercase hex characters from the OS's CSPRNG: not guessable, not sequential."""
    return secrets.token_hex(4).upper()


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order: Order
    replayed: bool  # True: an earlier request with the same idempotency key placed it


class InvalidIdempotencyKey(InvalidParams):
    code = "invalid_idempotency_key"
    message = "An idempotency key is 1 to 255 printable ASCII characters."


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    message = "This idempotency key was already used with different parameters."


def _check_idempotency_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or not all(" " <= ch <= "~" for ch in key):
        raise InvalidIdempotencyKey()


def _fingerprint(email: str, quantity: int) -> bytes:
    return hashlib.sha256(json.dumps({"email": email, "quantity": quantity}, sort_keys=True).encode()).digest()


def _snapshot(order: Order) -> dict[str, Any]:
    assert order.created_at is not None
    return {
        "public_id": order.public_id,
        "email": order.email,
        "quantity": order.quantity,
        "price_mills": order.price_mills,
        "status": order.status,
        "progress": order.progress,
        "created_at": order.created_at.isoformat(),
    }


def _from_snapshot(account_id: int, order_id: int | None, snapshot: dict[str, Any]) -> Order:
    fields = {**snapshot, "created_at": datetime.fromisoformat(snapshot["created_at"])}
    return Order(id=order_id, account_id=account_id, **fields)


async def place_order(
    session: AsyncSession, *, account_id: int, email: str, quantity: int, idempotency_key: str | None = None
) -> PlacedOrder:
    """Validate, lock the account, check its balance, insert the order and its debit: all in
    the caller's single transaction. Checks run in the contract's order: email, quantity,
    balance.

    With an idempotency key, the first request that commits places the order; a repeat with
    the same parameters gets that order back (even when it raced the first), a repeat with
    other parameters is a conflict. A request that fails leaves the key unused."""
    target = normalize_email(email)
    if not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
        raise InvalidQuantity()
    if idempotency_key is None:
        return PlacedOrder(await _insert_order(session, account_id=account_id, email=target, quantity=quantity), False)

    _check_idempotency_key(idempotency_key)
    fingerprint = _fingerprint(target, quantity)
    if not await repository.claim_idempotency_key(session, account_id, idempotency_key, fingerprint):
        record = await repository.get_idempotency_key(session, account_id, idempotency_key)
        if not hmac.compare_digest(record.fingerprint, fingerprint) or record.snapshot is None:
            raise IdempotencyConflict()
        return PlacedOrder(_from_snapshot(account_id, record.order_id, record.snapshot), True)
    order = await _insert_order(session, account_id=account_id, email=target, quantity=quantity)
    assert order.id is not None
    await repository.complete_idempotency_key(session, account_id, idempotency_key, order.id, _snapshot(order))
    return PlacedOrder(order, False)


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order the one-statement path placed, as its answer needs it (no ORM object to build)."""

    id: int
    public_id: str
    account_id: int
    email: str
    quantity: int
    price_mills: int
    status: str
    progress: int
    created_at: datetime


async def place_order_with_key(
    engine: AsyncEngine,
    *,
    api_key: str,
    email: str,
    quantity: int,
    deadline: float | None,
) -> NewOrder | None:
    """The usual order, placed in one round trip: an API key, a valid address and quantity, a
    recipient who has confirmed, no idempotency key. The key is checked and the order placed in
    one statement, its own transaction (migration 0011), so the account row is locked only while
    that statement runs.

    Refusals are the full path's, in its order: the key, the opt-out, the balance. Returns None,
    having written nothing, where only the full path (`accounts.authenticate`, then
    `place_order`, in a transaction) can answer: a malformed key, address or quantity (their
    errors come in the contract's order, the key's first), or a recipient who has not confirmed
    (the consent rules decide the status and may ask for confirmation). An order with an
    idempotency key is never sent here: its record is written in the full path's transaction.

    The statement commits itself, so no time limit may cancel it; instead it is not sent after
    `deadline` (the event loop's time; None: no limit), and no lock is awaited beyond it
    (`db.LockWaitTimedOut` either way, nothing written)."""
    if not API_KEYS.well_formed(api_key) or not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
        return None
    try:
        target = normalize_email(email)
    except InvalidEmail:
        return None
    placed = await _with_free_public_id(
        lambda public_id: repository.place_order_by_key(
            engine,
            prefix=prefix_of(api_key),
            key_hash=hash_token(api_key),
            public_id=public_id,
            email=target,
            quantity=quantity,
            price_mills=price_mills(quantity),
            deadline=deadline,
        )
    )
    if placed.outcome == "full_path":
        return None
    if placed.outcome == "invalid_key":
        raise InvalidApiKey()
    _refuse_unless_placed(placed.outcome)
    if placed.order_id is None or placed.account_id is None or placed.created_at is None or placed.status is None:
        raise NotFound("No such account.")
    metrics.ORDERS_PLACED.inc()  # committed with the statement
    return NewOrder(
        id=placed.order_id,
        public_id=placed.public_id,
        account_id=placed.account_id,
        email=target,
        quantity=quantity,
        price_mills=price_mills(quantity),
        status=placed.status,
        progress=0,
        created_at=placed.created_at,
    )


async def _insert_order(session: AsyncSession, *, account_id: int, email: str, quantity: int) -> Order:
    """Consent first: an opted-out recipient is refused before the balance is looked at, and an
    order whose recipient has not confirmed waits in `awaiting confirmation`. To a confirmed
    recipient (the usual case) the whole order is one round trip."""
    placed = await _place(session, account_id=account_id, email=email, quantity=quantity, status=None)
    ask_consent = None
    if placed.outcome == "consent_pending":
        assert placed.consent is not None
        gate = await consent.status_for_unconfirmed(session, account_id=account_id, consent=placed.consent)
        if gate.ask:
            ask_consent = gate.consent_id
        placed = await _place(session, account_id=account_id, email=email, quantity=quantity, status=gate.status)
    _refuse_unless_placed(placed.outcome)
    if ask_consent is not None:
        await consent.request_confirmation(session, consent_id=ask_consent)
    metrics.count_after_commit(session, metrics.ORDERS_PLACED.inc)
    assert placed.status is not None
    return Order(
        id=placed.order_id,
        public_id=placed.public_id,
        account_id=account_id,
        email=email,
        quantity=quantity,
        price_mills=price_mills(quantity),
        status=placed.status,
        progress=0,
        delivered=0,
        created_at=placed.created_at,
    )


async def _place(
    session: AsyncSession, *, account_id: int, email: str, quantity: int, status: OrderStatus | None
) -> repository.Placement:
    return await _with_free_public_id(
        lambda public_id: repository.place_order(
            session,
            public_id=public_id,
            account_id=account_id,
            email=email,
            quantity=quantity,
            price_mills=price_mills(quantity),
            status=None if status is None else status.value,
        )
    )


class _Outcome(Protocol):
    @property
    def outcome(self) -> str: ...


P = TypeVar("P", bound=_Outcome)


async def _with_free_public_id(place: Callable[[str], Awaitable[P]]) -> P:
    """`place` with a new random public id, again while the id it tried was taken."""
    for _ in range(_PUBLIC_ID_ATTEMPTS):
        placed = await place(new_public_id())
        if placed.outcome != "public_id_taken":
            return placed
    # 10 collisions in a row among 2^32 ids: the id space is nearly full
    raise RuntimeError("no free public order id after several attempts")


def _refuse_unless_placed(outcome: str) -> None:
    """The refusals of both order paths, in their order: the opt-out, then the balance."""
    if outcome == "opted_out":
        raise consent.RecipientOptedOut()
    if outcome == "insufficient_balance":
        raise ledger.InsufficientBalance()
    if outcome != "placed":
        raise NotFound("No such account.")


async def get_order(session: AsyncSession, *, account_id: int, public_id: str) -> Order:
    """The account's order; another account's order is not found, never forbidden."""
    order = await repository.get_order(session, account_id, public_id)
    if order is None:
        raise OrderNotFound()
    return order


async def _cursor_id(session: AsyncSession, account_id: int, public_id: str | None) -> int | None:
    if public_id is None:
        return None
    order = await repository.get_order(session, account_id, public_id)
    if order is None:
        raise InvalidCursor()
    return order.id


async def page_orders(
    session: AsyncSession,
    *,
    account_id: int,
    filters: OrderFilters,
    limit: int = DEFAULT_LIMIT,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> CursorPage[Order]:
    """Newest first; `starting_after` / `ending_before` are order ids the client has seen."""
    CursorRequest.check_one_direction(starting_after, ending_before)
    request = CursorRequest(
        limit=limit,
        starting_after=await _cursor_id(session, account_id, starting_after),
        ending_before=await _cursor_id(session, account_id, ending_before),
    )
    items, has_more = await repository.orders_page(session, account_id, filters, request)
    return CursorPage(items=items, has_more=has_more)


async def list_orders(
    session: AsyncSession, *, account_id: int, page: PageRequest
) -> NumberedPage[repository.OrderLine]:
    window = PageWindow.resolve(page, *await repository.count_orders(session, account_id))
    items = await repository.orders_window(session, account_id, window)
    return NumberedPage(items=items, page=window.page, per_page=window.per_page, total=window.total)
