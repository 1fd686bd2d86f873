"""Group commit for orders: the orders a process is asked for while a statement is in flight go
to the database together in the next one (`ordersvc_place_orders`, `orders/sql/`).

A lone order goes at once, in a batch of one: batching adds no wait. Under load, each batch costs
one pooled connection, one round trip and one commit for all of its orders, and a hot account's
row is locked once for all of its orders in the batch. Each order is still decided alone; an
error of the statement itself (the database gone, a lock waited for too long) fails every order
of the batch, and the statement wrote nothing."""

from __future__ import annotations

import asyncio
import json
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from ordersvc import db
from ordersvc.orders.models import OrderOutcome

MAX_BATCH = 64  # orders per statement
MAX_IN_FLIGHT = 2  # statements at once per process (each holds a pooled connection)
MIN_LOCK_WAIT_SECONDS = 0.05  # an order with less time left than this is not sent
ORDERS_PUBLIC_ID_KEY = "orders_public_id_key"  # the unique constraint on orders.public_id

_PLACE_ORDERS = (
    "SELECT idx, outcome, account_id, order_id, order_status, created_at, snapshot"
    " FROM ordersvc_place_orders($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
)
# The statement read a balance without a lock and found it moved below its debits by the time it
# locked the row (a concurrent debit): it wrote nothing, and goes again locking the rows first.
BALANCE_MOVED = "OSBAL"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order asked for: who asks (an API key's prefix and SHA-256, or an account already
    authenticated), what to place, and by when."""

    prefix: str | None
    key_hash: bytes | None
    account_id: int | None
    public_id: str
    email: str
    quantity: int
    price_mills: int
    idempotency_key: str | None
    fingerprint: bytes | None
    deadline: float | None  # its request's time limit, on the event loop's clock (None: none)


@dataclass(frozen=True, slots=True)
class Placement:
    """What the statement did with one order (`outcome`), and for a placed order its account,
    id, status and time; for a replay, the first answer's snapshot."""

    outcome: OrderOutcome
    account_id: int | None
    order_id: int | None
    status: str | None
    created_at: datetime | None
    snapshot: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ConsentTiming:
    """The consent rules' two durations, as the statement takes them."""

    mail_interval: timedelta  # at most one message per address per interval
    link_lifetime: timedelta  # a request's links, and so the request, expire after this


