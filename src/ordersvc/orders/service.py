"""Orders: placing one (`place`: the whole order rule starts there), reading and listing them.
What happens to an order after it is placed is `lifecycle`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from ordersvc import idempotency
from ordersvc.accounts import service as accounts
from ordersvc.accounts.callers import AccountCaller, ApiKeyCaller, Caller, caller_or_account
from ordersvc.accounts.service import API_KEYS
from ordersvc.bearer_tokens import hash_token, prefix_of
from ordersvc.config import Settings
from ordersvc.emails import InvalidEmail, normalize_email
from ordersvc.errors import InvalidApiKey, InvalidParams, ServiceError
from ordersvc.ledger.service import InsufficientBalance
from ordersvc.ops import metrics
from ordersvc.orders import repository
from ordersvc.orders.batching import ConsentTiming, OrderRequest, Placement, batcher_for
from ordersvc.orders.errors import OrderNotFound, RecipientOptedOut
from ordersvc.orders.models import MAX_QUANTITY, MIN_QUANTITY, Order, OrderOutcome
from ordersvc.orders.repository import OrderFilters
from ordersvc.pagination import (
    DEFAULT_LIMIT,
    CursorPage,
    CursorRequest,
    NumberedPage,
    PageRequest,
    stream_by_id,
)

_PUBLIC_ID_ATTEMPTS = 10
logger = logging.getLogger(__name__)

__all__ = ["OrderFilters", "OrderNotFound", "RecipientOptedOut"]


class InvalidQuantity(ServiceError):
    status = 422
    code = "invalid_quantity"
    message = f"Invalid quantity. Range is {MIN_QUANTITY}-{MAX_QUANTITY}."
    field = "quantity"


class QuantityTooSmall(InvalidQuantity):
    """Below `MIN_QUANTITY`: the same refusal, told apart for the panel API's words."""


class QuantityTooLarge(InvalidQuantity):
    """Above `MAX_QUANTITY`."""


def price_mills(quantity: int) -> int:
    """price = quantity / 1000 USD, i.e. exactly `quantity` mills."""
    return quantity


class _PublicIds:
    """8 uppercase hex characters from the OS's CSPRNG: not guessable, not sequential. Drawn
    4 KiB at a time (one system call per 1,024 ids instead of one per order), and never shared
    with a forked child."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._pool = b""
        self._at = 0

    def __call__(self) -> str:
        if self._at >= len(self._pool):
            self._pool, self._at = secrets.token_bytes(4096), 0
        drawn = self._pool[self._at : self._at + 4]
        self._at += 4
        return drawn.hex().upper()


new_public_id = _PublicIds()


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order as its placing showed it (no ORM object to build)."""

    id: int
    public_id: str
    account_id: int
    email: str
    quantity: int
    price_mills: int
    status: str
    progress: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order: NewOrder
    replayed: bool  # True: an earlier request with the same idempotency key placed it


async def place(
    engine: AsyncEngine,
    settings: Settings,
    *,
    caller: Caller,
    email: str,
    quantity: int,
    idempotency_key: str | None = None,
    deadline: float | None = None,
) -> PlacedOrder:
    """Place an order: the whole order rule starts here, for every interface.

    Checks, in the contract's order: the caller (an active API key, or an account a session
    authenticated), the email, the quantity (500-50000), the idempotency key's form; then, in the
    order statement (`orders/sql/ordersvc_place_orders.sql`, where the rest of the rule is
    written): the idempotency key's earlier use (a replay, or a conflict), the recipient's opt-out,
    the balance. The order starts `pending` to a recipient who has confirmed and `awaiting
    confirmation` otherwise; a recipient not asked yet (or whose last answer was no) is sent a
    confirmation request, at most one per address per `consent_mail_interval_hours`. The price
    (quantity / 1000 USD) is debited at once, through the ledger.

    The order, its debit, its consent request and message, and its idempotency record are written
    by one statement that commits on its own, together with the other orders this process is
    placing at that moment (group commit: `batching`). A refusal writes nothing of its own (an
    expired request found on the way is expired, as the sweep would). The statement is not sent
    after `deadline` (the event loop's time; None: no limit), and waits for no lock beyond it
    (`db.LockWaitTimedOut`, nothing written): a statement that commits itself may not be
    cancelled, or a client could be told "not completed" about a placed order."""
    try:
        target, fingerprint = _checked(email, quantity, idempotency_key)
    except ServiceError:
        await accounts.check_caller(engine, caller)  # an invalid key is refused first
        raise
    if isinstance(caller, ApiKeyCaller) and not API_KEYS.well_formed(caller.key):
        raise InvalidApiKey()
    return await _send(engine, _timing(settings), caller, target, quantity, idempotency_key, fingerprint, deadline)


MAX_BATCH_LINES = 100
BATCH_OPERATION = "orders_batch"  # the batch's Idempotency-Key, among the REST operations' keys


class InvalidBatch(InvalidParams):
    code = "invalid_batch"
    message = f"A mass order has 1 to {MAX_BATCH_LINES} lines."
    field = "orders"


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line of a mass order, as the client sent it."""

    email: str
    quantity: int
    idempotency_key: str | None = None


LineOutcome = PlacedOrder | ServiceError
"""A line's order (placed now, or replayed by its key), or why it was refused."""

LINE_PROBLEMS: dict[str, type[ServiceError]] = {
    problem.code: problem
    for problem in (
        InvalidEmail,
        InvalidQuantity,
        idempotency.InvalidIdempotencyKey,
        idempotency.IdempotencyConflict,
        RecipientOptedOut,
        InsufficientBalance,
    )
}
"""The refusals that are a line's own."""
LINE_PROBLEM_TYPES = tuple(LINE_PROBLEMS.values())


class LineNotDecided(ServiceError):
    """A mass order's line whose statement failed (the database unreachable, a lock waited for
    too long) while other lines have orders."""

    status = 503
    code = "line_not_decided"
    message = (
        "This line was not decided: the service was unavailable. Send the batch again with the same "
        "Idempotency-Key (or the line with its own idempotency key) to decide it without placing anything twice."
    )


@dataclass(frozen=True, slots=True)
class PlacedBatch:
    lines: list[LineOutcome]  # one per line, in the lines' order
    replayed: bool  # True: the answer an earlier request with the same batch key got


async def place_batch(
    engine: AsyncEngine,
    settings: Settings,
    *,
    caller: Caller,
    lines: Sequence[OrderLine],
    idempotency_key: str | None = None,
    deadline: float | None = None,
) -> PlacedBatch:
    """A mass order: every line decided alone, in the given order, as if sent one by one to
    `place` (the same checks, the same statement, the same answers), and each line's outcome.

    The caller is checked once, first (InvalidApiKey for the whole batch), then the number of
    lines (1 to 100, `InvalidBatch`). The lines go to the order statement together, so they ride
    its group commit (`batching`: up to 64 orders per statement, the rest in the next one, in
    order), not a transaction each.

    A line whose statement fails (the database gone, a lock waited for too long) is
    `LineNotDecided` when other lines have orders: failing the request would hide them. When no
    line has an order, the request fails with that error, as a single order would.

    `idempotency_key` (the batch's): the same batch again gets the first answer, refusals
    included; another batch under the key is IdempotencyConflict. The key is recorded before the
    lines are sent and the answer after, once every line is decided. Each line without a key of
    its own is placed under one derived from the key's record (`_line_keys`), so a retry after a
    failure midway, or a concurrent duplicate, places each line at most once; such a line is
    this batch's order (`replayed` False) however many attempts it took. A line's own
    `idempotency_key` works as `place`'s."""
    account_id = await accounts.caller_account_id(engine, caller)
    if not 1 <= len(lines) <= MAX_BATCH_LINES:
        raise InvalidBatch()
    keyed = None
    derived: list[str] = []  # the lines' keys under the batch's key
    if idempotency_key is not None:
        request = [[line.email, line.quantity, line.idempotency_key] for line in lines]
        keyed = idempotency.Keyed(account_id, BATCH_OPERATION, idempotency_key, idempotency.fingerprint(lines=request))
        reservation = await idempotency.reserve(engine, keyed)
        if reservation.answer is not None:
            return PlacedBatch(_decode_lines(account_id, reservation.answer), replayed=True)
        derived = _line_keys(idempotency_key, reservation.since, len(lines))
    timing, account = _timing(settings), AccountCaller(account_id)

    async def place_line(index: int, line: OrderLine) -> PlacedOrder:
        key = line.idempotency_key if line.idempotency_key is not None or keyed is None else derived[index]
        target, fingerprint = _checked(line.email, line.quantity, key)
        placed = await _send(engine, timing, account, target, line.quantity, key, fingerprint, deadline)
        if line.idempotency_key is None and placed.replayed:
            # Placed under the batch's own key, by an attempt of this batch whose answer was never
            # recorded: this batch's order, not an earlier one's.
            return PlacedOrder(placed.order, replayed=False)
        return placed

    # Tasks start in creation order and each queues its order before its first wait: the
    # statement gets the lines in the given order.
    outcomes = await asyncio.gather(*(place_line(i, line) for i, line in enumerate(lines)), return_exceptions=True)
    results: list[LineOutcome] = []
    undecided: list[Exception] = []
    for outcome in outcomes:
        if isinstance(outcome, PlacedOrder) or isinstance(outcome, LINE_PROBLEM_TYPES):  # noqa: SIM101
            results.append(outcome)
        elif isinstance(outcome, Exception):
            undecided.append(outcome)
            results.append(LineNotDecided())
        else:
            raise outcome  # cancelled: the request is gone
    if undecided:
        if not any(isinstance(result, PlacedOrder) for result in results):
            raise undecided[0]  # no line has an order: the request failed, as a single order's would
        # Some lines have orders, so failing the request would hide them: the answer says which
        # lines are not decided, and is not recorded, so that a retry decides them.
        logger.warning(
            "mass order: %d of %d lines not decided (%s)", len(undecided), len(lines), type(undecided[0]).__name__
        )
        return PlacedBatch(results, replayed=False)
    if keyed is not None:
        await idempotency.record(engine, keyed, _encode_lines(results))
    return PlacedBatch(results, replayed=False)