class OrderBatcher:
    """The batches of one engine (one process's pool), on one event loop."""

    def __init__(self, engine: AsyncEngine) -> None:
        # Weak: the batchers are kept in a WeakKeyDictionary keyed by the engine, whose entry a
        # strong reference from its value would keep alive for ever.
        self._engine = weakref.ref(engine)
        self._waiting: list[tuple[OrderRequest, ConsentTiming, asyncio.Future[Placement]]] = []
        self._senders = 0
        self._in_flight: set[str | int | None] = set()  # the callers of the statements in flight
        self._tasks: set[asyncio.Task[None]] = set()

    async def place(self, order: OrderRequest, timing: ConsentTiming) -> Placement:
        future: asyncio.Future[Placement] = asyncio.get_running_loop().create_future()
        self._waiting.append((order, timing, future))
        if self._senders < MAX_IN_FLIGHT and _caller(order) not in self._in_flight:
            # Counted here and uncounted by the sender in the same step in which it finds nothing
            # left to send: an order queued at any moment always has a sender that will take it
            # (the order of a caller in flight, the sender of that caller's statement).
            self._senders += 1
            task = asyncio.create_task(self._send())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _send(self) -> None:
        try:
            while self._waiting:
                # The orders of a caller whose statement is in flight wait for it: sent now, they
                # would wait for its account row anyway, holding a pooled connection, and hold up
                # the other accounts' orders of their statement. They go in the next one, with
                # those that came meanwhile (when every order waits so, the statement in flight
                # sends them when it is done).
                ready = [w for w in self._waiting if _caller(w[0]) not in self._in_flight]
                if not ready:
                    return
                timing = ready[0][1]
                # One statement takes one timing (a process has one); others wait for the next.
                batch = [w for w in ready if w[1] == timing][:MAX_BATCH]
                taken = {id(w) for w in batch}
                self._waiting = [w for w in self._waiting if id(w) not in taken]
                callers = {_caller(o) for o, _, _ in batch}
                self._in_flight.update(callers)
                try:
                    await self._send_batch([(o, f) for o, _, f in batch], timing)
                finally:
                    self._in_flight.difference_update(callers)
        finally:
            self._senders -= 1

    async def _send_batch(
        self, batch: list[tuple[OrderRequest, asyncio.Future[Placement]]], timing: ConsentTiming
    ) -> None:
        now = asyncio.get_running_loop().time()
        # An order whose request has (almost) no time left is not sent: told "timed out", it
        # must not be placed.
        for order, future in batch:
            if order.deadline is not None and order.deadline - now < MIN_LOCK_WAIT_SECONDS and not future.done():
                future.set_exception(db.LockWaitTimedOut())
        batch = [(o, f) for o, f in batch if not f.done()]
        if not batch:
            return
        try:
            engine = self._engine()
            if engine is None:
                raise RuntimeError("the engine of this batcher is gone")
            orders = [o for o, _ in batch]
            loop = asyncio.get_running_loop()

            lock_first = False

            def arguments() -> tuple[object, ...]:
                # The lock timeout is what is left once a pooled connection is in hand.
                return _arguments(orders, loop.time(), timing, lock_first=lock_first)

            try:
                rows = await db.fetch_autocommit(engine, _PLACE_ORDERS, late=arguments)
            except asyncpg.PostgresError as exc:
                if exc.sqlstate != BALANCE_MOVED:
                    raise
                lock_first = True
                rows = await db.fetch_autocommit(engine, _PLACE_ORDERS, late=arguments)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != ORDERS_PUBLIC_ID_KEY:
                raise
            # A concurrent statement took one of the ids after this one checked them: nothing was
            # written, and each order is tried again with a new id (`orders.service.place`).
            for _, future in batch:
                if not future.done():
                    future.set_result(Placement(OrderOutcome.PUBLIC_ID_TAKEN, None, None, None, None, None))
            return
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for idx, outcome, account_id, order_id, status, created_at, snapshot in rows:
            future = batch[idx - 1][1]
            if not future.done():
                fields = (
                    json.loads(snapshot) if isinstance(snapshot, str) else snapshot
                )  # jsonb, as the driver gives it
                future.set_result(Placement(OrderOutcome(outcome), account_id, order_id, status, created_at, fields))
        for _, future in batch:  # one row per order, always; never leave a request waiting
            if not future.done():
                future.set_exception(RuntimeError("the order statement returned no row for an order"))


def _caller(order: OrderRequest) -> str | int | None:
    """Who asks: an API key (its prefix) or an authenticated account (its id)."""
    return order.prefix if order.prefix is not None else order.account_id


def _arguments(
    orders: list[OrderRequest], now: float, timing: ConsentTiming, *, lock_first: bool = False
) -> tuple[object, ...]:
    deadlines = [o.deadline for o in orders if o.deadline is not None]
    # The statement waits for a lock no longer than its most hurried order has left.
    lock_timeout_ms = max(1, int((min(deadlines) - now) * 1000)) if deadlines else None
    return (
        [o.prefix for o in orders],
        [o.key_hash for o in orders],
        [o.account_id for o in orders],
        [o.public_id for o in orders],
        [o.email for o in orders],
        [o.quantity for o in orders],
        [o.price_mills for o in orders],
        [o.idempotency_key for o in orders],
        [o.fingerprint for o in orders],
        lock_timeout_ms,
        timing.mail_interval,
        timing.link_lifetime,
        lock_first,
    )


_batchers: weakref.WeakKeyDictionary[AsyncEngine, OrderBatcher] = weakref.WeakKeyDictionary()


def batcher_for(engine: AsyncEngine) -> OrderBatcher:
    batcher = _batchers.get(engine)
    if batcher is None:
        batcher = _batchers[engine] = OrderBatcher(engine)
    return batcher