def _line_keys(batch_key: str, since: datetime, count: int) -> list[str]:
    """The idempotency keys of a keyed batch's lines that have none of their own (printable, at
    most `idempotency.MAX_KEY_LENGTH`), tied to the batch key's record (`since`): every attempt
    under that record uses the same, and the same key reused once the record is gone (after a
    day) is a new batch."""
    digest = hashlib.sha256(f"{batch_key}\n{since.isoformat()}".encode()).hexdigest()[:40]
    return [f"batch:{digest}:{index}" for index in range(count)]


def _encode_lines(results: list[LineOutcome]) -> str:
    encoded: list[dict[str, Any]] = []
    for result in results:
        if isinstance(result, ServiceError):
            encoded.append({"problem": result.code})
            continue
        order = result.order
        fields = {
            "id": order.id,
            "public_id": order.public_id,
            "email": order.email,
            "quantity": order.quantity,
            "price_mills": order.price_mills,
            "status": order.status,
            "progress": order.progress,
            "created_at": order.created_at.isoformat(),
        }
        encoded.append({"order": fields, "replayed": result.replayed})
    return json.dumps(encoded)


def _decode_lines(account_id: int, body: str) -> list[LineOutcome]:
    results: list[LineOutcome] = []
    for item in json.loads(body):
        if "problem" in item:
            results.append(LINE_PROBLEMS[item["problem"]]())
            continue
        fields = item["order"]
        results.append(PlacedOrder(_from_snapshot(account_id, fields["id"], fields), replayed=item["replayed"]))
    return results


def _checked(email: str, quantity: int, idempotency_key: str | None) -> tuple[str, bytes | None]:
    """The order's own checks, in the contract's order (the email, the quantity, the key's form):
    the normalized address, and the fingerprint a repeat of the key must match."""
    target = normalize_email(email)
    if quantity < MIN_QUANTITY:
        raise QuantityTooSmall()
    if quantity > MAX_QUANTITY:
        raise QuantityTooLarge()
    if idempotency_key is None:
        return target, None
    idempotency.check_key(idempotency_key)
    return target, idempotency.fingerprint(email=target, quantity=quantity)


def _timing(settings: Settings) -> ConsentTiming:
    return ConsentTiming(
        mail_interval=timedelta(hours=settings.consent_mail_interval_hours),
        link_lifetime=timedelta(hours=settings.consent_link_hours),
    )


async def _send(
    engine: AsyncEngine,
    timing: ConsentTiming,
    caller: Caller,
    target: str,
    quantity: int,
    idempotency_key: str | None,
    fingerprint: bytes | None,
    deadline: float | None,
) -> PlacedOrder:
    """One checked order through the order statement (`batching`), with a new public id while
    the one drawn is taken."""
    for _ in range(_PUBLIC_ID_ATTEMPTS):
        public_id = new_public_id()
        request = OrderRequest(
            prefix=prefix_of(caller.key) if isinstance(caller, ApiKeyCaller) else None,
            key_hash=hash_token(caller.key) if isinstance(caller, ApiKeyCaller) else None,
            account_id=caller.account_id if isinstance(caller, AccountCaller) else None,
            public_id=public_id,
            email=target,
            quantity=quantity,
            price_mills=price_mills(quantity),
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            deadline=deadline,
        )
        placed = await batcher_for(engine).place(request, timing)
        if placed.outcome is not OrderOutcome.PUBLIC_ID_TAKEN:
            return _answer(placed, request)
    # 10 collisions in a row among 2^32 ids: the id space is nearly full
    raise RuntimeError("no free public order id after several attempts")


def _answer(placed: Placement, request: OrderRequest) -> PlacedOrder:
    """The placed (or replayed) order, or the refusal the statement decided."""
    match placed.outcome:
        case OrderOutcome.INVALID_KEY:
            raise InvalidApiKey()
        case OrderOutcome.IDEMPOTENCY_CONFLICT:
            raise idempotency.IdempotencyConflict()
        case OrderOutcome.OPTED_OUT:
            raise RecipientOptedOut()
        case OrderOutcome.INSUFFICIENT_BALANCE:
            raise InsufficientBalance()
    assert placed.account_id is not None
    assert placed.order_id is not None
    if placed.outcome is OrderOutcome.REPLAYED:
        assert placed.snapshot is not None
        return PlacedOrder(_from_snapshot(placed.account_id, placed.order_id, placed.snapshot), replayed=True)
    assert placed.outcome is OrderOutcome.PLACED
    assert placed.status is not None
    assert placed.created_at is not None
    metrics.ORDERS_PLACED.inc()  # committed with the statement
    order = NewOrder(
        id=placed.order_id,
        public_id=request.public_id,
        account_id=placed.account_id,
        email=request.email,
        quantity=request.quantity,
        price_mills=request.price_mills,
        status=placed.status,
        progress=0,
        created_at=placed.created_at,
    )
    return PlacedOrder(order, replayed=False)


def _from_snapshot(account_id: int, order_id: int, fields: dict[str, Any]) -> NewOrder:
    """The order as the key's first answer showed it (the statement writes the snapshot)."""
    return NewOrder(
        id=order_id,
        public_id=fields["public_id"],
        account_id=account_id,
        email=fields["email"],
        quantity=fields["quantity"],
        price_mills=fields["price_mills"],
        status=fields["status"],
        progress=fields["progress"],
        created_at=datetime.fromisoformat(fields["created_at"]),
    )


async def get_order(session: AsyncSession, *, account_id: int, public_id: str) -> Order:
    """The account's order; another account's order is not found, never forbidden."""
    order = await repository.get_order(session, account_id, public_id)
    if order is None:
        raise OrderNotFound()
    return order


async def page_orders(
    engine: AsyncEngine,
    *,
    caller: Caller,
    filters: OrderFilters,
    limit: int = DEFAULT_LIMIT,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> CursorPage[NewOrder]:
    """The caller's orders, newest first; `starting_after` / `ending_before` are order ids the
    client has seen (InvalidCursor for an id that is not one of the caller's orders). One
    statement checks the caller (InvalidApiKey), finds the cursors and reads the page."""
    try:
        request = CursorRequest(limit=limit, starting_after=starting_after, ending_before=ending_before)
    except ServiceError:
        await accounts.check_caller(engine, caller)  # an invalid key is refused first
        raise
    page = await repository.orders_page(engine, caller, filters, request)
    if page is None:
        raise InvalidApiKey()
    return CursorPage(items=[NewOrder(*row) for row in page.items], has_more=page.has_more)


async def list_orders(
    reader: AsyncEngine | AsyncSession,
    *,
    page: PageRequest,
    caller: Caller | None = None,
    account_id: int | None = None,
) -> NumberedPage[repository.OrderLine]:
    """A numbered page of orders (the legacy list), counted and windowed in one statement, so
    as of one snapshot, on its own (an engine) or in a transaction (a session). Of `caller`,
    whose key that statement checks (InvalidApiKey), or of an account already known
    (`account_id`: the operator's, or one a browser session authenticated)."""
    found = await repository.orders_numbered_page(reader, caller_or_account(caller, account_id), page)
    if found is None:
        raise InvalidApiKey()
    return found


EXPORT_COLUMNS = (Order.id, Order.public_id, Order.account_id, Order.email, Order.quantity, Order.price_mills,
                  Order.status, Order.progress, Order.delivered, Order.created_at)  # fmt: skip


def export_rows(session: AsyncSession, *where: sa.ColumnElement[bool]) -> AsyncIterator[sa.Row[Any]]:
    """The orders matching `where`, as rows of `EXPORT_COLUMNS` (named as the order's fields),
    newest first, streamed: the exports' reader."""
    return stream_by_id(session, sa.select(*(col(c) for c in EXPORT_COLUMNS)).where(*where), col(Order.id))


def export_orders(session: AsyncSession, *, account_id: int) -> AsyncIterator[sa.Row[Any]]:
    """Every order of the account, newest first, streamed (`GET /v1/orders/export`)."""
    return export_rows(session, col(Order.account_id) == account_id)
